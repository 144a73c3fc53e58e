"""China's official public-holiday calendar, kept as data.

The State Council publishes each year's schedule (days off and the make-up working days, 调休, that move
weekends) around November. No rule derives it, so the service keeps it as one CSV file per year that an admin
loads with ``geoservice calendar load FILE``; the years shipped with the package are in
``geoservice/data/calendar/``. A year with no file is *unknown*, and callers are told so rather than guessed at.

File format (UTF-8 CSV, header required)::

    date,type,name_en,name_zh
    2026-10-01,holiday,National Day,国庆节
    2026-10-10,workday,National Day,国庆节

``type`` is ``holiday`` (an official day off) or ``workday`` (a make-up working day on a weekend).
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from geoservice.packagedata import calendar_files
from geoservice.validation import Problem, Problems, ValidationFailed

LOGGER = logging.getLogger(__name__)

DayType = Literal["holiday", "workday", "normal"]
DAY_TYPES = ("holiday", "workday")
HEADER = ["date", "type", "name_en", "name_zh"]

NAMES_ZH = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "中国人民抗日战争暨世界反法西斯战争胜利70周年纪念日",
}


@dataclasses.dataclass(frozen=True)
class CalendarDay:
    """One special day of the official schedule."""

    day: dt.date
    type: str
    name_en: str = ""
    name_zh: str = ""


@dataclasses.dataclass
class Calendar:
    """The loaded official schedule: which years are known, and their special days."""

    years: set[int] = dataclasses.field(default_factory=set)
    days: dict[dt.date, CalendarDay] = dataclasses.field(default_factory=dict)

    def day_type(self, day: dt.date) -> DayType:
        """``holiday``, ``workday`` (make-up working day) or ``normal`` (follow the weekday)."""
        special = self.days.get(day)
        return special.type if special else "normal"  # type: ignore[return-value]

    def covers(self, year: int) -> bool:
        """True when the official schedule for ``year`` is loaded."""
        return year in self.years

    def special_days_between(self, start: dt.date, end: dt.date) -> list[CalendarDay]:
        """Special days with ``start <= day < end``, sorted."""
        return sorted((d for d in self.days.values() if start <= d.day < end), key=lambda d: d.day)

    def missing_years(self, start: dt.date, end: dt.date) -> list[int]:
        """Years touched by ``[start, end]`` that have no loaded schedule."""
        return [y for y in range(start.year, end.year + 1) if y not in self.years]

    @classmethod
    def from_days(cls, years: Iterable[int], days: Iterable[CalendarDay]) -> Calendar:
        """Build from stored rows."""
        return cls(set(years), {d.day: d for d in days})


def parse_calendar_csv(text: str, filename: str = "<calendar>") -> tuple[int, list[CalendarDay]]:
    """Validate one year's schedule and return ``(year, days)``; every problem is collected before raising
    :class:`~geoservice.validation.ValidationFailed` (one ``file:line N: field: reason`` each)."""
    problems = Problems(filename)
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    rows = list(reader)
    if not rows or [c.strip() for c in rows[0]] != HEADER:
        problems.add("header", f"expected {','.join(HEADER)}", "line 1")
        problems.raise_if_any()
    days: list[CalendarDay] = []
    seen: set[dt.date] = set()
    for lineno, row in enumerate(rows[1:], start=2):
        where = f"line {lineno}"
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(HEADER):
            problems.add("row", f"expected {len(HEADER)} columns, got {len(row)}", where)
            continue
        raw_date, kind, name_en, name_zh = (c.strip() for c in row)
        try:
            day = dt.date.fromisoformat(raw_date)
        except ValueError:
            problems.add("date", f"{raw_date!r} is not an ISO date (YYYY-MM-DD)", where)
            continue
        if kind not in DAY_TYPES:
            problems.add("type", f"{kind!r} is not one of {', '.join(DAY_TYPES)}", where)
            continue
        if kind == "workday" and day.weekday() < 5:
            problems.add("type", f"{day} is a weekday; a make-up workday falls on a weekend", where)
        if day in seen:
            problems.add("date", f"{day} is listed twice", where)
        seen.add(day)
        days.append(CalendarDay(day, kind, name_en, name_zh))
    years = {d.day.year for d in days}
    if not days:
        problems.add("date", "the file lists no days")
    elif len(years) > 1:
        problems.add("date", f"a file holds one year's schedule, found {sorted(years)}")
    problems.raise_if_any()
    return years.pop(), days


def read_calendar_file(path: Path) -> tuple[int, list[CalendarDay]]:
    """Read and validate a calendar CSV from disk."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationFailed([Problem("file", f"cannot be read as UTF-8 text ({exc})")], str(path)) from exc
    return parse_calendar_csv(text, str(path))


def bundled_calendar_files() -> list[tuple[str, str]]:
    """``(filename, text)`` of every year shipped in the package."""
    return [(f.name, f.read_text(encoding="utf-8")) for f in calendar_files()]


def bundled_calendar() -> Calendar:
    """The calendar made of the shipped years only."""
    cal = Calendar()
    for name, text in bundled_calendar_files():
        year, days = parse_calendar_csv(text, name)
        cal.years.add(year)
        cal.days.update({d.day: d for d in days})
    return cal


def export_from_chinese_calendar(year: int) -> str:
    """Render ``year`` from the PyPI ``chinese-calendar`` package (official schedules 2004–2026) as CSV.

    Used to build the shipped files; the service itself never imports that package.
    """
    from chinese_calendar import constants  # build-time dependency only

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    rows: list[tuple[dt.date, str, str]] = []
    for day, name in constants.holidays.items():
        if day.year == year:
            rows.append((day, "holiday", str(name)))
    for day, name in constants.workdays.items():
        if day.year == year and day.weekday() >= 5:
            rows.append((day, "workday", str(name)))
    if not rows:
        raise ValueError(f"chinese-calendar has no official schedule for {year}")
    for day, kind, name in sorted(rows):
        writer.writerow([day.isoformat(), kind, name, NAMES_ZH.get(name, "")])
    return out.getvalue()
