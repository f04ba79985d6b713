-- The planner's row estimate of a read, taken inside the read's own statement and as its caller.
--
-- auth.estimate_rows(sql, params) runs EXPLAIN (FORMAT JSON) on the gateway's query of a read's
-- filtered rows and returns the top node's "Plan Rows". The query names its values $1[1], $1[2],
-- ... and they arrive as the text[] params, bound with EXECUTE ... USING exactly as
-- system.gateway_run binds them, so the planner sees the real values (and their statistics).
--
-- It runs as the caller: not SECURITY DEFINER, called after gateway_run has switched the role,
-- so the EXPLAIN is planned with the caller's privileges and RLS policies, and a policy calling
-- auth.uid() is estimated for this caller. It gives nothing a caller could not do with SQL of
-- its own, and the SQL guard's strict mode refuses it like every auth function but the helpers.
-- VOLATILE because PostgreSQL refuses EXPLAIN inside a STABLE function; the gateway calls it
-- at most once per statement (sqlexpr.total_expr). "Plan Rows" is read through numeric, which
-- reads it whether a server version prints it with decimals or not.

CREATE OR REPLACE FUNCTION auth.estimate_rows(p_sql text, p_params text[]) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  plan json;
BEGIN
  EXECUTE 'EXPLAIN (FORMAT JSON) ' || p_sql USING p_params INTO plan;
  RETURN (plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric::bigint;
END
$$;

-- The three request roles call it (granted only when missing, like 30_grants.sql).
DO $grants$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'project_admin'] LOOP
    IF NOT pg_catalog.has_function_privilege(r, 'auth.estimate_rows(text, text[])', 'EXECUTE') THEN
      EXECUTE format('GRANT EXECUTE ON FUNCTION auth.estimate_rows(text, text[]) TO %I', r);
    END IF;
  END LOOP;
END
$grants$;
