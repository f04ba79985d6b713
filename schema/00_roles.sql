-- Roles: the three every request runs as, and the login role requests arrive through
-- (DESIGN.md "Contract", PostgREST's authenticator model).
--
-- anon           callers with the anon key or no user token
-- authenticated  callers with a user JWT
-- project_admin  the API key and admin tokens; BYPASSRLS, so policies never hide rows from admins;
--                never a superuser, never able to manage roles, read server files or run programs
-- the login role (gateway.authenticator, default gateway_authenticator)
--                LOGIN NOINHERIT, nothing but membership in the three roles: it switches with
--                set_config('role', ...), and RESET ROLE inside a request lands on a role that
--                holds no privilege of its own
--
-- The bootstrap runs as the DATABASE_URL role (a superuser, or an owner that may create roles).
-- It is granted the three roles too, since ALTER DEFAULT PRIVILEGES FOR ROLE project_admin needs
-- membership. gateway.authenticator_verifier carries the login role's SCRAM verifier (never the
-- password) when the gateway manages that role; empty when the operator made it.
--
-- Applied at every start inside one transaction that holds an advisory lock
-- (gateway/bootstrap.py). Roles are cluster-wide while advisory locks are per database,
-- so two databases of one cluster may still race here: the exception handlers absorb that.
-- Whatever cannot be created or corrected here (no privilege) is reported by the start-up check
-- in gateway/login.py, which refuses to serve through a role that could escalate.

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

    -- A request role with power beyond its own grants would hand it to every caller (an earlier
    -- ALTER ROLE ... SUPERUSER, say): take it back when this role may.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles
               WHERE rolname = spec.name
                 AND (rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolcanlogin
                      OR (rolbypassrls AND NOT spec.bypass_rls))) THEN
      BEGIN
        EXECUTE format('ALTER ROLE %I NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOLOGIN%s', spec.name,
                       CASE WHEN spec.bypass_rls THEN '' ELSE ' NOBYPASSRLS' END);
      EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE 'gateway: role % has attributes it must not have and % cannot remove them',
          spec.name, current_user;
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

DO $authenticator$
DECLARE
  login    text := nullif(pg_catalog.current_setting('gateway.authenticator', true), '');
  verifier text := nullif(pg_catalog.current_setting('gateway.authenticator_verifier', true), '');
  granted  record;
BEGIN
  IF login IS NULL THEN
    RETURN;  -- the caller applies the bootstrap without naming a login role (tests of the SQL alone)
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = login) THEN
    IF verifier IS NULL THEN
      RAISE EXCEPTION 'gateway: the login role % does not exist', login
        USING ERRCODE = '42704',
              HINT = format('Create it once as a superuser: CREATE ROLE %I LOGIN NOINHERIT PASSWORD ''...''; '
                            'GRANT anon, authenticated, project_admin TO %I;', login, login);
    END IF;
    BEGIN
      EXECUTE format('CREATE ROLE %I LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION '
                     'NOBYPASSRLS PASSWORD %L', login, verifier);
    EXCEPTION
      WHEN duplicate_object OR unique_violation THEN
        NULL;  -- created meanwhile from another database of this cluster
      WHEN insufficient_privilege THEN
        RAISE EXCEPTION 'gateway: % may not create the login role %', current_user, login
          USING ERRCODE = '42501',
                HINT = format('Create it once as a superuser: CREATE ROLE %I LOGIN NOINHERIT PASSWORD ''...''; '
                              'GRANT anon, authenticated, project_admin TO %I;', login, login);
    END;
  ELSIF login <> current_user  -- never the bootstrap role itself (an operator's mistake, refused later)
        AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles
                    WHERE rolname = login
                      AND (rolsuper OR rolinherit OR rolcreaterole OR rolcreatedb OR rolreplication
                           OR rolbypassrls)) THEN
    BEGIN
      EXECUTE format('ALTER ROLE %I NOSUPERUSER NOINHERIT NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS',
                     login);
    EXCEPTION WHEN OTHERS THEN
      NULL;  -- the start-up check names what is wrong and refuses to serve through it
    END;
  END IF;

  FOR granted IN
    SELECT w.name FROM (VALUES ('anon'), ('authenticated'), ('project_admin')) AS w(name)
    WHERE NOT EXISTS (
      SELECT 1 FROM pg_catalog.pg_auth_members m
      WHERE m.roleid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = w.name)
        AND m.member = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = login))
  LOOP
    BEGIN
      EXECUTE format('GRANT %I TO %I', granted.name, login);
    EXCEPTION
      WHEN duplicate_object OR unique_violation THEN NULL;
      WHEN insufficient_privilege THEN NULL;  -- reported by the start-up check
    END;
  END LOOP;
END
$authenticator$;

-- Direct memberships that would let a request reach the server's files and programs, every
-- row, or a superuser (SET ROLE follows memberships, whatever INHERIT says): revoked from the
-- three request roles and the login role. Deeper chains are refused by the start-up check.
DO $memberships$
DECLARE
  login text := nullif(pg_catalog.current_setting('gateway.authenticator', true), '');
  found record;
BEGIN
  FOR found IN
    SELECT granted.rolname AS granted, member.rolname AS member
    FROM pg_catalog.pg_auth_members m
    JOIN pg_catalog.pg_roles granted ON granted.oid = m.roleid
    JOIN pg_catalog.pg_roles member ON member.oid = m.member
    WHERE member.rolname IN ('anon', 'authenticated', 'project_admin', coalesce(login, 'anon'))
      AND member.rolname <> current_user
      AND (granted.rolsuper OR granted.rolcreaterole OR granted.rolcreatedb
           OR granted.rolname IN ('pg_execute_server_program', 'pg_read_server_files', 'pg_write_server_files',
                                  'pg_read_all_data', 'pg_write_all_data', 'pg_signal_backend',
                                  'pg_create_subscription', 'pg_checkpoint', 'pg_maintain'))
  LOOP
    BEGIN
      EXECUTE format('REVOKE %I FROM %I', found.granted, found.member);
    EXCEPTION WHEN OTHERS THEN
      NULL;  -- reported by the start-up check
    END;
  END LOOP;
END
$memberships$;
