"""Contacts computed from orbital predictions (SGP4 via sgp4/skyfield), vectorised.

Geometry is exactly skyfield's: SGP4 (sgp4 2.x, the Vallado 2006 code skyfield uses) gives
TEME positions; TEME -> ITRS/PEF is ``rot_z(-theta_GMST1982)`` with UT1 from skyfield's
*builtin* timescale (no downloads ever) and no polar motion, as in ``EarthSatellite.at``;
ground stations are WGS84 geodetic positions and elevation is measured against the geodetic
up vector - the same numbers ``(sat - topos).at(t).altaz()`` gives.

Method (why it is fast): all satellites are propagated at once on a coarse grid
(``SatrecArray``, default 30 s); elevation for every satellite x station x step is one numpy
expression. Passes are the runs of grid samples above the station's minimum elevation; grazing
passes that fall between samples are caught by refining every sampled local maximum below the
threshold (golden-section search). Every rise and set is then bisected to < 1 ms, all
brackets of one satellite in one vectorised SGP4 call per iteration. The result is within
10 ms of the exact root of the same propagator (tests compare against a tight bisection of
skyfield's own ``altaz``).

Inter-satellite links (optional): line of sight with Earth occlusion (the segment between the
two satellites must clear a sphere of radius 6378.137 km + ``grazing_altitude_km``) and a
maximum range; windows are found on the same grid and their edges bisected. ISL windows shorter
than one grid step can be missed (documented limitation).

Contact windows are shrunk at both ends by a guard that grows with TLE age
(``guard.base_ms + guard.per_day_ms * age_days``), because TLE error (km/day along-track)
dominates SGP4's own error. One-way light time per contact is the *largest* distance during
the window (at its ends for a ground pass) over c, rounded up to the ms.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sgp4.api import Satrec, SatrecArray
from waystation.contact_plan.errors import OrbitError, PlanFormatError
from waystation.contact_plan.model import Contact, ContactPlan, Range

__all__ = [
    "GroundStation",
    "GuardPolicy",
    "IslConfig",
    "IslWindow",
    "Pass",
    "Satellite",
    "Scenario",
    "Tle",
    "compute_plan",
    "find_isl_windows",
    "find_passes",
    "load_scenario",
    "load_tles",
    "parse_tles",
    "timescale",
]

C_KM_S = 299_792.458
#: Longest prediction window accepted (TLEs are useless beyond a few weeks anyway).
MAX_HOURS = 24 * 31
EARTH_RADIUS_KM = 6378.137
_JD_DTN_EPOCH = 2451544.5  # 2000-01-01T00:00:00 UTC as a Julian date
_TS: Any = None


def timescale() -> Any:
    """skyfield's builtin timescale (bundled UT1/leap-second tables; never downloads)."""
    global _TS
    if _TS is None:
        from skyfield.api import load

        _TS = load.timescale(builtin=True)
    return _TS


# -- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tle:
    name: str
    line1: str
    line2: str
    satrec: Satrec = field(compare=False, repr=False)

    @property
    def norad(self) -> int:
        return int(self.satrec.satnum)

    @property
    def epoch_dtn_s(self) -> float:
        return (self.satrec.jdsatepoch - _JD_DTN_EPOCH + self.satrec.jdsatepochF) * 86400.0


def _tle_checksum(line: str) -> int:
    return sum(int(ch) if ch.isdigit() else (1 if ch == "-" else 0) for ch in line[:68]) % 10


def parse_tles(text: str, *, path: str = "<string>") -> list[Tle]:
    """Parse 2-line or 3-line (name + 2 lines) element sets; checksums are verified."""
    lines = [(i, raw.rstrip()) for i, raw in enumerate(text.splitlines(), start=1)]
    lines = [(i, ln) for i, ln in lines if ln.strip()]
    out: list[Tle] = []
    k = 0
    while k < len(lines):
        name = ""
        lineno, ln = lines[k]
        if not ln.startswith("1 "):
            name = ln.strip()
            if name.startswith("0 "):
                name = name[2:].strip()
            k += 1
            if k >= len(lines):
                raise PlanFormatError(path, lineno, "line1", "name line without element lines")
        n1, l1 = lines[k]
        if k + 1 >= len(lines):
            raise PlanFormatError(path, n1, "line2", "missing second element line")
        n2, l2 = lines[k + 1]
        for n, ln_, tag in ((n1, l1, "1"), (n2, l2, "2")):
            fieldname = f"line{tag}"
            if not ln_.startswith(tag + " "):
                raise PlanFormatError(path, n, fieldname, f"expected a TLE line starting '{tag} '")
            if len(ln_) < 69:
                raise PlanFormatError(path, n, fieldname, f"too short ({len(ln_)} < 69 columns)")
            if not ln_[68].isdigit() or int(ln_[68]) != _tle_checksum(ln_):
                raise PlanFormatError(
                    path, n, "checksum", f"line {tag} checksum is {ln_[68]!r}, "
                    f"computed {_tle_checksum(ln_)}"
                )
        if l1[2:7] != l2[2:7]:
            raise PlanFormatError(path, n2, "satnum", "catalogue numbers of lines 1 and 2 differ")
        try:
            sat = Satrec.twoline2rv(l1[:69], l2[:69])
        except Exception as exc:  # sgp4 raises ValueError/IndexError on bad columns
            raise PlanFormatError(path, n1, "elements", f"sgp4 rejects the element set: {exc}") from None
        if sat.error:
            raise PlanFormatError(path, n1, "elements", f"sgp4 error code {sat.error}")
        out.append(Tle(name or l1[2:7].strip(), l1[:69], l2[:69], sat))
        k += 2
    return out


def load_tles(path: str | os.PathLike[str]) -> list[Tle]:
    p = str(path)
    try:
        text = Path(p).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanFormatError(p, None, None, f"cannot read TLE file: {exc}") from None
    return parse_tles(text, path=p)


@dataclass(frozen=True)
class GroundStation:
    name: str
    node: int
    lat_deg: float
    lon_deg: float
    alt_m: float = 0.0
    min_elevation_deg: float = 10.0
    uplink_rate: int = 125_000
    """Bytes/s from the station to a satellite."""
    downlink_rate: int = 125_000
    """Bytes/s from a satellite to the station."""


@dataclass(frozen=True)
class Satellite:
    tle: Tle
    node: int
    isl_rate: int = 0


@dataclass(frozen=True)
class IslConfig:
    max_range_km: float = 5000.0
    rate: int = 125_000
    grazing_altitude_km: float = 80.0


@dataclass(frozen=True)
class GuardPolicy:
    """Shrink each window end by ``base_ms + per_day_ms * (TLE age in days)``."""

    base_ms: int = 0
    per_day_ms: int = 1000

    def guard_ms(self, age_days: float) -> int:
        return math.ceil(self.base_ms + self.per_day_ms * abs(age_days))


@dataclass(frozen=True)
class Scenario:
    stations: tuple[GroundStation, ...]
    satellites: tuple[Satellite, ...]
    isl: IslConfig | None = None
    guard: GuardPolicy = GuardPolicy()


def _num(d: dict[str, Any], key: str, path: str, where: str, default: Any = None,
         *, lo: float | None = None, hi: float | None = None, integer: bool = False) -> Any:
    if key not in d:
        if default is None:
            raise PlanFormatError(path, None, f"{where}.{key}", "missing")
        return default
    v = d[key]
    ok = isinstance(v, int) if integer else isinstance(v, int | float)
    if isinstance(v, bool) or not ok or (isinstance(v, float) and not math.isfinite(v)):
        raise PlanFormatError(path, None, f"{where}.{key}",
                              f"must be {'an integer' if integer else 'a number'}, not {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise PlanFormatError(path, None, f"{where}.{key}", f"{v} outside [{lo}, {hi}]")
    return v


def parse_scenario(text: str, tles: Sequence[Tle], *, path: str = "<string>") -> Scenario:
    """Parse a station/satellite scenario (JSON); see docs/contact-plan.md for the schema."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanFormatError(path, exc.lineno, None, f"invalid JSON: {exc.msg}") from None
    if not isinstance(doc, dict):
        raise PlanFormatError(path, 1, None, "top level must be a JSON object")
    raw_st = doc.get("stations")
    if not isinstance(raw_st, list) or not raw_st:
        raise PlanFormatError(path, None, "stations", "must be a non-empty array")
    stations = []
    for i, s in enumerate(raw_st):
        w = f"stations[{i}]"
        if not isinstance(s, dict):
            raise PlanFormatError(path, None, w, "must be an object")
        stations.append(GroundStation(
            name=str(s.get("name", f"station{i}")),
            node=_num(s, "node", path, w, lo=1, integer=True),
            lat_deg=_num(s, "lat", path, w, lo=-90, hi=90),
            lon_deg=_num(s, "lon", path, w, lo=-180, hi=360),
            alt_m=_num(s, "alt_m", path, w, 0.0, lo=-500, hi=100_000),
            min_elevation_deg=_num(s, "min_elevation_deg", path, w, 10.0, lo=-5, hi=89.9),
            uplink_rate=_num(s, "uplink_rate", path, w, 125_000, lo=1, integer=True),
            downlink_rate=_num(s, "downlink_rate", path, w, 125_000, lo=1, integer=True),
        ))
    by_name = {t.name.strip().upper(): t for t in tles}
    by_norad = {t.norad: t for t in tles}
    sats: list[Satellite] = []
    raw_sats = doc.get("satellites", "auto")
    default_isl = doc.get("isl", {}).get("rate", 0) if isinstance(doc.get("isl"), dict) else 0
    if raw_sats == "auto" or isinstance(raw_sats, dict):
        first = 1000
        if isinstance(raw_sats, dict):
            first = _num(raw_sats, "first_node", path, "satellites", 1000, lo=1, integer=True)
        sats = [Satellite(t, first + i, default_isl) for i, t in enumerate(tles)]
    elif isinstance(raw_sats, list):
        for i, s in enumerate(raw_sats):
            w = f"satellites[{i}]"
            if not isinstance(s, dict):
                raise PlanFormatError(path, None, w, "must be an object")
            if "norad" in s:
                tle = by_norad.get(s["norad"])
            else:
                tle = by_name.get(str(s.get("name", "")).strip().upper())
            if tle is None:
                raise PlanFormatError(path, None, w, f"no TLE named {s.get('name', s.get('norad'))!r}")
            sats.append(Satellite(
                tle, _num(s, "node", path, w, lo=1, integer=True),
                _num(s, "isl_rate", path, w, default_isl, lo=0, integer=True),
            ))
    else:
        raise PlanFormatError(path, None, "satellites", "must be an array, 'auto' or an object")
    nodes = [s.node for s in stations] + [s.node for s in sats]
    if len(set(nodes)) != len(nodes):
        raise PlanFormatError(path, None, "node", "node numbers must be unique")
    isl = None
    if isinstance(doc.get("isl"), dict):
        d = doc["isl"]
        isl = IslConfig(
            _num(d, "max_range_km", path, "isl", 5000.0, lo=1),
            _num(d, "rate", path, "isl", 125_000, lo=1, integer=True),
            _num(d, "grazing_altitude_km", path, "isl", 80.0, lo=0),
        )
    guard = GuardPolicy()
    if isinstance(doc.get("guard"), dict):
        d = doc["guard"]
        guard = GuardPolicy(_num(d, "base_ms", path, "guard", 0, lo=0, integer=True),
                            _num(d, "per_day_ms", path, "guard", 1000, lo=0, integer=True))
    return Scenario(tuple(stations), tuple(sats), isl, guard)


def load_scenario(path: str | os.PathLike[str], tles: Sequence[Tle]) -> Scenario:
    p = str(path)
    try:
        text = Path(p).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanFormatError(p, None, None, f"cannot read station file: {exc}") from None
    return parse_scenario(text, tles, path=p)


# -- geometry ------------------------------------------------------------------------------


def _times(dtn_s: np.ndarray) -> Any:
    ts = timescale()
    days = np.floor(dtn_s / 86400.0)
    return ts.utc(2000, 1, 1 + days.astype(np.int64), 0, 0, dtn_s - days * 86400.0)


def _teme_to_itrs(t: Any, r: np.ndarray) -> np.ndarray:
    """r: (..., N, 3) TEME km for the N times of ``t`` -> PEF/ITRS (no polar motion)."""
    from skyfield.sgp4lib import theta_GMST1982

    theta, _ = theta_GMST1982(t.whole, t.ut1_fraction)
    c, s = np.cos(theta), np.sin(theta)
    out = np.empty_like(r)
    out[..., 0] = c * r[..., 0] + s * r[..., 1]
    out[..., 1] = -s * r[..., 0] + c * r[..., 1]
    out[..., 2] = r[..., 2]
    return out


def _sgp4_args(t: Any) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(t.whole, float), np.asarray(t.tai_fraction - t._leap_seconds() / 86400.0)


def _positions(sats: Sequence[Satrec], dtn_s: np.ndarray) -> np.ndarray:
    """ITRS km, shape (n_sats, n_times, 3); NaN where SGP4 reports an error (decay etc.)."""
    t = _times(dtn_s)
    jd, fr = _sgp4_args(t)
    err, r, _v = SatrecArray(list(sats)).sgp4(jd, fr)
    r = np.where((err != 0)[..., None], np.nan, r)
    return _teme_to_itrs(t, r)


def _positions_scattered(sats: Sequence[Satrec], idx: np.ndarray, dtn_s: np.ndarray) -> np.ndarray:
    """ITRS km for satellite ``idx[k]`` at ``dtn_s[k]``; shape (K, 3)."""
    t = _times(dtn_s)
    jd, fr = _sgp4_args(t)
    r = np.full((len(dtn_s), 3), np.nan)
    order = np.argsort(idx, kind="stable")
    bounds = np.flatnonzero(np.diff(idx[order])) + 1
    for group in np.split(order, bounds):
        if len(group) == 0:
            continue
        e, rr, _ = sats[int(idx[group[0]])].sgp4_array(jd[group], fr[group])
        rr[e != 0] = np.nan
        r[group] = rr
    return _teme_to_itrs(t, r)


def _station_vectors(stations: Sequence[GroundStation]) -> tuple[np.ndarray, np.ndarray]:
    from skyfield.api import wgs84

    pos = np.array([
        wgs84.latlon(s.lat_deg, s.lon_deg, elevation_m=s.alt_m).itrs_xyz.km for s in stations
    ])
    lat = np.radians([s.lat_deg for s in stations])
    lon = np.radians([s.lon_deg for s in stations])
    up = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)
    return pos, up


def _elevation(sat_pos: np.ndarray, st_pos: np.ndarray, st_up: np.ndarray) -> np.ndarray:
    d = sat_pos - st_pos
    return np.degrees(np.arcsin(np.clip(np.einsum("...i,...i->...", d, st_up)
                                        / np.linalg.norm(d, axis=-1), -1.0, 1.0)))


# -- passes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pass:
    """A pass of ``satellite`` (index) over ``station`` (index); times in DTN seconds (float)."""

    satellite: int
    station: int
    rise_s: float
    set_s: float
    max_s: float
    max_elevation_deg: float
    max_range_km: float


def _golden_max(f: Any, lo: np.ndarray, hi: np.ndarray, tol: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    g = (math.sqrt(5) - 1) / 2
    a, b = lo.copy(), hi.copy()
    c = b - g * (b - a)
    d = a + g * (b - a)
    fc, fd = f(c), f(d)
    while np.max(b - a) > tol:
        left = fc > fd  # max is in [a, d]
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        new_c = b - g * (b - a)
        new_d = a + g * (b - a)
        c2 = np.where(left, new_c, d)
        d2 = np.where(left, c, new_d)
        probe = np.where(left, c2, d2)
        fp = f(probe)
        fc, fd = np.where(left, fp, fd), np.where(left, fc, fp)
        c, d = c2, d2
        fc = np.where(left, fp, fc)
    m = (a + b) / 2
    return m, f(m)


def _bisect(g: Any, lo: np.ndarray, hi: np.ndarray, rising: np.ndarray, tol: float = 1e-4) -> np.ndarray:
    """Root of a continuous g in [lo, hi] (g(lo) < 0 <= g(hi) where ``rising``, reversed
    otherwise), all brackets at once.

    Illinois-modified regula falsi: near a rise or set elevation is almost linear in time, so
    this converges in a handful of SGP4 evaluations instead of ~17 bisection steps; the
    bracket is kept, so the answer is never outside it. Stops when every estimate moved less
    than ``tol`` seconds (or the bracket is narrower than ``tol``)."""
    lo, hi = lo.astype(float).copy(), hi.astype(float).copy()
    sign = np.where(rising, 1.0, -1.0)  # make every function rising
    flo = g(lo) * sign
    fhi = g(hi) * sign
    flo = np.minimum(flo, -1e-12)  # guard against roots exactly on the bracket
    fhi = np.maximum(fhi, 0.0)
    x = (lo + hi) / 2
    side = np.zeros(len(lo), dtype=np.int8)
    for _ in range(60):
        denom = fhi - flo
        x_new = np.where(denom > 0, hi - fhi * (hi - lo) / np.where(denom > 0, denom, 1.0), (lo + hi) / 2)
        x_new = np.clip(x_new, lo, hi)
        done = (np.abs(x_new - x) < tol) | (hi - lo < tol)
        x = x_new
        if done.all():
            break
        fx = g(x) * sign
        right = fx >= 0  # root in [lo, x]
        # Illinois: halve the stale end's value when the same end is kept twice.
        hi = np.where(right, x, hi)
        lo = np.where(right, lo, x)
        new_fhi = np.where(right, fx, fhi)
        new_flo = np.where(right, flo, fx)
        new_flo = np.where(right & (side == 1), new_flo / 2, new_flo)
        new_fhi = np.where(~right & (side == -1), new_fhi / 2, new_fhi)
        fhi, flo = new_fhi, np.minimum(new_flo, -1e-12)
        side = np.where(right, 1, -1).astype(np.int8)
    return x


def find_passes(
    sats: Sequence[Satrec | Tle],
    stations: Sequence[GroundStation],
    start_s: float,
    end_s: float,
    *,
    step_s: float = 30.0,
    min_elevation_deg: Sequence[float] | None = None,
    refine_peaks: bool = True,
) -> list[Pass]:
    """All passes over ``[start_s, end_s)`` (DTN seconds), clipped to the window.

    ``refine_peaks=False`` reports culmination at the best grid sample (saves time when only
    rise/set matter, as for contact plans)."""
    if not end_s > start_s:
        raise OrbitError("the prediction window is empty")
    if end_s - start_s > MAX_HOURS * 3600:
        raise OrbitError(f"the prediction window is longer than {MAX_HOURS} h")
    if not 0 < step_s <= 120:
        raise OrbitError("step_s must be in (0, 120] s (longer steps can miss LEO passes)")
    recs = [s.satrec if isinstance(s, Tle) else s for s in sats]
    if not recs or not stations:
        return []
    thr = np.array(min_elevation_deg if min_elevation_deg is not None
                   else [s.min_elevation_deg for s in stations], float)
    n = math.ceil((end_s - start_s) / step_s) + 5
    grid = start_s - 2 * step_s + step_s * np.arange(n)
    pos = _positions(recs, grid)  # (S, T, 3)
    st_pos, st_up = _station_vectors(stations)
    # On the grid work with sin(elevation) (monotonic, so comparisons are the same) and skip
    # 5.8 million arcsines for a 100 x 20 x 1 day run.
    # One station at a time keeps the temporaries at (sats x steps), not x stations x 3.
    px, py, pz = pos[..., 0], pos[..., 1], pos[..., 2]
    elev = np.empty((len(recs), len(stations), n))
    for g in range(len(stations)):
        dx, dy, dz = px - st_pos[g, 0], py - st_pos[g, 1], pz - st_pos[g, 2]
        elev[:, g, :] = (dx * st_up[g, 0] + dy * st_up[g, 1] + dz * st_up[g, 2]) / np.sqrt(
            dx * dx + dy * dy + dz * dz)
    np.nan_to_num(elev, copy=False, nan=-1.0)  # SGP4 failure: treat as not visible
    sin_thr = np.sin(np.radians(thr))
    above = elev >= sin_thr[None, :, None]

    rise_lo: list[np.ndarray] = []
    sets: list[np.ndarray] = []
    # Runs of samples above the threshold.
    a = above.astype(np.int8)
    edges = np.diff(a, axis=2)
    si, gi, k = np.nonzero(edges == 1)  # k -> k+1 rises
    so, go, ko = np.nonzero(edges == -1)  # ko -> ko+1 sets
    # Passes already up at the first sample or still up at the last: clamp to grid ends.
    s0, g0 = np.nonzero(a[:, :, 0] == 1)
    s1, g1 = np.nonzero(a[:, :, -1] == 1)
    rise_sat = np.concatenate([si, s0])
    rise_st = np.concatenate([gi, g0])
    rise_k = np.concatenate([k, np.full(len(s0), -1)])
    set_sat = np.concatenate([so, s1])
    set_st = np.concatenate([go, g1])
    set_k = np.concatenate([ko, np.full(len(s1), n - 1)])
    order_r = np.lexsort((rise_k, rise_st, rise_sat))
    order_s = np.lexsort((set_k, set_st, set_sat))
    rise_sat, rise_st, rise_k = rise_sat[order_r], rise_st[order_r], rise_k[order_r]
    set_sat, set_st, set_k = set_sat[order_s], set_st[order_s], set_k[order_s]
    del rise_lo, sets

    def elev_at(sat_idx: np.ndarray, st_idx: np.ndarray) -> Any:
        def f(t: np.ndarray) -> np.ndarray:
            p = _positions_scattered(recs, sat_idx, t)
            e = _elevation(p, st_pos[st_idx], st_up[st_idx])
            return np.nan_to_num(e, nan=-90.0) - thr[st_idx]
        return f

    # Grazing passes: sampled local maxima below the threshold whose true peak may exceed it.
    inner = elev[:, :, 1:-1]
    is_max = (inner >= elev[:, :, :-2]) & (inner > elev[:, :, 2:]) & ~above[:, :, 1:-1]
    gs, gg, gk = np.nonzero(is_max)
    gk = gk + 1
    # Only refine maxima that could reach the threshold: within one step (h) the range changes
    # by at most v*h and the line of sight turns at most v/(d - v*h) rad/s, with v bounded by
    # the speed of any bound orbit near the surface (11.1 km/s) plus the station's rotation.
    vh = 11.6 * step_s
    d_k = np.linalg.norm(pos[gs, gk] - st_pos[gg], axis=-1)
    reach = np.where(d_k > 2 * vh, np.degrees(vh / np.maximum(d_k - vh, 1e-9)), 180.0)
    could = np.degrees(np.arcsin(np.clip(elev[gs, gg, gk], -1, 1))) + reach >= thr[gg]
    gs, gg, gk = gs[could], gg[could], gk[could]
    graze_rise = graze_set = graze_max = graze_emax = np.empty(0)
    if len(gs):
        f = elev_at(gs, gg)
        tmax, fmax = _golden_max(f, grid[gk - 1], grid[gk + 1])
        hit = fmax >= 0
        gs, gg, gk, tmax, fmax = gs[hit], gg[hit], gk[hit], tmax[hit], fmax[hit]
        if len(gs):
            fg = elev_at(gs, gg)
            up = np.ones(len(gs), bool)
            graze_rise = _bisect(fg, grid[gk - 1], tmax, up)
            graze_set = _bisect(fg, tmax, grid[gk + 1], ~up)
            graze_max, graze_emax = tmax, fmax + thr[gg]

    if len(rise_sat) != len(set_sat):
        raise OrbitError("internal error: unmatched rise/set samples")  # pragma: no cover
    # Bisect sampled crossings (rise between k and k+1; set between k and k+1).
    rs_lo = np.where(rise_k >= 0, grid[np.maximum(rise_k, 0)], np.nan)
    rs_hi = grid[np.minimum(rise_k + 1, n - 1)]
    st_lo = grid[np.minimum(set_k, n - 1)]
    st_hi = np.where(set_k < n - 1, grid[np.minimum(set_k + 1, n - 1)], np.nan)
    rise_t = grid[0] * np.ones(len(rise_sat))
    set_t = grid[-1] * np.ones(len(set_sat))
    m = rise_k >= 0
    if m.any():
        rise_t[m] = _bisect(elev_at(rise_sat[m], rise_st[m]), rs_lo[m], rs_hi[m], np.ones(m.sum(), bool))
    m = set_k < n - 1
    if m.any():
        set_t[m] = _bisect(elev_at(set_sat[m], set_st[m]), st_lo[m], st_hi[m], np.zeros(m.sum(), bool))

    all_sat = np.concatenate([rise_sat, gs]).astype(int)
    all_st = np.concatenate([rise_st, gg]).astype(int)
    all_rise = np.concatenate([rise_t, graze_rise])
    all_set = np.concatenate([set_t, graze_set])
    # Peak of sampled passes: the best sample inside the run, refined by golden search.
    peak_k = np.empty(len(rise_t), dtype=np.int64)
    for j in range(len(rise_t)):
        lo_k = rise_k[j] + 1
        seg = elev[rise_sat[j], rise_st[j], lo_k:set_k[j] + 1]
        peak_k[j] = lo_k + int(np.argmax(seg))
    if len(rise_t) and refine_peaks:
        fpk = elev_at(rise_sat, rise_st)
        peak_t, peak_e = _golden_max(fpk, grid[np.maximum(peak_k - 1, 0)],
                                     grid[np.minimum(peak_k + 1, n - 1)], tol=0.05)
        peak_e = peak_e + thr[rise_st]
    else:
        peak_t = grid[peak_k]
        peak_e = np.degrees(np.arcsin(np.clip(elev[rise_sat, rise_st, peak_k], -1, 1)))
    all_max = np.concatenate([peak_t, graze_max])
    all_emax = np.concatenate([peak_e, graze_emax])
    # Clip to the requested window and drop what falls outside it.
    cr = np.maximum(all_rise, start_s)
    cs = np.minimum(all_set, end_s)
    keep = cs > cr
    out: list[Pass] = []
    if keep.any():
        idx = np.flatnonzero(keep)
        ends_sat = np.concatenate([all_sat[idx], all_sat[idx]])
        ends_t = np.concatenate([cr[idx], cs[idx]])
        p = _positions_scattered(recs, ends_sat, ends_t)
        st_i = np.concatenate([all_st[idx], all_st[idx]])
        dist = np.linalg.norm(p - st_pos[st_i], axis=-1)
        dmax = np.fmax(dist[: len(idx)], dist[len(idx):])
        for j, i in enumerate(idx):
            out.append(Pass(int(all_sat[i]), int(all_st[i]), float(cr[i]), float(cs[i]),
                            float(all_max[i]), float(all_emax[i]), float(dmax[j])))
    out.sort(key=lambda p: (p.rise_s, p.satellite, p.station))
    return out


def _isl_margin(p1: np.ndarray, p2: np.ndarray, cfg: IslConfig) -> tuple[np.ndarray, np.ndarray]:
    """(margin, distance): margin >= 0 iff the link is usable (in range and the segment clears
    the Earth + grazing altitude); continuous, so edges can be found by regula falsi."""
    dx, dy, dz = p2[..., 0] - p1[..., 0], p2[..., 1] - p1[..., 1], p2[..., 2] - p1[..., 2]
    dd = dx * dx + dy * dy + dz * dz
    dot = p1[..., 0] * dx + p1[..., 1] * dy + p1[..., 2] * dz
    tstar = np.clip(-dot / np.where(dd > 0, dd, 1.0), 0.0, 1.0)
    cx, cy, cz = p1[..., 0] + tstar * dx, p1[..., 1] + tstar * dy, p1[..., 2] + tstar * dz
    r_min = EARTH_RADIUS_KM + cfg.grazing_altitude_km
    clear = (np.sqrt(cx * cx + cy * cy + cz * cz) - r_min) / r_min
    dist = np.sqrt(dd)
    margin = np.minimum(clear, (cfg.max_range_km - dist) / cfg.max_range_km)
    return np.nan_to_num(margin, nan=-1.0), dist


@dataclass(frozen=True)
class IslWindow:
    a: int
    b: int
    start_s: float
    end_s: float
    max_range_km: float


def find_isl_windows(
    sats: Sequence[Satrec | Tle], cfg: IslConfig, start_s: float, end_s: float,
    *, step_s: float = 30.0,
) -> list[IslWindow]:
    """Line-of-sight windows between every pair of satellites (see module docstring)."""
    recs = [s.satrec if isinstance(s, Tle) else s for s in sats]
    if len(recs) < 2:
        return []
    if not end_s > start_s:
        raise OrbitError("the prediction window is empty")
    if end_s - start_s > MAX_HOURS * 3600 or not 0 < step_s <= 120:
        raise OrbitError(f"window longer than {MAX_HOURS} h or step outside (0, 120] s")
    n = math.ceil((end_s - start_s) / step_s) + 1
    grid = start_s + step_s * np.arange(n)
    grid[-1] = min(grid[-1], end_s)
    pos = _positions(recs, grid)
    ia, ib = np.triu_indices(len(recs), k=1)
    ok = np.empty((len(ia), n), dtype=bool)
    dist = np.empty((len(ia), n), dtype=np.float32)
    row = 0
    for i in range(len(recs) - 1):
        m, d = _isl_margin(pos[i][None], pos[i + 1:], cfg)
        ok[row:row + len(m)] = m >= 0
        dist[row:row + len(m)] = np.where(m >= 0, d, 0.0)
        row += len(m)
    okp = np.zeros((len(ia), n + 2), dtype=np.int8)
    okp[:, 1:-1] = ok
    edges = np.diff(okp, axis=1)
    rp, rk = np.nonzero(edges == 1)  # window's first ok sample is rk
    sp, sk = np.nonzero(edges == -1)  # window's last ok sample is sk - 1
    if len(rp) == 0:
        return []

    def g_for(pairs: np.ndarray) -> Any:
        def g(t: np.ndarray) -> np.ndarray:
            p1 = _positions_scattered(recs, ia[pairs], t)
            p2 = _positions_scattered(recs, ib[pairs], t)
            return _isl_margin(p1, p2, cfg)[0]
        return g

    starts = grid[rk].astype(float)
    m = rk > 0
    if m.any():
        starts[m] = _bisect(g_for(rp[m]), grid[rk[m] - 1], grid[rk[m]], np.ones(m.sum(), bool),
                            tol=2e-3)
    ends = grid[sk - 1].astype(float)
    m = sk < n
    if m.any():
        ends[m] = _bisect(g_for(sp[m]), grid[sk[m] - 1], grid[sk[m]], np.zeros(m.sum(), bool),
                          tol=2e-3)
    # Largest sampled distance inside each window (one reduceat over the flattened rows); the
    # edges are at most max_range_km by construction, so that bounds the unsampled ends.
    flat = dist.ravel()
    idx = np.empty(2 * len(rp), dtype=np.int64)
    idx[0::2] = rp * n + rk
    idx[1::2] = rp * n + sk
    idx = np.minimum(idx, len(flat) - 1)
    dmax = np.maximum.reduceat(flat, idx)[0::2].astype(float)
    dmax = np.maximum(dmax, flat[rp * n + sk - 1])
    # ... and the exact distance at the refined edges (the range limit often sets them).
    both = np.concatenate([starts, ends])
    pa = _positions_scattered(recs, np.concatenate([ia[rp], ia[rp]]), both)
    pb = _positions_scattered(recs, np.concatenate([ib[rp], ib[rp]]), both)
    d_edges = np.linalg.norm(pa - pb, axis=-1)
    dmax = np.fmax(dmax, np.fmax(d_edges[: len(rp)], d_edges[len(rp):]))
    return [
        IslWindow(int(ia[p]), int(ib[p]), float(s0), float(e0), float(dk))
        for p, s0, e0, dk in zip(rp, starts, ends, dmax)
        if e0 > s0
    ]


# -- plan ------------------------------------------------------------------------------------


def _owlt_ms(km: float) -> int:
    return math.ceil(km / C_KM_S * 1000.0)


def compute_plan(
    scenario: Scenario,
    start_ms: int,
    hours: float,
    *,
    isl: bool = True,
    step_s: float = 30.0,
) -> ContactPlan:
    """Contacts (both directions) and ranges for every pass and ISL window in the window."""
    if not 0 < hours <= MAX_HOURS:
        raise OrbitError(f"hours must be in (0, {MAX_HOURS}]")
    start_s = start_ms / 1000.0
    end_s = start_s + hours * 3600.0
    sats = scenario.satellites
    tles = [s.tle for s in sats]
    contacts: list[Contact] = []
    ranges: list[Range] = []

    def add(a: int, b: int, t0: float, t1: float, rate_ab: int, rate_ba: int, km: float,
            epoch_s: Sequence[float]) -> None:
        mid = (t0 + t1) / 2
        g = max(scenario.guard.guard_ms((mid - e) / 86400.0) for e in epoch_s)
        s_ms = math.ceil(t0 * 1000.0) + g
        e_ms = math.floor(t1 * 1000.0) - g
        if e_ms <= s_ms:
            return
        owlt = _owlt_ms(km)
        for x, y, rate in ((a, b, rate_ab), (b, a, rate_ba)):
            if rate > 0:
                contacts.append(Contact(x, y, s_ms, e_ms, rate))
                ranges.append(Range(x, y, s_ms, e_ms, owlt))

    for p in find_passes(tles, scenario.stations, start_s, end_s, step_s=step_s,
                         refine_peaks=False):
        st = scenario.stations[p.station]
        sat = sats[p.satellite]
        add(st.node, sat.node, p.rise_s, p.set_s, st.uplink_rate, st.downlink_rate,
            p.max_range_km, [sat.tle.epoch_dtn_s])
    if isl and scenario.isl is not None:
        with_isl = [i for i, s in enumerate(sats) if s.isl_rate > 0] if any(
            s.isl_rate for s in sats) else list(range(len(sats)))
        for w in find_isl_windows([tles[i] for i in with_isl], scenario.isl, start_s, end_s,
                                  step_s=step_s):
            a, b = sats[with_isl[w.a]], sats[with_isl[w.b]]
            rate = min(a.isl_rate or scenario.isl.rate, b.isl_rate or scenario.isl.rate)
            add(a.node, b.node, w.start_s, w.end_s, rate, rate, w.max_range_km,
                [a.tle.epoch_dtn_s, b.tle.epoch_dtn_s])
    return ContactPlan(tuple(contacts), tuple(ranges)).sorted()
