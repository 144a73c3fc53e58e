"""Shared test helpers: paths, the small networks the tests build, counts of the bundled demo, hostile text."""
from __future__ import annotations

from pathlib import Path

from geoservice.packagedata import layers_dir

ROOT = Path(__file__).resolve().parents[2]
LAYERS = layers_dir()  # the bundled layers, as the package ships them
# The point every small test network is built around (WGS-84).
TIANANMEN = (116.3975, 39.9087)
