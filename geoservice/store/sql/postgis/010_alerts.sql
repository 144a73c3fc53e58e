-- Issue 14 item 1 (weather alerts and alert hours), as embedded/008_alerts.sql.

-- A site's alert hours: {"hours": <opening_hours>, "types": [alert types], "min_level": <level>}, or NULL.
-- While an alert of one of those types at that level or above covers the site's district, these hours replace
-- the normal ones for the alert's span (geoservice.services.alerts).
ALTER TABLE sites ADD COLUMN alert_hours jsonb;

-- Weather alerts declared by admins. districts is a JSON list of adcodes (at least one).
CREATE TABLE alerts (
    id bigserial PRIMARY KEY,
    type text NOT NULL CHECK (type IN ('cold_wave', 'heat', 'rainstorm', 'gale', 'blizzard')),
    level text NOT NULL CHECK (level IN ('blue', 'yellow', 'orange', 'red')),
    districts text NOT NULL,
    start_at timestamptz NOT NULL,
    end_at timestamptz NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL,
    CHECK (end_at > start_at)
);
CREATE INDEX alerts_end ON alerts (end_at);
