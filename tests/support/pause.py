"""Stopping a workflow at its worst point, to race another against it."""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from geoservice.services import Services


def pause_first_materialise(store: Services) -> tuple[threading.Event, threading.Event]:
    """Make the next workflow that evaluates hours (a refresh, an edit) stop right after computing its intervals
    and before writing them, inside its transaction: ``evaluated`` is set there, and it goes on after ``resume``."""
    evaluated, resume = threading.Event(), threading.Event()
    original: Callable[..., Any] = store.sites.materialise
    calls = {"n": 0}

    def paused(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            evaluated.set()
            assert resume.wait(60), "the test never resumed the paused workflow"
        return out

    store.sites.materialise = paused  # type: ignore[method-assign]
    return evaluated, resume
