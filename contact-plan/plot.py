"""Gantt chart of a contact plan (matplotlib, headless Agg backend): one row per directed link,
one bar per contact, time axis in UTC."""

from __future__ import annotations

import os
from collections import defaultdict

from waystation.bundle.dtntime import dtn_ms_to_datetime
from waystation.contact_plan.model import ContactPlan

__all__ = ["plot_plan"]


def plot_plan(
    plan: ContactPlan,
    path: str | os.PathLike[str],
    *,
    title: str = "Contact plan",
    names: dict[int, str] | None = None,
    max_rows: int = 60,
) -> int:
    """Write a PNG (or any format matplotlib infers from ``path``); returns the rows drawn.

    With more than ``max_rows`` links only the busiest are drawn (the title says so)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    names = names or {}
    rows: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for c in plan.contacts:
        rows[(c.source, c.dest)].append((c.start_ms, c.end_ms))
    keys = sorted(rows, key=lambda k: (-len(rows[k]), k))[:max_rows]
    keys.sort()
    fig_h = max(2.5, 0.3 * len(keys) + 1.5)
    fig, ax = plt.subplots(figsize=(12, fig_h))
    day = 86_400_000.0
    for y, key in enumerate(keys):
        bars = [
            (mdates.date2num(dtn_ms_to_datetime(s)), (e - s) / day) for s, e in sorted(rows[key])
        ]
        ax.broken_barh(bars, (y - 0.35, 0.7), facecolors="tab:blue" if key[0] < key[1] else "tab:orange")

    def label(n: int) -> str:
        return f"{names[n]} ({n})" if n in names else str(n)

    ax.set_yticks(range(len(keys)), [f"{label(a)} → {label(b)}" for a, b in keys], fontsize=8)
    ax.set_ylim(-1, len(keys))
    ax.xaxis_date()
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
    ax.set_xlabel("UTC")
    hidden = len(rows) - len(keys)
    ax.set_title(title + (f" ({hidden} less busy links not shown)" if hidden > 0 else ""))
    ax.grid(axis="x", alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return len(keys)
