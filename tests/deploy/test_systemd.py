"""deploy/systemd: the units load in systemd (`systemd-analyze verify`) with the commands they
run in place (the real `oneha` entry point and hook sender), and stay confined (`systemd-analyze
security --offline`). Both run against a private root, so nothing is installed on this machine."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
SERVICES = ("oneha-gateway.service", "oneha-worker.service", "oneha-beat.service",
            "oneha-hook-flush.service")
ALL_UNITS = (*SERVICES, "oneha.target", "oneha-hook-flush.timer")
MAX_EXPOSURE = 2.5  # systemd's scale, 0 (confined) .. 10 (exposed); "OK" is below 4.5


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """/opt/oneha/bin/oneha and the front-end's sender where the units expect them, the
    distribution's units (sysinit.target, …) and ours under /etc/systemd/system."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing (Debian package systemd; `make services` installs it)")
    r = tmp_path_factory.mktemp("sysroot")
    (r / "opt/oneha/bin").mkdir(parents=True)
    shutil.copy2(Path(sys.executable).with_name("oneha"), r / "opt/oneha/bin/oneha")
    sender = r / "var/lib/one/remotes/hooks/oneha"
    sender.mkdir(parents=True)
    shutil.copy2(ROOT / "hook_templates" / "oneha-hook", sender / "oneha-hook")
    dist = next(p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
                if (p / "sysinit.target").exists())
    shutil.copytree(dist, r / "usr/lib/systemd/system", symlinks=True)
    shutil.copytree(UNITS, r / "etc/systemd/system", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.md"))
    return r


def analyze(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", *args, f"--root={root}"], capture_output=True,
                          text=True, timeout=60, cwd=root / "etc/systemd/system")


def test_every_unit_is_shipped():
    assert sorted(p.name for p in UNITS.iterdir() if p.suffix != ".md") == sorted(ALL_UNITS)


def test_units_verify_without_a_warning(root):
    result = analyze(root, "verify", *ALL_UNITS)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stderr


def test_verify_does_catch_a_broken_unit(root):
    """The check can fail: a misspelt key leaves the service without a command."""
    good = (root / "etc/systemd/system/oneha-beat.service").read_text()
    (root / "etc/systemd/system/oneha-broken.service").write_text(
        good.replace("ExecStart=", "ExecStrat="))
    try:
        result = analyze(root, "verify", "oneha-broken.service")
    finally:
        (root / "etc/systemd/system/oneha-broken.service").unlink()
    assert result.returncode != 0 and "ExecStrat" in result.stderr


@pytest.mark.parametrize("unit", SERVICES)
def test_services_are_confined(root, unit):
    # --threshold is the exposure times ten: systemd-analyze exits non-zero above it
    result = analyze(root, "security", "--offline=true", f"--threshold={int(MAX_EXPOSURE * 10)}",
                     unit)
    [overall] = [line for line in result.stdout.splitlines() if "Overall exposure" in line]
    exposure = float(re.search(r": (\d+\.\d+)", overall).group(1))
    print(overall)
    assert result.returncode == 0 and exposure <= MAX_EXPOSURE, overall


def test_services_run_real_commands_and_secrets_stay_out_of_the_units():
    from click.testing import CliRunner

    from gateway.cli import main
    for unit in SERVICES[:3]:
        text = (UNITS / unit).read_text()
        exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
        argv = exec_start.split("=", 1)[1].split()
        assert argv[0] == "/opt/oneha/bin/oneha"
        help_ = CliRunner().invoke(main, [*[a for a in argv[1:2]], "--help"])
        assert help_.exit_code == 0, (unit, help_.output)
        ctx = main.get_command(None, argv[1]).make_context(argv[1], [a.replace("%H", "h")
                                                                      for a in argv[2:]])
        assert ctx is not None  # every option parses
        assert "EnvironmentFile=-/etc/oneha/oneha.env" in text
        assert "SECRET" not in text and "SESSION" not in text
    flush = (UNITS / "oneha-hook-flush.service").read_text()
    assert "--flush" in flush and "SuccessExitStatus=75" in flush  # 75: gateway still away
