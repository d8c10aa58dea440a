"""The demo scenario: two ground stations and one LEO satellite, from package data.

``data/demo.tle`` holds the ISS elements of 2024-05-09 (CelesTrak snapshot shipped with
skyfield's documentation); ``data/demo_stations.json`` two stations (Darmstadt = ipn:1,
Kourou = ipn:3) and the satellite (ipn:2). Passes over both stations let a bundle go
1 -> 2 (uplink) and later 2 -> 3 (downlink): store-and-forward through the satellite.
"""

from __future__ import annotations

from importlib import resources

from waystation.bundle.dtntime import datetime_to_dtn_ms
from waystation.contact_plan.model import ContactPlan
from waystation.contact_plan.orbits import Scenario, compute_plan, parse_scenario, parse_tles

__all__ = ["DEMO_START_MS", "demo_plan", "demo_scenario"]

from datetime import UTC, datetime

#: Half a day after the TLE epoch (2024-05-09 08:48 UTC) and ten minutes before the first
#: pass over Darmstadt (20:50); the satellite reaches Kourou at 22:08.
DEMO_START_MS = datetime_to_dtn_ms(datetime(2024, 5, 9, 20, 40, tzinfo=UTC))


def _data(name: str) -> str:
    return resources.files("waystation.contact_plan").joinpath("data", name).read_text("utf-8")


def demo_scenario() -> Scenario:
    tles = parse_tles(_data("demo.tle"), path="demo.tle")
    return parse_scenario(_data("demo_stations.json"), tles, path="demo_stations.json")


def demo_plan(start_ms: int = DEMO_START_MS, hours: float = 6.0) -> ContactPlan:
    """Contacts between the demo's two ground stations and the satellite."""
    return compute_plan(demo_scenario(), start_ms, hours, isl=False)
