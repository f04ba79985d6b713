-- Roles every request runs as (DESIGN.md "Contract").
--
-- anon           callers with the anon key or no user token
-- authenticated  callers with a user JWT
-- project_admin  the API key and admin tokens; BYPASSRLS, so policies never hide rows from admins
--
-- All three are NOLOGIN: the gateway logs in as its own role and switches with
-- set_config('role', ...), which needs membership, hence the GRANT ... TO current_user.
--
-- Applied at every start inside one transaction that holds an advisory lock
-- (gateway/bootstrap.py). Roles are cluster-wide while advisory locks are per database,
-- so two databases of one cluster may still race here: the exception handlers absorb that.

DO $roles$
DECLARE
  spec record;
BEGIN
  FOR spec IN
    SELECT * FROM (VALUES ('anon', false), ('authenticated', false), ('project_admin', true))
      AS wanted(name, bypass_rls)
  LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = spec.name) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN%s', spec.name,
                       CASE WHEN spec.bypass_rls THEN ' BYPASSRLS' ELSE '' END);
      EXCEPTION
        WHEN duplicate_object OR unique_violation THEN
          NULL;  -- created meanwhile from another database of this cluster
        WHEN insufficient_privilege THEN
          -- Only superusers may confer BYPASSRLS; a CREATEROLE login role still gets the role.
          RAISE NOTICE 'gateway: cannot create role % with BYPASSRLS as %; creating it without',
            spec.name, current_user;
          EXECUTE format('CREATE ROLE %I NOLOGIN', spec.name);
      END;
    END IF;

    IF NOT EXISTS (
      SELECT 1 FROM pg_catalog.pg_auth_members m
      WHERE m.roleid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = spec.name)
        AND m.member = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
    ) THEN
      BEGIN
        EXECUTE format('GRANT %I TO %I', spec.name, current_user);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;  -- granted meanwhile from another database of this cluster
      END;
    END IF;
  END LOOP;
END
$roles$;
