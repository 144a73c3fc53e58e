-- Embedded store schema (SQLite). Times are ISO-8601 text; interval bounds are epoch seconds for fast scans.
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE districts (
    adcode TEXT PRIMARY KEY,
    name_zh TEXT NOT NULL,
    name_en TEXT NOT NULL,
    area_km2 REAL NOT NULL,
    population_2020 INTEGER NOT NULL,
    geom_wkb BLOB NOT NULL
);
CREATE TABLE sites (
    id TEXT PRIMARY KEY,
    source_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('warm_station', 'mother_baby_room', 'worker_home')),
    name_zh TEXT NOT NULL,
    name_en TEXT,
    address TEXT,
    district_adcode TEXT REFERENCES districts (adcode),
    lon REAL NOT NULL,
    lat REAL NOT NULL,
    opening_hours TEXT NOT NULL,
    amenities TEXT NOT NULL DEFAULT '[]',
    amenity_mask INTEGER NOT NULL DEFAULT 0,
    operator TEXT,
    phone TEXT,
    notes TEXT,
    simulated INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    verified_at TEXT,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX sites_kind ON sites (kind);
CREATE INDEX sites_district ON sites (district_adcode);
CREATE TABLE closures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    start_date TEXT NOT NULL,
    end_date TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    CHECK (end_date >= start_date)
);
CREATE INDEX closures_site ON closures (site_id);
CREATE TABLE calendar_years (year INTEGER PRIMARY KEY, source TEXT NOT NULL, loaded_at TEXT NOT NULL);
CREATE TABLE calendar_days (
    day TEXT PRIMARY KEY,
    type TEXT NOT NULL CHECK (type IN ('holiday', 'workday')),
    name_en TEXT NOT NULL DEFAULT '',
    name_zh TEXT NOT NULL DEFAULT ''
);
CREATE TABLE site_open_intervals (
    site_id TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL
);
CREATE INDEX site_open_intervals_site ON site_open_intervals (site_id);
