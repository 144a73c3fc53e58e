"""The hours engine against China's calendar: weekday rules, PH, make-up working days, closures."""
from __future__ import annotations

import datetime as dt

import pytest

from geoservice.calendar import Calendar, CalendarDay, bundled_calendar, parse_calendar_csv
from geoservice.hours import TZ, HoursEngine, HoursSyntaxError, validate_hours
from geoservice.model import Closure
from geoservice.validation import ValidationFailed


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


@pytest.fixture(scope="module")
def engine() -> HoursEngine:
    return HoursEngine(bundled_calendar())


def test_tuesday_to_sunday_site_is_closed_on_monday_and_open_tuesday_morning(engine: HoursEngine) -> None:
    hours = "Tu-Su 09:00-20:00"
    monday = engine.state(hours, at("2026-11-23T10:00"))
    assert not monday.is_open
    assert monday.next_open == at("2026-11-24T09:00")
    tuesday = engine.state(hours, at("2026-11-24T10:00"))
    assert tuesday.is_open and tuesday.open_until == at("2026-11-24T20:00")


def test_ph_off_office_closed_on_national_day_open_on_make_up_sunday(engine: HoursEngine) -> None:
    hours = "Mo-Fr 08:30-17:30; PH off"
    assert not engine.is_open(hours, at("2026-10-01T10:00"))  # Thursday, National Day
    assert not engine.is_open(hours, at("2026-10-02T10:00"))  # Friday, still in the Golden Week
    make_up = at("2026-09-20T10:00")
    assert make_up.weekday() == 6  # a Sunday that the State Council made a working day
    state = engine.state(hours, make_up)
    assert state.is_open and state.open_until == at("2026-09-20T17:30")
    assert not engine.is_open(hours, at("2026-09-13T10:00"))  # an ordinary Sunday stays closed


def test_holiday_not_mentioned_keeps_weekday_hours(engine: HoursEngine) -> None:
    assert engine.is_open("Mo-Fr 08:30-17:30", at("2026-10-02T10:00"))


def test_ph_with_own_hours(engine: HoursEngine) -> None:
    hours = "Mo-Su 08:00-22:00; PH 10:00-16:00"
    assert not engine.is_open(hours, at("2026-10-03T09:00"))
    state = engine.state(hours, at("2026-10-03T11:00"))
    assert state.open_until == at("2026-10-03T16:00")
    assert engine.is_open(hours, at("2026-10-08T09:00"))


def test_make_up_day_keeps_a_shops_weekend_hours(engine: HoursEngine) -> None:
    assert engine.is_open("Tu-Su 09:00-20:00", at("2026-09-20T19:00"))
    assert engine.is_open("Sa,Su 10:00-18:00", at("2026-10-10T11:00"))  # make-up Saturday


def test_closure_overrides_weekly_rules_whole_days_inclusive(engine: HoursEngine) -> None:
    closure = [Closure("s", dt.date(2026, 11, 24), dt.date(2026, 11, 25), "repairs")]
    assert not engine.is_open("24/7", at("2026-11-24T00:30"), closure)
    state = engine.state("24/7", at("2026-11-25T23:59"), closure)
    assert not state.is_open and state.next_open == at("2026-11-26T00:00")
    assert engine.is_open("24/7", at("2026-11-23T23:59"), closure)


def test_seasonal_rules(engine: HoursEngine) -> None:
    hours = "Nov-Mar Mo-Fr 07:00-19:00; Apr-Oct Mo-Fr 08:00-18:00; PH off"
    assert engine.is_open(hours, at("2026-11-23T07:30"))
    assert not engine.is_open(hours, at("2026-10-26T07:30"))
    assert engine.is_open(hours, at("2026-10-26T08:30"))


def test_overnight_hours_span_midnight(engine: HoursEngine) -> None:
    state = engine.state("Mo-Sa 18:00-02:00", at("2026-11-24T01:00"))
    assert state.is_open and state.open_until == at("2026-11-24T02:00")


def test_open_24_7_has_no_closing_time(engine: HoursEngine) -> None:
    state = engine.state("24/7", at("2026-11-23T03:00"))
    assert state.is_open and state.open_until is None and state.next_open is None


def test_times_in_other_zones_are_converted_to_beijing(engine: HoursEngine) -> None:
    utc = dt.datetime(2026, 11, 24, 1, 30, tzinfo=dt.UTC)  # 09:30 in Beijing
    assert engine.is_open("Tu-Su 09:00-20:00", utc)


def test_year_without_calendar_is_reported_not_guessed(engine: HoursEngine) -> None:
    cal = engine.calendar
    assert cal.covers(2026) and not cal.covers(2027)
    assert cal.missing_years(dt.date(2026, 12, 30), dt.date(2027, 1, 2)) == [2027]
    # without the 2027 schedule, 1 Jan 2027 is evaluated by its weekday only
    assert engine.is_open("Mo-Fr 08:30-17:30; PH off", at("2027-01-01T10:00"))


def test_loading_a_new_year_changes_answers_without_code() -> None:
    text = "date,type,name_en,name_zh\n2027-01-01,holiday,New Year's Day,元旦\n"
    year, days = parse_calendar_csv(text)
    cal = bundled_calendar()
    cal.years.add(year)
    cal.days.update({d.day: d for d in days})
    assert not HoursEngine(cal).is_open("Mo-Fr 08:30-17:30; PH off", at("2027-01-01T10:00"))


def test_bad_calendar_file_names_every_line() -> None:
    text = ("date,type,name_en,name_zh\n2027-13-01,holiday,x,y\n2027-01-05,workday,x,y\n"
            "2027-01-01,party,x,y\n")
    with pytest.raises(ValidationFailed) as err:
        parse_calendar_csv(text, "cn-2027.csv")
    problems = err.value.lines()
    assert any(p.startswith("cn-2027.csv:line 2: date:") for p in problems)
    assert any(p.startswith("cn-2027.csv:line 3: type:") and "weekday" in p for p in problems)
    assert any(p.startswith("cn-2027.csv:line 4: type:") for p in problems)


def test_shipped_calendar_matches_the_published_2026_schedule() -> None:
    cal = bundled_calendar()
    assert set(range(2019, 2027)) <= cal.years
    golden_week = [cal.day_type(dt.date(2026, 10, d)) for d in range(1, 8)]
    assert golden_week == ["holiday"] * 7
    assert cal.day_type(dt.date(2026, 9, 20)) == "workday"
    assert cal.day_type(dt.date(2026, 10, 10)) == "workday"
    assert cal.day_type(dt.date(2026, 10, 8)) == "normal"


@pytest.mark.parametrize("bad, column", [("Mo-Fx 09:00-18:00", 4), ("Mo-Fr 09:00-", None), ("", None)])
def test_invalid_hours_say_where_and_what(bad: str, column: int | None) -> None:
    with pytest.raises(HoursSyntaxError) as err:
        validate_hours(bad)
    assert err.value.expected
    if column is not None:
        assert err.value.column == column


def test_empty_calendar_means_weekday_rules_only() -> None:
    engine = HoursEngine(Calendar())
    assert engine.is_open("Mo-Fr 08:30-17:30; PH off", at("2026-10-01T10:00"))


# ---- holiday selectors the syntax allows (issue 12, item 2) ---------------------------------------------
def _library_holidays(country: str, start: dt.date, end: dt.date) -> list[dt.date]:
    """The public holidays the opening_hours library itself knows for ``country`` (its own calendar)."""
    import opening_hours as ohlib

    lib = ohlib.OpeningHours("PH 00:00-24:00", country=country)
    t0, t1 = dt.datetime.combine(start, dt.time()), dt.datetime.combine(end, dt.time())
    days: set[dt.date] = set()
    for a, b, state, _ in lib.intervals(t0, t1):
        if state == ohlib.State.OPEN:
            d = a.date()
            while dt.datetime.combine(d, dt.time()) < b:
                days.add(d)
                d += dt.timedelta(days=1)
    return sorted(days)


ORACLE_EXPRESSIONS = [
    "Mo-Fr 08:00-18:00; PH off",
    "Mo-Fr 08:00-18:00; PH +1 day off",
    "Mo-Fr 08:00-18:00; PH -1 day 10:00-12:00",
    "Mo-Su 09:00-21:00; PH -2 days 09:00-23:00; PH off",
    "Mo-Sa 07:00-19:00; PH,PH +1 day 10:00-14:00",
    "Sa,PH 10:00-16:00",
    "PH +1 day,Su 10:00-16:00",
    "24/7; PH +3 days off",
    "Tu-Su 09:00-20:00; PH 10:00-16:00; PH -1 day 09:00-22:00",
]


@pytest.mark.parametrize("expression", ORACLE_EXPRESSIONS)
def test_holiday_selectors_match_the_librarys_own_evaluation(expression: str) -> None:
    """Oracle: for a country whose holidays the library knows (France), our calendar-substitution evaluation with
    the same holidays loaded as data gives exactly the library's native answer, day offsets included."""
    import opening_hours as ohlib

    start, end = dt.date(2025, 12, 1), dt.date(2027, 2, 1)
    holidays = _library_holidays("FR", start, end)
    assert len(holidays) >= 10  # a year of French public holidays
    cal = Calendar({2025, 2026, 2027}, {d: CalendarDay(d, "holiday", "fr") for d in holidays})
    ours = HoursEngine(cal).intervals(expression, at("2026-01-01T00:00"), at("2027-01-01T00:00"))
    lib = ohlib.OpeningHours(expression, country="FR")
    theirs = [(a.replace(tzinfo=TZ), b.replace(tzinfo=TZ))
              for a, b, state, _ in lib.intervals(dt.datetime(2026, 1, 1), dt.datetime(2027, 1, 1))
              if state == ohlib.State.OPEN]
    merged: list[tuple[dt.datetime, dt.datetime]] = []
    for a, b in theirs:  # the library splits intervals at rule boundaries; ours are merged
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    assert ours == merged


def test_day_after_a_holiday_closes_with_chinas_calendar(engine: HoursEngine) -> None:
    """The expression of issue 12: evaluable, and right — closed on the day after each Golden Week day off."""
    hours = "Mo-Fr 08:00-18:00; PH +1 day off"
    assert validate_hours(hours) == hours
    assert engine.is_open(hours, at("2026-10-01T10:00"))  # National Day itself: PH alone is not mentioned
    assert not engine.is_open(hours, at("2026-10-08T10:00"))  # Thursday after the last day off (7 Oct)
    assert engine.is_open(hours, at("2026-10-09T10:00"))
    assert engine.is_open(hours, at("2026-09-30T10:00"))


@pytest.mark.parametrize("bad, construct", [
    ("Mo-Fr 08:00-18:00; SH off", "SH"),
    ("SH 10:00-12:00", "SH"),
    ("PH Mo-Fr 10:00-12:00", "PH <weekday>"),
    ("Mo-Su 00:00-00:10,00:20-00:30,00:40-00:50,01:00-01:10,01:20-01:30,01:40-01:50,02:00-02:10,02:20-02:30,"
     "02:40-02:50,03:00-03:10,03:20-03:30,03:40-03:50,04:00-04:10,04:20-04:30,04:40-04:50,05:00-05:10,"
     "05:20-05:30,05:40-05:50,06:00-06:10,06:20-06:30,06:40-06:50,07:00-07:10,07:20-07:30,07:40-07:50,"
     "08:00-08:10", "intervals per day"),
])
def test_constructs_the_calendar_cannot_answer_are_refused_by_name(bad: str, construct: str) -> None:
    with pytest.raises(HoursSyntaxError) as err:
        validate_hours(bad)
    assert err.value.construct == construct
    assert err.value.expected


def test_sun_events_are_computed_for_beijing(engine: HoursEngine) -> None:
    """sunrise-sunset opens at Beijing's real sunrise (07:3x on the winter solstice), not a fixed 07:00."""
    spans = engine.intervals("sunrise-sunset", at("2026-12-21T00:00"), at("2026-12-22T00:00"))
    assert len(spans) == 1
    (a, b), = spans
    assert dt.time(7, 25) <= a.time() <= dt.time(7, 40)
    assert dt.time(16, 45) <= b.time() <= dt.time(17, 0)


def test_an_expression_the_library_cannot_evaluate_is_closed_with_a_problem_not_an_error(
        engine: HoursEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    from geoservice import hours as H

    def broken(*args: object, **kwargs: object) -> object:
        raise H.HoursEvaluationError("Mo-Fr 08:00-18:00", RuntimeError("panic"))

    monkeypatch.setattr(H, "_open_intervals", broken)
    fresh = HoursEngine(engine.calendar)
    state = fresh.state("Mo-Fr 08:00-18:00", at("2026-11-24T10:00"))
    assert not state.is_open and state.problem
    with pytest.raises(H.HoursEvaluationError):
        fresh.intervals("Mo-Fr 08:00-18:00", at("2026-11-24T00:00"), at("2026-11-25T00:00"))
