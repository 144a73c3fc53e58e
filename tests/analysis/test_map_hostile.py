"""The coverage map with hostile text in every field: nothing of it becomes markup, code or a template.

Three ways the map is made — ``coverage_map`` (the notebook), ``GET /maps/coverage`` and ``geoservice map
coverage`` — each from a store whose sites and districts carry :mod:`hostile` payloads, compared with the same
map from a store with plain text in the same places: the documents must have exactly the same elements and
attributes, and the data embedded in their scripts must decode back to exactly the original strings.
An H3 r7 grid keeps each map to a second or two.
"""
from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from geoservice.analysis import GridCache, Planner
from geoservice.analysis.maps import coverage_map, render_html
from geoservice.cli import main
from geoservice.services import Services
from geoservice.settings import Settings
from geoservice.store.embedded import EmbeddedStore
from tests.support.hostile import TEMPLATE_PROBE, Seeded, hours_payload, seed

from .conftest import LAYERS, MONDAY_2200

RESOLUTION = 7
N_RECS = 3


class Document(HTMLParser):
    """Every start tag with its attributes, the text of every script, and every text chunk outside scripts."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.texts: list[str] = []
        self._in: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._in = tag
            if tag == "script":
                self.scripts.append("")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            self.scripts[-1] += data
        elif self._in is None and data.strip():
            self.texts.append(data.strip())

    def shape(self) -> Counter[tuple[str, tuple[str, ...]]]:
        """Which elements, with which attribute names, and how many of each."""
        return Counter((tag, tuple(sorted(attrs))) for tag, attrs in self.tags)


def decoded_after(scripts: list[str], marker: str) -> list[Any]:
    """Every JSON value that follows the regular expression ``marker`` in the scripts, decoded."""
    decoder = json.JSONDecoder()
    return [decoder.raw_decode(text, m.end())[0] for text in scripts for m in re.finditer(marker, text)]


def check_map(html: str, clean_html: str, seeded: Seeded, details: bool = True) -> Document:
    """The hostile map has the clean map's shape, and its data decodes back to the original strings. Without
    ``details`` (the served map) the rows carry ids only and the names come from the API (checked by the caller)."""
    doc, clean = Document(html), Document(clean_html)
    assert doc.shape() == clean.shape(), sorted((doc.shape() - clean.shape()).items())

    rows = [r for rows in decoded_after(doc.scripts, r"\bvar rows = ") for r in rows]
    site_rows = [r for r in rows if isinstance(r, list)]
    assert sorted(r[5] for r in site_rows) == sorted(s.id for s in seeded.sites)
    if details:
        assert {(r[6], r[7], r[10]) for r in site_rows} == {(s.name_zh, s.name_en, s.address) for s in seeded.sites}
        assert decoded_after(doc.scripts, r"\bGS_HOURS = ") == [[hours_payload()]]
        assert TEMPLATE_PROBE in next(iter(site_rows))[7]  # never evaluated as a template
    else:
        assert all(len(r) == 6 for r in site_rows)

    names = {f"{zh} {en}" for zh, en in seeded.district_names.values()}
    collections = decoded_after(doc.scripts, r"\bgeo_json_[0-9a-f]+_add\(")
    districts, gaps = collections[0]["features"], collections[1]["features"]
    assert {f["properties"]["name"] for f in districts} == names
    assert gaps and {f["properties"]["name"] for f in gaps} <= names
    assert names <= set(doc.texts)  # the district table, as text

    recs = [r for r in rows if isinstance(r, dict)]
    assert len(recs) == N_RECS
    for rec in recs:
        popup = Document(rec["popup"])
        assert {tag for tag, _ in popup.tags} <= {"b", "br"}
        assert names & set(popup.texts), popup.texts
    return doc


def _store(path: Path, hostile: bool) -> tuple[EmbeddedStore, Seeded]:
    store = Services.over(EmbeddedStore(path))
    return store, seed(store, hostile)


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[EmbeddedStore, Seeded]]]:
    """A hostile and a clean store of the same shape."""
    tmp = tmp_path_factory.mktemp("hostile-map")
    out = {"hostile": _store(tmp / "hostile.sqlite", True), "clean": _store(tmp / "clean.sqlite", False)}
    yield out
    for store, _ in out.values():
        store.close()


def _notebook_map(store: EmbeddedStore, inline: bool) -> str:
    planner = Planner(store.sites, resolution=RESOLUTION, grid_cache=GridCache(), layers_dir=LAYERS)
    result = planner.coverage(MONDAY_2200)
    return render_html(coverage_map(result, planner.recommend(result, N_RECS), inline_assets=inline))


def _served_map(store: EmbeddedStore) -> str:
    from geoservice import create_app

    app = create_app(Settings(embedded_path=store.spatial.path, layers_dir=LAYERS,  # type: ignore[attr-defined]
                              public_rate_per_minute=0), services=store, prepare=False)
    resp = app.test_client().get(f"/maps/coverage?at={MONDAY_2200}&resolution={RESOLUTION}&n={N_RECS}")
    assert resp.status_code == 200, resp.get_data(as_text=True)[:2000]
    return resp.get_data(as_text=True)


def _cli_map(store: EmbeddedStore, out: Path) -> str:
    env = {"GEOSERVICE_EMBEDDED_PATH": str(store.spatial.path), "GEOSERVICE_LAYERS_DIR": str(LAYERS),
           "DATABASE_URL": ""}
    result = CliRunner().invoke(main, ["map", "coverage", "--at", MONDAY_2200, "--resolution", str(RESOLUTION),
                                       "-n", str(N_RECS), "-o", str(out)], env=env)
    assert result.exit_code == 0, result.output
    return out.read_text(encoding="utf-8")


def test_notebook_map_keeps_hostile_text_as_data(worlds: dict[str, tuple[EmbeddedStore, Seeded]]) -> None:
    (hostile, seeded), (clean, _) = worlds["hostile"], worlds["clean"]
    for inline in (False, True):
        check_map(_notebook_map(hostile, inline), _notebook_map(clean, inline), seeded)


def test_served_map_keeps_hostile_text_as_data(worlds: dict[str, tuple[EmbeddedStore, Seeded]]) -> None:
    (hostile, seeded), (clean, _) = worlds["hostile"], worlds["clean"]
    check_map(_served_map(hostile), _served_map(clean), seeded, details=False)


def test_cli_map_keeps_hostile_text_as_data(worlds: dict[str, tuple[EmbeddedStore, Seeded]], tmp_path: Path) -> None:
    (hostile, seeded), (clean, _) = worlds["hostile"], worlds["clean"]
    check_map(_cli_map(hostile, tmp_path / "hostile.html"), _cli_map(clean, tmp_path / "clean.html"), seeded)


def test_template_syntax_in_data_is_neither_evaluated_nor_fatal(worlds: dict[str, tuple[EmbeddedStore, Seeded]]
                                                                ) -> None:
    from geoservice.analysis.sites import sites_frame

    store, seeded = worlds["clean"]
    names = [TEMPLATE_PROBE, "{% if %}", "{# unterminated", "{{ cycler.__init__.__globals__.os.getpid() }}"]
    sites = [dataclasses.replace(seeded.sites[0], id=f"t{i}", source_id=f"t{i}", name_zh=name, name_en=name,
                                 lon=seeded.sites[0].lon + 0.001 * i)
             for i, name in enumerate(names)]
    planner = Planner(store.sites, resolution=RESOLUTION, grid_cache=GridCache(), layers_dir=LAYERS)
    html = render_html(coverage_map(planner.coverage(MONDAY_2200, sites=sites_frame(sites))))
    rows = [r for rows in decoded_after(Document(html).scripts, r"\bvar rows = ") for r in rows]
    assert sorted(r[6] for r in rows) == sorted(names) and sorted(r[7] for r in rows) == sorted(names)
