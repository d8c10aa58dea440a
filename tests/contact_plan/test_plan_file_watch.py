"""Plan file watcher: reload on change, reject bad edits and keep the old plan."""

from __future__ import annotations

import os
from pathlib import Path

from waystation.contact_plan.errors import PlanFormatError
from waystation.contact_plan.formats import save_plan
from waystation.contact_plan.model import Contact, ContactPlan
from waystation.contact_plan.watch import PlanFileWatcher, PlanRejected, PlanReloaded


def _bump(path: Path, ns: int) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + ns))


def test_reload_reject_and_recover(tmp_path: Path) -> None:
    f = tmp_path / "plan.json"
    w = PlanFileWatcher(f)
    assert w.poll() is None  # missing, never loaded
    p1 = ContactPlan((Contact(1, 2, 0, 1000, 10),))
    save_plan(p1, f)
    ev = w.poll()
    assert isinstance(ev, PlanReloaded) and ev.plan == p1 and w.plan == p1
    assert w.poll() is None  # unchanged
    f.write_text('{"format": "waystation-contact-plan", "version": 1, "contacts": [\n'
                 '{"source": 1, "dest": 2, "start_ms": 5, "end_ms": 1, "rate": 1}]}')
    _bump(f, 1_000_000)
    ev = w.poll()
    assert isinstance(ev, PlanRejected) and isinstance(ev.error, PlanFormatError)
    assert ev.error.line == 2 and ev.error.field == "end_ms"
    assert w.plan == p1  # the old plan stays in force
    p2 = ContactPlan((Contact(1, 2, 0, 2000, 10),))
    save_plan(p2, f)
    _bump(f, 2_000_000)
    ev = w.poll()
    assert isinstance(ev, PlanReloaded) and w.plan == p2
    f.unlink()
    ev = w.poll()
    assert isinstance(ev, PlanRejected) and w.plan == p2
