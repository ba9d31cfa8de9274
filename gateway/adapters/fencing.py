"""Fencing: run the operator's allowlisted command with the host name as its only argument.

OpenNebula's `host_error.rb` pipes the host XML to `ft/fence_host.sh`, which ships as `exit 1`
and fails silently when nobody configured it (FACTS.md c). Here the command is an absolute path
that must also be in the allowlist, gets exactly one argument (the host name, never through a
shell), runs in its own process group with a time limit (the whole group is killed on timeout),
and its exit code, time and output tail are returned for the audit log. Recovery of the host's
VMs waits for `ok`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass

from gateway.errors import ConfigError

_HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,252}$")


@dataclass(frozen=True, slots=True)
class FenceResult:
    ok: bool
    returncode: int | None  # None: killed on timeout
    elapsed: float
    detail: str  # what to show in the audit log / timeline

    def to_dict(self) -> dict:
        return {"ok": self.ok, "returncode": self.returncode, "elapsed": round(self.elapsed, 3),
                "detail": self.detail}


class Fencer:
    def __init__(self, command: str, allowlist: list[str], timeout: float):
        if not os.path.isabs(command) or command not in allowlist:
            raise ConfigError(f"fencing command {command!r} is not an allowlisted absolute path")
        self.command = command
        self.timeout = float(timeout)

    def fence(self, host_name: str) -> FenceResult:
        if not _HOST_NAME.match(host_name or ""):
            return FenceResult(False, None, 0.0, f"refused to fence: odd host name {host_name!r}")
        if not os.access(self.command, os.X_OK):
            return FenceResult(False, None, 0.0, f"{self.command} is not an executable file")
        started = time.monotonic()
        proc = subprocess.Popen([self.command, host_name], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
        try:
            out, _ = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the command and anything it started
            except ProcessLookupError:
                pass
            out, _ = proc.communicate()
            return FenceResult(False, None, time.monotonic() - started,
                               f"{self.command} {host_name} did not finish within "
                               f"{self.timeout:g}s and was killed; output: {_tail(out)}")
        elapsed = time.monotonic() - started
        ok = proc.returncode == 0
        return FenceResult(ok, proc.returncode, elapsed,
                           f"{self.command} {host_name} exited {proc.returncode} after "
                           f"{elapsed:.2f}s; output: {_tail(out)}")


def _tail(data: bytes | None, limit: int = 400) -> str:
    text = (data or b"").decode("utf-8", "replace").strip()
    return text[-limit:] if text else "(none)"


def from_config(remediation) -> Fencer | None:
    f = remediation.fencing
    return Fencer(f.command, f.allowlist, f.timeout) if f.command else None
