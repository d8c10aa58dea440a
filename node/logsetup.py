"""Structured logging for the node: levels, ``key=value`` text or one JSON object per line.

Modules log with ``log.info("bundle stored", extra={"fields": {"bundle": key, ...}})`` or, more
conveniently, through :func:`kv` which builds that ``extra``. The text format appends the fields
as ``key=value``; the JSON format (``[logging] format = "json"``) emits them as object members
so the log can be machine-filtered.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

__all__ = ["configure_logging", "kv"]


def kv(**fields: Any) -> dict[str, Any]:
    """``extra=`` argument carrying structured fields for one log record."""
    return {"fields": fields}


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line = f"{ts}.{int(record.msecs):03d}Z {record.levelname:<7} {record.name}: "
        line += record.getMessage()
        fields = getattr(record, "fields", None)
        if fields:
            line += " " + " ".join(f"{k}={_fmt(v)}" for k, v in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _fmt(value: Any) -> str:
    text = value.hex() if isinstance(value, bytes) else str(value)
    return json.dumps(text) if (" " in text or not text) else text


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "ts": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in (getattr(record, "fields", None) or {}).items():
            obj[k] = v.hex() if isinstance(v, bytes) else v
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj, default=str)


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    """Install one stderr handler on the root logger with the chosen level and format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
