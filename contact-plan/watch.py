"""Watching a contact-plan file: reload on change, keep the old plan on a bad edit.

:class:`PlanFileWatcher` is polled (no threads, no inotify): :meth:`poll` stats the file and,
when its (mtime, size, inode) changed, parses it completely. A good file yields
:class:`PlanReloaded`; a bad one :class:`PlanRejected` with the precise
:class:`~waystation.contact_plan.errors.PlanFormatError` - and the previous plan stays in force
(nothing half-loaded). Writers should replace the file atomically (``save_plan`` does: temp
file + rename), but a watcher that catches a half-written file only rejects it and picks up the
complete one on the next poll.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from waystation.contact_plan.errors import ContactPlanError
from waystation.contact_plan.formats import load_plan
from waystation.contact_plan.model import ContactPlan

__all__ = ["PlanFileWatcher", "PlanReloaded", "PlanRejected"]


@dataclass(frozen=True, slots=True)
class PlanReloaded:
    path: str
    plan: ContactPlan


@dataclass(frozen=True, slots=True)
class PlanRejected:
    path: str
    error: ContactPlanError


class PlanFileWatcher:
    """Poll ``path`` for changes (see module docstring)."""

    def __init__(
        self, path: str | os.PathLike[str], *, fmt: str | None = None, reference_ms: int = 0,
        lenient: bool = False,
    ) -> None:
        self.path = str(path)
        self._fmt = fmt
        self._reference = reference_ms
        self._lenient = lenient
        self._stamp: tuple[int, int, int] | None = None
        self.plan: ContactPlan | None = None

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def poll(self) -> PlanReloaded | PlanRejected | None:
        """``None`` when nothing changed (or the file is missing and was never loaded)."""
        stamp = self._stat()
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        if stamp is None and self.plan is None:
            return None
        try:
            plan = load_plan(self.path, fmt=self._fmt, reference_ms=self._reference,
                             lenient=self._lenient)
        except ContactPlanError as exc:
            return PlanRejected(self.path, exc)
        self.plan = plan
        return PlanReloaded(self.path, plan)
