"""Load and save contact plans by format: ``ion`` (.ionrc), ``hdtn`` (HDTN JSON), ``native``
(waystation JSON). Detection: ``.json`` files are HDTN unless they carry waystation's format tag;
anything else is ION syntax."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from waystation.contact_plan.errors import PlanFormatError
from waystation.contact_plan.ionrc import parse_ion, write_ion
from waystation.contact_plan.jsonplan import (
    FORMAT_TAG,
    parse_hdtn,
    parse_native,
    write_hdtn,
    write_native,
)
from waystation.contact_plan.model import ContactPlan

__all__ = ["PlanFormat", "detect_format", "dump_plan", "load_plan", "parse_plan", "save_plan"]

PlanFormat = Literal["ion", "hdtn", "native"]
FORMATS: tuple[str, ...] = ("ion", "hdtn", "native")


def detect_format(text: str, path: str = "") -> PlanFormat:
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return "native" if FORMAT_TAG in stripped[:400] else "hdtn"
    if path.endswith(".json"):
        return "hdtn"
    return "ion"


def parse_plan(
    text: str,
    *,
    fmt: str | None = None,
    path: str = "<string>",
    reference_ms: int = 0,
    lenient: bool = False,
) -> ContactPlan:
    """Parse plan text; ``reference_ms`` anchors relative times (ION ``+N``, HDTN seconds).

    ``lenient`` drops HDTN contacts that end before they start instead of failing."""
    fmt = fmt or detect_format(text, path)
    if fmt == "ion":
        return parse_ion(text, path=path, reference_ms=reference_ms)
    if fmt == "hdtn":
        return parse_hdtn(text, path=path, epoch_ms=reference_ms, skip_empty=lenient)
    if fmt == "native":
        return parse_native(text, path=path)
    raise PlanFormatError(path, None, "format", f"unknown plan format {fmt!r} (use {FORMATS})")


def load_plan(
    path: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    reference_ms: int = 0,
    lenient: bool = False,
) -> ContactPlan:
    p = str(path)
    try:
        text = Path(p).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PlanFormatError(p, None, None, f"not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise PlanFormatError(p, None, None, f"cannot read: {exc.strerror or exc}") from None
    return parse_plan(text, fmt=fmt, path=p, reference_ms=reference_ms, lenient=lenient)


def dump_plan(plan: ContactPlan, fmt: str = "native", *, reference_ms: int | None = None) -> str:
    if fmt == "ion":
        return write_ion(plan, reference_ms=reference_ms)
    if fmt == "hdtn":
        return write_hdtn(plan, epoch_ms=reference_ms or 0)
    if fmt == "native":
        return write_native(plan)
    raise ValueError(f"unknown plan format {fmt!r} (use one of {FORMATS})")


def save_plan(
    plan: ContactPlan,
    path: str | os.PathLike[str],
    fmt: str | None = None,
    *,
    reference_ms: int | None = None,
) -> None:
    """Write atomically (temp file + rename), so a watcher never sees half a plan."""
    p = Path(path)
    if fmt is None:
        fmt = "ion" if p.suffix in (".ionrc", ".rc", ".txt") else "native"
    text = dump_plan(plan, fmt, reference_ms=reference_ms)
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, p)
