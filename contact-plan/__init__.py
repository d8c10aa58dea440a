"""Contact plans, orbital contact prediction and Contact Graph Routing.

* :mod:`.model` - :class:`Contact`, :class:`Range`, :class:`ContactPlan` (DTN ms, bytes/s, OWLT ms)
* :mod:`.formats` - :func:`load_plan` / :func:`save_plan` for ION ``.ionrc`` (:mod:`.ionrc`),
  HDTN JSON and waystation JSON (:mod:`.jsonplan`)
* :mod:`.cgr` - SABR-style Contact Graph Routing: :class:`ContactGraph`, :class:`Router`, :class:`Route`
* :mod:`.orbits` - contacts from TLEs and ground stations (skyfield/SGP4, vectorised)
* :mod:`.schedule` - contact start/end events on a :class:`~waystation.bundle.dtntime.Clock`
* :mod:`.watch` - reload a plan file when it changes, keeping the old plan on a bad edit
* :mod:`.errors` - the :class:`ContactPlanError` tree

This package knows nodes, contacts, ranges and time; it never imports the store, the
convergence layers or the node service.
"""

from __future__ import annotations

from waystation.contact_plan.cgr import ContactGraph, Route, Router
from waystation.contact_plan.errors import (
    ContactPlanError,
    OrbitError,
    PlanFormatError,
    PlanValidationError,
    RoutingError,
    UnknownNode,
    VolumeExhausted,
)
from waystation.contact_plan.formats import dump_plan, load_plan, parse_plan, save_plan
from waystation.contact_plan.model import Contact, ContactPlan, PlanProblem, Range

__all__ = [
    "Contact",
    "ContactGraph",
    "ContactPlan",
    "ContactPlanError",
    "OrbitError",
    "PlanFormatError",
    "PlanProblem",
    "PlanValidationError",
    "Range",
    "Route",
    "Router",
    "RoutingError",
    "UnknownNode",
    "VolumeExhausted",
    "demo_plan",
    "dump_plan",
    "load_plan",
    "parse_plan",
    "save_plan",
]


def demo_plan(*args: object, **kwargs: object) -> ContactPlan:
    """The demo scenario's plan (two ground stations, one LEO satellite); see
    :func:`waystation.contact_plan.demo.demo_plan`."""
    from waystation.contact_plan.demo import demo_plan as _demo_plan

    return _demo_plan(*args, **kwargs)  # type: ignore[arg-type]
