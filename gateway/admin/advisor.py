"""The security advisor: the exposed schemas' catalog in, findings with the SQL that fixes each out.

In:  a transaction of an admin request (it runs as ``project_admin``; the catalogs it reads are
     readable by every role) and the schemas to examine (the exposed ones, or one named).
Out: a list of findings, most severe first, each
     ``{check, level, title, object: {schema, name, kind}, detail, why, fix}``: ``detail`` is what
     was found on that object, ``why`` why it matters, and ``fix`` the exact SQL that makes the
     finding go away (identifiers quoted by PostgreSQL's own ``format('%I')``).

The checks are the rows of ``CHECKS``, one query each; Supabase's database linter (splinter) is
the model. "Reachable by the API roles" means ``anon`` or ``authenticated`` holds a privilege on
the object and USAGE on its schema (``has_*_privilege``, so PUBLIC grants, column grants and role
membership count). Objects that belong to an extension are left out: their owner maintains them.

PostgreSQL 14 has no ``security_invoker`` for views (it came in 15): there the fix for a view that
bypasses RLS revokes it from the API roles instead, and its ``detail`` says why. The server's version
(``server_version_num``, known to the connection without a round trip) decides it, passed to that
check's query as ``$2``; the same queries serve 14 to 18.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..execute import Statement, Transaction

Level = Literal["ERROR", "WARN", "INFO"]
LEVELS: tuple[Level, ...] = ("ERROR", "WARN", "INFO")  # most severe first: the order of the answer


@dataclass(frozen=True)
class Check:
    name: str  # stable identifier (``check`` in each finding)
    level: Level
    title: str  # one line, the same for every object found
    why: str  # why it matters and what the fix does
    sql: str  # $1 = schemas (text[]); one row per finding: schema, name, kind, detail, fix
    versioned: bool = False  # $2 = whether views can be security_invoker (PostgreSQL 15+)


SECURITY_INVOKER = 150000  # the first server_version_num whose views take security_invoker


# Relations of the examined schemas with what the API roles may do with them. Extension members
# are skipped (deptype 'e'). ``api`` lists e.g. {"anon SELECT", "authenticated UPDATE"}.
RELATIONS = """
WITH RECURSIVE rel AS (
  SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind, c.relrowsecurity AS rls,
         c.relforcerowsecurity AS forced, c.relowner, c.reloptions, c.relispartition,
         CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' WHEN 'v' THEN 'view'
                        WHEN 'm' THEN 'materialized view' ELSE 'foreign table' END AS kind,
         ARRAY(SELECT r.role || ' ' || v.verb
               FROM unnest(ARRAY['anon', 'authenticated']) AS r(role),
                    unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS v(verb)
               WHERE pg_catalog.has_schema_privilege(r.role, n.oid, 'USAGE')
                 AND CASE WHEN v.verb = 'DELETE' THEN pg_catalog.has_table_privilege(r.role, c.oid, v.verb)
                          ELSE pg_catalog.has_any_column_privilege(r.role, c.oid, v.verb) END) AS api
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
    AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_class'::regclass
                    AND e.objid = c.oid AND e.deptype = 'e')
),
-- every view, with whether it checks the caller's rights (security_invoker, PostgreSQL 15+)
views AS (
  SELECT c.oid, c.relowner AS owner,
         coalesce(pg_catalog.lower(pg_catalog.array_to_string(c.reloptions, ',')) ~
                  '(^|,)security_invoker=(true|on|yes|1)(,|$)', false) AS invoker
  FROM pg_catalog.pg_class c WHERE c.relkind = 'v'
),
-- the relations each view's rule reads directly (a view's own rule depends on the view: skipped)
reads(viewid, ref) AS (
  SELECT DISTINCT r.ev_class, d.refobjid
  FROM pg_catalog.pg_rewrite r JOIN views v ON v.oid = r.ev_class
  JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
   AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid <> r.ev_class
),
-- from each view the API roles can read (top), every view it reads through, and on the way there
-- the views that are not security_invoker (path): PostgreSQL checks what a view reads with the
-- rights of the owner of the last of them, or the caller's when the path is empty
chain(top, viewid, path) AS (
  SELECT v.oid, v.oid, CASE WHEN v.invoker THEN '{}'::oid[] ELSE ARRAY[v.oid] END
  FROM rel JOIN views v ON v.oid = rel.oid WHERE cardinality(rel.api) > 0
  UNION
  SELECT chain.top, v.oid, CASE WHEN v.invoker THEN chain.path ELSE chain.path || v.oid END
  FROM chain JOIN reads ON reads.viewid = chain.viewid JOIN views v ON v.oid = reads.ref
)
"""

API = "pg_catalog.array_to_string(api, ', ')"
TABLE_IDENT = "pg_catalog.format('%I.%I', schema, name)"

# SECURITY DEFINER functions of the examined schemas, with who may call them and who they run as.
FUNCTIONS = """
WITH fn AS (
  SELECT n.nspname AS schema, p.proname AS name, o.rolname AS owner, o.rolsuper OR o.rolbypassrls AS mighty,
         pg_catalog.format('%I.%I(%s)', n.nspname, p.proname,
                           pg_catalog.pg_get_function_identity_arguments(p.oid)) AS signature,
         CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END AS keyword,
         CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END AS kind,
         EXISTS (SELECT FROM unnest(p.proconfig) AS s WHERE s LIKE 'search_path=%') AS fixed_path,
         ARRAY(SELECT r.role FROM unnest(ARRAY['anon', 'authenticated']) AS r(role)
               WHERE pg_catalog.has_schema_privilege(r.role, n.oid, 'USAGE')
                 AND pg_catalog.has_function_privilege(r.role, p.oid, 'EXECUTE')) AS callers
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  JOIN pg_catalog.pg_roles o ON o.oid = p.proowner
  WHERE n.nspname = ANY($1::text[]) AND p.prosecdef
    AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_proc'::regclass
                    AND e.objid = p.oid AND e.deptype = 'e')
)
"""

_EXECUTABLE = FUNCTIONS + """
SELECT schema, name, kind,
       pg_catalog.format('Runs as %I%s; executable by %s', owner,
                         CASE WHEN mighty THEN ' (a superuser or BYPASSRLS role)' ELSE '' END,
                         pg_catalog.array_to_string(callers, ' and ')) AS detail,
       pg_catalog.format('REVOKE EXECUTE ON %s %s FROM PUBLIC, anon, authenticated;', keyword, signature) AS fix
FROM fn WHERE cardinality(callers) > 0 AND {owner}
"""

CHECKS: tuple[Check, ...] = (
    Check(
        "rls_disabled_exposed", "ERROR", "Table reachable by anon or authenticated without row level security",
        "Every caller holding these grants reads or changes every row: without RLS nothing narrows a "
        "request to the caller's own rows. Enabling RLS denies every row to anon and authenticated "
        "until a policy allows it; then add one policy per intended access (CREATE POLICY ... USING "
        "(owner = auth.uid())). If the table is meant to be public, revoke what should not be "
        "writable instead.",
        RELATIONS + f"""
SELECT schema, name, kind, 'RLS is off; ' || {API} AS detail,
       pg_catalog.format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY;', schema, name) AS fix
FROM rel WHERE relkind IN ('r', 'p') AND NOT rls AND cardinality(api) > 0
"""),
    Check(
        "view_reads_table_without_rls", "ERROR", "View reachable by anon or authenticated over a table without RLS",
        "The view hands out the rows of tables that have no row level security, so every caller who may "
        "read the view reads all of their rows (whatever the tables' own grants say, unless the view is "
        "security_invoker). Enable RLS on those tables and give them policies; the view's owner still "
        "bypasses them unless the view is security_invoker (see view_bypasses_rls).",
        RELATIONS + f"""
SELECT schema, name, kind,
       pg_catalog.format('Reads %s without RLS; %s', pg_catalog.string_agg(DISTINCT tab, ', ' ORDER BY tab),
                         {API}) AS detail,
       pg_catalog.string_agg(DISTINCT pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY;', tab), ' '
                             ORDER BY pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY;', tab)) AS fix
FROM (SELECT v.schema, v.name, v.kind, v.api, pg_catalog.format('%I.%I', tn.nspname, t.relname) AS tab
      FROM rel v JOIN chain ON chain.top = v.oid JOIN reads ON reads.viewid = chain.viewid
      JOIN pg_catalog.pg_class t ON t.oid = reads.ref AND t.relkind IN ('r', 'p') AND NOT t.relrowsecurity
      JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace) AS found
GROUP BY schema, name, kind, api
"""),
    Check(
        "view_bypasses_rls", "ERROR", "View bypasses the row level security of the tables it reads",
        "A view reads its tables with its owner's rights (or, through views of views, those of the "
        "nearest owner that is not security_invoker). Here that role is a superuser, has BYPASSRLS or "
        "owns the tables, so their policies never apply and every caller of the view sees every row. "
        "With security_invoker (PostgreSQL 15+) on the view, and on each view it reads through whose "
        "owner bypasses the policies, PostgreSQL checks the caller's grants and policies instead (the "
        "caller then needs SELECT on the tables as well).",
        RELATIONS + f""",
-- RLS tables read with the rights of a role that bypasses their policies (a superuser, BYPASSRLS, or
-- the table's owner unless RLS is forced), and each view on the path whose owner does: all of those
-- need security_invoker, or the next one up becomes the role whose rights are used
bypass(role, tab) AS (
  SELECT r.oid, t.oid FROM pg_catalog.pg_roles r CROSS JOIN pg_catalog.pg_class t
  WHERE t.oid IN (SELECT ref FROM reads) AND t.relkind IN ('r', 'p') AND t.relrowsecurity
    AND (r.rolsuper OR r.rolbypassrls OR (pg_catalog.pg_has_role(r.oid, t.relowner, 'USAGE')
                                          AND NOT t.relforcerowsecurity))
),
leaks(top, tab, checker, culprit) AS (
  SELECT chain.top, reads.ref, last.relowner, w.oid
  FROM chain JOIN reads ON reads.viewid = chain.viewid
  JOIN pg_catalog.pg_class last ON last.oid = chain.path[cardinality(chain.path)]
  JOIN bypass ON bypass.role = last.relowner AND bypass.tab = reads.ref
  CROSS JOIN LATERAL unnest(chain.path) AS u(oid) JOIN pg_catalog.pg_class w ON w.oid = u.oid
  WHERE EXISTS (SELECT FROM bypass b WHERE b.role = w.relowner AND b.tab = reads.ref)
)
SELECT schema, name, kind,
       pg_catalog.format('Reads %s; %s%s', pg_catalog.string_agg(DISTINCT reading, '; ' ORDER BY reading), {API},
                         CASE WHEN NOT $2::bool
                              THEN '; PostgreSQL 14 has no security_invoker for views, so the fix '
                                   'withdraws the view from anon and authenticated (expose the rows '
                                   'through a SECURITY INVOKER function instead, or upgrade to 15+)'
                              ELSE '' END) AS detail,
       CASE WHEN $2::bool
            THEN pg_catalog.string_agg(DISTINCT pg_catalog.format('ALTER VIEW %s SET (security_invoker = true);',
                                                                  culprit), ' ' ORDER BY pg_catalog.format(
                                       'ALTER VIEW %s SET (security_invoker = true);', culprit))
            ELSE pg_catalog.format('REVOKE ALL ON %I.%I FROM PUBLIC, anon, authenticated;', schema, name)
       END AS fix
FROM (SELECT v.schema, v.name, v.kind, v.api,
             pg_catalog.format('%I.%I (RLS on) with the rights of %I, %s', tn.nspname, t.relname, o.rolname,
                               CASE WHEN o.rolsuper THEN 'a superuser' WHEN o.rolbypassrls THEN 'which has BYPASSRLS'
                                    ELSE 'its owner' END) AS reading,
             pg_catalog.format('%I.%I', cn.nspname, cv.relname) AS culprit
      FROM rel v JOIN leaks ON leaks.top = v.oid
      JOIN pg_catalog.pg_class t ON t.oid = leaks.tab JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
      JOIN pg_catalog.pg_roles o ON o.oid = leaks.checker
      JOIN pg_catalog.pg_class cv ON cv.oid = leaks.culprit
      JOIN pg_catalog.pg_namespace cn ON cn.oid = cv.relnamespace) AS found
GROUP BY schema, name, kind, api
""", versioned=True),
    Check(
        "policy_without_rls", "ERROR", "Policies on a table whose row level security is off",
        "Policies only apply while RLS is enabled: these were written to narrow access, and today they "
        "narrow nothing, so every caller with a grant reaches every row.",
        RELATIONS + """
SELECT schema, name, kind,
       'RLS is off; policies: ' || (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(p.polname), ', '
                                                              ORDER BY p.polname)
                                    FROM pg_catalog.pg_policy p WHERE p.polrelid = rel.oid) AS detail,
       pg_catalog.format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY;', schema, name) AS fix
FROM rel WHERE relkind IN ('r', 'p') AND NOT rls
  AND EXISTS (SELECT FROM pg_catalog.pg_policy p WHERE p.polrelid = rel.oid)
"""),
    Check(
        "superuser_function_exposed", "ERROR",
        "SECURITY DEFINER function owned by a superuser or BYPASSRLS role, callable by anon or authenticated",
        "The function runs with its owner's rights whoever calls it (through /rpc, or a view or policy): "
        "a caller reaches everything the owner can, RLS and grants included, and a superuser owner can "
        "reach the server itself. Revoke EXECUTE (PUBLIC holds it by default), then grant it only to "
        "roles that need it, or make the function SECURITY INVOKER.",
        _EXECUTABLE.format(owner="mighty")),
    Check(
        "definer_function_exposed", "WARN", "SECURITY DEFINER function callable by anon or authenticated",
        "The function runs with its owner's rights whoever calls it (through /rpc, or a view or policy), "
        "not the caller's: grants and policies meant for the caller do not apply inside it. Revoke "
        "EXECUTE (PUBLIC holds it by default) unless it is written to check the caller itself "
        "(auth.uid()), or make it SECURITY INVOKER.",
        _EXECUTABLE.format(owner="NOT mighty")),
    Check(
        "definer_function_search_path", "WARN", "SECURITY DEFINER function without a fixed search_path",
        "The function resolves unqualified names through the caller's search_path, so a caller who can "
        "create a table, function or operator in a schema on that path (or in pg_temp) makes it run "
        "their code with the owner's rights. The fix pins the path to the function's own schema "
        "(pg_catalog is always searched first, pg_temp last); add any other schema its body names "
        "unqualified.",
        FUNCTIONS + """
SELECT schema, name, kind, pg_catalog.format('Runs as %I; no search_path setting', owner) AS detail,
       pg_catalog.format('ALTER %s %s SET search_path = %I, pg_temp;', keyword, signature, schema) AS fix
FROM fn WHERE NOT fixed_path
"""),
    Check(
        "unprotectable_relation_exposed", "WARN",
        "Materialized view or foreign table reachable by anon or authenticated",
        "Materialized and foreign tables cannot have row level security, so every caller with a grant "
        "reads every row. Withdraw them from the API roles, and expose the rows meant for callers "
        "through a view or function that checks the caller.",
        RELATIONS + f"""
SELECT schema, name, kind, {API} AS detail,
       pg_catalog.format('REVOKE ALL ON %I.%I FROM PUBLIC, anon, authenticated;', schema, name) AS fix
FROM rel WHERE relkind IN ('m', 'f') AND cardinality(api) > 0
"""),
    Check(
        "rls_enabled_no_policy", "INFO", "Row level security on, no policy, yet granted to anon or authenticated",
        "With RLS on and no policy, PostgreSQL denies every row to anon and authenticated: reads come "
        "back empty and writes fail, although the grants promise access. Either add the policies the "
        "grants were meant for (CREATE POLICY ... TO authenticated USING (owner = auth.uid())) or, if "
        "the table is for admins only, revoke the grants so the intent is explicit (the fix).",
        RELATIONS + f"""
SELECT schema, name, kind, 'RLS is on with no policy; ' || {API} AS detail,
       pg_catalog.format('REVOKE ALL ON %I.%I FROM PUBLIC, anon, authenticated;', schema, name) AS fix
FROM rel WHERE relkind IN ('r', 'p') AND rls AND cardinality(api) > 0
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_policy p WHERE p.polrelid = rel.oid)
"""),
    Check(
        "no_primary_key", "INFO", "Table in an exposed schema without a primary key",
        "Rows cannot be addressed one by one: upserts need a conflict key, GraphQL has no _by_pk field, "
        "PATCH and DELETE must filter on values that may repeat, and logical replication cannot send "
        "updates or deletes. The fix makes the existing id column the key, or adds a uuid one.",
        RELATIONS + f"""
SELECT schema, name, kind, 'No primary key' AS detail,
       CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = rel.oid
                         AND a.attname = 'id' AND a.attnum > 0 AND NOT a.attisdropped)
            THEN pg_catalog.format('ALTER TABLE %s ADD PRIMARY KEY (id);', {TABLE_IDENT})
            ELSE pg_catalog.format('ALTER TABLE %s ADD COLUMN id uuid PRIMARY KEY DEFAULT gen_random_uuid();',
                                   {TABLE_IDENT})
       END AS fix
FROM rel WHERE relkind = 'r' AND NOT relispartition
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint k WHERE k.conrelid = rel.oid AND k.contype = 'p')
"""),
)


def server_version(tx: Transaction) -> int:
    """``server_version_num`` of the transaction's connection, from connect time (no round trip)."""
    v = tx.conn.get_server_version()
    return int(v.major * 10000 + v.micro)  # PostgreSQL 10+ reports major.0.minor


async def findings(tx: Transaction, schemas: Sequence[str], version: int | None = None) -> list[dict[str, Any]]:
    """Every check's findings over ``schemas``: most severe first, then by object and check.
    ``version`` (``server_version_num``) defaults to the connection's."""
    invoker = (server_version(tx) if version is None else version) >= SECURITY_INVOKER
    found: list[dict[str, Any]] = []
    for check in CHECKS:
        params: tuple[Any, ...] = (list(schemas), invoker) if check.versioned else (list(schemas),)
        for row in await tx.fetch(Statement(check.sql, params)):
            found.append({
                "check": check.name, "level": check.level, "title": check.title,
                "object": {"schema": row["schema"], "name": row["name"], "kind": row["kind"]},
                "detail": row["detail"], "why": check.why, "fix": row["fix"]})
    rank = {level: i for i, level in enumerate(LEVELS)}
    found.sort(key=lambda f: (rank[f["level"]], f["object"]["schema"], f["object"]["name"], f["check"]))
    return found
