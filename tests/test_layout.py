"""The package's import graph: the app wiring sits on top, nothing inside the package imports it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gateway"


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the gateway modules ``path`` imports (relative imports resolved)."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = parts[:-1]  # a module's package; for __init__.py, the package itself
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_no_module_of_the_package_imports_the_app_wiring() -> None:
    importers = [str(path.relative_to(PACKAGE.parent)) for path in PACKAGE.rglob("*.py")
                 if path.name != "app.py" and "gateway.app" in imported_modules(path)
                 and "bench" not in path.parts]
    assert importers == []


def test_planner_and_sql_builder_are_packages() -> None:
    assert (PACKAGE / "plan" / "__init__.py").is_file() and (PACKAGE / "sql" / "__init__.py").is_file()
    assert not list(PACKAGE.glob("plan?*.py")) and not list(PACKAGE.glob("sql?*.py"))
