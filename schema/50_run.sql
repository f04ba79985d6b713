-- One round trip per request: the caller's transaction-local settings and the statement together.
--
-- system.gateway_run(role, settings, read_only, sql, params) sets, with set_config(..., true),
-- the named request settings and the role, optionally makes the transaction read-only, then runs
-- the gateway's own statement with EXECUTE ... USING, so every value stays a bound parameter
-- (the statement refers to them as $1[1], $1[2], ...). It is not SECURITY DEFINER: it runs as the
-- gateway's login role, and after the role switch the statement is planned and checked as the
-- caller, RLS included. Only the login role may call it (EXECUTE, and USAGE on schema system). The executor sends every request that
-- needs no rollback after the fact through it; the others keep BEGIN ... COMMIT.

CREATE OR REPLACE FUNCTION system.gateway_run(
    p_role text, p_settings text[], p_read_only boolean, p_sql text, p_params text[])
RETURNS TABLE (total bigint, page_rows bigint, body text, inserted bigint)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  i int;
BEGIN
  IF p_role NOT IN ('anon', 'authenticated', 'project_admin') THEN
    RAISE EXCEPTION 'role "%" does not exist', p_role USING ERRCODE = '22023';
  END IF;
  IF p_read_only THEN
    PERFORM pg_catalog.set_config('transaction_read_only', 'on', true);
  END IF;
  FOR i IN 1 .. coalesce(pg_catalog.array_length(p_settings, 1), 0) BY 2 LOOP
    IF p_settings[i] NOT IN ('request.jwt.claims', 'request.method', 'request.path', 'request.headers',
                             'search_path') THEN
      RAISE EXCEPTION 'setting "%" is not the gateway''s to set', p_settings[i] USING ERRCODE = '42501';
    END IF;
    PERFORM pg_catalog.set_config(p_settings[i], p_settings[i + 1], true);
  END LOOP;
  PERFORM pg_catalog.set_config('role', p_role, true);
  RETURN QUERY EXECUTE p_sql USING p_params;
END
$$;

REVOKE ALL ON FUNCTION system.gateway_run(text, text[], boolean, text, text[]) FROM PUBLIC;

DO $run_grants$
DECLARE
  login text := nullif(pg_catalog.current_setting('gateway.authenticator', true), '');
BEGIN
  IF login IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = login) THEN
    RETURN;
  END IF;
  IF NOT pg_catalog.has_function_privilege(login, 'system.gateway_run(text, text[], boolean, text, text[])',
                                           'EXECUTE') THEN
    EXECUTE format('GRANT EXECUTE ON FUNCTION system.gateway_run(text, text[], boolean, text, text[]) TO %I',
                   login);
  END IF;
  IF NOT pg_catalog.has_schema_privilege(login, 'system', 'USAGE') THEN
    EXECUTE format('GRANT USAGE ON SCHEMA system TO %I', login);
  END IF;
END
$run_grants$;
