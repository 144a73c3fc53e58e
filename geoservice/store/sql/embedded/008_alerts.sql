-- Issue 14 item 1 (weather alerts and alert hours), as postgis/010_alerts.sql. Times are ISO-8601 text in UTC.

-- A site's alert hours: {"hours": <opening_hours>, "types": [alert types], "min_level": <level>} as JSON, or
-- NULL. While an alert of one of those types at that level or above covers the site's district, these hours
-- replace the normal ones for the alert's span (geoservice.services.alerts).
ALTER TABLE sites ADD COLUMN alert_hours TEXT;

-- Weather alerts declared by admins. districts is a JSON list of adcodes (at least one).
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL CHECK (type IN ('cold_wave', 'heat', 'rainstorm', 'gale', 'blizzard')),
    level TEXT NOT NULL CHECK (level IN ('blue', 'yellow', 'orange', 'red')),
    districts TEXT NOT NULL,
    start_at TEXT NOT NULL,
    end_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    CHECK (end_at > start_at)
);
CREATE INDEX alerts_end ON alerts (end_at);
