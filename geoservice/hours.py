"""The opening-hours engine: OSM ``opening_hours`` in Asia/Shanghai with China's official calendar.

Parsing and weekly rules come from ``opening-hours-py`` (a binding of the Rust ``opening-hours`` crate).
That library has no way to take a custom holiday list, and its built-in Chinese calendar lacks the full
State Council schedule, so the engine evaluates every expression *without* a country and applies our own
calendar (``geoservice.calendar``) day by day:

* an official **holiday** (day off) is evaluated with every ``PH`` selector rewritten to that day's weekday,
  so ``PH off`` closes it, ``PH 10:00-16:00`` sets its hours, and an expression without ``PH`` keeps its
  weekday hours (OSM semantics: a holiday the expression does not mention is an ordinary day);
* a **make-up working day** (调休, a Saturday or Sunday that is a working day) gets the union of its own
  weekend hours and the hours of the nearest regular working weekday, so an office ``Mo-Fr 08:30-17:30``
  opens and a shop ``Tu-Su 09:00-20:00`` stays open;
* operator **closures** (whole days, inclusive) override everything.

A year whose schedule is not loaded is evaluated by weekday rules only and reported through
``Calendar.missing_years`` so callers can say so instead of guessing.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import re
from collections.abc import Iterable, Sequence
from zoneinfo import ZoneInfo

import opening_hours as ohlib

from geoservice.calendar import Calendar
from geoservice.model import Closure

LOGGER = logging.getLogger(__name__)

TZ = ZoneInfo("Asia/Shanghai")
WEEKDAY_TOKENS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
DAY = dt.timedelta(days=1)
# How far ahead `next_open` / `open_until` look before answering "none within this horizon".
LOOKAHEAD = dt.timedelta(days=8)
# Entries of HoursEngine's whole-day cache (~1-3 KB each: 10-20 intervals of two datetimes), so at most ~12 MB
# per process whatever expressions arrive (the public hours preview takes any).
DAYS_CACHE_SIZE = 4096

_PH_TOKEN = re.compile(r'"[^"]*"|\bPH\b')
_POSITION = re.compile(r"-->\s*(\d+):(\d+)")
_EXPECTED = re.compile(r"=\s*(.+)$", re.MULTILINE)

Interval = tuple[dt.datetime, dt.datetime]
# The library raises its own ParserError (missing from its type stub) for bad syntax.
_PARSE_ERRORS: tuple[type[Exception], ...] = (SyntaxError, ValueError, getattr(ohlib, "ParserError", SyntaxError))


class HoursSyntaxError(ValueError):
    """An ``opening_hours`` string does not parse; says where and what was expected."""

    def __init__(self, value: str, column: int | None, expected: str):
        self.value = value
        self.column = column
        self.expected = expected
        where = f" at character {column}" if column else ""
        super().__init__(f"cannot parse{where}: {expected}")


def validate_hours(value: str) -> str:
    """Return the stripped expression or raise :class:`HoursSyntaxError` with position and expectation."""
    if not isinstance(value, str) or not value.strip():
        raise HoursSyntaxError(str(value), None, "an opening_hours expression such as 'Mo-Fr 08:00-18:00'")
    text = value.strip()
    if len(text) > 1000:
        raise HoursSyntaxError(text[:40], None, "at most 1000 characters")
    try:
        _parse(text)
    except _PARSE_ERRORS as exc:
        message = str(exc)
        pos = _POSITION.search(message)
        exp = _EXPECTED.search(message)
        raise HoursSyntaxError(
            text, int(pos.group(2)) if pos else None, exp.group(1).strip() if exp else message.splitlines()[0]
        ) from None
    return text


@functools.lru_cache(maxsize=65536)
def _parse(expression: str) -> ohlib.OpeningHours:
    return ohlib.OpeningHours(expression)


@functools.lru_cache(maxsize=65536)
def _holiday_variant(expression: str, weekday: int) -> ohlib.OpeningHours | None:
    """The expression with ``PH`` read as ``weekday``; None when it has no ``PH`` selector."""
    token = WEEKDAY_TOKENS[weekday]
    replaced = _PH_TOKEN.sub(lambda m: token if m.group(0) == "PH" else m.group(0), expression)
    if replaced == expression:
        return None
    return ohlib.OpeningHours(replaced)


def _naive(t: dt.datetime) -> dt.datetime:
    """Local wall time in Asia/Shanghai without tzinfo, as the library works."""
    if t.tzinfo is None:
        return t
    return t.astimezone(TZ).replace(tzinfo=None)


def _open_intervals(oh: ohlib.OpeningHours, start: dt.datetime, end: dt.datetime) -> list[Interval]:
    return [(a, b) for a, b, state, _ in oh.intervals(start, end) if state == ohlib.State.OPEN]


def _subtract(intervals: list[Interval], cut_start: dt.datetime, cut_end: dt.datetime) -> list[Interval]:
    out: list[Interval] = []
    for a, b in intervals:
        if b <= cut_start or a >= cut_end:
            out.append((a, b))
            continue
        if a < cut_start:
            out.append((a, cut_start))
        if b > cut_end:
            out.append((cut_end, b))
    return out


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for a, b in sorted(intervals):
        if b <= a:
            continue
        if merged and a <= merged[-1][1]:
            if b > merged[-1][1]:
                merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


@dataclasses.dataclass(frozen=True)
class OpenState:
    """Whether a site is open at a moment, and the next change within the look-ahead horizon.

    ``open_until`` is None for a site open beyond the horizon (e.g. ``24/7``); ``next_open`` is None for a
    closed site that does not open within it.
    """

    is_open: bool
    open_until: dt.datetime | None
    next_open: dt.datetime | None


class HoursEngine:
    """Evaluates ``opening_hours`` strings against one loaded :class:`Calendar`."""

    def __init__(self, calendar: Calendar):
        self.calendar = calendar
        # Whole-day evaluations before closures, by (expression, first day, last day): many sites share their
        # hours, and a request asks about the same few days for each of them.
        self._days_cache: dict[tuple[str, dt.datetime, dt.datetime], tuple[Interval, ...]] = {}

    def _substitute_workday(self, day: dt.date) -> dt.date:
        """The nearest regular working weekday to a make-up working day (ties: the earlier one)."""
        for offset in range(1, 15):
            for candidate in (day - offset * DAY, day + offset * DAY):
                if candidate.weekday() < 5 and self.calendar.day_type(candidate) == "normal":
                    return candidate
        return day

    def _day_intervals(self, expression: str, day: dt.date, kind: str) -> list[Interval]:
        start = dt.datetime.combine(day, dt.time())
        end = start + DAY
        if kind == "holiday":
            variant = _holiday_variant(expression, day.weekday()) or _parse(expression)
            return _open_intervals(variant, start, end)
        own = _open_intervals(_parse(expression), start, end)
        substitute = self._substitute_workday(day)
        shift = dt.datetime.combine(day, dt.time()) - dt.datetime.combine(substitute, dt.time())
        sub_start = dt.datetime.combine(substitute, dt.time())
        borrowed = [(a + shift, b + shift) for a, b in _open_intervals(_parse(expression), sub_start, sub_start + DAY)]
        return _merge(own + borrowed)

    def intervals(
        self,
        expression: str,
        start: dt.datetime,
        end: dt.datetime,
        closures: Sequence[Closure] = (),
    ) -> list[Interval]:
        """Open intervals in ``[start, end)`` as timezone-aware Asia/Shanghai datetimes, merged and sorted."""
        lo, hi = _naive(start), _naive(end)
        if hi <= lo:
            return []
        # Evaluate whole days so that special days can be replaced cleanly, then clip.
        day_lo = dt.datetime.combine(lo.date(), dt.time())
        day_hi = dt.datetime.combine(hi.date(), dt.time()) + DAY
        result = list(self._whole_days(expression, day_lo, day_hi))
        for closure in closures:
            c0 = dt.datetime.combine(closure.start, dt.time())
            c1 = dt.datetime.combine(closure.end, dt.time()) + DAY
            result = _subtract(result, c0, c1)
        clipped = [(max(a, lo), min(b, hi)) for a, b in _merge(result)]
        return [(a.replace(tzinfo=TZ), b.replace(tzinfo=TZ)) for a, b in clipped if b > a]

    def _whole_days(self, expression: str, day_lo: dt.datetime, day_hi: dt.datetime) -> tuple[Interval, ...]:
        """Open intervals of the days ``[day_lo, day_hi)`` with holidays and make-up days applied, unmerged."""
        key = (expression, day_lo, day_hi)
        cached = self._days_cache.get(key)
        if cached is not None:
            return cached
        result = _open_intervals(_parse(expression), day_lo, day_hi)
        for special in self.calendar.special_days_between(day_lo.date(), day_hi.date()):
            d0 = dt.datetime.combine(special.day, dt.time())
            result = _subtract(result, d0, d0 + DAY)
            result.extend(self._day_intervals(expression, special.day, special.type))
        value = tuple(result)
        if len(self._days_cache) >= DAYS_CACHE_SIZE:
            self._days_cache.clear()  # crude but bounded; refills with what is asked now
        self._days_cache[key] = value
        return value

    def state(self, expression: str, at: dt.datetime, closures: Sequence[Closure] = ()) -> OpenState:
        """Open or closed at ``at``; ``open_until`` or ``next_open`` within :data:`LOOKAHEAD`."""
        at_local = at.astimezone(TZ) if at.tzinfo else at.replace(tzinfo=TZ)
        horizon = at_local + LOOKAHEAD
        for a, b in self.intervals(expression, at_local - DAY, horizon, closures):
            if a <= at_local < b:
                return OpenState(True, None if b >= horizon else b, None)
            if a > at_local:
                return OpenState(False, None, a)
        return OpenState(False, None, None)

    def is_open(self, expression: str, at: dt.datetime, closures: Sequence[Closure] = ()) -> bool:
        """Shortcut for ``state(...).is_open``."""
        return self.state(expression, at, closures).is_open


def local_day_window(today: dt.date, days_before: int = 1, days_after: int = 14) -> tuple[dt.datetime, dt.datetime]:
    """The materialisation window ``[today - before, today + after)`` as aware Asia/Shanghai datetimes."""
    start = dt.datetime.combine(today - days_before * DAY, dt.time(), tzinfo=TZ)
    end = dt.datetime.combine(today + days_after * DAY, dt.time(), tzinfo=TZ)
    return start, end


def now_local() -> dt.datetime:
    """The current time in Asia/Shanghai."""
    return dt.datetime.now(TZ)
