"""Reading a JSON request body: the one function every endpoint that takes JSON uses.

The checks, in order, each a problem+json naming the part at fault:

* **415** when the ``Content-Type`` is not one the endpoint takes (``errors[0].field`` = ``Content-Type``);
* **400** when the body is not a JSON text by RFC 8259 — not UTF-8, a lone surrogate, ``NaN``/``Infinity``,
  a number beyond the range of a double (``1e999999``), trailing data — or is nested deeper than
  :data:`MAX_DEPTH` levels, or is not a JSON object (``errors[0].field`` = ``body``);
* **422** when a string or key holds U+0000 (PostgreSQL text cannot store it; it is never meaningful here),
  naming the top-level field.

Parsing uses orjson, which is strict RFC 8259 and stops at 1,024 levels instead of exhausting the stack (the
standard library's parser raised ``RecursionError`` — a 500 — on a body nested ~1,000 levels deep). No body of
this API needs more than two levels, so :data:`MAX_DEPTH` is far below that and checked without recursion.
A UTF-8 byte-order mark is tolerated (RFC 8259 §8.1 allows a parser to ignore it). The size of a body is capped
before any of this by ``MAX_CONTENT_LENGTH`` (``GEOSERVICE_MAX_UPLOAD_BYTES``, 413 beyond).
"""
from __future__ import annotations

from typing import Any

import orjson
from flask import request

from geoservice.errors import InvalidInput, Unprocessable, UnsupportedMediaType

JSON = ("application/json",)
MAX_DEPTH = 32
BOM = b"\xef\xbb\xbf"


class InvalidBody(InvalidInput):
    """The request body cannot be read as the JSON object the endpoint needs (400)."""

    title = "Invalid request body"


def _unreadable(reason: str) -> InvalidBody:
    return InvalidBody(f"the body {reason}", [{"field": "body", "reason": reason}])


def _too_deep(value: Any, limit: int) -> bool:
    """True when ``value`` nests objects/arrays more than ``limit`` levels (the top level is level 1)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _nul_field(body: dict[str, Any]) -> str | None:
    """The first top-level field whose key or any nested string or key holds U+0000, else None."""
    for key, value in body.items():
        if "\x00" in key:
            return key.replace("\x00", "\\u0000")[:60]
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                if "\x00" in item:
                    return key[:60]
            elif isinstance(item, dict):
                if any("\x00" in k for k in item):
                    return key[:60]
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
    return None


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """``raw`` as a JSON object, or ``InvalidBody``/``Unprocessable`` saying why not (no Flask needed)."""
    if raw.startswith(BOM):
        raw = raw[len(BOM):]
    if not raw.strip():
        raise _unreadable("is empty; send a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in exc.msg:
            raise _unreadable(f"is nested deeper than {MAX_DEPTH} levels") from None
        raise _unreadable(f"is not valid JSON: {exc.msg} at byte {exc.pos}") from None
    if not isinstance(body, dict):
        raise _unreadable(f"must be a JSON object, not {_json_type(body)}")
    if _too_deep(body, MAX_DEPTH):
        raise _unreadable(f"is nested deeper than {MAX_DEPTH} levels")
    field = _nul_field(body)
    if field is not None:
        raise Unprocessable(f"{field}: contains a NUL character (U+0000)",
                            [{"field": field, "reason": "contains a NUL character (U+0000)"}])
    return body


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def json_object(allowed: tuple[str, ...] = JSON, optional: bool = False) -> dict[str, Any]:
    """The request's body as a JSON object (415 for another media type, 400 when unreadable, see above).

    ``optional``: an empty body is ``{}`` (whatever its media type), for endpoints whose body may be left out.
    """
    raw = request.get_data(cache=True)
    if optional and not raw:
        return {}
    if request.mimetype not in allowed:
        got = request.mimetype or "no Content-Type"
        raise UnsupportedMediaType(f"send the body as {' or '.join(allowed)} (got {got[:80]})",
                                   [{"field": "Content-Type", "reason": f"must be {' or '.join(allowed)}"}])
    return parse_json_object(raw)
