"""Errors raised by :mod:`waystation.contact_plan`.

One root, split by what went wrong::

    ContactPlanError
    ├── PlanFormatError      a plan file (ION .ionrc, HDTN JSON, waystation JSON, station file,
    │                        TLE file) is malformed; names the file, line and field
    ├── PlanValidationError  a plan object breaks a model rule (end before start, rate <= 0, ...)
    ├── OrbitError           orbital prediction cannot run (bad TLE, SGP4 failure, bad window)
    └── RoutingError         a CGR request is impossible
        ├── UnknownNode      the source/destination is not in the contact graph
        └── VolumeExhausted  booking a bundle would over-book a contact (never silently done)

Every error is raised *before* anything is stored: loaders parse into new objects and return them
only when the whole input is good, so a bad plan is never half-loaded.
"""

from __future__ import annotations

__all__ = [
    "ContactPlanError",
    "OrbitError",
    "PlanFormatError",
    "PlanValidationError",
    "RoutingError",
    "UnknownNode",
    "VolumeExhausted",
]


class ContactPlanError(Exception):
    """Root of every error this library raises."""


class PlanFormatError(ContactPlanError, ValueError):
    """A plan or scenario file is malformed.

    ``path`` is the file (or ``"<string>"``), ``line`` the 1-based line number (``None`` when the
    format has no meaningful line, e.g. a JSON document that is not an object), ``field`` the
    name of the offending field (``None`` for a whole-line syntax error).
    """

    def __init__(self, path: str, line: int | None, field: str | None, reason: str) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.reason = reason
        where = path if line is None else f"{path}:{line}"
        what = f" field {field!r}" if field else ""
        super().__init__(f"{where}:{what} {reason}".replace(": ", ": ", 1))


class PlanValidationError(ContactPlanError, ValueError):
    """A contact or range breaks a rule of the model."""


class OrbitError(ContactPlanError):
    """Orbital prediction failed (bad TLE, SGP4 error code, impossible window)."""


class RoutingError(ContactPlanError):
    """A Contact Graph Routing request cannot be served."""


class UnknownNode(RoutingError, KeyError):
    """A node number that is not in the contact graph."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "unknown node"


class VolumeExhausted(RoutingError):
    """Booking would exceed a contact's residual volume (CCSDS 734.3-B-1 volume limits)."""
