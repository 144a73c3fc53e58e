"""The coverage map's Content-Security-Policy: a fresh nonce per page, carried by exactly the map's own script
and style elements, sent as a header by the service and written as a <meta> into saved files."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from geoservice.analysis import GridCache, Planner
from geoservice.analysis.maps import coverage_map, render_html
from geoservice.cli import main

from .conftest import LAYERS, MONDAY_2200
from .test_map_hostile import Document

MAP = f"/maps/coverage?at={MONDAY_2200}&resolution=7&n=2&kind=worker_home"


def parse(policy: str) -> dict[str, list[str]]:
    """A CSP as {directive: sources}."""
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        out[name] = sources
    return out


def meta_policy(doc: Document) -> str:
    metas = [a.get("content") or "" for tag, a in doc.tags
             if tag == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy"]
    assert len(metas) == 1
    return metas[0]


def check_nonced(html: str) -> tuple[str, dict[str, list[str]]]:
    """Every script, style and stylesheet link carries the page's one nonce, which is the policy's only script
    and style source; nothing else could run or style the page. Returns (nonce, meta policy)."""
    doc = Document(html)
    csp = parse(meta_policy(doc))
    nonce_sources = csp["script-src"]
    assert len(nonce_sources) == 1 and csp["style-src"] == nonce_sources
    nonce = re.fullmatch(r"'nonce-([A-Za-z0-9_-]{22,})'", nonce_sources[0]).group(1)  # type: ignore[union-attr]
    tags = [(tag, a) for tag, a in doc.tags if tag in ("script", "style") or (tag == "link" and a.get("rel") ==
                                                                                   "stylesheet")]
    assert len(tags) >= 6 and all(a.get("nonce") == nonce for _, a in tags), [a for _, a in tags]
    for tag, attrs in doc.tags:  # no inline handlers, styles or script URLs that the policy would have to allow
        assert not [k for k in attrs if k.startswith("on") or k == "style"], (tag, attrs)
        assert not any((v or "").strip().lower().startswith("javascript:") for v in attrs.values()), (tag, attrs)
    assert "frame-ancestors" not in csp  # ignored in <meta>; the header sends it
    return nonce, csp


def test_served_map_has_a_fresh_nonce_matching_its_header(coverage_client: Any) -> None:
    nonces = []
    for _ in range(2):
        resp = coverage_client.get(MAP)
        assert resp.status_code == 200
        nonce, meta = check_nonced(resp.get_data(as_text=True))
        header = parse(resp.headers["Content-Security-Policy"])
        assert header == {**meta, "frame-ancestors": ["'none'"]}
        assert header["default-src"] == ["'none'"] and header["img-src"] == ["'self'", "data:", "https:"]
        assert resp.headers["X-Frame-Options"] == "DENY" and resp.headers["X-Content-Type-Options"] == "nosniff"
        nonces.append(nonce)
    assert nonces[0] != nonces[1]


def test_saved_map_carries_its_policy(demo_embedded: Any, tmp_path: Path) -> None:
    out = tmp_path / "map.html"
    env = {"GEOSERVICE_EMBEDDED_PATH": str(demo_embedded.spatial.path), "GEOSERVICE_LAYERS_DIR": str(LAYERS),
           "DATABASE_URL": ""}
    result = CliRunner().invoke(main, ["map", "coverage", "--at", MONDAY_2200, "--resolution", "7", "-n", "2",
                                       "--kind", "worker_home", "--tiles", "http://{s}.tiles.example/{z}/{x}/{y}.png",
                                       "-o", str(out)], env=env)
    assert result.exit_code == 0, result.output
    _, csp = check_nonced(out.read_text(encoding="utf-8"))
    assert csp["img-src"] == ["'self'", "data:", "https:", "http://*.tiles.example"]  # inlined images, the tiles


def test_each_render_gets_its_own_nonce(demo_embedded: Any, grid_cache: GridCache) -> None:
    from geoservice.analysis.maps import page_policy

    planner = Planner(demo_embedded.sites, resolution=7, grid_cache=grid_cache, layers_dir=LAYERS)
    m = coverage_map(planner.coverage(MONDAY_2200, kinds=("worker_home",)))
    first, second = render_html(m), render_html(m, "fixedNonceForTheTest_123")
    assert check_nonced(first)[0] != check_nonced(second)[0] == "fixedNonceForTheTest_123"
    assert parse(page_policy(m, "n1").header())["script-src"] == ["'nonce-n1'"]
    fresh = coverage_map(planner.coverage(MONDAY_2200, kinds=("worker_home",)))
    check_nonced(fresh.get_root().render())  # rendered directly (as Jupyter's display does): a nonce all the same
