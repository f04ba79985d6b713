"""Serving the dashboard: the page and its files, their security headers, and what the package ships.

In:  the full app in process (``running_app``) and the files under ``gateway/dashboard/static``.
Out: status, media type and headers of ``/dashboard`` and its files; the static files checked for
     the ways a page turns strings into markup or code; the wheel a non-editable install gets.
The browser tests are in ``test_dashboard_browser.py``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from support import Running, assert_error, running_app

from gateway.dashboard import routes

STATIC = Path(routes.__file__).parent / "static"
REPO = Path(__file__).parent.parent

# every way a page can turn a string into markup or into code
MARKUP_SINKS = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|"
                          r"setTimeout\(\s*['\"`]|srcdoc|createContextualFragment|DOMParser")


@pytest_asyncio.fixture(scope="module")
async def gw(pg_url: str) -> AsyncIterator[Running]:
    async with running_app(pg_url) as running:
        yield running


def csp_directives(value: str) -> dict[str, str]:
    return {part.split()[0]: part.strip() for part in value.split(";") if part.strip()}


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/"])
async def test_the_page_is_served_with_a_strict_policy_and_never_cached(gw: Running, path: str) -> None:
    r = await gw.client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    csp = csp_directives(r.headers["content-security-policy"])
    assert csp["default-src"] == "default-src 'none'"
    assert csp["script-src"] == "script-src 'self'"  # no 'unsafe-inline', no 'unsafe-eval', no hosts
    assert csp["style-src"] == "style-src 'self'"
    assert csp["frame-ancestors"] == "frame-ancestors 'none'"
    assert csp["base-uri"] == "base-uri 'none'" and csp["object-src"] == "object-src 'none'"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"
    assert "/dashboard/static/app.js" in r.text


async def test_the_page_holds_no_inline_script_or_style_and_loads_nothing_from_elsewhere(gw: Running) -> None:
    html = (await gw.client.get("/dashboard")).text
    assert re.findall(r"<script\b[^>]*>", html) == ['<script type="module" src="/dashboard/static/app.js">']
    assert "<style" not in html and " style=" not in html and "on" + "load=" not in html
    assert re.findall(r"(?:src|href)=\"([^\"]+)\"", html) == [
        "/dashboard/static/icon.svg", "/dashboard/static/dashboard.css", "/dashboard/static/app.js"]


@pytest.mark.parametrize(("name", "media"), [
    ("app.js", "text/javascript; charset=utf-8"), ("records.js", "text/javascript; charset=utf-8"),
    ("dashboard.css", "text/css; charset=utf-8"), ("icon.svg", "image/svg+xml")])
async def test_every_file_is_served_with_its_media_type_and_the_same_headers(gw: Running, name: str,
                                                                             media: str) -> None:
    r = await gw.client.get(f"/dashboard/static/{name}")
    assert r.status_code == 200
    assert r.headers["content-type"] == media
    assert r.content == (STATIC / name).read_bytes()
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("name", ["nope.js", "index.html", "..%2Froutes.py", "%2e%2e%2f__init__.py"])
async def test_a_name_outside_the_shipped_files_is_a_404_error_body(gw: Running, name: str) -> None:
    assert_error(await gw.client.get(f"/dashboard/static/{name}"), 404, "NOT_FOUND")


async def test_the_page_needs_no_credential_and_carries_no_data(gw: Running) -> None:
    r = await gw.client.get("/dashboard")
    assert r.status_code == 200
    assert gw.settings.api_key not in r.text


def test_no_dashboard_module_turns_strings_into_markup_or_code() -> None:
    found = {p.name: MARKUP_SINKS.findall(p.read_text("utf-8")) for p in STATIC.glob("*.js")}
    assert len(found) >= 8
    assert {name: hits for name, hits in found.items() if hits} == {}


def test_every_module_the_page_imports_is_a_shipped_file() -> None:
    imported = {m for p in STATIC.glob("*.js")
                for m in re.findall(r"^import .* from \"\./([\w.]+)\";$", p.read_text("utf-8"), re.M)}
    assert imported and imported <= {p.name for p in STATIC.iterdir()}
    assert imported <= routes.ASSETS


def test_a_non_editable_install_ships_the_dashboard_files(tmp_path: Path) -> None:
    """The wheel pip builds (from a copy, so the build leaves nothing in the checkout) holds every file."""
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in ("gateway", "schema"):
        shutil.copytree(REPO / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path),
                           str(source)], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:  # pip fetches setuptools for the isolated build; offline, it cannot
        pytest.skip(f"pip could not build a wheel here: {done.stderr.strip()[-300:]}")
    wheel = next(tmp_path.glob("gateway-*.whl"))
    shipped = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"gateway/dashboard/static/{p.name}" for p in STATIC.iterdir() if p.is_file()}
    assert expected <= shipped, expected - shipped
