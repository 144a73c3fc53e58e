-- Issue 14 item 3: weather alerts in the change feed, as embedded/011_feed_alerts.sql. An entry is about a site
-- (site_id, feature: the site's resulting public feature) or about an alert (alert_id, feature: the alert's
-- resulting public object, NULL once deleted), never both.
ALTER TABLE change_feed ALTER COLUMN site_id DROP NOT NULL;
ALTER TABLE change_feed ADD COLUMN alert_id bigint;
ALTER TABLE change_feed ADD CONSTRAINT change_feed_one_subject CHECK ((site_id IS NULL) <> (alert_id IS NULL));
