"""The endpoint declarations: what a parameter's schema promises is exactly what its parser accepts."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geoservice.api.spec import (
    DATE_PATTERN,
    TIME_PATTERN,
    BBox,
    Boolean,
    Choices,
    Integer,
    Number,
    parse_date_text,
    parse_time_text,
)
from geoservice.errors import InvalidInput, Unprocessable
from geoservice.hours import TZ

SHANGHAI = TZ


@settings(max_examples=400, deadline=None)
@given(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 12, 31, 23, 59, 59)),
       st.sampled_from(["T", " "]), st.sampled_from(["", "Z", "+08:00", "-05:30", "+0800"]),
       st.booleans())
def test_every_valid_time_matches_the_pattern_and_parses_to_the_same_instant(
        when: dt.datetime, sep: str, offset: str, seconds: bool) -> None:
    text = when.strftime(f"%Y-%m-%d{sep}%H:%M" + (":%S" if seconds else "")) + offset
    assert re.match(TIME_PATTERN, text)
    parsed = parse_time_text(text)
    assert parsed is not None and parsed.tzinfo is not None
    naive = when.replace(microsecond=0, second=when.second if seconds else 0)
    expected = naive.replace(tzinfo=SHANGHAI) if not offset else dt.datetime.fromisoformat(
        naive.isoformat() + ("+00:00" if offset == "Z" else offset[:3] + ":" + offset[-2:]))
    assert parsed == expected


@pytest.mark.parametrize("text", ["2026-02-29T10:00", "2100-02-29T00:00", "2026-04-31T10:00", "1999-12-31T23:00",
                                  "2101-01-01T00:00", "2026-11-23T24:00", "2026-11-23", "20261123T1000",
                                  "2026-11-23T10:00+15:00", " now", "2026-11-23T10:00:00.1234567"])
def test_times_outside_the_pattern_are_refused_by_both(text: str) -> None:
    assert not re.match(TIME_PATTERN, text)
    with pytest.raises(ValueError):
        parse_time_text(text)


@pytest.mark.parametrize("text, ok", [("2028-02-29", True), ("2027-02-29", False), ("2026-12-31", True),
                                      ("2026-06-31", False), ("2000-02-29", True), ("2100-02-28", True)])
def test_dates_pattern_and_parser_agree(text: str, ok: bool) -> None:
    assert bool(re.match(DATE_PATTERN, text)) is ok
    if ok:
        assert parse_date_text(text) == dt.date.fromisoformat(text)
    else:
        with pytest.raises(ValueError):
            parse_date_text(text)


def test_numbers_integers_and_booleans_say_400_unreadable_422_out_of_range() -> None:
    lat = Number("lat", "Latitude", required=True, lo=-90, hi=90)
    assert lat.parse(["39.9"]) == 39.9
    with pytest.raises(InvalidInput):
        lat.parse(["north"])
    with pytest.raises(InvalidInput):
        lat.parse(["nan"])
    with pytest.raises(Unprocessable):
        lat.parse(["91"])
    with pytest.raises(InvalidInput):
        lat.parse([])  # required
    with pytest.raises(InvalidInput):
        lat.parse(["1", "2"])  # repeated
    limit = Integer("limit", "Page", lo=1, hi=50, fallback=5)
    assert limit.parse([]) == 5 and limit.parse(["50"]) == 50
    with pytest.raises(InvalidInput):
        limit.parse(["5.0"])
    with pytest.raises(Unprocessable):
        limit.parse(["51"])
    with pytest.raises(InvalidInput):
        limit.parse([""])  # empty: omit it instead
    flag = Boolean("include_closed", "…")
    assert flag.parse(["true"]) is True and flag.parse([]) is False
    with pytest.raises(InvalidInput):
        flag.parse(["yes"])  # the schema says boolean: true or false only


def test_choices_take_repeats_and_commas_as_their_pattern_says() -> None:
    kind = Choices("kind", "…", values=("warm_station", "worker_home"))
    pattern = kind.schema()["items"]["pattern"]
    assert re.match(pattern, "warm_station,worker_home") and not re.match(pattern, "warm_station,")
    assert kind.parse(["warm_station,worker_home", "warm_station"]) == ("warm_station", "worker_home")
    with pytest.raises(Unprocessable):
        kind.parse(["sauna"])


def test_bbox_reads_ogc_boxes_including_the_antimeridian() -> None:
    box = BBox("bbox", "…", heights=True)
    assert re.match(box.schema()["pattern"], "116,39,0,117,40,100")
    assert box.parse(["116,39,117,40"]) == (116, 39, 117, 40)
    assert box.parse(["116,39,0,117,40,100"]) == (116, 39, 117, 40)
    assert box.parse(["170,-10,-170,10"]) == (170, -10, -170, 10)  # crosses the antimeridian: valid
    for bad in ("116,39,117", "116,39,190,40", "116,39,117,1e1", "116, 39,117,40"):
        with pytest.raises(InvalidInput):  # the pattern is the parser: anything it does not match is a 400
            box.parse([bad])
        assert not re.match(box.schema()["pattern"], bad)
