-- Issue 15 part 1: nearest-open without planning per query, on a plan that cannot turn bad.
--
-- Planning the KNN statement took about half of each query (~0.4-0.6 ms of ~1.2-1.6 ms at 200k sites, bench/
-- results.md). A generic plan is made once per connection and reused, but PostgreSQL chooses it from default
-- selectivities, and a forced generic plan was once seen to switch to a bitmap scan and a sort 20x slower after a
-- plain VACUUM ANALYZE. Here the candidates come from PL/pgSQL functions whose statement is planned once per
-- session (and again after each ANALYZE or DDL) with sorting disabled: the exact re-ranking sorts in every plan,
-- and every alternative to walking the KNN index in distance order needs a second sort, so the disabled-sort
-- penalty makes the index walk the cheapest plan whatever the statistics say. JIT is off in them: that penalty
-- would otherwise put every plan past jit_above_cost and compile each query.
--
-- Four functions, nearest_open_{one_kind|kinds}_{within|anywhere}, made from one text below: a single kind is an
-- equality inside the GiST scan (several kinds a filter), and a radius is an index condition only when asked
-- (a radius "past the antipodes" cost ~0.1 ms per query in box tests and distance checks). The arrival check is
-- per candidate, skipped when not asked. The answer: the `p_k` nearest of the `p_cand` KNN candidates by exact
-- (ellipsoidal) distance, with the farthest KNN (sphere) distance examined and the number of candidates, so the
-- caller can prove no unexamined site is nearer.
DO $migration$
DECLARE
    variant record;
BEGIN
    FOR variant IN
        SELECT k.name || '_' || r.name AS name, k.condition AS kind_condition, r.condition AS radius_condition
        FROM (VALUES ('one_kind', 'i.kind = p_kinds[1]'), ('kinds', 'i.kind = ANY (p_kinds)'))
                 AS k (name, condition),
             (VALUES ('within', 'ST_DWithin(i.geog, here, p_radius)'), ('anywhere', 'TRUE'))
                 AS r (name, condition)
    LOOP
        EXECUTE format($create$
CREATE FUNCTION %I(
    p_lon float8, p_lat float8, p_at timestamptz, p_kinds text[], p_amenities text[], p_radius float8,
    p_arrival boolean, p_detour float8, p_speed float8, p_cand integer, p_k integer)
RETURNS TABLE (id text, distance_m float8, farthest_knn_m float8, n_candidates bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE ROWS 10
SET plan_cache_mode = force_generic_plan
SET enable_sort = off
SET jit = off
AS $body$
DECLARE
    here geography := ST_SetSRID(ST_MakePoint(p_lon, p_lat), 4326)::geography;
    slot smallint := open_day_slot(p_at);
BEGIN
    RETURN QUERY
    WITH knn AS (
        SELECT i.site_id, i.geog, i.geog <-> here AS knn_m
        FROM site_open_intervals i
        -- The partition of p_at's day (migration 014, pruned as the plan starts), then its intervals open then.
        WHERE i.day_slot = slot AND i.during @> p_at AND %s
          AND i.amenities @> p_amenities AND %s
          AND (NOT p_arrival OR i.during @> tstzrange(
                  p_at, p_at + make_interval(secs => ST_Distance(i.geog, here) * p_detour / p_speed), '[]'))
          -- An operator's "closed now" in force at p_at: a primary-key probe per candidate.
          AND NOT EXISTS (SELECT 1 FROM site_live_status l
                          WHERE l.site_id = i.site_id AND l.state = 'closed_now'
                            AND l.posted_at <= p_at AND l.expires_at > p_at)
        ORDER BY i.geog <-> here
        LIMIT p_cand
    ), exact AS (
        SELECT knn.site_id, ST_Distance(knn.geog, here) AS metres,
               max(knn.knn_m) OVER () AS farthest, count(*) OVER () AS examined
        FROM knn
    )
    SELECT e.site_id, e.metres, e.farthest, e.examined
    FROM exact e
    ORDER BY e.metres, e.site_id
    LIMIT p_k;
END
$body$
$create$, 'nearest_open_' || variant.name, variant.kind_condition, variant.radius_condition);
    END LOOP;
END
$migration$;
