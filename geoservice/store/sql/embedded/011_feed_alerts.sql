-- Issue 14 item 3: weather alerts in the change feed, as postgis/013_feed_alerts.sql. An entry is about a site
-- (site_id, feature: the site's resulting public feature) or about an alert (alert_id, feature: the alert's
-- resulting public object, NULL once deleted), never both. SQLite cannot drop a NOT NULL, so the table is rebuilt.
CREATE TABLE change_feed_new (
    seq INTEGER PRIMARY KEY,
    site_id TEXT,
    alert_id INTEGER,
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    feature TEXT,
    CHECK ((site_id IS NULL) <> (alert_id IS NULL))
);
INSERT INTO change_feed_new (seq, site_id, kind, at, feature) SELECT seq, site_id, kind, at, feature FROM change_feed;
DROP TABLE change_feed;
ALTER TABLE change_feed_new RENAME TO change_feed;
