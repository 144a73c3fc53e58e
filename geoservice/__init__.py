"""geoservice: nearest-open rest sites for outdoor workers in Beijing, and the planners' coverage tools.

``from geoservice import create_app`` gives the WSGI app factory (:mod:`geoservice.app`); it is loaded on first
use, so importing a light module such as ``geoservice.hours`` does not import Flask and every route.
"""
from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from geoservice.app import create_app

        return create_app
    raise AttributeError(f"module 'geoservice' has no attribute {name!r}")
