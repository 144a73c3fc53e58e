"""JSON out: Flask's JSON provider on orjson, and :func:`json_response`, the one way a route answers in JSON.

Every API body is JSON, and on the nearest-site path the standard library's encoder was the largest single cost
after the database (bench/README.md, "Before / after"); a response body goes out as orjson's bytes, never
decoded to text and encoded again.
"""
from __future__ import annotations

from typing import Any

import orjson
from flask import Response, current_app
from flask.json.provider import DefaultJSONProvider

# Sorted keys and stringified non-string keys, as Flask's default provider writes them; datetimes and
# dataclasses go to Flask's own ``default`` so they come out exactly as before (HTTP dates, field dicts).
_OPTIONS = (orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
            | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS)


def _fast(obj: Any) -> bytes | None:
    """``obj`` as UTF-8 JSON by orjson, or None when orjson cannot write it (integers beyond 64 bits, mixed key
    types to sort)."""
    try:
        return orjson.dumps(obj, default=DefaultJSONProvider.default, option=_OPTIONS)
    except TypeError:
        return None


class FastJSONProvider(DefaultJSONProvider):
    """Compact UTF-8 JSON through orjson; anything orjson cannot write goes to the standard provider.

    Non-finite floats become ``null`` (valid JSON) instead of the standard library's bare ``NaN``.
    """

    ensure_ascii = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if not kwargs.get("ensure_ascii", self.ensure_ascii) and set(kwargs) <= {"ensure_ascii"}:
            fast = _fast(obj)
            if fast is not None:
                return fast.decode()
        return super().dumps(obj, **kwargs)


def json_response(body: Any, status: int = 200, mimetype: str = "application/json") -> Response:
    """``body`` as a JSON response (UTF-8, Chinese kept readable, keys sorted)."""
    data = _fast(body)
    if data is None:
        data = current_app.json.dumps(body, ensure_ascii=False).encode()
    return Response(data, status=status, mimetype=mimetype)
