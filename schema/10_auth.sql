-- The auth schema: users and the helpers RLS policies call.
--
-- auth.jwt()    request.jwt.claims as jsonb; NULL when the setting is unset or empty
-- auth.uid()    the sub claim as uuid; NULL when absent, empty or not uuid-shaped
-- auth.role()   the role claim
-- auth.email()  the email claim
--
-- The executor sets request.jwt.claims per transaction. The helpers are plain STABLE SQL
-- functions without SET clauses so that the planner can inline them into policies.
-- auth.uid() checks the shape before casting because admin tokens carry a non-uuid sub
-- ("local:admin") and a policy must never fail with 22P02 because of who is asking.

CREATE SCHEMA IF NOT EXISTS auth;

CREATE TABLE IF NOT EXISTS auth.users (
  id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  email              text        UNIQUE,
  encrypted_password text,
  email_verified     boolean     NOT NULL DEFAULT false,
  raw_user_meta_data jsonb       NOT NULL DEFAULT '{}'::jsonb,
  raw_app_meta_data  jsonb       NOT NULL DEFAULT '{}'::jsonb,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION auth.jwt() RETURNS jsonb
LANGUAGE sql STABLE
AS $$
  SELECT nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb
$$;

CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid
LANGUAGE sql STABLE
AS $$
  SELECT CASE
    WHEN sub ~ '^[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}$'
    THEN sub::uuid
  END
  FROM (SELECT auth.jwt() ->> 'sub' AS sub) AS claim
$$;

CREATE OR REPLACE FUNCTION auth.role() RETURNS text
LANGUAGE sql STABLE
AS $$
  SELECT auth.jwt() ->> 'role'
$$;

CREATE OR REPLACE FUNCTION auth.email() RETURNS text
LANGUAGE sql STABLE
AS $$
  SELECT auth.jwt() ->> 'email'
$$;
