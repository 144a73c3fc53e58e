"""Hostile text for every field an operator or a loaded file can set, and a store seeded with it.

Each payload tries every way out of the context it lands in — end the inline script (any letter case), open an
HTML comment, become markup with an event handler, end a quoted attribute or a JavaScript string, break a line
in JavaScript (U+2028/U+2029), and be evaluated as a Jinja template — and, if anything of it ever ran, it would
set ``window.__pwned`` (or request ``/pwned/<field>``). The data is written with ``store.upsert_sites`` and
``replace_districts`` directly, bypassing validation, like data written by an older version.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from geoservice.auth import new_token, token_hash
from geoservice.bootstrap import load_bundled_calendar, load_districts
from geoservice.layers import ServiceArea
from geoservice.model import Site
from geoservice.packagedata import layers_dir
from geoservice.store.base import Store, site_id_for

ROOT = Path(__file__).resolve().parent.parent
LAYERS = layers_dir()  # the bundled layers, as the package ships them
TIANANMEN = (116.3975, 39.9087)
SITE_FIELDS = ("name_zh", "name_en", "address", "operator", "phone", "notes")
TEMPLATE_PROBE = "{{ 7*7 }}"


def payload(field: str) -> str:
    """Hostile text for ``field``."""
    run = f"window.__pwned='{field}'"
    return (f'{field}</SCRIPT><img src="/pwned/{field}" onerror="{run}"><!--<script>{run}</script>'
            f"\"><svg onload={run}>'\";{run};//\u2028{run}\u2029{TEMPLATE_PROBE}</style><b>")


def hours_payload() -> str:
    """A valid ``opening_hours`` (open 24/7) whose OSM comment is hostile (a comment cannot contain '"')."""
    run = "window.__pwned='hours'"
    return (f"Mo-Su 00:00-24:00 \"</Script><img src=/pwned/hours onerror={run}><!--<script>{run}</script>"
            f"';{run};//\u2028{TEMPLATE_PROBE}\"")


def plain(field: str) -> str:
    """Harmless text of the same role (for comparing a hostile page with a clean one)."""
    return f"plain {field}"


@dataclasses.dataclass
class Seeded:
    """What :func:`seed` wrote: the sites, the districts' names, the operator's name and token."""

    sites: list[Site]
    district_names: dict[str, tuple[str, str]]
    operator: str
    token: str


def seed(store: Store, hostile: bool = True) -> Seeded:
    """Districts, calendar, three sites near Tiananmen (one per kind) and an operator with a token.

    With ``hostile`` every free-text field (and every district name) carries :func:`payload`; otherwise
    :func:`plain` text in the same places, so both stores produce pages of the same shape.
    """
    text = payload if hostile else plain
    store.migrate()
    load_districts(store, LAYERS)
    load_bundled_calendar(store)
    districts = [dataclasses.replace(d, name_zh=d.name_zh + text(f"district_zh_{d.adcode}"),
                                     name_en=d.name_en + text(f"district_en_{d.adcode}"))
                 for d in store.districts()]
    store.replace_districts(districts)
    area = ServiceArea(store.districts())
    sites = []
    for i, kind in enumerate(("warm_station", "mother_baby_room", "worker_home")):
        lon, lat = TIANANMEN[0] + 0.002 * (i + 1), TIANANMEN[1] + 0.001 * i
        source_id = f"hostile-{i}"
        fields: dict[str, Any] = {f: text(f"{f}_{i}") for f in SITE_FIELDS}
        sites.append(Site(id=site_id_for(source_id), source_id=source_id, kind=kind, lon=lon, lat=lat,
                          opening_hours=hours_payload() if hostile else "24/7",
                          amenities=["drinking_water", "toilet", "wifi"],
                          district_adcode=area.lookup([lon], [lat])[0], **fields))
    store.upsert_sites(sites)
    operator = "hostile-test.op"  # account names are restricted to [A-Za-z0-9_.@-] by the store itself
    store.create_operator(operator)
    store.assign_sites(operator, [s.id for s in sites])
    token = new_token()
    store.add_token(operator, token_hash(token), "test")
    return Seeded(sites, {d.adcode: (d.name_zh, d.name_en) for d in districts}, operator, token)
