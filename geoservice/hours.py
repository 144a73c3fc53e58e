"""The opening-hours engine: OSM ``opening_hours`` in Asia/Shanghai with China's official calendar.

Parsing and weekly rules come from ``opening-hours-py`` (a binding of the Rust ``opening-hours`` crate).
That library has no way to take a custom holiday list, and its built-in Chinese calendar lacks the full
State Council schedule, so the engine evaluates every expression *without* a country and applies our own
calendar (``geoservice.calendar``) day by day:

* a **holiday selector** ``PH`` — also with a day offset, ``PH +1 day`` (the day after a holiday) or
  ``PH -2 days`` — matches a day when that day minus the offset is an official holiday (day off). Such a day
  is evaluated with every matching selector rewritten to that day's weekday (``PH off`` on a Thursday holiday
  reads ``Th off``); a selector that does not match is left alone and, with no country, never matches. An
  expression without ``PH`` keeps its weekday hours on a holiday (OSM semantics: a holiday the expression does
  not mention is an ordinary day);
* a **make-up working day** (调休, a Saturday or Sunday that is a working day) gets the union of its own
  weekend hours and the hours of the nearest regular working weekday, so an office ``Mo-Fr 08:30-17:30``
  opens and a shop ``Tu-Su 09:00-20:00`` stays open;
* operator **closures** (whole days, inclusive) override everything;
* **sun events** (``sunrise``, ``sunset``, ``dawn``, ``dusk``) are computed by the library for the engine's
  location (by default the centre of Beijing, 39.904 N 116.407 E; across the 16 districts the real times differ
  by at most ~8 minutes) in Asia/Shanghai.

What the syntax allows but China's calendar cannot answer is refused by :func:`validate_hours` with the
construct named: ``SH`` (school holidays: no official school-holiday calendar is loaded), ``PH Mo-Fr``
(OSM reads it as holidays falling on Mo-Fr, the library as holidays or Mo-Fr), and holiday selectors in a
position the rewriting above cannot express. Every entrance (operators' PATCH and bulk files,
layer files, the preview, the CLI) validates with that one function, so stored hours are always evaluable.
Should evaluation still fail (a library fault, data written by an older version), the engine raises
:class:`HoursEvaluationError` for that expression alone and callers skip and flag that one site.

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
from geoservice.model import Closure, OpenState

LOGGER = logging.getLogger(__name__)

TZ = ZoneInfo("Asia/Shanghai")
WEEKDAY_TOKENS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
DAY = dt.timedelta(days=1)
# How far ahead `next_open` / `open_until` look before answering "none within this horizon".
LOOKAHEAD = dt.timedelta(days=8)
# Entries of HoursEngine's whole-day cache (~1-3 KB each: 10-20 intervals of two datetimes), so at most ~12 MB
# per process whatever expressions arrive (the public hours preview takes any).
DAYS_CACHE_SIZE = 4096
MAX_LENGTH = 1000
# Validation evaluates the expression over this many days (every weekday, month and year boundary and every
# kind of special day occurs in that span) and refuses more separate open intervals a day than a real rest site
# has: one hostile expression must not fill the interval table (the materialised window holds ~15 days).
TRIAL_DAYS = 400
MAX_INTERVALS_PER_DAY = 24
# The engine's default location for sun events: the centre of Beijing (latitude, longitude).
BEIJING_CENTRE = (39.9042, 116.4074)

# A quoted comment, or a holiday selector with its optional day offset ("PH", "SH +1 day", "PH -2 days").
_HOLIDAY = re.compile(r'"[^"]*"|\b(PH|SH)\b(?:\s*([+-])\s*(\d+)\s*days?\b)?')
# A holiday selector directly followed by a weekday range is an intersection ("PH Mo-Fr": holidays on Mo-Fr).
_WEEKDAY_NEXT = re.compile(r"\s+(?:Mo|Tu|We|Th|Fr|Sa|Su)\b")
_SUN_EVENT = re.compile(r'"[^"]*"|\b(sunrise|sunset|dawn|dusk)\b')
_POSITION = re.compile(r"-->\s*(\d+):(\d+)")
_EXPECTED = re.compile(r"=\s*(.+)$", re.MULTILINE)

Interval = tuple[dt.datetime, dt.datetime]
# The library raises its own ParserError (missing from its type stub) for bad syntax.
_PARSE_ERRORS: tuple[type[Exception], ...] = (SyntaxError, ValueError, getattr(ohlib, "ParserError", SyntaxError))


class HoursSyntaxError(ValueError):
    """An ``opening_hours`` string is refused; says where (1-based character) and what was expected.

    Raised for text that does not parse and for constructs that parse but cannot be evaluated against China's
    calendar (``construct`` then names it, e.g. ``SH``).
    """

    def __init__(self, value: str, column: int | None, expected: str, construct: str | None = None):
        self.value = value
        self.column = column
        self.expected = expected
        self.construct = construct
        where = f" at character {column}" if column else ""
        what = "cannot evaluate" if construct else "cannot parse"
        if not construct and not expected.startswith("expected") and column:
            expected = f"expected {expected}"
        super().__init__(f"{what}{where}: {expected}")

    @property
    def details(self) -> dict[str, object]:
        """What a client needs to point at the problem: the 1-based character, what was expected, the construct."""
        out: dict[str, object] = {"column": self.column, "expected": self.expected}
        if self.construct:
            out["construct"] = self.construct
        return out


class HoursEvaluationError(RuntimeError):
    """The library failed to evaluate an expression that parsed (never expected after validation)."""

    def __init__(self, expression: str, cause: BaseException):
        super().__init__(f"cannot evaluate opening_hours {expression[:80]!r}: {type(cause).__name__}")
        self.expression = expression


@dataclasses.dataclass(frozen=True)
class HolidaySelector:
    """One ``PH``/``SH`` selector of an expression: where it is, and its day offset (``PH +1 day`` is +1)."""

    start: int
    end: int
    kind: str
    offset: int
    before_weekday: bool


@functools.lru_cache(maxsize=65536)
def holiday_selectors(expression: str) -> tuple[HolidaySelector, ...]:
    """Every holiday selector outside comments, in text order."""
    out = []
    for m in _HOLIDAY.finditer(expression):
        if m.group(1) is None:
            continue  # a quoted comment
        offset = int(m.group(3) or 0) * (-1 if m.group(2) == "-" else 1)
        out.append(HolidaySelector(m.start(), m.end(), m.group(1), offset,
                                   bool(_WEEKDAY_NEXT.match(expression, m.end()))))
    return tuple(out)


def uses_sun_events(expression: str) -> bool:
    """True when the expression mentions sunrise, sunset, dawn or dusk outside comments."""
    return any(m.group(1) for m in _SUN_EVENT.finditer(expression))


def rewrite_holidays(expression: str, matching: frozenset[int], weekday: int) -> str:
    """The expression as it reads on one day whose weekday is ``weekday`` (0 = Monday): the selectors at the
    indexes ``matching`` become that weekday's token."""
    token = WEEKDAY_TOKENS[weekday]
    out, pos = [], 0
    for i, sel in enumerate(holiday_selectors(expression)):
        if i not in matching:
            continue
        out.append(expression[pos:sel.start])
        out.append(token)
        pos = sel.end
    out.append(expression[pos:])
    return "".join(out)


def _syntax_error(text: str, exc: Exception) -> HoursSyntaxError:
    message = str(exc)
    pos = _POSITION.search(message)
    exp = _EXPECTED.search(message)
    return HoursSyntaxError(text, int(pos.group(2)) if pos else None,
                            exp.group(1).strip() if exp else message.splitlines()[0])


def validate_hours(value: str) -> str:
    """Return the stripped expression or raise :class:`HoursSyntaxError` saying where and what.

    Refuses text that does not parse, constructs China's calendar cannot answer (``SH``; a holiday selector
    whose rewriting for a day does not parse), expressions the library cannot evaluate, and more than
    :data:`MAX_INTERVALS_PER_DAY` open intervals on a day. The one check behind every entrance.
    """
    if not isinstance(value, str) or not value.strip():
        raise HoursSyntaxError(str(value), None, "an opening_hours expression such as 'Mo-Fr 08:00-18:00'")
    text = value.strip()
    if len(text) > MAX_LENGTH:
        raise HoursSyntaxError(text[:40], None, f"at most {MAX_LENGTH} characters")
    _check_evaluable(text)
    return text


@functools.lru_cache(maxsize=4096)
def _check_evaluable(text: str) -> None:
    """Every check of :func:`validate_hours` after the length; cached (a file repeats the same few hours)."""
    try:
        _parse(text, None)
    except _PARSE_ERRORS as exc:
        raise _syntax_error(text, exc) from None
    except BaseException as exc:  # the Rust parser can panic on odd input: refused, never a crash
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            raise
        raise HoursSyntaxError(text, None, "an expression the opening_hours library can read") from None
    selectors = holiday_selectors(text)
    for sel in selectors:
        shown = text[sel.start:sel.end]
        if sel.before_weekday:
            # OSM reads "PH Mo-Fr" as holidays that fall on Mo-Fr, the library as holidays or Mo-Fr: ambiguous.
            raise HoursSyntaxError(text, sel.start + 1, f"{shown!r} directly before a weekday range is ambiguous: "
                                   "write 'PH,Mo-Fr' for holidays and weekdays, or two rules such as "
                                   "'Mo-Fr 08:00-18:00; PH 10:00-16:00'", f"{shown} <weekday>")
        if sel.kind == "SH":
            raise HoursSyntaxError(text, sel.start + 1, "SH (school holidays) is not supported: no school-holiday "
                                   "calendar for China is loaded; give the dates instead, e.g. 'Jul 10-Aug 31 off'",
                                   "SH")
    for i, sel in enumerate(selectors):
        shown = text[sel.start:sel.end]
        for weekday in range(7):
            for matching in (frozenset([i]), frozenset(range(len(selectors)))):
                variant = rewrite_holidays(text, matching, weekday)
                try:
                    _parse(variant, None)
                except BaseException as exc:
                    if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
                        raise
                    raise HoursSyntaxError(
                        text, sel.start + 1, f"{shown!r} cannot be used in this position: write the holiday rule "
                        "as its own rule, e.g. 'Mo-Fr 08:00-18:00; PH off' or 'PH 10:00-16:00'", shown) from None
    start = dt.datetime(2026, 1, 1)
    try:
        spans = _open_intervals(_parse(text, BEIJING_CENTRE if uses_sun_events(text) else None), start,
                                start + TRIAL_DAYS * DAY, text)
    except HoursEvaluationError:
        raise HoursSyntaxError(text, None, "an expression the opening_hours library can evaluate") from None
    per_day: dict[dt.date, int] = {}
    for a, _ in spans:
        per_day[a.date()] = per_day.get(a.date(), 0) + 1
    if per_day and max(per_day.values()) > MAX_INTERVALS_PER_DAY:
        raise HoursSyntaxError(text, None, f"at most {MAX_INTERVALS_PER_DAY} separate opening intervals a day",
                               "intervals per day")


@functools.lru_cache(maxsize=65536)
def _parse(expression: str, location: tuple[float, float] | None) -> ohlib.OpeningHours:
    if location is None:
        return ohlib.OpeningHours(expression)
    return ohlib.OpeningHours(expression, timezone=TZ, coords=location)


def _naive(t: dt.datetime) -> dt.datetime:
    """Local wall time in Asia/Shanghai without tzinfo, as the library works."""
    if t.tzinfo is None:
        return t
    return t.astimezone(TZ).replace(tzinfo=None)


def _open_intervals(oh: ohlib.OpeningHours, start: dt.datetime, end: dt.datetime, expression: str) -> list[Interval]:
    """Naive local open intervals; any failure of the library becomes :class:`HoursEvaluationError`."""
    try:
        return [(_naive(a), _naive(b)) for a, b, state, _ in oh.intervals(start, end) if state == ohlib.State.OPEN]
    except BaseException as exc:  # pyo3 turns a Rust panic into a BaseException
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            raise
        raise HoursEvaluationError(expression, exc) from exc


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


class HoursEngine:
    """Evaluates ``opening_hours`` strings against one loaded :class:`Calendar`."""

    def __init__(self, calendar: Calendar, location: tuple[float, float] = BEIJING_CENTRE):
        self.calendar = calendar
        self.location = location
        # Whole-day evaluations before closures, by (expression, first day, last day): many sites share their
        # hours, and a request asks about the same few days for each of them.
        self._days_cache: dict[tuple[str, dt.datetime, dt.datetime], tuple[Interval, ...]] = {}

    def _oh(self, expression: str, original: str | None = None) -> ohlib.OpeningHours:
        """The parsed expression (a day's rewritten variant of ``original``); failures are evaluation errors."""
        try:
            return _parse(expression, self.location if uses_sun_events(expression) else None)
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
                raise
            raise HoursEvaluationError(original or expression, exc) from exc

    def _substitute_workday(self, day: dt.date) -> dt.date:
        """The nearest regular working weekday to a make-up working day (ties: the earlier one)."""
        for offset in range(1, 15):
            for candidate in (day - offset * DAY, day + offset * DAY):
                if candidate.weekday() < 5 and self.calendar.day_type(candidate) == "normal":
                    return candidate
        return day

    def _matching(self, selectors: Sequence[HolidaySelector], day: dt.date) -> frozenset[int]:
        """Indexes of the ``PH`` selectors that match ``day`` under the official calendar."""
        return frozenset(i for i, sel in enumerate(selectors)
                         if sel.kind == "PH" and self.calendar.day_type(day - sel.offset * DAY) == "holiday")

    def _affected_days(self, expression: str, first: dt.date, last: dt.date) -> list[dt.date]:
        """Days in ``[first, last)`` that are not plain weekdays for this expression: official special days,
        and days a ``PH`` selector with an offset reaches."""
        days = {d.day for d in self.calendar.special_days_between(first, last)}
        offsets = {sel.offset for sel in holiday_selectors(expression) if sel.kind == "PH" and sel.offset}
        if offsets:
            lo, hi = min(offsets), max(offsets)
            for special in self.calendar.special_days_between(first - hi * DAY - DAY, last - lo * DAY + DAY):
                if special.type == "holiday":
                    days.update(special.day + k * DAY for k in offsets)
        return sorted(d for d in days if first <= d < last)

    def _day_intervals(self, expression: str, day: dt.date) -> list[Interval]:
        start = dt.datetime.combine(day, dt.time())
        matching = self._matching(holiday_selectors(expression), day)
        text = rewrite_holidays(expression, matching, day.weekday()) if matching else expression
        own = _open_intervals(self._oh(text, expression), start, start + DAY, expression)
        if self.calendar.day_type(day) != "workday":
            return own
        substitute = self._substitute_workday(day)
        shift = dt.datetime.combine(day, dt.time()) - dt.datetime.combine(substitute, dt.time())
        sub_start = dt.datetime.combine(substitute, dt.time())
        borrowed = [(a + shift, b + shift)
                    for a, b in _open_intervals(self._oh(expression), sub_start, sub_start + DAY, expression)]
        return _merge(own + borrowed)

    def intervals(
        self,
        expression: str,
        start: dt.datetime,
        end: dt.datetime,
        closures: Sequence[Closure] = (),
    ) -> list[Interval]:
        """Open intervals in ``[start, end)`` as timezone-aware Asia/Shanghai datetimes, merged and sorted.

        Raises :class:`HoursEvaluationError` when the library cannot evaluate ``expression``.
        """
        lo, hi = _naive(start), _naive(end)
        if hi <= lo:
            return []
        # Evaluate whole days so that special days can be replaced cleanly, then clip.
        day_lo = dt.datetime.combine(lo.date(), dt.time())
        day_hi = dt.datetime.combine(hi.date(), dt.time()) + DAY
        spans: Sequence[Interval] = self._whole_days(expression, day_lo, day_hi)
        if closures:
            cut = list(spans)
            for closure in closures:
                c0 = dt.datetime.combine(closure.start, dt.time(), tzinfo=TZ)
                c1 = dt.datetime.combine(closure.end, dt.time(), tzinfo=TZ) + DAY
                cut = _subtract(cut, c0, c1)
            spans = _merge(cut)
        lo, hi = lo.replace(tzinfo=TZ), hi.replace(tzinfo=TZ)
        return [(max(a, lo), min(b, hi)) for a, b in spans if a < hi and b > lo]

    def _whole_days(self, expression: str, day_lo: dt.datetime, day_hi: dt.datetime) -> tuple[Interval, ...]:
        """Open intervals of the days ``[day_lo, day_hi)`` with holidays and make-up days applied, merged, as
        aware Asia/Shanghai datetimes (cached: each request asks about the same few days for many sites)."""
        key = (expression, day_lo, day_hi)
        cached = self._days_cache.get(key)
        if cached is not None:
            return cached
        result = _open_intervals(self._oh(expression), day_lo, day_hi, expression)
        for day in self._affected_days(expression, day_lo.date(), day_hi.date()):
            d0 = dt.datetime.combine(day, dt.time())
            result = _subtract(result, d0, d0 + DAY)
            result.extend(self._day_intervals(expression, day))
        value = tuple((a.replace(tzinfo=TZ), b.replace(tzinfo=TZ)) for a, b in _merge(result))
        if len(self._days_cache) >= DAYS_CACHE_SIZE:
            self._days_cache.clear()  # crude but bounded; refills with what is asked now
        self._days_cache[key] = value
        return value

    def state(self, expression: str, at: dt.datetime, closures: Sequence[Closure] = ()) -> OpenState:
        """Open or closed at ``at``; ``open_until`` or ``next_open`` within :data:`LOOKAHEAD`.

        Never raises for an expression the library cannot evaluate: the state is then closed, with ``problem``
        saying why (one bad record must not break an answer about many).
        """
        at_local = at.astimezone(TZ) if at.tzinfo else at.replace(tzinfo=TZ)
        horizon = at_local + LOOKAHEAD
        try:
            spans = self.intervals(expression, at_local - DAY, horizon, closures)
        except HoursEvaluationError as exc:
            LOGGER.warning("%s", exc)
            return OpenState(False, None, None, "opening hours cannot be evaluated")
        for a, b in spans:
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


def utc_now() -> dt.datetime:
    """The current time, aware, in UTC (what the stores stamp writes with)."""
    return dt.datetime.now(dt.UTC)
