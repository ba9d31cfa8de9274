"""Every bench still imports: they are run by hand and by `make bench`, not by `make test`, so a
helper moved in the tests would otherwise break one silently (it happened: bench/storm.py)."""

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

BENCHES = sorted((Path(__file__).resolve().parents[2] / "bench").glob("*.py"))
OURS = ("gateway", "tasks", "simulator", "tests")


@pytest.mark.parametrize("path", BENCHES, ids=[p.name for p in BENCHES])
def test_bench_imports(path):
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # runs its imports, not its main (not __main__)
    assert callable(getattr(module, "main", None)), f"{path.name} has no main()"


@pytest.mark.parametrize("path", BENCHES, ids=[p.name for p in BENCHES])
def test_names_a_bench_imports_inside_its_functions_exist(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(OURS):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), \
                    f"{path.name}:{node.lineno}: {node.module} has no {alias.name}"


def test_there_are_benches():
    assert {p.name for p in BENCHES} >= {"ingest.py", "sender.py", "notify.py", "storm.py",
                                         "frontends.py"}
