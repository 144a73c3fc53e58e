-- Issue 15 part 1: nearest-open walks one day's open intervals, not the whole window's. Each site has one
-- interval per day it opens (~15 in the default window), all at the same place, so the KNN index of migration
-- 003 handed the scan ~10 intervals closed at t for every one open at t (the GiST key of `during` at inner
-- pages spans the whole window). The table is now partitioned by the Beijing day an interval overlaps: an
-- interval over several days (a night shift, 24/7) has one row in each of their partitions, and a query for
-- "open at t" reads the partition of t's day only (bench/results.md, "nearest-open at 200k").
--
-- Days are folded onto OPEN_DAY_SLOTS = 32 partitions (day number mod 32) so the partitions are made once,
-- here, and never by a refresh: the default window (1 + 14 days) never puts two days in one slot; a window
-- longer than 32 days shares slots between days, which stays correct (`during @> t` decides) and only slower.

-- The Beijing (UTC+8) day number of t (days since 1970-01-01 there). Written with immutable operators only
-- (extract from a timestamptz is merely stable), so the planner inlines it and folds a query's slot into a
-- constant that prunes partitions at plan time.
CREATE FUNCTION open_day(t timestamptz) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN floor((extract(epoch FROM t - '1970-01-01 00:00:00+00'::timestamptz) + 28800) / 86400)::bigint;

-- The partition of t's day.
CREATE FUNCTION open_day_slot(t timestamptz) RETURNS smallint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN mod(open_day(t), 32)::smallint;

-- The partitions of every day an interval [lower, upper) overlaps, each once.
CREATE FUNCTION open_day_slots(during tstzrange) RETURNS SETOF smallint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT DISTINCT mod(d, 32)::smallint
    FROM generate_series(open_day(lower(during)), open_day(upper(during) - interval '1 microsecond')) AS d;
END;

ALTER TABLE site_open_intervals RENAME TO site_open_intervals_unpartitioned;

CREATE TABLE site_open_intervals (
    site_id text NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    during tstzrange NOT NULL,
    kind text NOT NULL,
    amenities text[] NOT NULL,
    geog geography(Point, 4326) NOT NULL,
    day_slot smallint NOT NULL
) PARTITION BY LIST (day_slot);

DO $$
BEGIN
    FOR slot IN 0..31 LOOP
        EXECUTE format('CREATE TABLE site_open_intervals_%s PARTITION OF site_open_intervals FOR VALUES IN (%s)',
                       lpad(slot::text, 2, '0'), slot);
    END LOOP;
END
$$;

INSERT INTO site_open_intervals (site_id, during, kind, amenities, geog, day_slot)
SELECT i.site_id, i.during, i.kind, i.amenities, i.geog, slot
FROM site_open_intervals_unpartitioned i, open_day_slots(i.during) AS slot;

DROP TABLE site_open_intervals_unpartitioned;

-- As migration 003: the copies of kind, amenities and location come from `sites`, whatever code path writes.
CREATE TRIGGER site_open_intervals_fill BEFORE INSERT ON site_open_intervals
    FOR EACH ROW EXECUTE FUNCTION site_open_intervals_fill();

CREATE INDEX site_open_intervals_site ON site_open_intervals (site_id);
CREATE INDEX site_open_intervals_knn ON site_open_intervals USING gist (kind, during, geog);
