-- Change feed for GraphQL subscriptions: committed row changes announced with their keys.
--
-- system.publish_change() is a row-level AFTER trigger: it sends, on channel gateway_changes,
-- {"s": schema, "t": table, "op": "INSERT|UPDATE|DELETE", "pk": {<key column>: value}} — the
-- key columns are the trigger's arguments. Only keys travel: every gateway re-reads the row as
-- each subscriber (RLS applies) before sending it. NOTIFY is transactional, so a rolled-back
-- change is never announced and a committed one is announced once per row after COMMIT.
--
-- system.publish_changes(table) installs that trigger (named gateway_changes) on a table with a
-- primary key; CREATE TRIGGER needs the table's owner, so the gateway calls it as project_admin
-- for the tables project_admin owns (everything created through the API), and an owner runs
--   SELECT system.publish_changes('schema.table');
-- for any other table. The request path never runs it.

CREATE OR REPLACE FUNCTION system.publish_change() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  rec  jsonb := pg_catalog.to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END);
  keys jsonb := '{}';
  col  text;
BEGIN
  FOREACH col IN ARRAY TG_ARGV LOOP
    keys := keys || pg_catalog.jsonb_build_object(col, rec -> col);
  END LOOP;
  PERFORM pg_catalog.pg_notify('gateway_changes', pg_catalog.jsonb_build_object(
    's', TG_TABLE_SCHEMA, 't', TG_TABLE_NAME, 'op', TG_OP, 'pk', keys)::text);
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION system.publish_changes(target regclass) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  key_columns text;
BEGIN
  SELECT pg_catalog.string_agg(pg_catalog.quote_literal(a.attname), ', ' ORDER BY k.ord)
    INTO key_columns
    FROM pg_catalog.pg_index i
    CROSS JOIN LATERAL pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
   WHERE i.indrelid = target AND i.indisprimary;
  IF key_columns IS NULL THEN
    RAISE EXCEPTION 'table % has no primary key: its changes cannot be published', target
      USING ERRCODE = '42P10';
  END IF;
  EXECUTE format('CREATE OR REPLACE TRIGGER gateway_changes AFTER INSERT OR UPDATE OR DELETE ON %s '
                 'FOR EACH ROW EXECUTE FUNCTION system.publish_change(%s)', target, key_columns);
END
$$;

REVOKE ALL ON FUNCTION system.publish_changes(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION system.publish_changes(regclass) TO project_admin;
