"""Output encoding by context: script data, HTML text, inlined assets."""
from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from geoservice.htmlsafe import html_text, raw_text, script_json

NASTY = ["</script><script>alert(1)</script>", "</SCRIPT >", "</ScRiPt\n>", "<!--<script>", "-->", "<![CDATA[",
         "a\u2028b\u2029c", "&amp; &lt;", "'\"`", "{{ 7*7 }}{% if %}", "\\u003c", "null\x00byte", "日本語 ✓"]


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.data: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.data.append(data)


@pytest.mark.parametrize("text", NASTY)
def test_script_json_stays_inside_its_script_and_decodes_exactly(text: str) -> None:
    value = {"s": text, "list": [text, 1, None], text: True}
    encoded = script_json(value)
    assert json.loads(encoded) == value
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in encoded
    page = _Scripts()
    page.feed(f"<script>var x = {encoded};</script><p>after</p>")
    assert page.tags == ["script", "p"] and page.data[0] == f"var x = {encoded};"


@pytest.mark.parametrize("text", NASTY)
def test_html_text_is_text_in_content_and_attributes(text: str) -> None:
    page = _Scripts()
    page.feed(f'<p title="{html_text(text)}">{html_text(text)}</p>')
    page.close()
    assert page.tags == ["p"] and "".join(page.data) == text


def test_raw_text_cannot_close_its_element_in_any_case() -> None:
    asset = "a='</script>'; b='</SCRIPT>'; c='</Style>'; d='<!--'; e='<b>';"
    guarded = raw_text(asset)
    assert "</" not in guarded and "<!--" not in guarded and "<b>" in guarded
    page = _Scripts()
    page.feed(f"<script>{guarded}</script><p>after</p>")
    assert page.tags == ["script", "p"]
    assert raw_text("plain text, no tags") == "plain text, no tags"
