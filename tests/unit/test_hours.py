"""The hours engine against China's calendar: weekday rules, PH, make-up working days, closures."""
from __future__ import annotations

import datetime as dt

import pytest

from geoservice.calendar import Calendar, CalendarFileError, bundled_calendar, parse_calendar_csv
from geoservice.hours import TZ, HoursEngine, HoursSyntaxError, validate_hours
from geoservice.model import Closure


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
    with pytest.raises(CalendarFileError) as err:
        parse_calendar_csv(text, "cn-2027.csv")
    problems = err.value.problems
    assert any(p.startswith("cn-2027.csv:2: date:") for p in problems)
    assert any(p.startswith("cn-2027.csv:3: type:") and "weekday" in p for p in problems)
    assert any(p.startswith("cn-2027.csv:4: type:") for p in problems)


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
