"""The house's rules, checked on the code itself: who may import whom, and sizes.

docs/architecture.md states them; these tests make a change that breaks one fail.
Imports are read from the source (``ast``), at any depth: a deferred import
inside a function counts like one at the top.
"""

from __future__ import annotations

import ast
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("rules", "service", "brokers")
MODULE_LINES = 400
FUNCTION_LINES = 60
# The composition root: the one module that may import a concrete broker or the SQL store
ROOT_MODULE = "service.bootstrap"


def _modules(*tops: str) -> Iterator[tuple[str, Path]]:
    for top in tops:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path


def _imports(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports (``from a import b`` counts a.b when a.b is a
    module, else a)."""
    known = {n for n, _ in _modules(*PACKAGES)}
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for written in targets:
            target = written
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    return {name: _imports(name, path) for name, path in _modules(*PACKAGES)}


def test_rules_import_nothing_of_the_service_or_the_brokers() -> None:
    """The domain is pure: no module of rules/ imports service/ or brokers/."""
    bad = {
        name: sorted(i for i in imports if not i.startswith("rules"))
        for name, imports in _graph().items()
        if name.startswith("rules")
    }
    assert {k: v for k, v in bad.items() if v} == {}


def _concrete(target: str) -> bool:
    """A concrete broker or the SQL store (ports, errors and the store's own modules aside)."""
    return target.startswith("brokers.") or target.startswith("service.store")


def test_only_the_composition_root_imports_a_concrete_broker_or_the_sql_store() -> None:
    """service/ (but the bootstrap and the store itself) reaches brokers and the SQL store
    only through the ports and service.bootstrap."""
    bad = {
        name: sorted(t for t in imports if _concrete(t))
        for name, imports in _graph().items()
        if name.startswith("service")
        and name != ROOT_MODULE
        and not name.startswith(ROOT_MODULE + ".")
        and not name.startswith(ROOT_MODULE + ".")
        and not name.startswith("service.store")
    }
    assert {k: v for k, v in bad.items() if v} == {}


def test_no_import_cycle() -> None:
    """The project's modules import one another without a cycle (deferred imports too)."""
    graph = _graph()
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            cycles.append([*path[path.index(node) :], node])
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            # a package's __init__ importing its own submodule is not a cycle of files
            if not nxt.startswith(node + "."):
                visit(nxt, [*path, node])
        done.add(node)

    for name in sorted(graph):
        visit(name, [])
    assert cycles == []


@pytest.mark.parametrize("top", [*PACKAGES, "benchmarks"])
def test_modules_and_functions_fit_in_one_sitting(top: str) -> None:
    """No module over ~400 lines, no function over ~60 (migrations and tests aside)."""
    long_modules, long_functions = [], []
    for name, path in _modules(top):
        text = path.read_text()
        if len(text.splitlines()) > MODULE_LINES:
            long_modules.append(name)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                if node.end_lineno - node.lineno + 1 > FUNCTION_LINES:
                    long_functions.append(f"{name}.{node.name}")
    assert (long_modules, long_functions) == ([], [])


def test_every_broker_the_settings_accept_is_in_the_registry() -> None:
    """settings.broker's names are exactly the composition root's registry of brokers."""
    from service.bootstrap import VENUES  # noqa: PLC0415
    from service.settings import Settings  # noqa: PLC0415

    accepted = typing.get_args(Settings.model_fields["broker"].annotation)
    assert sorted(accepted) == sorted(VENUES)


def test_every_broker_has_an_account_for_positions_sync() -> None:
    """The composition root's accounts (positions sync) are the same brokers as its venues."""
    from service.bootstrap import ACCOUNTS, VENUES  # noqa: PLC0415

    assert sorted(ACCOUNTS) == sorted(VENUES)


def test_every_package_of_the_source_is_installed() -> None:
    """A package missing from pyproject's list imports from a checkout and fails in an
    install (the image, a wheel)."""
    import tomli  # noqa: PLC0415

    listed = set(
        tomli.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("rules", "service", "brokers")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found - listed == set()
