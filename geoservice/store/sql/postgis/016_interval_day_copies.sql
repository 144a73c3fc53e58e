-- Issue 15: each day's copy of an open interval holds only what a query on that day can look at.
--
-- Migration 014 put an interval in the partition of every Beijing day it overlaps, each copy the whole interval.
-- A query for day D asks whether a copy contains t (t in D) or [t, t + the walk] (walks are at most 3 hours,
-- geoservice.api.public), so only D and the day after it matter to it: a copy clipped to [start of D, start of
-- D + 2 days) answers every such query exactly as the whole interval does. Whole copies changed whenever the
-- interval's ends moved anywhere, and the ends of an interval that runs to the window's edges (a 24/7 site has one
-- interval over the whole window) move each night as the window slides: a refresh a day later rewrote 811k of
-- 2.7 M rows at 200k sites, most of them such copies (bench/results_refresh.md). Clipped, a copy changes only
-- when the hours of its own two days do.
--
-- Existing copies stay as they are (whole copies answer the same); the next refresh rewrites them clipped.

-- The first instant of Beijing day number d (open_day of migration 014 turned back).
CREATE FUNCTION open_day_start(d bigint) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN '1970-01-01 00:00:00+00'::timestamptz + make_interval(secs => d * 86400.0 - 28800);

-- The Beijing days an interval [lower, upper) overlaps, by number.
CREATE FUNCTION open_days(during tstzrange) RETURNS SETOF bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT generate_series(open_day(lower(during)), open_day(upper(during) - interval '1 microsecond'));
END;

-- The part of an interval day d's partition keeps: what lies in d and the day after.
CREATE FUNCTION open_day_copy(during tstzrange, d bigint) RETURNS tstzrange
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN during * tstzrange(open_day_start(d), open_day_start(d + 2), '[)');
