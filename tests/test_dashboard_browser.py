"""The dashboard in a real browser: Debian's Chromium driven by Playwright against a live gateway.

In:  ``gateway serve``'s app on a free port (``liveserver``) over the blog data set in ``dash``,
     plus a table whose name, column and cell values are script injection attempts; Chromium from
     ``/usr/bin/chromium`` (or ``DASHBOARD_CHROMIUM``), started headless with a fresh profile.
Out: what a user sees and what the database holds after each step, a screenshot per step in the
     folder printed at the start (``DASHBOARD_SCREENSHOTS`` or the pytest temporary folder), and
     every console error and failed request of the page, which must be none but those a step
     provokes on purpose.

Skipped, with the reason, when Chromium or Playwright is missing or Chromium does not start.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from liveserver import LiveServer, blog_fixture, live_server
from support import run_sql

playwright_api = pytest.importorskip("playwright.async_api", reason="playwright (the test extra) is not installed")
expect = playwright_api.expect

SCHEMA, OTHER = "dash", "dash_other"  # two exposed schemas; the first is the default
XSS_TABLE = "<img src=x onerror=window.__pwned=1>"
XSS_CELL = "<script>window.__pwned=2</script><img src=y onerror=window.__pwned=3>"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000  # per Playwright wait; the machine is shared, so generous


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


XSS_SQL = f"""
grant create on schema {SCHEMA} to project_admin;
create table {SCHEMA}.{_quoted(XSS_TABLE)} (
  id int primary key, {_quoted('"><svg onload=window.__pwned=4>')} text);
insert into {SCHEMA}.{_quoted(XSS_TABLE)} values (1, $x${XSS_CELL}$x$);
grant select, insert, update, delete on {SCHEMA}.{_quoted(XSS_TABLE)} to authenticated, project_admin;
create view {SCHEMA}.published as select id, title, views from {SCHEMA}.posts where status = 'published';
grant select on {SCHEMA}.published to anon, authenticated, project_admin;
"""


def chromium_path() -> str | None:
    path = os.environ.get("DASHBOARD_CHROMIUM") or "/usr/bin/chromium"
    return path if Path(path).exists() else shutil.which("chromium")


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the screenshots go to (printed, so a person can look at them)."""
    chosen = os.environ.get("DASHBOARD_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("dashboard-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\ndashboard screenshots: {folder}")
    return folder


@pytest_asyncio.fixture(scope="module")
async def live(pg_url: str) -> AsyncIterator[LiveServer]:
    await run_sql(pg_url, blog_fixture(SCHEMA, OTHER) + XSS_SQL)
    with live_server(pg_url, schemas=(SCHEMA, OTHER)) as server:
        yield server
    await run_sql(pg_url, f"drop schema {SCHEMA}, {OTHER} cascade")


@pytest_asyncio.fixture(scope="module")
async def browser(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    """A Chromium context with a new, empty profile (Playwright cannot download browsers here)."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium at /usr/bin/chromium or on PATH (apt-get install chromium), so no browser tests")
    async with playwright_api.async_playwright() as pw:
        try:
            context = await pw.chromium.launch_persistent_context(
                str(tmp_path_factory.mktemp("chromium-profile")), executable_path=executable, headless=True,
                args=CHROMIUM_ARGS, viewport=DESKTOP)
        except playwright_api.Error as exc:
            pytest.skip(f"Chromium at {executable} did not start: {str(exc).splitlines()[0]}")
        context.set_default_timeout(TIMEOUT_MS)
        yield context
        await context.close()


@dataclass
class Tab:
    """One browser tab on the dashboard, with everything it reported."""

    page: Any
    live: LiveServer
    folder: Path
    name: str
    console_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "404 GET /path" for every response >= 400
    steps: int = 0

    async def shot(self, step: str) -> Path:
        self.steps += 1
        path = self.folder / f"{self.name}-{self.steps:02d}-{step}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path

    async def sign_in(self, key: str | None = None) -> None:
        await self.page.goto(self.live.url + "/dashboard")
        await self.page.get_by_label("Admin API key").fill(key or self.live.api_key)
        await self.page.get_by_role("button", name="Sign in").click()
        await self.page.get_by_role("button", name="Sign out").wait_for()

    def assert_clean(self, *expected_failures: str) -> None:
        """No console error and no failed request, except failures listed (as regexes) by the caller;
        the browser's own "Failed to load resource" line for each of those is allowed too."""
        unexpected = [f for f in self.failed if not any(re.fullmatch(e, f) for e in expected_failures)]
        assert unexpected == [], unexpected
        errors = [e for e in self.console_errors
                  if not (self.failed and e.startswith("Failed to load resource: the server responded with a status"))]
        assert errors == [], errors


@pytest_asyncio.fixture
async def tab(browser: Any, live: LiveServer, shots: Path, request: pytest.FixtureRequest) -> AsyncIterator[Tab]:
    page = await browser.new_page()
    await page.set_viewport_size(DESKTOP)
    name = request.node.name.removeprefix("test_")[:60]
    t = Tab(page, live, shots, name)
    page.on("console", lambda msg: t.console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: t.console_errors.append(f"uncaught: {exc}"))
    page.on("response", lambda r: t.failed.append(f"{r.status} {r.request.method} {r.url.removeprefix(live.url)}")
            if r.status >= 400 else None)
    yield t
    await page.close()


@pytest_asyncio.fixture
async def todos(live: LiveServer, pg: asyncpg.Connection) -> asyncpg.Connection:
    await pg.execute(f"update {SCHEMA}.posts set title = 'Hello World' where id = 1")
    return pg


def table_link(page: Any, name: str) -> Any:
    """The sidebar's link to a table (its accessible name adds "view", or "RLS off" where RLS is off)."""
    return page.get_by_role("complementary", name="Tables").get_by_role(
        "link", name=re.compile(f"^{re.escape(name)}( view| RLS off)?$"))


def row_cell(page: Any, row_id: int, column: str) -> Any:
    """The cell of ``column`` in the records row whose id cell reads ``row_id``."""
    row = page.locator("table.records tbody tr").filter(
        has=page.locator('td[data-column="id"]', has_text=re.compile(f"^{row_id}$")))
    return row.locator(f'td[data-column="{column}"]')


async def test_an_admin_signs_in_browses_filters_edits_queries_migrates_and_signs_out(
        tab: Tab, todos: asyncpg.Connection) -> None:
    page = tab.page
    await page.goto(tab.live.url + "/dashboard")
    await page.get_by_label("Admin API key").wait_for()
    await tab.shot("sign-in-form")

    await tab.sign_in()
    for name in ("users", "posts", "comments", "todos", "notes", "published", XSS_TABLE):
        await table_link(page, name).wait_for()
    await page.evaluate("window.__samePage = true")  # gone if anything reloads the page
    await tab.shot("signed-in-tables")

    await table_link(page, "posts").click()
    await page.get_by_role("heading", name="dash.posts").wait_for()
    assert await page.locator(".facts .badge.warn").inner_text() == "RLS off"
    columns = page.get_by_role("region", name="Columns")
    assert "'draft'::text" in await columns.inner_text()
    await columns.get_by_role("link", name="→ users.id").wait_for()
    referenced_by = page.get_by_role("region", name="Referenced by")
    await referenced_by.get_by_role("link", name="dash.comments (post_id)").wait_for()
    assert "posts_pkey" in await page.get_by_role("region", name="Indexes").inner_text()
    await tab.shot("table-structure")

    await table_link(page, "notes").click()
    await page.get_by_role("heading", name="dash.notes").wait_for()
    assert await page.locator(".facts .badge.ok").inner_text() == "RLS on"
    assert "notes_select" in await page.get_by_role("region", name="Policies").inner_text()
    await tab.shot("rls-table-policies")

    await table_link(page, "posts").click()
    await page.get_by_role("link", name="Records").click()
    total = page.locator(".pager .total")
    await expect(total).to_have_text("Rows 1-5 of 5")
    await page.get_by_role("button", name="Add filter").click()
    await page.get_by_label("Filter column").select_option("status")
    await page.get_by_label("Operator").select_option("eq")
    await page.get_by_label("Filter value").fill("published")
    await page.get_by_role("button", name="Apply").click()
    await expect(total).to_have_text("Rows 1-3 of 3")
    await page.get_by_role("button", name="Sort by views").click()  # ascending
    await page.get_by_role("button", name="Sort by views").click()  # descending
    await expect(page.locator('th[aria-sort="descending"]')).to_have_text("views▼")
    views = await page.locator('table.records td[data-column="views"]').all_inner_texts()
    assert views == ["120", "50", "5"]
    assert await total.inner_text() == "Rows 1-3 of 3"
    assert await page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
    await tab.shot("records-filtered-sorted")

    await row_cell(page, 1, "title").get_by_role("button").click()
    editor = page.get_by_label("New value for title")
    await editor.fill("Edited in the browser")
    await editor.press("Enter")
    await page.get_by_text("Saved title of the row id=1.").wait_for()
    assert await row_cell(page, 1, "title").inner_text() == "Edited in the browser"
    assert await todos.fetchval(f"select title from {SCHEMA}.posts where id = 1") == "Edited in the browser"
    await tab.shot("cell-edited")

    await page.get_by_role("link", name="SQL", exact=True).click()
    await page.get_by_label("Query").fill(f"select id, title from {SCHEMA}.posts where views > $1 order by id")
    await page.get_by_label("Parameters ($1, $2, …) as a JSON array").fill("[10]")
    assert await page.get_by_label("strict").is_checked()
    await page.get_by_role("button", name="Run").click()
    result = page.get_by_role("region", name="Result rows")
    await result.wait_for()
    assert await page.get_by_text("SELECT · 2 row(s)").is_visible()
    assert await result.locator("tbody tr").all_inner_texts() == ["1\tEdited in the browser", "4\thello again"]
    await tab.shot("strict-sql")

    await page.get_by_role("link", name="Migrations", exact=True).click()
    version = str(await todos.fetchval("select (extract(epoch from clock_timestamp()) * 1000)::bigint"))
    await page.get_by_label("Version (digits; compared numerically)").fill(version)
    await page.get_by_label("Name").fill("create_tags")
    await page.get_by_label("SQL (no BEGIN/COMMIT").fill("create table tags (id int primary key, label text not null)")
    await page.get_by_role("button", name="Apply migration").click()
    await page.get_by_role("link", name="dash.tags").wait_for()
    await page.get_by_role("region", name="Migration history").get_by_text("create_tags").wait_for()
    await tab.shot("migration-applied")

    await page.get_by_role("link", name="Tables", exact=True).click()
    await table_link(page, "tags").click()
    await page.get_by_role("heading", name="dash.tags").wait_for()
    assert await page.evaluate("window.__samePage") is True  # no reload happened
    await tab.shot("new-table-without-reload")

    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_label("Admin API key").wait_for()
    assert await page.evaluate("sessionStorage.length") == 0
    assert await page.get_by_role("complementary", name="Tables").count() == 0
    await tab.shot("signed-out")
    tab.assert_clean()


async def test_attacker_controlled_names_and_values_are_shown_as_text_and_never_run(tab: Tab) -> None:
    page = tab.page
    await tab.sign_in()
    await table_link(page, XSS_TABLE).click()
    await page.get_by_role("heading", name=f"{SCHEMA}.{XSS_TABLE}").wait_for()
    assert '"><svg onload=window.__pwned=4>' in await page.get_by_role("region", name="Columns").inner_text()
    await page.get_by_role("link", name="Records").click()
    await page.get_by_text(XSS_CELL, exact=True).wait_for()
    await tab.shot("records")
    await page.get_by_role("link", name="SQL", exact=True).click()
    await page.get_by_label("Query").fill(f'select * from {SCHEMA}."{XSS_TABLE}"')
    await page.get_by_role("button", name="Run").click()
    await page.get_by_role("region", name="Result rows").get_by_text(XSS_CELL, exact=True).wait_for()
    await tab.shot("sql-result")
    assert await page.evaluate("window.__pwned") is None
    # nothing the data described became an element: the dashboard itself makes no img, svg or inline script
    assert await page.evaluate("document.querySelectorAll('img, svg, script:not([src]), iframe').length") == 0
    tab.assert_clean()


async def test_a_refused_edit_shows_the_api_error_body(tab: Tab, todos: asyncpg.Connection) -> None:
    page = tab.page
    await tab.sign_in()
    await page.goto(tab.live.url + f"/dashboard#/tables/{SCHEMA}/posts/records")
    cell = row_cell(page, 2, "views")
    await cell.get_by_role("button").click()
    await page.get_by_label("New value for views").fill("many")
    await page.get_by_role("button", name="Save").click()
    alert = page.get_by_role("alert")
    await alert.wait_for()
    body = await alert.locator("pre.body").inner_text()
    assert '"statusCode": 400' in body and '"error":' in body and '"nextActions":' in body
    assert await todos.fetchval(f"select views from {SCHEMA}.posts where id = 2") == 5
    await tab.shot("error-body")
    tab.assert_clean(r"400 PATCH /api/database/records/posts\?.*")


async def test_a_row_is_inserted_and_deleted_from_the_records_browser(tab: Tab, pg: asyncpg.Connection) -> None:
    page = tab.page
    await pg.execute(f"delete from {SCHEMA}.todos where title = 'from the browser'")
    await tab.sign_in()
    await page.goto(tab.live.url + f"/dashboard#/tables/{SCHEMA}/todos/records")
    await page.get_by_role("button", name="Insert row").click()
    assert await page.get_by_label("id").get_attribute("placeholder") == "generated"  # an identity column
    assert await page.get_by_label("done").get_attribute("placeholder") == "default: false"
    await page.get_by_label("title").fill("from the browser")
    await page.get_by_label("priority").fill("7")
    await tab.shot("insert-form")
    await page.get_by_role("button", name="Insert", exact=True).click()
    await page.get_by_text("Inserted 1 row.").wait_for()
    new_id = await pg.fetchval(f"select id from {SCHEMA}.todos where title = 'from the browser' and priority = 7")
    assert new_id is not None
    await row_cell(page, new_id, "title").wait_for()
    await tab.shot("inserted")
    await page.get_by_role("button", name=f"Delete the row id={new_id}").click()
    await page.get_by_role("button", name="Confirm delete").click()
    await page.get_by_text(f"Deleted 1 row(s): id={new_id}.").wait_for()
    assert await pg.fetchval(f"select count(*) from {SCHEMA}.todos where id = $1", new_id) == 0
    await tab.shot("deleted")
    tab.assert_clean()


async def test_without_a_key_only_the_sign_in_form_loads_and_nothing_is_fetched(tab: Tab) -> None:
    page = tab.page
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url.removeprefix(tab.live.url)))
    await page.goto(tab.live.url + f"/dashboard#/tables/{SCHEMA}/posts/records")
    await page.get_by_label("Admin API key").wait_for()
    await page.wait_for_load_state("networkidle")
    assert [r for r in requested if not r.startswith("/dashboard")] == []
    assert await page.locator("main").count() == 1 and await page.locator("nav, aside, table").count() == 0
    await tab.shot("only-sign-in")
    tab.assert_clean()


async def test_a_wrong_key_and_a_non_admin_key_are_refused_at_sign_in(tab: Tab) -> None:
    page = tab.page
    await page.goto(tab.live.url + "/dashboard")
    await page.get_by_label("Admin API key").fill("ik_" + "f" * 64)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("alert").get_by_text("401 AUTH_INVALID_API_KEY").wait_for()
    await tab.shot("wrong-key")
    await page.get_by_label("Admin API key").fill(tab.live.anon_key)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_text("This key is not an admin key").wait_for()
    await page.get_by_role("alert").get_by_text("403 FORBIDDEN").wait_for()
    await tab.shot("anon-key")
    assert await page.evaluate("sessionStorage.length") == 0
    tab.assert_clean(r"401 POST /graphql")


async def test_functions_advisor_and_openapi_views_show_what_the_api_returns(tab: Tab) -> None:
    page = tab.page
    await tab.sign_in()
    await page.get_by_role("link", name="Functions", exact=True).click()
    functions = page.get_by_role("region", name="Functions")
    for name in ("dash.add", "dash.posts_by_status", "dash.bump"):
        await functions.get_by_text(name, exact=True).wait_for()
    await tab.shot("functions")

    await page.get_by_role("link", name="Advisor", exact=True).click()
    findings = page.locator("ol.findings > li")
    # the fixture's tables are readable by anon with RLS off: the gateway's advisor says so
    await findings.filter(has=page.get_by_role("link", name="dash.posts")).first.wait_for()
    assert await page.locator(".error").count() == 0
    await tab.shot("advisor")

    await page.get_by_role("link", name="OpenAPI", exact=True).click()
    paths = page.get_by_role("region", name="Paths")
    await paths.get_by_text("/records/posts", exact=False).first.wait_for()
    await tab.shot("openapi")
    graphiql = page.get_by_role("link", name="GraphiQL ↗")
    assert await graphiql.get_attribute("href") == tab.live.url + "/graphql"
    tab.assert_clean()


async def test_a_gateway_without_the_advisor_endpoint_gets_a_plain_notice(tab: Tab) -> None:
    page = tab.page

    async def missing(route: Any) -> None:
        await route.fulfill(status=404, content_type="application/json", body=json.dumps(
            {"error": "NOT_FOUND", "message": "Route GET /api/database/advisor not found", "statusCode": 404,
             "nextActions": "Check the path"}))

    await page.route("**/api/database/advisor", missing)
    await tab.sign_in()
    await page.get_by_role("link", name="Advisor", exact=True).click()
    await page.get_by_text("This gateway has no advisor endpoint").wait_for()
    assert await page.get_by_role("alert").count() == 0
    await tab.shot("advisor-missing")
    tab.assert_clean(r"404 GET /api/database/advisor")


async def test_keyboard_alone_signs_in_opens_a_table_and_edits_a_cell(tab: Tab, todos: asyncpg.Connection) -> None:
    page = tab.page
    await page.goto(tab.live.url + "/dashboard")
    await page.keyboard.type(tab.live.api_key)  # the key field has focus on load
    await page.keyboard.press("Enter")
    await page.get_by_role("button", name="Sign out").wait_for()

    async def tab_to(predicate: str, limit: int = 60) -> None:
        for _ in range(limit):
            await page.keyboard.press("Tab")
            if await page.evaluate(f"(el => {predicate})(document.activeElement)"):
                return
        raise AssertionError(f"Tab never reached an element with {predicate}")

    await tab_to("el.matches('aside a') && el.dataset.table === 'posts'")
    await page.keyboard.press("Enter")
    await page.get_by_role("heading", name="dash.posts").wait_for()
    await tab_to("el.matches('.tabs a') && el.textContent === 'Records'")
    await page.keyboard.press("Enter")
    await page.locator("table.records").wait_for()
    await tab_to("el.matches('td[data-column=\"title\"] button.cell')")
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.getAttribute('aria-label')") == "New value for title"
    await tab.shot("editing-by-keyboard")
    await page.keyboard.press("Escape")
    assert await page.evaluate("document.activeElement.matches('button.cell')")
    tab.assert_clean()


async def test_the_phone_width_layout_needs_no_sideways_scrolling(tab: Tab) -> None:
    page = tab.page
    await page.set_viewport_size(PHONE)
    await page.emulate_media(color_scheme="dark")
    await tab.sign_in()
    await tab.shot("tables-dark")
    await page.emulate_media(color_scheme="light")
    await page.goto(tab.live.url + f"/dashboard#/tables/{SCHEMA}/posts")
    await page.get_by_role("heading", name="dash.posts").wait_for()
    await tab.shot("structure")
    await page.get_by_role("link", name="Records").click()
    await page.locator("table.records").wait_for()
    await tab.shot("records")
    await page.get_by_role("link", name="SQL", exact=True).click()
    await tab.shot("sql")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width}px wide at {PHONE['width']}px"
    tab.assert_clean()


async def test_a_view_is_listed_with_its_kind_and_its_rows_are_read_only(tab: Tab) -> None:
    page = tab.page
    await tab.sign_in()
    await page.goto(tab.live.url + f"/dashboard#/tables/{SCHEMA}/published/records")
    await page.get_by_role("heading", name="dash.published").wait_for()
    await expect(page.locator(".pager .total")).to_have_text("Rows 1-3 of 3")
    assert await page.locator(".facts .badge.kind").inner_text() == "view"
    assert await page.locator("table.records button.cell").count() == 0
    assert await page.get_by_role("button", name="Insert row").count() == 0
    await tab.shot("view-records")
    tab.assert_clean()


FINDINGS = [
    {"check": "rls_disabled", "level": "ERROR", "title": "RLS is off on a table the API roles can reach",
     "object": {"schema": "dash", "name": "posts", "kind": "table"}, "detail": "anon can SELECT",
     "why": "Every row is readable", "fix": "alter table dash.posts enable row level security;"},
    {"level": "INFO", "object": XSS_TABLE, "why": XSS_CELL, "fix": None, "extra": {"nested": [1, 2]}},
]


async def test_advisor_findings_show_every_field_they_carry_as_text(tab: Tab) -> None:
    """The advisor's answer is stubbed in the browser, so the view is checked whatever the gateway has."""
    page = tab.page

    async def fulfil(route: Any) -> None:
        await route.fulfill(status=200, content_type="application/json", body=json.dumps(FINDINGS))

    await page.route("**/api/database/advisor", fulfil)
    await tab.sign_in()
    await page.get_by_role("link", name="Advisor", exact=True).click()
    findings = page.locator("ol.findings > li")
    await expect(findings).to_have_count(2)
    first, second = findings.nth(0), findings.nth(1)
    assert await first.locator(".badge").inner_text() == "ERROR"
    assert await first.locator("strong").inner_text() == "RLS is off on a table the API roles can reach"
    assert await first.get_by_role("link", name="dash.posts").get_attribute("href") == "#/tables/dash/posts"
    assert "anon can SELECT" in await first.inner_text() and "Every row is readable" in await first.inner_text()
    assert await first.locator("pre").inner_text() == "alter table dash.posts enable row level security;"
    assert "check\nrls_disabled" in await first.locator("dl").inner_text()
    assert await second.locator("code").inner_text() == XSS_TABLE
    await second.get_by_text(XSS_CELL, exact=True).wait_for()
    assert '{"nested":[1,2]}' in await second.locator("dl").inner_text()
    await tab.shot("findings")
    await first.get_by_role("link", name="Open the fix in the SQL editor").click()
    await expect(page.get_by_label("Query")).to_have_value("alter table dash.posts enable row level security;")
    assert await page.evaluate("window.__pwned") is None
    tab.assert_clean()


async def test_a_key_that_stops_working_returns_the_page_to_sign_in(tab: Tab) -> None:
    page = tab.page
    await tab.sign_in()
    await page.evaluate("sessionStorage.setItem('gateway.dashboard.key', 'ik_' + 'e'.repeat(64))")  # as if rotated
    await page.get_by_role("link", name="Functions", exact=True).click()
    await page.get_by_role("alert").get_by_text("401 AUTH_INVALID_API_KEY").wait_for()
    await page.get_by_label("Admin API key").wait_for()
    assert await page.evaluate("sessionStorage.length") == 0
    await tab.shot("back-to-sign-in")
    tab.assert_clean(r"401 POST /graphql")


async def test_a_table_of_the_second_schema_is_read_and_edited_through_its_profile(
        tab: Tab, pg: asyncpg.Connection) -> None:
    page = tab.page
    await pg.execute(f"update {OTHER}.events set kind = 'view' where id = 2")
    await tab.sign_in()
    await page.get_by_role("heading", name=OTHER).wait_for()  # the sidebar groups by schema
    await page.goto(tab.live.url + f"/dashboard#/tables/{OTHER}/events/records")
    await page.get_by_role("heading", name=f"{OTHER}.events").wait_for()
    await expect(page.locator(".pager .total")).to_have_text("Rows 1-3 of 3")
    await row_cell(page, 2, "kind").get_by_role("button").click()
    await page.get_by_label("New value for kind").fill("scroll")
    await page.get_by_role("button", name="Save").click()
    await page.get_by_text("Saved kind of the row id=2.").wait_for()
    assert await pg.fetchval(f"select kind from {OTHER}.events where id = 2") == "scroll"
    await tab.shot("other-schema-edited")
    tab.assert_clean()


async def test_strict_sql_refuses_auth_users_with_its_error_body_and_relaxed_sql_reads_it(tab: Tab) -> None:
    page = tab.page
    await tab.sign_in()
    await page.get_by_role("link", name="SQL", exact=True).click()
    await page.get_by_label("Query").fill("select count(*) as users from auth.users")
    await page.get_by_label("Query").press("Control+Enter")
    alert = page.get_by_role("alert")
    await alert.wait_for()
    assert '"statusCode": 4' in await alert.locator("pre.body").inner_text()
    await tab.shot("strict-refused")
    await page.get_by_label("relaxed").check()
    await page.get_by_role("button", name="Run").click()
    result = page.get_by_role("region", name="Result rows")
    await result.wait_for()
    assert await result.locator("th").all_inner_texts() == ["users"]
    await tab.shot("relaxed-result")
    tab.assert_clean(r"4\d\d POST /api/database/advance/rawsql")
