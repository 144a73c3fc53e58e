"""One declaration per endpoint: its parameters validate the request AND generate its OpenAPI description.

A route is declared once with :meth:`Api.route` — method, path, parameters, body, responses, docs — and the
same :class:`Param` objects that parse ``request.args`` (naming the parameter and the reason in every problem)
write the OpenAPI ``parameters``, so no limit, vocabulary or pattern is written twice and the document cannot
drift from what the service accepts. The fuzz test (tests/resilience/test_fuzz_openapi.py) runs schemathesis
with every check against the documents this module builds.

Conventions every parameter follows (and the document states):

* unknown parameters, empty values and repeats of a single-valued parameter are 400;
* a value that cannot be read (``lat=abc``) is 400; one that is readable but outside its range or vocabulary
  is 422 (``out_of_range=400`` for OGC API - Features, whose standard asks for 400);
* times are ISO 8601 local (Beijing) or with an offset, calendar-valid, years 2000-2100 — the regular
  expression below is the parser, so the document's ``pattern`` is exactly what is accepted.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flask import Blueprint, Request, request

from geoservice.errors import InvalidInput, NotFound, Unprocessable
from geoservice.hours import TZ, now_local

# ---- times --------------------------------------------------------------------------------------------------
# A calendar-valid date 2000-01-01 .. 2100-12-31 (leap days in leap years only; 2100 is not one).
_YEAR = r"(?:20\d\d|2100)"
_LEAP_YEAR = r"(?:20(?:[02468][048]|[13579][26]))"
_DATE = (rf"(?:{_YEAR}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)"
         rf"|02-(?:0[1-9]|1\d|2[0-8]))|{_LEAP_YEAR}-02-29)")
_TIME = r"(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,6})?)?"
_OFFSET = r"(?:Z|[+-](?:0\d|1[0-4]):?[0-5]\d)"
TIME_PATTERN = rf"^(?:now|{_DATE}[T ]{_TIME}{_OFFSET}?)$"
DATE_PATTERN = rf"^{_DATE}$"
_TIME_RE = re.compile(TIME_PATTERN)
_DATE_RE = re.compile(DATE_PATTERN)
TIME_EXAMPLE = "2026-11-23T22:40 (Beijing time) or 2026-11-23T22:40+08:00"


def parse_time_text(raw: str) -> dt.datetime | None:
    """A time matching :data:`TIME_PATTERN` as an aware Asia/Shanghai datetime (None for ``now``); raises
    ``ValueError`` for anything else. Without an offset it is Beijing time."""
    text = raw
    if not _TIME_RE.match(text):
        raise ValueError(text)
    if text == "now":
        return None
    text = text.replace(" ", "T", 1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    value = dt.datetime.fromisoformat(text)
    return value.replace(tzinfo=TZ) if value.tzinfo is None else value.astimezone(TZ)


def parse_date_text(raw: str) -> dt.date:
    """A date matching :data:`DATE_PATTERN`; ``ValueError`` otherwise."""
    if not _DATE_RE.match(raw):
        raise ValueError(raw)
    return dt.date.fromisoformat(raw)


# ---- problems -----------------------------------------------------------------------------------------------
def bad(name: str, reason: str, status: int = 400) -> InvalidInput | Unprocessable:
    """The problem for one parameter: 400 unreadable, 422 readable but not acceptable."""
    cls = InvalidInput if status == 400 else Unprocessable
    return cls(f"{name}: {reason}", [{"field": name, "reason": reason}])


# ---- parameters ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Param:
    """One query, path or header parameter: parse it, and describe it in OpenAPI (subclasses say how)."""

    name: str
    description: str
    required: bool = False
    where: str = "query"
    multi: bool = False

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of one value (OpenAPI 3.1 dialect)."""
        return {"type": "string"}

    def convert(self, raw: str, out_of_range: int) -> Any:
        """One raw value to its Python value, or a problem naming the parameter."""
        return raw

    def default(self) -> Any:
        """The value when the parameter is absent."""
        return None

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI Parameter Object."""
        out: dict[str, Any] = {"name": self.name, "in": self.where, "required": self.required or self.where == "path",
                               "description": self.description, "schema": self.schema()}
        if self.multi:
            out["style"], out["explode"] = "form", True
        return out

    def parse(self, values: Sequence[str], out_of_range: int = 422) -> Any:
        """Every raw value given for the parameter (usually one) to the value handlers receive."""
        if not values:
            if self.required:
                raise bad(self.name, "is required")
            return self.default()
        if not self.multi and len(values) > 1:
            raise bad(self.name, "given more than once")
        for raw in values:
            if raw.strip() == "":
                raise bad(self.name, "is empty; omit the parameter to use its default")
        if self.multi:
            return self.convert_all(values, out_of_range)
        return self.convert(values[0], out_of_range)

    def convert_all(self, values: Sequence[str], out_of_range: int) -> Any:
        """A repeatable parameter's values."""
        return tuple(self.convert(v, out_of_range) for v in values)


@dataclasses.dataclass(frozen=True)
class Number(Param):
    """A finite number within ``[lo, hi]``."""

    lo: float = -math.inf
    hi: float = math.inf
    fallback: float | None = None

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "number"}
        if math.isfinite(self.lo):
            out["minimum"] = self.lo
        if math.isfinite(self.hi):
            out["maximum"] = self.hi
        if self.fallback is not None:
            out["default"] = self.fallback
        return out

    def default(self) -> Any:
        return self.fallback

    def convert(self, raw: str, out_of_range: int) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise bad(self.name, f"{raw[:40]!r} is not a number") from None
        if not math.isfinite(value):
            raise bad(self.name, "must be a finite number")
        if not self.lo <= value <= self.hi:
            raise bad(self.name, f"{value:g} is outside {self.lo:g}..{self.hi:g}", out_of_range)
        return value


@dataclasses.dataclass(frozen=True)
class Integer(Param):
    """An integer within ``[lo, hi]``."""

    lo: int = 0
    hi: int = 2**31 - 1
    fallback: int | None = None

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "integer", "minimum": self.lo, "maximum": self.hi}
        if self.fallback is not None:
            out["default"] = self.fallback
        return out

    def default(self) -> Any:
        return self.fallback

    def convert(self, raw: str, out_of_range: int) -> int:
        text = raw.strip()
        if not re.fullmatch(r"[+-]?\d+", text):
            raise bad(self.name, f"{raw[:40]!r} is not an integer")
        value = int(text) if len(text) <= 20 else None  # longer: out of any range, and not worth converting
        if value is None or not self.lo <= value <= self.hi:
            shown = value if value is not None else f"{text[:20]}…"
            raise bad(self.name, f"{shown} is outside {self.lo}..{self.hi}", out_of_range)
        return value


@dataclasses.dataclass(frozen=True)
class Boolean(Param):
    """``true`` or ``false`` (absent: ``fallback``; None means "not filtered")."""

    fallback: bool | None = False

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"} if self.fallback is None else {"type": "boolean", "default": self.fallback}

    def default(self) -> Any:
        return self.fallback

    def convert(self, raw: str, out_of_range: int) -> bool:
        if raw == "true":
            return True
        if raw == "false":
            return False
        raise bad(self.name, f"{raw[:40]!r} is not true or false")


Vocabulary = tuple[str, ...] | Callable[[], Sequence[str]]


def _words(values: Vocabulary) -> tuple[str, ...]:
    """A vocabulary given as a tuple, or read when needed (e.g. the loaded districts' adcodes)."""
    return tuple(values()) if callable(values) else values


@dataclasses.dataclass(frozen=True)
class Enum(Param):
    """One value of a vocabulary (a tuple, or a callable read at request and document time)."""

    values: Vocabulary = ()
    fallback: str | None = None

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string", "enum": list(_words(self.values))}
        if self.fallback is not None:
            out["default"] = self.fallback
        return out

    def default(self) -> Any:
        return self.fallback

    def convert(self, raw: str, out_of_range: int) -> str:
        words = _words(self.values)
        if raw not in words:
            shown = ", ".join(words[:20]) + (", …" if len(words) > 20 else "")
            raise bad(self.name, f"unknown value {raw[:40]!r}; allowed: {shown}", out_of_range)
        return raw


@dataclasses.dataclass(frozen=True)
class Choices(Param):
    """Values of a vocabulary, repeated (``kind=a&kind=b``) and/or comma-separated (``kind=a,b``)."""

    values: tuple[str, ...] = ()
    multi: bool = True

    def schema(self) -> dict[str, Any]:
        one = "|".join(re.escape(v) for v in self.values)
        return {"type": "array", "items": {"type": "string", "pattern": f"^(?:{one})(?:,(?:{one}))*$"}}

    def convert_all(self, values: Sequence[str], out_of_range: int) -> tuple[str, ...]:
        out: list[str] = []
        for raw in values:
            for part in raw.split(","):
                if part not in self.values:
                    raise bad(self.name, f"unknown value {part[:40]!r}; allowed: {', '.join(self.values)}",
                              out_of_range)
                out.append(part)
        return tuple(dict.fromkeys(out))

    def default(self) -> Any:
        return ()


@dataclasses.dataclass(frozen=True)
class Time(Param):
    """An ISO 8601 time (Beijing time without an offset); ``now`` or absent means now when ``now_default``."""

    now_default: bool = True

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": TIME_PATTERN}

    def default(self) -> Any:
        return now_local() if self.now_default else None

    def convert(self, raw: str, out_of_range: int) -> dt.datetime:
        try:
            value = parse_time_text(raw)
        except ValueError:
            raise bad(self.name, f"{raw[:40]!r} is not an ISO 8601 time such as {TIME_EXAMPLE} "
                                 "(years 2000-2100)") from None
        if value is None:
            return now_local()
        return value


@dataclasses.dataclass(frozen=True)
class Date(Param):
    """A calendar date ``YYYY-MM-DD`` (2000-2100)."""

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": DATE_PATTERN}

    def convert(self, raw: str, out_of_range: int) -> dt.date:
        try:
            return parse_date_text(raw)
        except ValueError:
            raise bad(self.name, f"{raw[:40]!r} is not a date (YYYY-MM-DD, 2000-2100)") from None


@dataclasses.dataclass(frozen=True)
class Text(Param):
    """Free text of ``1..max_length`` characters, optionally matching ``pattern``."""

    max_length: int = 300
    pattern: str | None = None
    format: str | None = None

    def schema(self) -> dict[str, Any]:
        # Blank text is refused like an empty value (``parse``), and so are control characters (PostgreSQL
        # cannot even compare a NUL); a given pattern or format must imply as much.
        out: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": self.max_length}
        if self.pattern or not self.format:
            out["pattern"] = self.pattern or text_pattern(False, True)
        if self.format:
            out["format"] = self.format
        return out

    def convert(self, raw: str, out_of_range: int) -> str:
        if len(raw) > self.max_length:
            raise bad(self.name, f"longer than {self.max_length} characters", out_of_range)
        if has_control_characters(raw):
            raise bad(self.name, "contains control characters", out_of_range)
        if self.pattern and not re.search(self.pattern, raw):
            raise bad(self.name, f"{raw[:40]!r} does not match {self.pattern}", out_of_range)
        return raw


@dataclasses.dataclass(frozen=True)
class PathId(Param):
    """An identifier in the path: text that cannot be an id is a 404 (no such resource), never a 400."""

    where: str = "path"
    required: bool = True
    pattern: str = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
    what: str = "resource"

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": self.pattern}

    def convert(self, raw: str, out_of_range: int) -> str:
        if not re.match(self.pattern, raw):
            raise NotFound(f"no {self.what} with id {raw[:64]!r}")
        return raw


@dataclasses.dataclass(frozen=True)
class PathInt(Param):
    """A positive integer id in the path (Flask's ``int`` converter already refuses anything else: 404)."""

    where: str = "path"
    required: bool = True
    hi: int = 2**63 - 1  # no id is larger (the databases' integers stop there)

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": 0, "maximum": self.hi}

    def convert(self, raw: str, out_of_range: int) -> int:
        value = int(raw)
        if value > self.hi:
            raise NotFound(f"no {self.name.replace('_id', '')} with id {raw[:24]}" if self.name.endswith("_id")
                           else f"{self.name} = {raw[:24]} is beyond the last one ({self.hi})")
        return value


# Decimal numbers as the boxes and points below accept them: no exponents, no "+", a point only between digits.
_LAT = r"-?(?:90(?:\.0+)?|[1-8]?\d(?:\.\d+)?)"
_LON = r"-?(?:180(?:\.0+)?|(?:1[0-7]\d|[1-9]?\d)(?:\.\d+)?)"
_ANY = r"-?\d{1,9}(?:\.\d+)?"
BBOX_PATTERN = rf"^{_LON},{_LAT},{_LON},{_LAT}$"
BBOX3D_PATTERN = rf"^(?:{_LON},{_LAT},{_LON},{_LAT}|{_LON},{_LAT},{_ANY},{_LON},{_LAT},{_ANY})$"
LONLAT_PATTERN = rf"^{_LON},{_LAT}$"


@dataclasses.dataclass(frozen=True)
class BBox(Param):
    """``lon_min,lat_min,lon_max,lat_max`` (longitudes -180..180, latitudes -90..90); ``heights`` also takes the
    6-number form of OGC API - Features (heights ignored). A box with ``lon_min > lon_max`` crosses the
    antimeridian; one with ``lat_min > lat_max`` contains nothing (both as OGC API - Features reads boxes). The
    pattern is the parser: what it matches is accepted, anything else is a 400."""

    heights: bool = False

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": BBOX3D_PATTERN if self.heights else BBOX_PATTERN}

    def convert(self, raw: str, out_of_range: int) -> tuple[float, float, float, float]:
        if not re.match(BBOX3D_PATTERN if self.heights else BBOX_PATTERN, raw):
            sizes = "4 or 6" if self.heights else "4"
            raise bad(self.name, f"must be {sizes} decimal numbers lon_min,lat_min,lon_max,lat_max with longitudes "
                                 "within -180..180 and latitudes within -90..90")
        values = [float(p) for p in raw.split(",")]
        if len(values) == 6:
            return values[0], values[1], values[3], values[4]
        return values[0], values[1], values[2], values[3]


@dataclasses.dataclass(frozen=True)
class LonLat(Param):
    """``lon,lat`` (decimal degrees, longitude -180..180, latitude -90..90); the pattern is the parser."""

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": LONLAT_PATTERN}

    def convert(self, raw: str, out_of_range: int) -> tuple[float, float]:
        if not re.match(LONLAT_PATTERN, raw):
            raise bad(self.name, "must be lon,lat in decimal degrees, e.g. 116.3975,39.9087")
        lon, lat = raw.split(",")
        return float(lon), float(lat)


# ---- bodies and responses -----------------------------------------------------------------------------------
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
STATUS_TEXT = {
    400: "Unreadable request: an unknown, empty, repeated or malformed parameter or body (problem+json names it)",
    401: "No valid credentials (WWW-Authenticate says which)",
    403: "Authenticated, but not allowed to do this to this resource",
    404: "No such resource",
    409: "Conflicts with the resource's state",
    412: "The resource changed since the version named in If-Match (the answer carries the current ETag)",
    413: "The body is larger than the service accepts",
    415: "The body is not in a media type this operation takes",
    423: "Locked: the account is locked after too many wrong passwords (an admin unlocks it)",
    422: "Readable but not acceptable: a value outside its range or vocabulary, or a rule named in the problem",
    428: "If-Match is required: send the ETag of the version you are changing",
    429: "Too many requests from this client; Retry-After says when to try again",
    501: "This installation lacks the optional extra the feature needs (the problem names it)",
    503: "The store is unavailable; Retry-After says when to try again",
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "string", "pattern": r"^\d+$"}}}


@dataclasses.dataclass(frozen=True)
class Response:
    """A success response: media type → JSON Schema, and headers."""

    description: str
    content: Mapping[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    headers: Mapping[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    links: Mapping[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def openapi(self) -> dict[str, Any]:
        out: dict[str, Any] = {"description": self.description}
        if self.content:
            out["content"] = {media: {"schema": schema} for media, schema in self.content.items()}
        if self.headers:
            out["headers"] = dict(self.headers)
        if self.links:
            out["links"] = dict(self.links)
        return out


def problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    """The documented problem+json answer for ``status``."""
    out: dict[str, Any] = {"description": description or STATUS_TEXT[status],
                           "content": {"application/problem+json": {"schema": PROBLEM_REF}}}
    if status in (429, 503):
        out["headers"] = RETRY_AFTER
    if status == 412:
        out["headers"] = {"ETag": {"description": "The current version", "schema": {"type": "string"}}}
    if status == 401:
        out["headers"] = {"WWW-Authenticate": {"description": "The scheme to use", "schema": {"type": "string"}}}
    return out


@dataclasses.dataclass(frozen=True)
class Body:
    """A request body: media types it may come in, each with its JSON Schema."""

    content: Mapping[str, dict[str, Any]]
    required: bool = True
    description: str = ""

    def openapi(self) -> dict[str, Any]:
        out: dict[str, Any] = {"required": self.required,
                               "content": {media: {"schema": schema} for media, schema in self.content.items()}}
        if self.description:
            out["description"] = self.description
        return out


@dataclasses.dataclass
class Operation:
    """Everything about one endpoint that a client can rely on."""

    method: str
    path: str
    summary: str
    params: tuple[Param, ...] = ()
    ok: dict[int, Response] = dataclasses.field(default_factory=dict)
    errors: tuple[int, ...] = ()
    body: Body | None = None
    description: str = ""
    tags: tuple[str, ...] = ()
    security: tuple[str, ...] = ()
    operation_id: str | None = None
    out_of_range: int = 422
    public_read: bool = False
    endpoint: str = ""  # the Flask endpoint, set when the operation is registered

    def parse(self, req: Request) -> dict[str, Any]:
        """Every declared query and header parameter of ``req``, checked and converted; 400 for unknown ones."""
        args, headers = req.args, req.headers  # once: ``req`` is usually Flask's proxy of the request
        declared = {p.name for p in self.params if p.where == "query"}
        for key in args:
            if key not in declared:
                allowed = ", ".join(sorted(declared)) or "none"
                raise bad(key[:40], f"unknown parameter; allowed here: {allowed}")
        out: dict[str, Any] = {}
        for p in self.params:
            if p.where == "query":
                out[p.name] = p.parse(args.getlist(p.name), self.out_of_range)
            elif p.where == "header":
                raw = headers.get(p.name)
                out[p.name] = p.parse([] if raw is None else [raw], self.out_of_range)
        return out

    def status_codes(self) -> list[int]:
        """Every status this operation answers with."""
        codes = set(self.ok) | set(self.errors) | {503}
        if self.params or self.body:
            codes.add(400)
        if self.public_read:
            codes.add(429)
        if self.security:
            codes |= {401}
        return sorted(codes)

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI Operation Object."""
        responses: dict[str, Any] = {}
        for code in self.status_codes():
            responses[str(code)] = self.ok[code].openapi() if code in self.ok else problem_response(code)
        out: dict[str, Any] = {"summary": self.summary, "operationId": self.operation_id or _operation_id(self),
                               "responses": responses}
        if self.description:
            out["description"] = self.description
        if self.params:
            out["parameters"] = [p.openapi() for p in self.params]
        if self.body:
            out["requestBody"] = self.body.openapi()
        if self.tags:
            out["tags"] = list(self.tags)
        if self.security:
            out["security"] = [{name: []} for name in self.security]
        return out


def _operation_id(op: Operation) -> str:
    words = re.sub(r"[{}]", "", op.path).strip("/").replace(".", "_").replace("-", "_").split("/")
    return op.method.lower() + "_" + "_".join(w for w in words if w)


def flask_rule(path: str) -> str:
    """``/api/v1/sites/{id}`` → ``/api/v1/sites/<id>`` (converters given as ``{id:site_id}``)."""
    return re.sub(r"\{(\w+)(?::(\w+))?\}", lambda m: f"<{m.group(2) + ':' if m.group(2) else ''}{m.group(1)}>", path)


def openapi_path(path: str) -> str:
    """``/api/v1/sites/{id:site_id}`` → ``/api/v1/sites/{id}``."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


class Api:
    """The operations of one API, collected as blueprints declare them; writes their OpenAPI ``paths``."""

    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def route(self, bp: Blueprint, op: Operation, endpoint: str | None = None
              ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register ``op`` on ``bp``; the handler is called with the path values and ``args`` (the parsed
        query and header parameters)."""
        self.operations.append(op)

        def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
            op.endpoint = f"{bp.name}.{endpoint or handler.__name__}"
            path_params = {p.name: p for p in op.params if p.where == "path"}

            def view(**path_values: Any) -> Any:
                values = {k: path_params[k].convert(str(v), op.out_of_range) if k in path_params else v
                          for k, v in path_values.items()}
                return handler(args=op.parse(request), **values)

            view.__name__ = endpoint or handler.__name__
            view.__doc__ = handler.__doc__
            bp.add_url_rule(flask_rule(op.path), endpoint=endpoint or handler.__name__, view_func=view,
                            methods=[op.method])
            return handler

        return decorate

    def paths(self) -> dict[str, Any]:
        """OpenAPI ``paths`` for every declared operation."""
        out: dict[str, Any] = {}
        for op in self.operations:
            out.setdefault(openapi_path(op.path), {})[op.method.lower()] = op.openapi()
        return out

    def public_reads(self) -> set[str]:
        """The Flask endpoints the public rate limit counts."""
        return {op.endpoint for op in self.operations if op.public_read}


# ---- JSON bodies --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Field:
    """One member of a JSON object body: its schema and its check (subclasses say how)."""

    name: str
    description: str
    required: bool = False
    nullable: bool = False

    def schema(self) -> dict[str, Any]:
        """The member's JSON Schema."""
        return {}

    def full_schema(self) -> dict[str, Any]:
        """The schema with ``null`` allowed when the member is nullable, and its description."""
        out = self.schema()
        if self.nullable:
            types = out.get("type", "string")
            out["type"] = [*(types if isinstance(types, list) else [types]), "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        out["description"] = self.description
        return out

    def check(self, value: Any) -> Any:
        """The value as handlers receive it, or ``ValueError`` saying why not."""
        return value


# Control characters a text field refuses (C0 and DEL); multiline text keeps tab and newline.
_CONTROL = r"\x00-\x1f\x7f"
_CONTROL_MULTILINE = r"\x00-\x08\x0b-\x1f\x7f"


def has_control_characters(text: str, multiline: bool = False) -> bool:
    """Whether ``text`` holds a character of :data:`_CONTROL` (of :data:`_CONTROL_MULTILINE` when multiline)."""
    allowed = "\n\t" if multiline else ""
    return any((ord(ch) < 32 and ch not in allowed) or ord(ch) == 127 for ch in text)


def _clean_text(value: Any, max_length: int, min_length: int, multiline: bool) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if len(value) > max_length:
        raise ValueError(f"at most {max_length} characters")
    if has_control_characters(value, multiline):
        raise ValueError("contains control characters")
    text = value.strip()
    if len(text) < min_length:
        raise ValueError("is required and cannot be empty" if min_length else "is empty")
    return text


def text_pattern(multiline: bool, required: bool) -> str:
    """The JSON Schema pattern of what :func:`_clean_text` accepts: no control characters and, when the text
    is required, at least one character that is not white space."""
    c = _CONTROL_MULTILINE if multiline else _CONTROL
    return f"^[^{c}]*[^\\s{c}][^{c}]*$" if required else f"^[^{c}]*$"


@dataclasses.dataclass(frozen=True)
class TextField(Field):
    """Text of ``min_length..max_length`` characters once trimmed; no control characters (newlines and tabs
    only when ``multiline``). A nullable field takes null or an empty string as "clear it"."""

    max_length: int = 200
    min_length: int = 1
    multiline: bool = False
    format: str | None = None

    def schema(self) -> dict[str, Any]:
        required = bool(self.min_length) and not self.nullable
        out: dict[str, Any] = {"type": "string", "maxLength": self.max_length,
                               "pattern": text_pattern(self.multiline, required)}
        if required:
            out["minLength"] = self.min_length
        if self.format:
            out["format"] = self.format
        return out

    def check(self, value: Any) -> Any:
        if value is None or (self.nullable and isinstance(value, str) and not value.strip()):
            if self.nullable:
                return None
            raise ValueError("is required and cannot be empty")
        return _clean_text(value, self.max_length, self.min_length, self.multiline)


@dataclasses.dataclass(frozen=True)
class EnumField(Field):
    """One value of a vocabulary."""

    values: tuple[str, ...] = ()

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.values)}

    def check(self, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        if value not in self.values:
            raise ValueError(f"must be one of {', '.join(self.values)}")
        return value


@dataclasses.dataclass(frozen=True)
class ListField(Field):
    """A list of vocabulary values (sorted, repeats dropped); null clears it when nullable."""

    values: tuple[str, ...] = ()

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {"type": "string", "enum": list(self.values)}}

    def check(self, value: Any) -> Any:
        if value is None and self.nullable:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("must be a list of codes")
        unknown = [v for v in value if v not in self.values]
        if unknown:
            raise ValueError(f"unknown value {', '.join(repr(v)[:40] for v in unknown[:5])}; allowed: "
                             f"{', '.join(self.values)}")
        return sorted(dict.fromkeys(value))


@dataclasses.dataclass(frozen=True)
class IntegerField(Field):
    """A whole number ``lo..hi`` (``3.0`` counts, as JSON Schema's integer says; ``true`` does not)."""

    lo: int = 0
    hi: int = 2**31 - 1

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.lo, "maximum": self.hi}

    def check(self, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
            raise ValueError("must be a whole number")
        if not self.lo <= value <= self.hi:
            raise ValueError(f"must be from {self.lo} to {self.hi}")
        return int(value)


@dataclasses.dataclass(frozen=True)
class DateField(Field):
    """A calendar date ``YYYY-MM-DD`` (2000-2100)."""

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": DATE_PATTERN}

    def check(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("must be a date string such as 2027-02-05")
        try:
            return parse_date_text(value)
        except ValueError:
            raise ValueError(f"{value[:40]!r} is not a date (YYYY-MM-DD, 2000-2100)") from None


@dataclasses.dataclass(frozen=True)
class TimeField(Field):
    """An ISO 8601 time (Beijing time without an offset)."""

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": TIME_PATTERN}

    def check(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("must be an ISO 8601 time string")
        try:
            parsed = parse_time_text(value)
        except ValueError:
            raise ValueError(f"{value[:40]!r} is not an ISO 8601 time such as {TIME_EXAMPLE}") from None
        return now_local() if parsed is None else parsed


@dataclasses.dataclass(frozen=True)
class CheckedField(Field):
    """Text checked by a domain validator (opening hours, phone numbers): the schema names its ``format``, the
    validator's message is the reason."""

    max_length: int = 1000
    format: str = ""
    validator: Callable[[str], str] | None = None

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string", "maxLength": self.max_length, "format": self.format}
        if not self.nullable:
            out["minLength"] = 1
        return out

    def check(self, value: Any) -> Any:
        if value is None or (self.nullable and isinstance(value, str) and not value.strip()):
            if self.nullable:
                return None
            raise ValueError("is required and cannot be empty")
        if not isinstance(value, str):
            raise ValueError("must be a string")
        assert self.validator is not None
        return self.validator(value)


@dataclasses.dataclass(frozen=True)
class ObjectField(Field):
    """A JSON object member checked by a domain validator (``ValueError`` saying why); its schema is given."""

    object_schema: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    validator: Callable[[Any], Any] | None = None

    def schema(self) -> dict[str, Any]:
        return dict(self.object_schema)

    def full_schema(self) -> dict[str, Any]:
        if not self.nullable:
            return {**self.schema(), "description": self.description}
        return {"anyOf": [self.schema(), {"type": "null"}], "description": self.description}

    def check(self, value: Any) -> Any:
        if value is None and not self.nullable:
            raise ValueError("is required")
        assert self.validator is not None
        return self.validator(value)


@dataclasses.dataclass(frozen=True)
class CodesField(Field):
    """A non-empty list of codes matching ``pattern`` (at most ``max_items``; repeats dropped, sorted)."""

    pattern: str = r"^[0-9]{6}$"
    max_items: int = 32

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "minItems": 1, "maxItems": self.max_items,
                "items": {"type": "string", "pattern": self.pattern}}

    def check(self, value: Any) -> Any:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise ValueError("must be a non-empty list of codes")
        if len(value) > self.max_items:
            raise ValueError(f"at most {self.max_items} codes")
        bad = [v[:20] for v in value if not re.match(self.pattern, v)]
        if bad:
            raise ValueError(f"not a code: {', '.join(repr(b) for b in bad[:5])}")
        return sorted(dict.fromkeys(value))


@dataclasses.dataclass(frozen=True)
class JsonBody:
    """A JSON object body: its members (no others), checked together — every problem reported at once."""

    fields: tuple[Field, ...]
    description: str = ""
    media_types: tuple[str, ...] = ("application/json",)

    def schema(self) -> dict[str, Any]:
        """The object's JSON Schema."""
        out: dict[str, Any] = {"type": "object", "additionalProperties": False,
                               "properties": {f.name: f.full_schema() for f in self.fields}}
        required = [f.name for f in self.fields if f.required]
        if required:
            out["required"] = required
        if self.description:
            out["description"] = self.description
        return out

    def body(self, required: bool = True) -> Body:
        """As an OpenAPI request body."""
        return Body({m: self.schema() for m in self.media_types}, required=required, description=self.description)

    def parse(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The given members, checked and normalised; 422 (``ValidationFailed``) names every bad or unknown one."""
        from geoservice.validation import Problem, ValidationFailed

        known = {f.name: f for f in self.fields}
        problems = [Problem(str(k)[:60], f"unknown field; allowed: {', '.join(known)}")
                    for k in list(data)[:20] if k not in known]
        out: dict[str, Any] = {}
        for f in self.fields:
            if f.name not in data:
                if f.required:
                    problems.append(Problem(f.name, "is required"))
                continue
            try:
                out[f.name] = f.check(data[f.name])
            except ValueError as exc:
                problems.append(Problem(f.name, str(exc), extra=getattr(exc, "details", None)))
        if problems:
            raise ValidationFailed(problems)
        return out
