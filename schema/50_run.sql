-- One round trip per request: the caller's transaction-local settings and the statement together.
--
-- system.gateway_run(role, settings, read_only, sql, params, name, drop) sets, with
-- set_config(..., true), the named request settings and the role, optionally makes the transaction
-- read-only, then runs the gateway's own statement with every value bound (the statement refers to
-- them as $1[1], $1[2], ...). It is not SECURITY DEFINER: it runs as the gateway's login role, and
-- after the role switch the statement is checked as the caller, RLS included. Only the login role
-- may call it (EXECUTE, and USAGE on schema system). The executor sends every request that needs
-- no rollback after the fact through it; the others keep BEGIN ... COMMIT.
--
-- With a name, the statement is a session-level prepared statement (PREPARE name(text[]) AS sql,
-- made on the first call that sends the text, then EXECUTE name(params) with sql NULL), so
-- PostgreSQL parses it once per connection and keeps its plan instead of planning it on every
-- request. That is safe under the role switch: privileges are checked when a plan is executed, and
-- a plan that depends on row security is re-planned when the role it was made for is not the current
-- one. The names in drop are deallocated first (the gateway bounds how many each connection keeps).
-- Without a name, the statement is run once with EXECUTE ... USING.

DROP FUNCTION IF EXISTS system.gateway_run(text, text[], boolean, text, text[]);

CREATE OR REPLACE FUNCTION system.gateway_run(
    p_role text, p_settings text[], p_read_only boolean, p_sql text, p_params text[],
    p_name text DEFAULT NULL, p_drop text[] DEFAULT NULL)
RETURNS TABLE (total bigint, page_rows bigint, body text, inserted bigint)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  i int;
  gone text;
BEGIN
  IF p_role NOT IN ('anon', 'authenticated', 'project_admin') THEN
    RAISE EXCEPTION 'role "%" does not exist', p_role USING ERRCODE = '22023';
  END IF;
  i := 1;
  -- the executor always sends the claims, the method and the path first: set them (and the
  -- read-only flag) in one statement, the rest one by one (each PERFORM is a query of its own)
  IF p_settings[1] = 'request.jwt.claims' AND p_settings[3] = 'request.method'
     AND p_settings[5] = 'request.path' THEN
    IF p_read_only THEN
      PERFORM pg_catalog.set_config('transaction_read_only', 'on', true),
              pg_catalog.set_config('request.jwt.claims', p_settings[2], true),
              pg_catalog.set_config('request.method', p_settings[4], true),
              pg_catalog.set_config('request.path', p_settings[6], true);
    ELSE
      PERFORM pg_catalog.set_config('request.jwt.claims', p_settings[2], true),
              pg_catalog.set_config('request.method', p_settings[4], true),
              pg_catalog.set_config('request.path', p_settings[6], true);
    END IF;
    i := 7;
  ELSIF p_read_only THEN
    PERFORM pg_catalog.set_config('transaction_read_only', 'on', true);
  END IF;
  WHILE i < coalesce(pg_catalog.array_length(p_settings, 1), 0) LOOP
    IF p_settings[i] NOT IN ('request.jwt.claims', 'request.method', 'request.path', 'request.headers',
                             'search_path') THEN
      RAISE EXCEPTION 'setting "%" is not the gateway''s to set', p_settings[i] USING ERRCODE = '42501';
    END IF;
    PERFORM pg_catalog.set_config(p_settings[i], p_settings[i + 1], true);
    i := i + 2;
  END LOOP;
  PERFORM pg_catalog.set_config('role', p_role, true);
  IF p_name IS NULL THEN
    RETURN QUERY EXECUTE p_sql USING p_params;
    RETURN;
  END IF;
  IF p_name !~ '^gw_[0-9a-f]{1,40}$' THEN
    RAISE EXCEPTION 'statement name "%" is not the gateway''s', p_name USING ERRCODE = '42501';
  END IF;
  FOREACH gone IN ARRAY coalesce(p_drop, '{}') LOOP
    IF gone ~ '^gw_[0-9a-f]{1,40}$' THEN
      BEGIN
        EXECUTE pg_catalog.format('DEALLOCATE %I', gone);
      EXCEPTION WHEN invalid_sql_statement_name THEN NULL;  -- already gone: nothing to free
      END;
    END IF;
  END LOOP;
  IF p_sql IS NOT NULL THEN
    BEGIN
      EXECUTE pg_catalog.format('PREPARE %I(text[]) AS ', p_name) || p_sql;
    EXCEPTION WHEN duplicate_prepared_statement THEN NULL;  -- prepared by an earlier call that failed later
    END;
  END IF;
  -- EXECUTE's arguments cannot be bound from here (they are parsed without this call's
  -- parameters), so the array travels as a literal quoted by format's %L
  RETURN QUERY EXECUTE pg_catalog.format('EXECUTE %I(%L)', p_name, p_params);
END
$$;

REVOKE ALL ON FUNCTION system.gateway_run(text, text[], boolean, text, text[], text, text[]) FROM PUBLIC;

DO $run_grants$
DECLARE
  login text := nullif(pg_catalog.current_setting('gateway.authenticator', true), '');
BEGIN
  IF login IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = login) THEN
    RETURN;
  END IF;
  IF NOT pg_catalog.has_function_privilege(login, 'system.gateway_run(text, text[], boolean, text, text[], text, text[])',
                                           'EXECUTE') THEN
    EXECUTE format('GRANT EXECUTE ON FUNCTION system.gateway_run(text, text[], boolean, text, text[], text, text[]) TO %I',
                   login);
  END IF;
  IF NOT pg_catalog.has_schema_privilege(login, 'system', 'USAGE') THEN
    EXECUTE format('GRANT USAGE ON SCHEMA system TO %I', login);
  END IF;
END
$run_grants$;
