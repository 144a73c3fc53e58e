"""Both pages' words, in real headless Chromium: each page's one UI dictionary has the same keys (and placeholders)
in Chinese and English, the labels of data the pages show (kinds, amenities, weekdays) are the model's, taken from
/api/v1/vocabulary, and no page file carries a label list of its own."""
from __future__ import annotations

import datetime as dt
import json
import re
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from geoservice.auth import new_token, token_hash
from geoservice.model import (
    ALERT_LEVEL_LABELS,
    ALERT_TYPE_LABELS,
    AMENITIES,
    AMENITY_LABELS,
    KIND_LABELS,
    KINDS,
    OPEN_REASON_LABELS,
    WEEKDAY_LABELS,
)
from geoservice.settings import Settings

from .conftest import api_get, wait_results

pytestmark = pytest.mark.browser

STATIC = Path(__file__).resolve().parents[2] / "geoservice" / "static"
# Each page's one UI dictionary: the module and the name it exports.
DICTIONARIES = {"couriers": "/static/js/i18n.js", "operators": "/static/js/operator-i18n.js"}
LANGS = ("zh", "en")
TOKENS = list(WEEKDAY_LABELS)  # Mo..Su
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _load_dictionary(page: Any, path: str) -> dict[str, Any]:
    """The module's STR as the browser sees it (imported by Chromium itself, from the page's origin)."""
    return page.evaluate("async path => (await import(path)).STR", path)


def _paths(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every leaf of a nested dictionary, by its dotted key path."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_paths(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def test_each_page_dictionary_has_the_same_keys_and_placeholders_in_both_languages(new_page: Any) -> None:
    page = new_page("zh-CN", geolocation=None)
    page.goto(page.base + "/")
    problems: list[str] = []
    for name, path in DICTIONARIES.items():
        d = _load_dictionary(page, path)
        assert set(d) == set(LANGS), f"{name}: languages {sorted(d)}"
        zh, en = _paths(d["zh"]), _paths(d["en"])
        assert len(zh) > 40 and len(en) > 40, name
        for lang, have, other in (("en", en, zh), ("zh", zh, en)):
            missing = sorted(set(other) - set(have))
            if missing:
                problems.append(f"{name} ({path}): missing in {lang}: {', '.join(missing)}")
        for key in sorted(set(zh) & set(en)):
            a, b = zh[key], en[key]
            if type(a) is not type(b):
                problems.append(f"{name}: {key} is a {type(a).__name__} in zh, a {type(b).__name__} in en")
            elif isinstance(a, str) and set(PLACEHOLDER.findall(a)) != set(PLACEHOLDER.findall(b)):
                problems.append(f"{name}: {key} has placeholders {PLACEHOLDER.findall(a)} in zh, "
                                f"{PLACEHOLDER.findall(b)} in en")
    assert not problems, "\n".join(problems)


def test_the_vocabulary_is_the_model_in_display_order(live_server: str) -> None:
    vocab = api_get(live_server, "/api/v1/vocabulary")
    area = vocab.pop("service_area")  # the deployment's area (tests/contract/test_service_area_contract.py)
    assert (area["name_zh"], area["name_en"]) == (Settings().area().name_zh, Settings().area().name_en)
    assert vocab == {"kinds": KIND_LABELS, "amenities": AMENITY_LABELS, "weekdays": WEEKDAY_LABELS,
                     "alert_types": ALERT_TYPE_LABELS, "alert_levels": ALERT_LEVEL_LABELS,
                     "open_reasons": OPEN_REASON_LABELS}
    assert list(vocab["alert_levels"]) == ["blue", "yellow", "orange", "red"]  # lowest first
    assert list(vocab["kinds"]) == list(KINDS) and list(vocab["amenities"]) == list(AMENITIES)
    assert list(vocab["weekdays"]) == ["Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"]
    assert [v["zh"] for v in vocab["weekdays"].values()] == [f"周{c}" for c in "一二三四五六日"]
    assert [v["en"] for v in vocab["weekdays"].values()] == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


# The couriers' page ------------------------------------------------------------------------------------------
MONDAY = dt.date(2026, 11, 23)
CLOSED_OPENS = {"zh": "已关闭 — {day} 09:00 开放", "en": "Closed — opens {day} 09:00"}


def test_couriers_page_shows_the_models_kind_amenity_and_weekday_labels(new_page: Any) -> None:
    def doctor(route: Any) -> None:
        """Seven closed sites, opening on each day of the week from Tuesday 2026-11-24 (it is Monday 15:33)."""
        body = route.fetch().json()
        fs = body["features"]
        assert len(fs) >= 7
        for i, f in enumerate(fs[:7]):
            f["properties"].update(state_at="2026-11-23T15:33+08:00", is_open=False, open_until=None,
                                   open_all_week=False,
                                   next_open=f"{MONDAY + dt.timedelta(days=i + 1)}T09:00+08:00")
        body["features"] = fs[:7]
        route.fulfill(status=200, content_type="application/geo+json", body=json.dumps(body))

    page = new_page("zh-CN")
    page.route("**/api/v1/sites/nearest*", doctor)
    with page.expect_response(lambda r: r.url.endswith("/api/v1/vocabulary")) as vocab:
        page.goto(page.base + "/")
    assert vocab.value.status == 200
    wait_results(page)
    page.click("#filterSummary")
    for lang in LANGS:
        if lang == "en":
            page.click("#lang")
            page.wait_for_function("() => document.documentElement.lang === 'en'")
        kinds = page.eval_on_selector_all("#kinds [data-kind]", "els => els.map(e => [e.dataset.kind, e.innerText])")
        assert kinds == [[k, KIND_LABELS[k][lang]] for k in KINDS], lang
        chips = page.eval_on_selector_all("#amenities [data-amenity]",
                                          "els => els.map(e => [e.dataset.amenity, e.innerText])")
        assert len(chips) == 10, chips
        assert chips == [[a, AMENITY_LABELS[a][lang]] for a, _ in chips], lang
        cards = page.locator("#list .card")
        assert cards.count() == 7
        for i in range(7):
            card = cards.nth(i)
            kind = card.get_attribute("data-kind")
            assert card.locator(".kind").inner_text() == KIND_LABELS[kind][lang]
            for a in card.get_attribute("data-amenities").split():
                assert card.locator(f".amen li[data-amenity={a}]").inner_text() == AMENITY_LABELS[a][lang]
            day = WEEKDAY_LABELS[TOKENS[(MONDAY + dt.timedelta(days=i + 1)).weekday()]][lang]
            assert card.locator(".state").inner_text() == CLOSED_OPENS[lang].format(day=day), (lang, i)


# The operators' page -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def operator_token(live_app: Any, live_server: str) -> str:
    """An operator of the shared live server with one of its sites (reading it changes nothing public)."""
    services = live_app.extensions["geoservice.services"]
    site = api_get(live_server, "/api/v1/sites/nearest?lat=39.9289&lon=116.4160&limit=1&include_closed=true")
    services.accounts.create("i18n-check")
    services.accounts.assign("i18n-check", [site["features"][0]["id"]])
    token = new_token()
    services.accounts.add_token("i18n-check", token_hash(token), "tests/browser/test_page_i18n.py")
    return token


def test_operators_page_shows_the_models_amenity_and_weekday_labels(new_page: Any, operator_token: str) -> None:
    page = new_page("zh-CN", geolocation=None)
    page.goto(page.base + "/operator")
    page.fill("#token", operator_token)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("body[data-state=list]")
    page.click("#sites .site")
    page.wait_for_selector("body[data-state=editing]")
    page.wait_for_selector("#preview[data-status=ok]")
    for lang in LANGS:
        if lang == "en":
            page.click("#lang")
            page.wait_for_function("() => document.documentElement.lang === 'en'")
        boxes = page.eval_on_selector_all("#amenities label", "els => els.map(e => "
                                          "[e.querySelector('input[type=checkbox]').value, e.innerText.trim()])")
        assert boxes == [[a, AMENITY_LABELS[a][lang]] for a in AMENITIES], lang
        rows = page.eval_on_selector_all("#preview-days tr", "els => els.map(e => "
                                         "[e.dataset.date, e.querySelector('td .weekday').textContent])")
        assert len(rows) == 7
        shown = {dt.date.fromisoformat(d).weekday(): text for d, text in rows}
        assert sorted(shown) == list(range(7))  # a week: every weekday once
        for date, text in rows:
            token = TOKENS[dt.date.fromisoformat(date).weekday()]
            assert text == f"{date[5:]} {WEEKDAY_LABELS[token][lang]}", (lang, date, text)


# No page keeps a label list of its own ------------------------------------------------------------------------
def _page_files() -> list[Path]:
    files = sorted(STATIC.glob("*.html")) + sorted((STATIC / "js").glob("*.js"))
    names = {p.name for p in files}
    assert {"index.html", "operator.html", "app.js", "operator.js", "common.js", "i18n.js",
            "operator-i18n.js"} <= names, names
    return files


def _hard_coded(source: str, labels: set[str]) -> list[str]:
    """The labels that appear in source as a string literal ("…", '…' or `…`) or as an element's whole text."""
    return sorted(t for t in labels if re.search(rf"([\"'`]){re.escape(t)}\1|>\s*{re.escape(t)}\s*<", source))


def test_no_page_file_carries_the_models_labels() -> None:
    """No kind, amenity or weekday label, in either language, in the pages' own files (the vendored libraries
    aside): they come from /api/v1/vocabulary."""
    labels = {text for table in (KIND_LABELS, AMENITY_LABELS, WEEKDAY_LABELS) for entry in table.values()
              for text in entry.values()}
    # The check sees the lists the pages used to have.
    assert _hard_coded('amenity: { drinking_water: "饮用水", wifi: "Wi-Fi" }', labels) == ["Wi-Fi", "饮用水"]
    assert _hard_coded("weekdays: ['周日', '周一']", labels) == ["周一", "周日"]
    assert _hard_coded('<option value="worker_home">职工之家</option>', labels) == ["职工之家"]
    found = [f"{path.relative_to(STATIC)}: {', '.join(hits)}" for path in _page_files()
             if (hits := _hard_coded(path.read_text(encoding="utf-8"), labels))]
    assert not found, "labels of data hard-coded in the pages (take them from /api/v1/vocabulary):\n" + \
        "\n".join(found)


def test_the_pages_load_one_module_from_self_which_imports_common_js(new_page: Any, live_server: str) -> None:
    """No inline script and no classic script: each page is one module from its own origin (the CSP allows
    'self' only), and both share common.js."""
    for path, entry in (("/", "/static/js/app.js"), ("/operator", "/static/js/operator.js")):
        with urllib.request.urlopen(live_server + path, timeout=10) as resp:
            html = resp.read().decode("utf-8")
            policy = resp.headers["Content-Security-Policy"]
        # The module's URL carries its version (geoservice/api/assets.py).
        assert re.fullmatch(rf'<script type="module" src="{entry}\?v=[0-9a-f]{{12}}">',
                            " ".join(re.findall(r"<script\b[^>]*>", html))), path
        assert "</script>" in html and not re.search(r"<script\b[^>]*>[^<]+</script>", html), path
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, policy
        page = new_page("en-US", geolocation=None)
        loaded: list[str] = []
        page.on("requestfinished", lambda r, out=loaded: out.append(urlsplit(r.url).path))
        page.goto(page.base + path)
        page.wait_for_function("() => document.title && document.title !== '站点运营管理'"
                               " && document.title !== '附近开放的驿站'")  # the module ran: English title
        page.wait_for_load_state("networkidle")
        assert entry in loaded and "/static/js/common.js" in loaded, loaded
