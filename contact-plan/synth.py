"""Synthetic but valid TLEs (Walker-delta constellations) for tests, benchmarks and demos.

The lines follow the NORAD two-line format column by column (see CelesTrak's "FAQ: Two-Line
Element Set Format") with correct mod-10 checksums, so they go through the same parser and SGP4
path as real element sets. Drag terms are zero.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

__all__ = ["make_tle", "walker_delta"]

_MU = 398600.4418  # km^3/s^2 (WGS84)
_RE = 6378.137


def _checksum(line: str) -> str:
    return str(sum(int(c) if c.isdigit() else (1 if c == "-" else 0) for c in line) % 10)


def make_tle(
    satnum: int,
    epoch: datetime,
    *,
    inclination_deg: float,
    raan_deg: float,
    mean_anomaly_deg: float,
    altitude_km: float = 550.0,
    eccentricity: float = 0.0001,
    arg_perigee_deg: float = 0.0,
) -> tuple[str, str]:
    """Two TLE lines for a near-circular orbit at ``altitude_km``."""
    if epoch.tzinfo is None:
        raise ValueError("epoch must be timezone-aware (UTC)")
    epoch = epoch.astimezone(UTC)
    start = datetime(epoch.year, 1, 1, tzinfo=UTC)
    doy = 1 + (epoch - start).total_seconds() / 86400.0
    a = _RE + altitude_km
    rev_per_day = math.sqrt(_MU / a**3) * 86400.0 / (2 * math.pi)
    l1 = (f"1 {satnum:05d}U 24001A   {epoch.year % 100:02d}{doy:012.8f}  .00000000  00000-0 "
          f" 00000-0 0  999")
    l2 = (f"2 {satnum:05d} {inclination_deg % 180:8.4f} {raan_deg % 360:8.4f} "
          f"{round(eccentricity * 1e7):07d} {arg_perigee_deg % 360:8.4f} "
          f"{mean_anomaly_deg % 360:8.4f} {rev_per_day:11.8f}    1")
    return l1 + _checksum(l1), l2 + _checksum(l2)


def walker_delta(
    planes: int,
    per_plane: int,
    phasing: int,
    epoch: datetime,
    *,
    inclination_deg: float = 53.0,
    altitude_km: float = 550.0,
    first_satnum: int = 90001,
) -> str:
    """A Walker-delta constellation i:T/P/F as 3-line TLE text (names ``WALKER-pp-ss``)."""
    total = planes * per_plane
    out = []
    for p in range(planes):
        for s in range(per_plane):
            n = p * per_plane + s
            l1, l2 = make_tle(
                first_satnum + n, epoch,
                inclination_deg=inclination_deg,
                raan_deg=360.0 * p / planes,
                mean_anomaly_deg=360.0 * s / per_plane + 360.0 * phasing * p / total,
                altitude_km=altitude_km,
            )
            out.append(f"WALKER-{p:02d}-{s:02d}\n{l1}\n{l2}")
    return "\n".join(out) + "\n"
