"""Shared benchmark scenario: a 100-satellite Walker-delta constellation (53°, 550 km,
10 planes x 10, F=1) with 20 ground stations at fixed pseudo-random sites, for one day."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from waystation.bundle.dtntime import datetime_to_dtn_ms
from waystation.contact_plan.orbits import (
    GroundStation,
    GuardPolicy,
    IslConfig,
    Satellite,
    Scenario,
    parse_tles,
)
from waystation.contact_plan.synth import walker_delta

EPOCH = datetime(2024, 5, 9, tzinfo=UTC)
START_MS = datetime_to_dtn_ms(EPOCH)


def stations(n: int = 20) -> list[GroundStation]:
    rng = np.random.default_rng(20240509)
    return [
        GroundStation(f"gs{i}", i + 1, float(rng.uniform(-60, 60)), float(rng.uniform(-180, 180)),
                      0.0, 10.0, 125_000, 1_250_000)
        for i in range(n)
    ]


def scenario(n_stations: int = 20) -> Scenario:
    tles = parse_tles(walker_delta(10, 10, 1, EPOCH))
    sats = tuple(Satellite(t, 1000 + i, 125_000) for i, t in enumerate(tles))
    return Scenario(tuple(stations(n_stations)), sats, IslConfig(5000.0, 125_000, 80.0),
                    GuardPolicy(0, 1000))
