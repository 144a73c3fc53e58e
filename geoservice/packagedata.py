"""Where the files shipped inside the package live: the pages and vendored assets, the bundled layers, the calendars.

Every reader goes through this module, which asks :mod:`importlib.resources` and never guesses from
``__file__``: the same code then works from a checkout, an editable install and an installed wheel.

Layout inside the package::

    geoservice/static/          the couriers' and operators' pages, their JS/CSS, vendored Leaflet (static/vendor/)
    geoservice/data/layers/     districts, the simulated demo network, the modelled demand layer (+ README.md)
    geoservice/data/calendar/   China's official holiday schedule, one CSV per year

Flask's static folder, ``send_from_directory`` and ``Settings.layers_dir`` need real paths; pip always installs
a wheel unpacked, so these are the package's own folders. A zipped install (zipimport) is extracted once for
the life of the process.
"""
from __future__ import annotations

import atexit
import contextlib
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

PACKAGE = "geoservice"
_EXTRACTED = contextlib.ExitStack()
atexit.register(_EXTRACTED.close)


def _resource(*parts: str) -> Traversable:
    node = resources.files(PACKAGE)
    for part in parts:
        node = node / part
    return node


def _on_disk(node: Traversable) -> Path:
    """A filesystem path for ``node``: itself when the package is unpacked (always, with pip)."""
    if isinstance(node, Path):
        return node
    return _EXTRACTED.enter_context(resources.as_file(node))  # pragma: no cover - zipimport only


def static_dir() -> Path:
    """The pages and their assets, served under ``/static``."""
    return _on_disk(_resource("static"))


def vendor_dir() -> Path:
    """The vendored third-party assets (Leaflet, Leaflet.markercluster), served under ``/static/vendor``."""
    return _on_disk(_resource("static", "vendor"))


def layers_dir() -> Path:
    """The bundled layers: the default of ``Settings.layers_dir`` (``GEOSERVICE_LAYERS_DIR`` overrides it)."""
    return _on_disk(_resource("data", "layers"))


def calendar_files() -> list[Traversable]:
    """The shipped calendar CSVs (``cn-YYYY.csv``), by name."""
    folder = _resource("data", "calendar")
    return sorted((f for f in folder.iterdir() if f.name.endswith(".csv")), key=lambda f: f.name)
