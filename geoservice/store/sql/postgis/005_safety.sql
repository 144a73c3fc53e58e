-- Issue 12 (safety): reloads keep operators' edits, unevaluable hours are flagged, account names in any script.

-- Fields an operator changed since the last load of the site file: {field: {"by": actor, "at": time}}.
-- A reload keeps them and reports a conflict (geoservice/store/reload.py).
ALTER TABLE sites ADD COLUMN edited_fields jsonb NOT NULL DEFAULT '{}'::jsonb;
-- Why the hours could not be evaluated at the last materialisation (the site is skipped, i.e. closed).
ALTER TABLE sites ADD COLUMN hours_problem text;

-- Backfill the marks from the audit trail: a field whose latest change was not made by a load was edited
-- by an operator after the last load, so an upgrade does not let the next reload revert it.
UPDATE sites s SET edited_fields = e.fields
FROM (
    SELECT site_id, jsonb_object_agg(field, jsonb_build_object('by', actor, 'at', at)) AS fields
    FROM (
        SELECT DISTINCT ON (c.site_id, f.key) c.site_id, f.key AS field, c.actor, c.at, c.action
        FROM site_changes c, jsonb_object_keys(c.changes) AS f(key)
        WHERE f.key IN ('opening_hours', 'amenities', 'phone', 'notes', 'name_zh', 'name_en')
        ORDER BY c.site_id, f.key, c.id DESC
    ) latest
    WHERE action NOT IN ('load', 'load-overwrite')
    GROUP BY site_id
) e
WHERE s.id = e.site_id;

-- Account names are shown to people and may be Chinese (某银行东城支行): any script, no control characters.
ALTER TABLE operators DROP CONSTRAINT operators_name_check;
ALTER TABLE operators ADD CONSTRAINT operators_name_check
    CHECK (char_length(name) BETWEEN 1 AND 64 AND name !~ '[[:cntrl:]]');
