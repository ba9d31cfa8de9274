"""`make demo` as a newcomer runs it: one command, the whole story, nothing left behind."""

import os
import re
import subprocess
import sys

import pytest

from tests.support.procs import started_under

pytestmark = pytest.mark.slow


def test_demo_tells_the_whole_story_and_leaves_no_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "ONEHA_REDIS_URL",
                                                             "ONEHA_CONFIG")}
    env["TMPDIR"] = str(tmp_path)  # the demo's work directory, removed when it is done
    proc = subprocess.run([sys.executable, "-m", "gateway.cli", "demo"], env=env,
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out

    # What a person receives, in order: the grouped alert, the approval request, the resolve.
    firing = out.index("Subject: [FIRING] Host node01 is in ERROR — 4 VMs affected")
    approval = out.index("Subject: [APPROVAL NEEDED] Host node01")
    resolved = out.index("Subject: [RESOLVED] Host node01 failed — its 4 VMs run again elsewhere")
    assert firing < approval < resolved
    assert re.search(r"console: http://127\.0\.0\.1:\d+/  \(log in as admin / \S{16}; ", out), \
        "the demo's own login is printed"
    firings = [line for line in out.splitlines() if "Subject: [FIRING]" in line]
    # Every message's subject and first lines, so a failure says which second alert it was.
    assert len(firings) == 1, ("one grouped message, not one per VM", firings, out[-4000:])
    for vm in ("web-1", "web-2", "db-1", "cache-1"):
        assert f"{vm} (#" in out[resolved:], f"{vm} missing from the impact report"
    assert "recovery calls made to OpenNebula: 4 for 4 VMs" in out

    assert not started_under(tmp_path), "processes left behind"
    assert not list(tmp_path.glob("oneha-demo-*")), "work directory left behind"
