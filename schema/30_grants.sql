-- Privileges: what each role may touch before RLS narrows it.
--
--   schema public    USAGE for the three roles, CREATE for project_admin (migrations run as it)
--   schema auth      USAGE for the three roles (the helpers), EXECUTE on auth.jwt/uid/role/email
--   existing public  project_admin ALL on tables, sequences and routines
--   new in public    default privileges for what project_admin creates (migrations, raw SQL and
--                    imports run as it): tables authenticated SELECT/INSERT/UPDATE/DELETE and
--                    anon SELECT; sequences authenticated USAGE/SELECT; routines EXECUTE for the
--                    three roles. What any other role creates (psql, another tool) gets nothing
--                    for anon and authenticated until someone grants it; project_admin gets ALL
--                    on what the bootstrap role creates, so admins still see and export it.
--   auth.users, system.custom_migrations
--                    project_admin SELECT and INSERT only (the spec's relaxed mode: read and
--                    insert), anon and authenticated nothing. PostgreSQL itself refuses every
--                    UPDATE, DELETE, TRUNCATE or DDL there, whatever SQL text reaches it.
--   schema public    no CREATE for PUBLIC (PostgreSQL 15's default, applied to 14 as well), so a
--                    request that RESETs its role to the login role can create nothing.
--
-- Every step checks first and grants only what is missing, so a start against a database that
-- is already set up changes nothing in the catalog (no invalidations, no reload notifications).

CREATE SCHEMA IF NOT EXISTS public;

-- Schema and helper privileges, one row per (object, privilege, grantee).
DO $objects$
DECLARE
  missing record;
BEGIN
  FOR missing IN
    SELECT w.kind, w.object, string_agg(w.privilege, ', ') AS privileges, w.grantee
    FROM (VALUES
      ('SCHEMA',   'public',        'USAGE',   'anon'),
      ('SCHEMA',   'public',        'USAGE',   'authenticated'),
      ('SCHEMA',   'public',        'USAGE',   'project_admin'),
      ('SCHEMA',   'public',        'CREATE',  'project_admin'),
      ('SCHEMA',   'auth',          'USAGE',   'anon'),
      ('SCHEMA',   'auth',          'USAGE',   'authenticated'),
      ('SCHEMA',   'auth',          'USAGE',   'project_admin'),
      ('FUNCTION', 'auth.jwt()',    'EXECUTE', 'anon'),
      ('FUNCTION', 'auth.jwt()',    'EXECUTE', 'authenticated'),
      ('FUNCTION', 'auth.jwt()',    'EXECUTE', 'project_admin'),
      ('FUNCTION', 'auth.uid()',    'EXECUTE', 'anon'),
      ('FUNCTION', 'auth.uid()',    'EXECUTE', 'authenticated'),
      ('FUNCTION', 'auth.uid()',    'EXECUTE', 'project_admin'),
      ('FUNCTION', 'auth.role()',   'EXECUTE', 'anon'),
      ('FUNCTION', 'auth.role()',   'EXECUTE', 'authenticated'),
      ('FUNCTION', 'auth.role()',   'EXECUTE', 'project_admin'),
      ('FUNCTION', 'auth.email()',  'EXECUTE', 'anon'),
      ('FUNCTION', 'auth.email()',  'EXECUTE', 'authenticated'),
      ('FUNCTION', 'auth.email()',  'EXECUTE', 'project_admin')
    ) AS w(kind, object, privilege, grantee)
    WHERE NOT CASE w.kind
      WHEN 'SCHEMA' THEN pg_catalog.has_schema_privilege(w.grantee, w.object, w.privilege)
      ELSE pg_catalog.has_function_privilege(w.grantee, w.object, w.privilege)
    END
    GROUP BY w.kind, w.object, w.grantee
  LOOP
    -- Function names are written with their argument list, so they are spliced as given.
    EXECUTE format('GRANT %s ON %s %s TO %I', missing.privileges, missing.kind,
                   CASE missing.kind WHEN 'SCHEMA' THEN quote_ident(missing.object) ELSE missing.object END,
                   missing.grantee);
  END LOOP;
END
$objects$;

-- project_admin ALL on what already exists in public (made before this bootstrap, or by a
-- role the default privileges below do not cover). Only objects the login role can grant on.
DO $existing$
BEGIN
  IF EXISTS (
    SELECT 1 FROM pg_catalog.pg_class c
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND pg_catalog.pg_has_role(c.relowner, 'USAGE')
      AND NOT (pg_catalog.has_table_privilege('project_admin', c.oid, 'SELECT')
               AND pg_catalog.has_table_privilege('project_admin', c.oid, 'INSERT')
               AND pg_catalog.has_table_privilege('project_admin', c.oid, 'UPDATE')
               AND pg_catalog.has_table_privilege('project_admin', c.oid, 'DELETE')
               AND pg_catalog.has_table_privilege('project_admin', c.oid, 'TRUNCATE')
               AND pg_catalog.has_table_privilege('project_admin', c.oid, 'REFERENCES')
               AND pg_catalog.has_table_privilege('project_admin', c.oid, 'TRIGGER'))
  ) THEN
    GRANT ALL ON ALL TABLES IN SCHEMA public TO project_admin;
  END IF;

  IF EXISTS (
    SELECT 1 FROM pg_catalog.pg_class c
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S'
      AND pg_catalog.pg_has_role(c.relowner, 'USAGE')
      AND NOT (pg_catalog.has_sequence_privilege('project_admin', c.oid, 'USAGE')
               AND pg_catalog.has_sequence_privilege('project_admin', c.oid, 'SELECT')
               AND pg_catalog.has_sequence_privilege('project_admin', c.oid, 'UPDATE'))
  ) THEN
    GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO project_admin;
  END IF;

  IF EXISTS (
    SELECT 1 FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = 'public'::regnamespace
      AND pg_catalog.pg_has_role(p.proowner, 'USAGE')
      AND NOT pg_catalog.has_function_privilege('project_admin', p.oid, 'EXECUTE')
  ) THEN
    GRANT ALL ON ALL ROUTINES IN SCHEMA public TO project_admin;
  END IF;
END
$existing$;

-- Default privileges for objects created later in public, one row per (type, grantee, privilege):
-- everything for objects project_admin creates; for objects the bootstrap role creates, only
-- project_admin's rows (nobody publishes a table to the API by creating it with psql).
DO $defaults$
DECLARE
  missing record;
BEGIN
  FOR missing IN
    SELECT o.owner, w.keyword, w.grantee, string_agg(w.privilege, ', ') AS privileges
    FROM (VALUES (current_user::text), ('project_admin')) AS o(owner)
    CROSS JOIN (VALUES
      ('r', 'TABLES',    'authenticated', 'SELECT'),
      ('r', 'TABLES',    'authenticated', 'INSERT'),
      ('r', 'TABLES',    'authenticated', 'UPDATE'),
      ('r', 'TABLES',    'authenticated', 'DELETE'),
      ('r', 'TABLES',    'anon',          'SELECT'),
      ('r', 'TABLES',    'project_admin', 'SELECT'),
      ('r', 'TABLES',    'project_admin', 'INSERT'),
      ('r', 'TABLES',    'project_admin', 'UPDATE'),
      ('r', 'TABLES',    'project_admin', 'DELETE'),
      ('r', 'TABLES',    'project_admin', 'TRUNCATE'),
      ('r', 'TABLES',    'project_admin', 'REFERENCES'),
      ('r', 'TABLES',    'project_admin', 'TRIGGER'),
      ('S', 'SEQUENCES', 'authenticated', 'USAGE'),
      ('S', 'SEQUENCES', 'authenticated', 'SELECT'),
      ('S', 'SEQUENCES', 'project_admin', 'USAGE'),
      ('S', 'SEQUENCES', 'project_admin', 'SELECT'),
      ('S', 'SEQUENCES', 'project_admin', 'UPDATE'),
      ('f', 'ROUTINES',  'anon',          'EXECUTE'),
      ('f', 'ROUTINES',  'authenticated', 'EXECUTE'),
      ('f', 'ROUTINES',  'project_admin', 'EXECUTE')
    ) AS w(objtype, keyword, grantee, privilege)
    WHERE w.grantee <> o.owner  -- an owner already holds everything on what it creates
      AND (o.owner = 'project_admin' OR w.grantee = 'project_admin')
      AND NOT EXISTS (
        SELECT 1
        FROM pg_catalog.pg_default_acl d, pg_catalog.aclexplode(d.defaclacl) a
        WHERE d.defaclrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = o.owner)
          AND d.defaclnamespace = 'public'::regnamespace
          AND d.defaclobjtype = w.objtype::"char"
          AND a.grantee = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = w.grantee)
          AND a.privilege_type = w.privilege)
    GROUP BY o.owner, w.keyword, w.grantee
  LOOP
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT %s ON %s TO %I',
                   missing.owner, missing.privileges, missing.keyword, missing.grantee);
  END LOOP;
END
$defaults$;

-- Default privileges an earlier bootstrap gave anon and authenticated on what the bootstrap
-- role creates in public: taken back, so tables made with psql stay private until granted.
DO $legacy_defaults$
DECLARE
  found record;
BEGIN
  FOR found IN
    SELECT DISTINCT CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES'
                                         WHEN 'f' THEN 'ROUTINES' END AS keyword,
           g.rolname AS grantee
    FROM pg_catalog.pg_default_acl d, pg_catalog.aclexplode(d.defaclacl) a, pg_catalog.pg_roles g
    WHERE d.defaclrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
      AND current_user <> 'project_admin'
      AND d.defaclnamespace = 'public'::regnamespace
      AND d.defaclobjtype IN ('r', 'S', 'f')
      AND g.oid = a.grantee AND g.rolname IN ('anon', 'authenticated')
  LOOP
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public REVOKE ALL ON %s FROM %I',
                   current_user, found.keyword, found.grantee);
  END LOOP;
END
$legacy_defaults$;

-- No CREATE on public for PUBLIC (PostgreSQL 15+ ships it so; 14 granted it to everyone).
DO $public_create$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
             WHERE n.nspname = 'public' AND a.grantee = 0 AND a.privilege_type = 'CREATE') THEN
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;
  END IF;
END
$public_create$;

-- The gateway's private tables: project_admin SELECT and INSERT, nobody else anything. The checks
-- count grants to PUBLIC too, since every role holds those; column grants count as well.
DO $private$
DECLARE
  spec record;
BEGIN
  FOR spec IN
    SELECT t.name
    FROM (VALUES ('auth.users'), ('system.custom_migrations')) AS t(name)
    WHERE EXISTS (
      SELECT 1 FROM (VALUES ('anon'), ('authenticated')) AS r(role)
      WHERE pg_catalog.has_any_column_privilege(r.role, t.name, 'SELECT, INSERT, UPDATE, REFERENCES')
         OR pg_catalog.has_table_privilege(r.role, t.name, 'DELETE, TRUNCATE, TRIGGER'))
       OR pg_catalog.has_any_column_privilege('project_admin', t.name, 'UPDATE, REFERENCES')
       OR pg_catalog.has_table_privilege('project_admin', t.name, 'DELETE, TRUNCATE, TRIGGER')
       OR NOT pg_catalog.has_table_privilege('project_admin', t.name, 'SELECT')
       OR NOT pg_catalog.has_table_privilege('project_admin', t.name, 'INSERT')
  LOOP
    EXECUTE format('REVOKE ALL ON TABLE %s FROM PUBLIC, anon, authenticated, project_admin', spec.name);
    EXECUTE format('GRANT SELECT, INSERT ON TABLE %s TO project_admin', spec.name);
  END LOOP;

  IF EXISTS (
    SELECT 1 FROM (VALUES ('anon'), ('authenticated')) AS r(role)
    WHERE pg_catalog.has_schema_privilege(r.role, 'system', 'USAGE, CREATE')
  ) OR pg_catalog.has_schema_privilege('project_admin', 'system', 'CREATE')
    OR NOT pg_catalog.has_schema_privilege('project_admin', 'system', 'USAGE') THEN
    REVOKE ALL ON SCHEMA system FROM PUBLIC, anon, authenticated, project_admin;
    GRANT USAGE ON SCHEMA system TO project_admin;
  END IF;
END
$private$;
