"""A private Docker engine for the deploy test, and the images it needs, made without a registry.

`Engine` runs `dockerd --storage-driver vfs` (no overlay support needed, works as root in a
container or a VM) on its own socket, data root and exec root, so it touches no other engine and
leaves nothing behind once stopped. `base_image` makes the one base image offline-able from
Debian packages (`mmdebstrap`): Python for the oneha image, redis-server for the Redis service.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"  # Debian's client, the same version as its engine
# One minbase image serves both: python3 (with venv) for oneha, redis-server (and redis-cli for
# the health check) for Redis; /data belongs to the redis user, as in the official image.
BASE_PACKAGES = ("python3", "python3-venv", "redis-server")
BASE_HOOK = 'chroot "$1" install -d -o redis -g redis -m 0750 /data'
CACHE_DAYS = 7  # a cached base tarball older than this is made again (security updates)
# What the project's Dockerfile copies (the .dockerignore allow-list) plus the deploy files.
CONTEXT = ("Dockerfile", ".dockerignore", "docker-compose.yml", "pyproject.toml", "README.md",
           "gateway", "tasks", "hook_templates", "wheelhouse/README.md")
# Debian bookworm's Python is 3.11.2: redis-py wants async-timeout below 3.11.3, a marker the
# host's newer Python skips when it builds the wheelhouse, so it is asked for by name.
IMAGE_PYTHON_EXTRAS = ("async-timeout>=4.0.3",)


def unavailable(reason: str):
    """No engine here: a failure in CI (CI=true), a skip that says why elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"deploy test cannot run: {reason}")
    pytest.skip(f"deploy test cannot run here: {reason}")


def check_host() -> None:
    if os.geteuid() != 0:
        unavailable("dockerd needs root (run as root, or in CI)")
    for tool, package in ((DOCKERD, "docker.io"), (DOCKER, "docker.io"),
                          (shutil.which("mmdebstrap") or "/usr/bin/mmdebstrap", "mmdebstrap"),
                          (shutil.which("docker-compose") or "/usr/bin/docker-compose",
                           "docker-compose")):
        if not os.access(tool, os.X_OK):
            unavailable(f"{tool} is missing (Debian package {package}; `make services` installs it)")


def host_address() -> str:
    """This machine's address on its default route (no packet is sent)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as s:
        try:
            s.connect(("198.51.100.1", 9))  # TEST-NET-2: only picks the outgoing interface
            return s.getsockname()[0]
        except OSError:
            unavailable("this machine has no IPv4 address for the containers to reach it at")
    return ""


class Engine:
    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.socket = self.workdir / "docker.sock"
        self.log = self.workdir / "dockerd.log"
        self.proc: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": f"unix://{self.socket}", "DOCKER_BUILDKIT": "0",
                "COMPOSE_DOCKER_CLI_BUILD": "0"}

    def start(self, timeout: float = 60.0) -> "Engine":
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log, "ab")
        # No docker0 of ours (a CI runner may have its own engine and bridge); containers reach
        # the host, where the test's sinks listen, at its own address (host.docker.internal).
        # iptables stays on: the compose network's DNS (127.0.0.11) is a NAT rule.
        self.proc = subprocess.Popen(
            [DOCKERD, "--storage-driver", "vfs", "--data-root", str(self.workdir / "data"),
             "--exec-root", str(self.workdir / "exec"), "--pidfile", str(self.workdir / "pid"),
             "--host", f"unix://{self.socket}", "--bridge", "none",
             "--host-gateway-ip", host_address()],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                unavailable(f"dockerd exited with {self.proc.returncode}: {self.tail()}")
            if self.docker("version", check=False, timeout=10).returncode == 0:
                return self
            time.sleep(0.2)
        self.stop()
        unavailable(f"dockerd did not answer within {timeout:.0f}s: {self.tail()}")
        return self

    def tail(self, n: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        return ""

    def docker(self, *args: str, check: bool = True, timeout: float = 600,
               input: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run([DOCKER, *args], env=self.env, capture_output=True, text=True,
                                timeout=timeout, input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {result.stderr or result.stdout}")
        return result

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM (dockerd stops its containers and containerd), then wait; what is left of
        the data root is removed."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None
        subprocess.run(["umount", "-R", str(self.workdir / "exec")], capture_output=True)
        shutil.rmtree(self.workdir / "data", ignore_errors=True)

    def left(self) -> list[str]:
        """Processes of this engine still alive: dockerd, containerd and the shims all name
        this engine's directories in their arguments."""
        import psutil
        mine = str(self.workdir)
        out = []
        for p in psutil.process_iter(["pid", "cmdline"]):
            try:
                if any(mine in arg for arg in p.info["cmdline"] or ()):
                    out.append(f"{p.info['pid']} {' '.join(p.info['cmdline'])[:120]}")
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return out


def base_tarball(cache: Path) -> Path:
    """A minbase bookworm root file system with BASE_PACKAGES (made once a week at most)."""
    key = hashlib.sha256(" ".join((*BASE_PACKAGES, BASE_HOOK)).encode()).hexdigest()[:12]
    tar = Path(cache) / f"oneha-base-bookworm-{key}.tar"
    if tar.exists() and time.time() - tar.stat().st_mtime < CACHE_DAYS * 86400:
        return tar
    tar.parent.mkdir(parents=True, exist_ok=True)
    tmp = tar.with_suffix(".part")
    result = subprocess.run(
        ["mmdebstrap", "--quiet", "--format=tar", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
         f"--customize-hook={BASE_HOOK}", "bookworm", str(tmp)],
        capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        unavailable(f"mmdebstrap could not make the base image: {result.stderr[-2000:]}")
    tmp.rename(tar)
    return tar


def build_context(dest: Path) -> Path:
    """The project's files as they are in this checkout (committed or not), plus a wheelhouse
    built here with the host's package index, so the image build itself needs no network."""
    dest.mkdir(parents=True)
    for name in CONTEXT:
        src, dst = ROOT / name, dest / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dst)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
         "-w", str(dest / "wheelhouse"), "setuptools", "wheel", *IMAGE_PYTHON_EXTRAS, str(dest)],
        capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        unavailable(f"pip wheel could not fill the wheelhouse: {result.stderr[-2000:]}")
    return dest
