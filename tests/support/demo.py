"""Counts of the bundled demo network, read from the layer files so no test hard-codes them."""
from __future__ import annotations

import collections
import functools
import json

from tests.support import LAYERS


@functools.cache
def _features() -> tuple[tuple[str, str], ...]:
    out = []
    for path in sorted(LAYERS.glob("sites_*.geojson")):
        for f in json.loads(path.read_text(encoding="utf-8"))["features"]:
            out.append((f["properties"]["kind"], f["properties"]["district_adcode"]))
    return tuple(out)


def total() -> int:
    """Sites in the bundled layers."""
    return len(_features())


def by_kind() -> dict[str, int]:
    """Sites per kind."""
    return dict(collections.Counter(kind for kind, _ in _features()))


def in_district(adcode: str, kind: str | None = None) -> int:
    """Sites in one district (of one kind)."""
    return sum(1 for k, d in _features() if d == adcode and (kind is None or k == kind))


def districts() -> int:
    """Districts in the bundled boundary layer."""
    return len(json.loads((LAYERS / "districts.geojson").read_text(encoding="utf-8"))["features"])
