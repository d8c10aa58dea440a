"""``waystation store``: inspect and manage a node's custody store.

Verbs: ``list`` (filter by destination, state, queue), ``show`` (metadata and the decoded
bundle), ``export`` (the raw wire bytes), ``delete`` (with an RFC 9171 §6.1.1 reason code,
recorded in the deletion log), ``stats``, ``check`` (offline page walk plus index cross-check)
and ``log`` (the deletion log).

``list``, ``show``, ``export``, ``delete`` and ``stats`` work on a *running* node through its
application socket (the ``store_*`` operations of docs/app-protocol.md), so a deletion goes
through the node's agent and its queues, pending deliveries and wire cache stay consistent;
and on a *stopped* node's data directory (``--data-dir``; the store is ``<data-dir>/store``).
The choice is automatic: ``--socket`` names a node that must answer; otherwise the default
socket (``$WAYSTATION_SOCKET`` or the XDG one) is used if a node answers there and, when
``--data-dir`` is given, serves that same data directory (an explicit ``--data-dir`` of another, stopped node is never redirected to
the running one), else the directory is opened directly. ``check`` and ``log`` always read
the directory (LMDB allows a second reader beside the running node).

Bundles are named by their store key in hex (what ``list`` prints), as produced by
``BundleId.key()``; a unique hex prefix is accepted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from waystation.store.api import (
    BundleMeta,
    CustodyState,
    Disposition,
    Priority,
    ReasonCode,
    StoredEntry,
    StoreError,
    iter_all,
    resolve_key,
    store_summary,
)

__all__ = ["register"]

STORE_SUBDIR = "store"
LOCK_NAME = "node.lock"  # held by a running node (waystation.service._lock_data_dir)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "store",
        help="inspect and manage the custody store",
        description="Inspect and manage the custody store: through the running node's app "
        "socket when one answers, else a stopped node's data directory (<data-dir>/store). Bundles are named by their hex store key, as `list` prints it, "
        "or a unique prefix.",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="the node's data directory (default: the node's default, "
        "$XDG_DATA_HOME/waystation); the store is <data-dir>/store",
    )
    parser.add_argument(
        "--socket",
        metavar="ENDPOINT",
        help="the running node's app socket (a path or ZeroMQ endpoint; default: "
        "$WAYSTATION_SOCKET or the default socket, used when a node answers there)",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    p = verbs.add_parser("list", help="list stored bundles")
    p.add_argument("--destination", "-d", help="only bundles for this destination EID")
    p.add_argument("--state", "-s", choices=[s.value for s in CustodyState])
    p.add_argument("--queue", "-q", help="only this neighbour's outbound queue (in send order)")
    p.add_argument("--limit", "-n", type=int, default=None)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=_list)

    p = verbs.add_parser("show", help="show one bundle: metadata and decoded blocks")
    p.add_argument("key", help="store key in hex (or a unique prefix)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_show)

    p = verbs.add_parser("export", help="write one bundle's raw wire bytes")
    p.add_argument("key", help="store key in hex (or a unique prefix)")
    p.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    p.set_defaults(func=_export)

    p = verbs.add_parser("delete", help="delete bundles, recording a status report reason")
    p.add_argument("keys", nargs="+", help="store keys in hex (or unique prefixes)")
    p.add_argument(
        "--reason",
        type=_reason,
        default=ReasonCode.TRANSMISSION_CANCELED,
        help="RFC 9171 reason code, number or name (default 3, transmission canceled)",
    )
    p.set_defaults(func=_delete)

    p = verbs.add_parser("stats", help="counts, bytes, quota and map usage")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_stats)

    p = verbs.add_parser("check", help="walk every page and cross-check all indexes")
    p.set_defaults(func=_check)

    p = verbs.add_parser("log", help="the deletion log (most recent last)")
    p.add_argument("--limit", "-n", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_log)


# -- plumbing ---------------------------------------------------------------------------------
def _reason(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        try:
            return ReasonCode[text.upper().replace("-", "_")]
        except KeyError:
            names = ", ".join(r.name.lower() for r in ReasonCode)
            raise argparse.ArgumentTypeError(f"unknown reason {text!r} (one of: {names})") from None
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError("reason code must be 0..255")
    return value


def _store_dir(args: argparse.Namespace) -> Path:
    if args.data_dir is not None:
        return Path(args.data_dir) / STORE_SUBDIR
    from waystation.config import default_data_dir

    return default_data_dir() / STORE_SUBDIR


def _open(args: argparse.Namespace, *, write: bool = False, verify: str = "quick") -> Any:
    """The store of the data directory (a stopped node's, or read-only beside a running one)."""
    from waystation.store.lmdb_store import LmdbBundleStore

    path = _store_dir(args)
    if not path.exists():
        raise StoreError(f"no store at {path} (wrong --data-dir?)")
    return LmdbBundleStore(path, create=False, readonly=not write, verify=verify)  # type: ignore[arg-type]


class _NodeGone(Exception):
    """``--socket`` was given but no node answers there."""


def _endpoint(args: argparse.Namespace) -> tuple[str, bool]:
    """The socket to try and whether the user demanded it (``--socket``). ``$WAYSTATION_SOCKET``
    only moves the default: with it set, a stopped node's directory is still usable."""
    from waystation.client import default_endpoint

    endpoint = args.socket or default_endpoint()
    if "://" not in endpoint:
        endpoint = f"ipc://{endpoint}"
    return endpoint, bool(args.socket)


def _node_client(args: argparse.Namespace) -> Any:
    """A connected ``Client`` when a node should be used, else None (use the directory).

    Raises ``_NodeGone`` when the user named a socket and nothing answers there.
    """
    from waystation.client import Client, ClientError

    endpoint, explicit = _endpoint(args)
    if endpoint.startswith("ipc://") and not Path(endpoint[6:]).exists():
        if explicit:
            raise _NodeGone(f"no node socket at {endpoint[6:]}")
        return None
    client = Client(endpoint, timeout=2.0)
    try:
        status = client.status()
    except ClientError as exc:
        client.close()
        if explicit:
            raise _NodeGone(f"no node answers at {endpoint}: {exc}") from None
        return None
    if not explicit and args.data_dir is not None:
        served = (status.get("store") or {}).get("path")
        mine = _store_dir(args).resolve()
        if served is None or Path(served).resolve() != mine:
            client.close()  # the running node serves another data directory
            return None
    return client


def _via_node(args: argparse.Namespace, body: Any) -> int | None:
    """Run ``body(client)`` against a running node; None when there is none to use."""
    from waystation.client import ClientError, NodeError

    try:
        client = _node_client(args)
    except _NodeGone as exc:
        print(f"waystation store: {exc}", file=sys.stderr)
        return 2
    if client is None:
        return None
    try:
        return int(body(client) or 0)
    except NodeError as exc:
        print(f"waystation store: {exc.message} ({exc.code})", file=sys.stderr)
        return 1
    except ClientError as exc:
        print(f"waystation store: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()


def _meta_from_map(doc: dict[str, Any]) -> BundleMeta:
    """A ``BundleMeta`` back from the node's ``meta`` map (fields by name)."""
    fields = {k: v for k, v in doc.items() if k in BundleMeta.__dataclass_fields__}
    fields["state"] = CustodyState(fields.get("state", CustodyState.RECEIVED.value))
    fields["priority"] = Priority(fields.get("priority", int(Priority.NORMAL)))
    return BundleMeta(**fields)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return repr(value)


def _dumps(obj: Any, **kwargs: Any) -> str:
    return json.dumps(obj, default=_json_default, **kwargs)


def _bundle_id_text(key: bytes) -> str:
    try:
        from waystation.bundle.model import BundleId

        return str(BundleId.from_key(key))
    except Exception:  # a key from another kind of ID: show it raw
        return "?"


def _meta_json(meta: BundleMeta) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in BundleMeta.__dataclass_fields__:
        value = getattr(meta, name)
        if isinstance(value, bytes):
            value = value.hex()
        elif isinstance(value, CustodyState | Disposition):
            value = value.value
        elif name == "priority":
            value = int(value)
        out[name] = value
    return out


def _run(args: argparse.Namespace, body: Any, *, write: bool = False, verify: str = "quick") -> int:
    try:
        store = _open(args, write=write, verify=verify)
    except StoreError as exc:
        print(f"waystation store: {exc}", file=sys.stderr)
        return 2
    try:
        return int(body(store) or 0)
    except StoreError as exc:
        print(f"waystation store: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()


# -- verbs ------------------------------------------------------------------------------------
def _select(store: Any, args: argparse.Namespace) -> list[StoredEntry]:
    if args.queue:
        entries = store.queue(args.queue)
    elif args.destination:
        entries = store.by_destination(args.destination)
    else:
        entries = list(iter_all(store))
    if args.destination:
        entries = [e for e in entries if e.meta.destination == args.destination]
    if args.state:
        entries = [e for e in entries if e.meta.state == args.state]
    return entries if args.limit is None else entries[: max(0, args.limit)]


def _list(args: argparse.Namespace) -> int:
    def remote(client: Any) -> int:
        if args.limit is not None and args.limit <= 0:
            return _print_list(args, [])
        reply = client.store_list(
            destination=args.destination, state=args.state, queue=args.queue, limit=args.limit
        )
        entries = [StoredEntry(e["key"], _meta_from_map(e["meta"])) for e in reply["entries"]]
        return _print_list(args, entries)

    rc = _via_node(args, remote)
    if rc is not None:
        return rc
    return _run(args, lambda store: _print_list(args, _select(store, args)))


def _print_list(args: argparse.Namespace, entries: list[StoredEntry]) -> int:
    out = sys.stdout
    if args.json:
        for e in entries:
            out.write(_dumps({"key": e.key.hex(), **_meta_json(e.meta)}) + "\n")
        return 0
    out.write(f"{'KEY':<44} {'STATE':<10} {'PRI':>3} {'SIZE':>8} {'DESTINATION':<24} QUEUE\n")
    for e in entries:
        m = e.meta
        key = e.key.hex()
        key = key if len(key) <= 44 else key[:41] + "..."
        out.write(
            f"{key:<44} {m.state.value:<10} {int(m.priority):>3} {m.size:>8} "
            f"{m.destination:<24} {m.queue or m.local_endpoint or '-'}\n"
        )
    out.write(f"{len(entries)} bundle(s)\n")
    return 0


def _show(args: argparse.Namespace) -> int:
    def remote(client: Any) -> int:
        got = client.store_get(args.key)
        return _print_show(args, got["key"], _meta_from_map(got["meta"]), got["wire"])

    def local(store: Any) -> int:
        key = resolve_key(store, args.key)
        return _print_show(args, key, store.get_meta(key), store.get(key))

    rc = _via_node(args, remote)
    return rc if rc is not None else _run(args, local)


def _print_show(args: argparse.Namespace, key: bytes, meta: BundleMeta, wire: bytes) -> int:
    decoded: dict[str, Any] | str
    try:
        from waystation.bundle.codec import decode_bundle

        bundle = decode_bundle(wire)
        p = bundle.primary
        decoded = {
            "flags": int(p.flags),
            "crc_type": int(p.crc_type),
            "destination": str(p.destination),
            "source": str(p.source),
            "report_to": str(p.report_to),
            "creation": [p.creation.time_ms, p.creation.sequence],
            "lifetime_ms": p.lifetime_ms,
            "fragment_offset": p.fragment_offset,
            "total_adu_length": p.total_adu_length,
            "blocks": [
                {
                    "type": int(b.block_type),
                    "number": b.number,
                    "flags": int(b.flags),
                    "crc_type": int(b.crc_type),
                    "length": len(b.data),
                }
                for b in bundle.blocks
            ],
        }
    except Exception as exc:  # a stored bundle the current codec rejects: say so, show meta
        decoded = f"undecodable: {exc}"
    doc = {
        "key": key.hex(),
        "bundle_id": _bundle_id_text(key),
        "wire_length": len(wire),
        "meta": _meta_json(meta),
        "bundle": decoded,
    }
    if args.json:
        print(_dumps(doc))
    else:
        print(_dumps(doc, indent=2))
    return 0


def _export(args: argparse.Namespace) -> int:
    def write(wire: bytes) -> int:
        if args.output is None:
            sys.stdout.buffer.write(wire)
            sys.stdout.buffer.flush()
        else:
            args.output.write_bytes(wire)
        return 0

    rc = _via_node(args, lambda client: write(client.store_get(args.key)["wire"]))
    return (
        rc
        if rc is not None
        else _run(args, lambda store: write(store.get(resolve_key(store, args.key))))
    )


def _delete(args: argparse.Namespace) -> int:
    def remote(client: Any) -> int:
        for text in args.keys:
            reply = client.store_delete(text, int(args.reason))
            print(f"deleted {reply['key'].hex()} (reason {reply['reason']}, through the node)")
        return 0

    rc = _via_node(args, remote)
    if rc is not None:
        return rc
    if _node_running(args):
        # A node answers on the default socket but serves another data directory, and this
        # one's lock is held: someone else's node. Never write under a running node.
        print(
            "waystation store: a node is running on this data directory but its socket is "
            "elsewhere; give its --socket, or stop it first",
            file=sys.stderr,
        )
        return 2

    def body(store: Any) -> int:
        for text in args.keys:
            record = store.delete(resolve_key(store, text), args.reason)
            print(f"deleted {record.key.hex()} (reason {record.reason}, log #{record.seq})")
        return 0

    return _run(args, body, write=True)


def _node_running(args: argparse.Namespace) -> bool:
    """True when a live node holds this data directory's lock (``<data-dir>/node.lock``)."""
    import fcntl
    import os

    data_dir = _store_dir(args).parent
    lock = data_dir / LOCK_NAME
    if not lock.exists():
        return False
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _stats(args: argparse.Namespace) -> int:
    def show(doc: dict[str, Any]) -> int:
        if args.json:
            print(_dumps(doc))
        else:
            for k, v in doc.items():
                print(f"{k:>17}: {v}")
        return 0

    def local(store: Any) -> int:
        return show(store_summary(store))

    rc = _via_node(args, lambda client: show(client.store_stats()))
    return rc if rc is not None else _run(args, local)


def _check(args: argparse.Namespace) -> int:
    def body(store: Any) -> int:
        problems = store.check()
        for p in problems:
            print(p)
        print("ok" if not problems else f"{len(problems)} problem(s)")
        return 0 if not problems else 1

    return _run(args, body, verify="full")


def _log(args: argparse.Namespace) -> int:
    def body(store: Any) -> int:
        records = store.deletions()
        records = records[-args.limit :] if args.limit and args.limit > 0 else records
        for r in records:
            if args.json:
                print(
                    _dumps(
                        {
                            "seq": r.seq,
                            "key": r.key.hex(),
                            "disposition": r.disposition.value,
                            "reason": r.reason,
                            "time_ms": r.time_ms,
                            "meta": _meta_json(r.meta),
                        }
                    )
                )
            else:
                print(
                    f"#{r.seq} {r.time_ms} {r.disposition.value:<9} reason={r.reason:<3} "
                    f"{r.meta.destination} {r.key.hex()}"
                )
        return 0

    return _run(args, body)
