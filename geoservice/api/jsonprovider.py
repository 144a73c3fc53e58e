"""Flask's JSON provider on orjson: every API body is JSON, and on the nearest-site path the standard
library's encoder was the largest single cost after the database (bench/README.md, "Before / after")."""
from __future__ import annotations

from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider

# Sorted keys and stringified non-string keys, as Flask's default provider writes them; datetimes and
# dataclasses go to Flask's own ``default`` so they come out exactly as before (HTTP dates, field dicts).
_OPTIONS = (orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
            | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS)


class FastJSONProvider(DefaultJSONProvider):
    """Compact UTF-8 JSON through orjson; anything orjson cannot write goes to the standard provider.

    Non-finite floats become ``null`` (valid JSON) instead of the standard library's bare ``NaN``.
    """

    ensure_ascii = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if not kwargs.get("ensure_ascii", self.ensure_ascii) and set(kwargs) <= {"ensure_ascii"}:
            try:
                return orjson.dumps(obj, default=self.default, option=_OPTIONS).decode()
            except TypeError:  # e.g. integers beyond 64 bits, mixed key types to sort
                pass
        return super().dumps(obj, **kwargs)
