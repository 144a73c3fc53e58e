"""Value generators for the formats the OpenAPI documents name and JSON Schema cannot spell out.

Loaded by schemathesis (``SCHEMATHESIS_HOOKS``) in the fuzz test. Each strategy draws values the service's own
validator accepts, built from parts, so "schema-valid data is accepted" is tested on real shapes rather than on
a fixed list. The negative side (anything else is refused) is the same check's other half.
"""
from __future__ import annotations

import datetime as dt

import schemathesis
from hypothesis import strategies as st

from geoservice.hours import now_local

DAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")


@st.composite
def _hours_rule(draw: st.DrawFn) -> str:
    first = draw(st.integers(0, 6))
    last = draw(st.integers(first, 6))
    days = DAYS[first] if first == last else f"{DAYS[first]}-{DAYS[last]}"
    spans = []
    start = draw(st.integers(0, 20 * 60))
    for _ in range(draw(st.integers(1, 2))):
        end = draw(st.integers(start + 30, min(start + 14 * 60, 24 * 60)))
        spans.append(f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}")
        start = end + 30
        if start > 23 * 60:
            break
    return f"{days} {','.join(spans)}"


@st.composite
def opening_hours(draw: st.DrawFn) -> str:
    """OSM opening hours the engine evaluates: 24/7, or weekday rules with times, holidays off or shorter."""
    if draw(st.booleans()) and draw(st.booleans()):
        return "24/7"
    rules = [draw(_hours_rule()) for _ in range(draw(st.integers(1, 3)))]
    holiday = draw(st.sampled_from(["", "; PH off", "; PH 09:00-12:00"]))
    return "; ".join(rules) + holiday


@st.composite
def phone_cn(draw: st.DrawFn) -> str:
    """A Beijing landline or a Chinese mobile number, written the ways operators write them."""
    if draw(st.booleans()):
        local = draw(st.integers(2000_0000, 8999_9999))
        text = draw(st.sampled_from(["010-{a} {b}", "010 {a}{b}", "(010) {a}-{b}", "+86 10 {a} {b}"])).format(
            a=str(local)[:4], b=str(local)[4:])
        if draw(st.booleans()):
            text += draw(st.sampled_from([" 转 {e}", " ext. {e}", "#{e}"])).format(e=draw(st.integers(1, 9999)))
        return text
    prefix = draw(st.sampled_from(["130", "138", "139", "150", "158", "186", "188", "199"]))
    rest = f"{draw(st.integers(0, 9999_9999)):08d}"
    return draw(st.sampled_from(["{p}{r}", "{p} {a} {b}", "+86 {p} {a} {b}"])).format(
        p=prefix, r=rest, a=rest[:4], b=rest[4:])


@st.composite
def recent_date_time(draw: st.DrawFn) -> str:
    """An instant within the last week (not in the future), with or without an offset."""
    when = now_local() - dt.timedelta(minutes=draw(st.integers(1, 6 * 24 * 60)))
    text = when.replace(microsecond=0).isoformat()
    return text if draw(st.booleans()) else text[:19]


schemathesis.openapi.format("opening-hours", opening_hours())
schemathesis.openapi.format("phone-cn", phone_cn())
schemathesis.openapi.format("recent-date-time", recent_date_time())
