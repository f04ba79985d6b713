-- Live catalog reload: DDL anywhere sends NOTIFY pgrst, 'reload schema'; every gateway
-- process LISTENs on that channel and rebuilds its catalog (the channel and payload are
-- PostgREST's, so tools that already send them keep working).
--
-- Skipped on purpose:
--   * temporary objects (CREATE TEMP TABLE, ON COMMIT DROP): they are invisible to other
--     sessions, and a busy application would otherwise make every gateway reload constantly;
--   * commands that changed nothing (CREATE ... IF NOT EXISTS on an existing object reports
--     no commands);
--   * the bootstrap itself (gateway.bootstrap = 'on' in its transaction): it re-creates its
--     helper functions at every start, and one start must not make every other process reload.
--
-- CREATE EVENT TRIGGER needs a superuser. Under a login role that is not one the triggers are
-- left out with a NOTICE: the gateway still reloads after its own migrations and imports, and
-- operators can send the NOTIFY themselves after outside DDL.

CREATE OR REPLACE FUNCTION system.notify_schema_reload() RETURNS event_trigger
LANGUAGE plpgsql
AS $$
DECLARE
  temp_schema constant text := '^pg_(toast_)?temp(_[0-9]+)?$';
  temp_name   constant text := '(^|[^a-z0-9_])pg_(toast_)?temp(_[0-9]+)?\.';
  relevant    boolean;
BEGIN
  IF pg_catalog.current_setting('gateway.bootstrap', true) = 'on' THEN
    RETURN;
  END IF;
  IF TG_EVENT = 'sql_drop' THEN
    -- A dropped temp table also reports its column defaults, which are not flagged temporary
    -- and carry no schema: their identity ("for pg_temp.t.id") gives them away.
    SELECT bool_or(NOT (d.is_temporary
                        OR coalesce(d.schema_name, '') ~ temp_schema
                        OR coalesce(d.object_identity, '') ~ temp_name))
      INTO relevant
      FROM pg_catalog.pg_event_trigger_dropped_objects() AS d;
  ELSE
    SELECT bool_or(NOT (coalesce(c.schema_name, '') ~ temp_schema
                        OR coalesce(c.object_identity, '') ~ temp_name))
      INTO relevant
      FROM pg_catalog.pg_event_trigger_ddl_commands() AS c;
  END IF;
  IF relevant THEN
    NOTIFY pgrst, 'reload schema';
  END IF;
END
$$;

DO $triggers$
DECLARE
  spec record;
BEGIN
  IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    RAISE NOTICE 'gateway: % is not a superuser, so the schema-reload event triggers are not installed; '
                 'send NOTIFY pgrst, ''reload schema'' after DDL made outside the gateway', current_user;
    RETURN;
  END IF;
  FOR spec IN
    SELECT * FROM (VALUES ('gateway_reload_on_ddl', 'ddl_command_end'),
                          ('gateway_reload_on_drop', 'sql_drop')) AS t(name, event)
    WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = t.name)
  LOOP
    EXECUTE format('CREATE EVENT TRIGGER %I ON %s EXECUTE FUNCTION system.notify_schema_reload()',
                   spec.name, spec.event);
  END LOOP;
END
$triggers$;
