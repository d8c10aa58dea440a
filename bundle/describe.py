"""Human- and JSON-friendly views of bundles (for the CLI, logs and debugging).

:func:`bundle_to_dict` gives plain JSON-serialisable data; :func:`format_bundle` readable text.
Known extension blocks (§4.4) and status reports (§6.1.1) are decoded; other blocks are shown as
hex (truncated to ``max_bytes``).
"""

from __future__ import annotations

from typing import Any

from .admin import BundleStatusReport, StatusReportReason, decode_admin_record
from .dtntime import dtn_ms_to_datetime
from .errors import BundleError
from .model import (
    BlockFlags,
    BlockType,
    Bundle,
    BundleFlags,
    CanonicalBlock,
    CRCType,
    parse_bundle_age,
    parse_hop_count,
    parse_previous_node,
)

__all__ = ["bundle_to_dict", "format_bundle"]


def _flag_names(value: int, enum: type[BundleFlags] | type[BlockFlags]) -> list[str]:
    names = [m.name for m in enum if m.value and value & m.value and m.name]
    rest = value & ~sum(m.value for m in enum)
    if rest:
        names.append(f"reserved:{rest:#x}")
    return names


def _time(ms: int) -> str:
    if ms == 0:
        return "0 (no clock)"
    try:
        return dtn_ms_to_datetime(ms).isoformat().replace("+00:00", "Z")
    except OverflowError:
        return f"{ms} ms (beyond year 9999)"


def _block_dict(block: CanonicalBlock, max_bytes: int) -> dict[str, Any]:
    data = bytes(block.data)
    out: dict[str, Any] = {
        "type": block.block_type,
        "type_name": BlockType(block.block_type).name
        if block.block_type in BlockType._value2member_map_
        else "unknown",
        "number": block.number,
        "flags": block.flags,
        "flag_names": _flag_names(block.flags, BlockFlags),
        "crc_type": CRCType(block.crc_type).name,
        "length": len(data),
    }
    try:
        if block.block_type == BlockType.PREVIOUS_NODE:
            out["previous_node"] = str(parse_previous_node(data))
        elif block.block_type == BlockType.BUNDLE_AGE:
            out["bundle_age_ms"] = parse_bundle_age(data)
        elif block.block_type == BlockType.HOP_COUNT:
            limit, count = parse_hop_count(data)
            out["hop_limit"], out["hop_count"] = limit, count
    except BundleError as exc:
        out["error"] = str(exc)
    out["data_hex"] = data[:max_bytes].hex() + ("…" if len(data) > max_bytes else "")
    return out


def bundle_to_dict(bundle: Bundle, *, max_bytes: int = 64) -> dict[str, Any]:
    """A JSON-serialisable description of ``bundle``."""
    p = bundle.primary
    out: dict[str, Any] = {
        "bundle_id": str(bundle.bundle_id),
        "primary": {
            "version": p.version,
            "flags": p.flags,
            "flag_names": _flag_names(p.flags, BundleFlags),
            "crc_type": CRCType(p.crc_type).name,
            "destination": str(p.destination),
            "source": str(p.source),
            "report_to": str(p.report_to),
            "creation_time_ms": p.creation.time_ms,
            "creation_time": _time(p.creation.time_ms),
            "sequence": p.creation.sequence,
            "lifetime_ms": p.lifetime_ms,
        },
        "blocks": [_block_dict(b, max_bytes) for b in bundle.blocks],
    }
    if p.fragment_offset is not None:
        out["primary"]["fragment_offset"] = p.fragment_offset
        out["primary"]["total_adu_length"] = p.total_adu_length
    payload = bytes(bundle.payload)
    try:
        text = payload.decode("utf-8")
        if text.isprintable():
            out["payload_text"] = text[: max_bytes * 4]
    except UnicodeDecodeError:
        pass
    if bundle.is_admin_record:
        try:
            record = decode_admin_record(payload)
        except BundleError as exc:
            out["admin_record_error"] = str(exc)
        else:
            if isinstance(record, BundleStatusReport):
                reason = record.reason
                out["status_report"] = {
                    "subject": str(record.subject_id),
                    "reason": reason,
                    "reason_name": StatusReportReason(reason).name
                    if reason in StatusReportReason._value2member_map_
                    else "unassigned",
                    **{
                        name: {"asserted": item.asserted, "time_ms": item.time_ms}
                        for name, item in (
                            ("received", record.received),
                            ("forwarded", record.forwarded),
                            ("delivered", record.delivered),
                            ("deleted", record.deleted),
                        )
                    },
                }
            else:
                out["admin_record"] = {
                    "type": record.record_type,
                    "content_hex": record.content.hex(),
                }
    return out


def format_bundle(bundle: Bundle, *, max_bytes: int = 64) -> str:
    """Readable multi-line text describing ``bundle``."""
    d = bundle_to_dict(bundle, max_bytes=max_bytes)
    p = d["primary"]
    lines = [
        f"bundle {d['bundle_id']}",
        f"  {p['source']} -> {p['destination']}  (report-to {p['report_to']})",
        f"  created {p['creation_time']}  seq {p['sequence']}  lifetime {p['lifetime_ms']} ms",
        f"  flags {p['flags']:#x} {' '.join(p['flag_names'])}  primary CRC {p['crc_type']}",
    ]
    if "fragment_offset" in p:
        lines.append(f"  fragment at {p['fragment_offset']} of {p['total_adu_length']} bytes")
    for b in d["blocks"]:
        extra = ""
        for key in ("previous_node", "bundle_age_ms", "hop_limit", "hop_count", "error"):
            if key in b:
                extra += f" {key}={b[key]}"
        lines.append(
            f"  block {b['number']}: type {b['type']} ({b['type_name']}) flags {b['flags']:#x}"
            f" CRC {b['crc_type']} {b['length']} B{extra}"
        )
    if "payload_text" in d:
        lines.append(f"  payload: {d['payload_text']!r}")
    else:
        lines.append(f"  payload hex: {d['blocks'][-1]['data_hex']}")
    if "status_report" in d:
        sr = d["status_report"]
        asserted = [
            k for k in ("received", "forwarded", "delivered", "deleted") if sr[k]["asserted"]
        ]
        lines.append(
            f"  status report on {sr['subject']}: {', '.join(asserted) or 'nothing'} "
            f"(reason {sr['reason']} {sr['reason_name']})"
        )
    return "\n".join(lines)
