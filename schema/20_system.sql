-- The system schema: the gateway's own bookkeeping, reachable only by the login role.
--
-- system.custom_migrations records every migration applied through the admin API
-- (the migration text runs as project_admin, the record is written as the login role).

CREATE SCHEMA IF NOT EXISTS system;

CREATE TABLE IF NOT EXISTS system.custom_migrations (
  version    text        PRIMARY KEY CHECK (version ~ '^[0-9]{1,64}$'),
  name       text        NOT NULL,
  statements text[]      NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
