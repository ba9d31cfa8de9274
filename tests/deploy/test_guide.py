"""docs/: the operator's guide in English and Brazilian Portuguese says the same things in the
same order, and its recovery table is what the simulator measures (docs/recovery_table.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EN, PT = ROOT / "docs" / "guide.en.md", ROOT / "docs" / "guia.pt-BR.md"
TOPICS = ("host_error.rb", "fence_host.sh", "LOG_RETENTION", "onedb backup", "onedb restore",
          "onezone server-reset", "oneha keys new", "oneha hooks install", "fencing.command",
          "oneha-rules.yml", "docs/recovery_table.py")


def test_both_guides_have_the_same_sections_and_topics():
    def outline(text):
        return [len(m.group(1)) for m in re.finditer(r"^(#+) ", text, re.M)]
    en, pt = EN.read_text(), PT.read_text()
    assert outline(en) == outline(pt) and len(outline(en)) >= 10
    for topic in TOPICS:
        assert topic in en and topic in pt, topic
    for action in ("resume", "resched", "recreate", "retry"):
        for text in (en, pt):
            assert re.search(rf"^\| `{action}` \|", text, re.M), action


def test_the_recovery_table_is_what_the_simulator_measures():
    """--check measures again and fails when a guide's table says something else (a state, a
    yes/no); the numbers may differ from run to run."""
    result = subprocess.run([sys.executable, str(ROOT / "docs" / "recovery_table.py"), "--check"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resched" in result.stdout and "PROLOG_MIGRATE_UNKNOWN" in result.stdout
