"""Fencing runs a real executable: allowlisted, host name as the only argument, time-limited."""

import os
import stat
import time

import pytest

from gateway.adapters.fencing import Fencer
from gateway.errors import ConfigError


def script(tmp_path, name, body):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_success_passes_exactly_the_host_name(tmp_path):
    out = tmp_path / "args"
    cmd = script(tmp_path, "fence", f'printf "%s|" "$@" > {out}; echo fenced "$1"\n')
    result = Fencer(cmd, [cmd], timeout=5).fence("node07")
    assert result.ok and result.returncode == 0 and "fenced node07" in result.detail
    assert out.read_text() == "node07|"


def test_failure_is_reported_with_its_output(tmp_path):
    cmd = script(tmp_path, "fence", 'echo "ipmi: no route" >&2; exit 3\n')
    result = Fencer(cmd, [cmd], timeout=5).fence("node07")
    assert not result.ok and result.returncode == 3 and "ipmi: no route" in result.detail


def test_a_hanging_command_and_its_children_are_killed_at_the_time_limit(tmp_path):
    marker = tmp_path / "child.pid"
    cmd = script(tmp_path, "fence", f"sleep 30 & echo $! > {marker}; wait\n")
    result = Fencer(cmd, [cmd], timeout=0.5).fence("node07")
    assert not result.ok and result.returncode is None and "killed" in result.detail
    child = int(marker.read_text())
    # SIGKILL is delivered asynchronously: give the kernel a moment (bounded), then insist.
    deadline = time.monotonic() + 3
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(child), "the fencing command's child outlived the time limit"


def _gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().split()[2] == "Z":  # killed, not yet reaped by init
                return True
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            # The suite forks a lot and pid_max may be 32768: a reused pid is not our child.
            return b"sleep\x0030" not in f.read()
    except FileNotFoundError:
        return True


def test_only_allowlisted_absolute_paths_and_sane_host_names(tmp_path):
    cmd = script(tmp_path, "fence", "exit 0\n")
    with pytest.raises(ConfigError, match="allowlisted"):
        Fencer(cmd, ["/usr/bin/other"], timeout=1)
    with pytest.raises(ConfigError, match="allowlisted"):
        Fencer("fence", ["fence"], timeout=1)
    result = Fencer(cmd, [cmd], timeout=1).fence("node07; rm -rf /")
    assert not result.ok and "odd host name" in result.detail
