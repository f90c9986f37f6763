"""The apps' dependencies point one way: the catalogue sits below requests and provisioning.

Read from the syntax tree, so a comment or a string naming an app does not count, and an
import inside a function (the usual way round an import cycle) does.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# app → the apps above it that it must never import
FORBIDDEN = {
    "catalogue": {"requests_app", "provisioning", "governance"},
    # Governance plugs its checks into the request services (register_order_check).
    "requests_app": {"governance"},
    "provisioning": {"governance"},
}


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every absolute import, and of import_module("…") / __import__("…")."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            first = node.args[0]
            if (
                name in {"import_module", "__import__"}
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                found.append((node.lineno, first.value))
    return found


def violations(app: str, forbidden: set[str]) -> list[str]:
    found = []
    for path in sorted((ROOT / app).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, module in imported_modules(tree):
            if module.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return found


@pytest.mark.parametrize("app", sorted(FORBIDDEN))
def test_app_does_not_import_the_apps_above_it(app):
    assert violations(app, FORBIDDEN[app]) == []


def test_the_check_sees_imports_and_ignores_comments():
    source = (
        "# from requests_app import services\n"
        "'provisioning.selectors'\n"
        "def f():\n"
        "    from provisioning.selectors import with_licence_usage\n"
        "    import requests_app.services as s\n"
        "    importlib.import_module('requests_app.models')\n"
        "from catalogue.models import CatalogueItem\n"
    )
    modules = [module for _line, module in imported_modules(ast.parse(source))]
    assert sorted(modules) == [
        "catalogue.models",
        "provisioning.selectors",
        "requests_app.models",
        "requests_app.services",
    ]
