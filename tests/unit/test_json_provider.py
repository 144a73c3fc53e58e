"""The API's JSON encoder: strict, readable UTF-8 JSON whatever a handler puts in a body."""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
from flask import Flask

from geoservice.api.jsonprovider import FastJSONProvider


def provider() -> FastJSONProvider:
    return FastJSONProvider(Flask(__name__))


def strict_loads(text: str) -> object:
    def refuse(token: str) -> None:
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_chinese_stays_readable_and_keys_sorted() -> None:
    text = provider().dumps({"name_zh": "暖心驿站", "a": 1})
    assert "暖心驿站" in text and "\\u" not in text
    assert text.index('"a"') < text.index('"name_zh"')


def test_non_finite_numbers_become_null_not_bare_nan() -> None:
    # A bare NaN is not JSON: strict clients (browsers' JSON.parse, Go, Java) would reject the whole body.
    body = strict_loads(provider().dumps({"x": float("nan"), "y": float("inf"), "z": np.float64(1.5)}))
    assert body == {"x": None, "y": None, "z": 1.5}


def test_values_orjson_cannot_write_fall_back_to_flask() -> None:
    p = provider()
    when = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
    assert strict_loads(p.dumps({"huge": 2**70, "when": when})) == {
        "huge": 2**70, "when": "Mon, 23 Nov 2026 08:00:00 GMT"}
    assert strict_loads(p.dumps({1: "int key", "b": 2})) == {"1": "int key", "b": 2}
    assert p.dumps({"a": "暖"}, ensure_ascii=True) == '{"a": "\\u6696"}'  # explicit request honoured
