"""Orbital contact prediction: 100 satellites x 20 ground stations x 1 day.

Measured in the same run:

* **waystation**: ``find_passes`` (vectorised SGP4 on a 30 s grid, grazing-pass refinement,
  regula-falsi rise/set to < 1 ms) for all 100 x 20 pairs; median of ``--repeat`` runs.
* **skyfield find_events**: plain ``EarthSatellite.find_events`` per (satellite, station) pair,
  the documented way, on the first ``--ref-sats`` satellites (default 10) x 20 stations,
  extrapolated linearly to 100 satellites (it is per pair, so linear is fair).

Also reported: pass counts of both on the common subset, the largest rise/set difference
between the two (skyfield's own search stops at a coarser tolerance), and the time to add
inter-satellite links (5000 km, Earth + 80 km occlusion) for the full 89k-contact plan.

Run: ``.venv/bin/python bench/orbits.py [--repeat R] [--ref-sats N] [--no-isl]`` (about 30-60 s).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _constellation import START_MS, scenario
from waystation.bundle.dtntime import datetime_to_dtn_ms
from waystation.contact_plan.orbits import (
    compute_plan,
    find_passes,
    timescale,
)


def skyfield_reference(sc, n_sats: int, start_s: float, end_s: float):  # type: ignore[no-untyped-def]
    from skyfield.api import EarthSatellite, wgs84

    ts = timescale()

    def t_of(s: float):  # type: ignore[no-untyped-def]
        d = int(s // 86400)
        return ts.utc(2000, 1, 1 + d, 0, 0, s - d * 86400)

    t0, t1 = t_of(start_s), t_of(end_s)
    out = []
    t = time.perf_counter()
    for i, sat in enumerate(sc.satellites[:n_sats]):
        es = EarthSatellite(sat.tle.line1, sat.tle.line2, sat.tle.name, ts)
        for j, st in enumerate(sc.stations):
            topos = wgs84.latlon(st.lat_deg, st.lon_deg, elevation_m=st.alt_m)
            times, events = es.find_events(topos, t0, t1, altitude_degrees=st.min_elevation_deg)
            secs = [datetime_to_dtn_ms(d) / 1000 for d in times.utc_datetime()] if len(times) else []
            out.extend((i, j, int(e), float(s)) for e, s in zip(events, secs) if e != 1)
    return time.perf_counter() - t, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ref-sats", type=int, default=10)
    ap.add_argument("--no-isl", action="store_true")
    args = ap.parse_args()
    sc = scenario()
    timescale()
    start_s = START_MS / 1000
    end_s = start_s + 86400
    tles = [s.tle for s in sc.satellites]
    ours = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        passes = find_passes(tles, sc.stations, start_s, end_s, refine_peaks=False)
        ours.append(time.perf_counter() - t)
    ref_t, ref_events = skyfield_reference(sc, args.ref_sats, start_s, end_s)
    ref_full = ref_t * len(sc.satellites) / args.ref_sats
    sub = [p for p in passes if p.satellite < args.ref_sats]
    # match every skyfield rise/set to our nearest one
    ours_ev = {}
    for p in sub:
        ours_ev.setdefault((p.satellite, p.station, 0), []).append(p.rise_s)
        ours_ev.setdefault((p.satellite, p.station, 2), []).append(p.set_s)
    diffs = []
    for i, j, e, s_utc in ref_events:
        cand = ours_ev.get((i, j, e), [])
        if cand and start_s < s_utc < end_s:
            diffs.append(min(abs(c - s_utc) for c in cand))
    med = statistics.median(ours)
    print(f"passes: waystation {len(passes)} passes for {len(sc.satellites)} sats x "
          f"{len(sc.stations)} stations x 24 h: median {med:.2f} s (runs: "
          + ", ".join(f"{x:.2f}" for x in ours) + ")")
    print(f"reference: skyfield find_events {args.ref_sats} sats x {len(sc.stations)} stations "
          f"{ref_t:.2f} s -> {ref_full:.1f} s extrapolated to {len(sc.satellites)} sats")
    print(f"speed-up vs find_events: {ref_full / med:.1f}x   (target: <= 2 s absolute)")
    n_ref = sum(1 for *_x, e, _s in ref_events if e == 0)
    print(f"subset agreement: {len(sub)} passes (waystation) vs {n_ref} rises (skyfield); "
          f"max |rise/set difference| {1000 * max(diffs) if diffs else float('nan'):.1f} ms "
          f"over {len(diffs)} events (median {1000 * statistics.median(diffs) if diffs else 0:.1f} ms;"
          " find_events stops at a coarser tolerance - tests check ours against an exact root)")
    if not args.no_isl:
        t = time.perf_counter()
        plan = compute_plan(sc, START_MS, 24, isl=True)
        took = time.perf_counter() - t
        print(f"full plan with ISLs: {len(plan.contacts)} contacts in {took:.2f} s")
    _ = np
    return 0


if __name__ == "__main__":
    sys.exit(main())
