-- Issue 12 (safety), as postgis/005_safety.sql: reloads keep operators' edits, unevaluable hours are flagged.

-- Fields an operator changed since the last load (JSON {field: {"by": actor, "at": time}}).
ALTER TABLE sites ADD COLUMN edited_fields TEXT NOT NULL DEFAULT '{}';
-- Why the hours could not be evaluated at the last materialisation (the site is skipped, i.e. closed).
ALTER TABLE sites ADD COLUMN hours_problem TEXT;

-- Backfill from the audit trail: a field whose latest change was not made by a load was edited since.
WITH latest AS (
    SELECT c.site_id, j.key AS field, c.actor, c.at, c.action,
           row_number() OVER (PARTITION BY c.site_id, j.key ORDER BY c.id DESC) AS rn
    FROM site_changes c, json_each(c.changes) j
    WHERE j.key IN ('opening_hours', 'amenities', 'phone', 'notes', 'name_zh', 'name_en')
)
UPDATE sites SET edited_fields = coalesce((
    SELECT json_group_object(field, json_object('by', actor, 'at', at)) FROM latest
    WHERE latest.site_id = sites.id AND rn = 1 AND action NOT IN ('load', 'load-overwrite')
    HAVING count(*) > 0), '{}');
