-- PostGIS schema. Locations are geography(Point, 4326) so distances are metres on the ellipsoid.
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);

CREATE TABLE districts (
    adcode text PRIMARY KEY,
    name_zh text NOT NULL,
    name_en text NOT NULL,
    area_km2 double precision NOT NULL,
    population_2020 integer NOT NULL,
    geom geometry(MultiPolygon, 4326) NOT NULL
);
CREATE INDEX districts_geom ON districts USING gist (geom);

CREATE TABLE sites (
    id text PRIMARY KEY,
    source_id text NOT NULL UNIQUE,
    kind text NOT NULL CHECK (kind IN ('warm_station', 'mother_baby_room', 'worker_home')),
    name_zh text NOT NULL,
    name_en text,
    address text,
    district_adcode text REFERENCES districts (adcode),
    geog geography(Point, 4326) NOT NULL,
    opening_hours text NOT NULL,
    amenities text[] NOT NULL DEFAULT '{}',
    operator text,
    phone text,
    notes text,
    simulated boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now(),
    verified_at timestamptz,
    version integer NOT NULL DEFAULT 1
);
-- The KNN operator (<->) and ST_DWithin on geography both use this index.
CREATE INDEX sites_geog ON sites USING gist (geog);
CREATE INDEX sites_kind ON sites (kind);
CREATE INDEX sites_district ON sites (district_adcode);

CREATE TABLE closures (
    id bigserial PRIMARY KEY,
    site_id text NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    start_date date NOT NULL,
    end_date date NOT NULL,
    reason text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (end_date >= start_date)
);
CREATE INDEX closures_site ON closures (site_id);

CREATE TABLE calendar_years (year integer PRIMARY KEY, source text NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE calendar_days (
    day date PRIMARY KEY,
    type text NOT NULL CHECK (type IN ('holiday', 'workday')),
    name_en text NOT NULL DEFAULT '',
    name_zh text NOT NULL DEFAULT ''
);

-- Open intervals materialised from the hours engine for a rolling window (see hours.py / store/base.py).
CREATE TABLE site_open_intervals (
    site_id text NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    during tstzrange NOT NULL
);
-- Probed once per KNN candidate: "does this site have an interval containing t?" A site has ~15-30 rows
-- in the window, so a btree on site_id and a recheck of `during` is cheaper to keep than a GiST on both.
CREATE INDEX site_open_intervals_site ON site_open_intervals (site_id);
