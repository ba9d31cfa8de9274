"""A host with 200 VMs crashes in the simulator: OpenNebula's hooks run the real sender into the
real gateway (`oneha serve`), a real worker and the real beat (with the reconciler, which resolves
the VMs no hook reports as RUNNING) — and people get one message per receiver naming the host
and its 200 VMs, a reminder while it is down, and one resolve message once it is back."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from gateway.adapters import hooks
from gateway.adapters.opennebula import OpenNebula
from gateway.adapters.store.incidents import IncidentStore
from gateway.config import settings_from_dict
from gateway.runtime import Runtime
from tests.support.procs import free_port, wait_for_port
from tests.support.worker import ROOT, start_beat, wait_until, write_config

simulator = pytest.importorskip("simulator", reason="the simulator package is not there")

pytestmark = pytest.mark.slow  # ~1 min: 201 hook runs, group_wait, a reminder, a recovery

GROUP_WAIT = 12.0  # the simulator's hook workers need a few seconds to run 201 senders here
KEY = "sim-test-key"


def cloud():
    from simulator import CloudSpec, HostSpec, VmSpec
    hosts = [HostSpec("node01", cpu=40000, memory_mb=1_000_000),
             HostSpec("node02", cpu=40000, memory_mb=1_000_000)]  # room for every VM
    vms = [VmSpec(f"web-{i}", "node01", cpu=0.1, memory_mb=64) for i in range(200)]
    return CloudSpec(hosts=hosts, vms=vms, frontends=1, monitoring_interval=0.5, hook_workers=4)


@pytest.fixture
def sim(tmp_path, monkeypatch):
    port = free_port()
    # oned runs hooks with the front-end's environment: this is the sender's configuration.
    for k, v in {"ONEHA_URLS": f"http://127.0.0.1:{port}", "ONEHA_KEY": KEY,
                 "ONEHA_FRONTEND": "fe1", "ONEHA_SPOOL_DIR": str(tmp_path / "spool"),
                 "ONEHA_TIMEOUT": "5", "ONEHA_HOOK_CONFIG": str(tmp_path / "none.conf")}.items():
        monkeypatch.setenv(k, v)
    s = simulator.Simulator(cloud(), control_port=None).start()
    s.gateway_port = port
    yield s
    s.stop()


# The incident path's transitions; remediation (mode off here) may page about its plans too.
OURS = ("[FIRING]", "[STILL FIRING]", "[RESOLVED]")


def ours(sink, n, timeout, title=lambda m: m.subject):
    """Wait for the n-th message of the incident path and return all of them so far."""
    return wait_until(lambda: (got := [m for m in sink.messages if title(m).startswith(OURS)])
                      and len(got) >= n and got, timeout=timeout, what=f"{n} incident message(s)")


def test_host_with_200_vms_crashes_one_message_reminder_one_resolve(sim, key_prefix, redis_url,
                                                                     smtp_sink, chat_sink,
                                                                     workers, tmp_path):
    config = {
        "redis_url": redis_url, "key_prefix": key_prefix,
        "ingest": {"frontends": {"fe1": {"keys": [KEY]}}},
        "opennebula": {"endpoints": sim.endpoints, "session": sim.session, "timeout": "3s"},
        "receivers": [{"name": "ops-mail", "urls": [smtp_sink.url(to="oncall@example.com")]},
                      {"name": "ops-chat", "urls": [chat_sink.url()]}],
        "route": {"group_by": ["host"], "group_wait": f"{GROUP_WAIT}s", "group_interval": "2s",
                  "repeat_interval": "10s"},
        "remediation": {"mode": "off"},
        "raft": {"enabled": False}, "reconciler": {"interval": "2s"},
    }
    path = write_config(config, tmp_path, "gateway.yaml")
    gateway = subprocess.Popen([sys.executable, "-m", "gateway.cli", "-c", str(path), "serve",
                                "--port", str(sim.gateway_port), "--workers", "1"],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    beat = None
    try:
        wait_for_port(sim.gateway_port, timeout=30)
        workers.start(config, concurrency=2)
        beat = start_beat(config, tmp_path)
        one = OpenNebula(sim.endpoints, sim.session, timeout=3.0)
        hooks.install(one, hooks.load_templates(command=str(hooks.sender_path())))
        store = IncidentStore(Runtime.from_settings(settings_from_dict(config, env={})))
        node01 = next(h["id"] for h in sim.hosts() if h["name"] == "node01")

        crashed = time.monotonic()
        sim.crash_host(node01)
        mail = ours(smtp_sink, 1, GROUP_WAIT + 60)[0]
        arrived = time.time()
        chat = ours(chat_sink, 1, 10, lambda m: m.title)[0]
        inc = store.open_for(f"host:{node01}")
        first_event = min(o.first_seen for o in inc.objects.values())
        print(f"\nfirst message {time.monotonic() - crashed:.1f}s after the crash, "
              f"{arrived - first_event:.2f}s after the first hook event (group_wait {GROUP_WAIT:g}s)")
        assert "node01" in mail.subject and "200 VMs affected" in mail.subject, mail.subject
        assert "node01" in chat.title and "200 VMs affected" in chat.title
        inc = store.open_for(f"host:{node01}")
        assert len(inc.objects) == 201

        reminder = ours(smtp_sink, 2, 40)[1]
        ours(chat_sink, 2, 10, lambda m: m.title)
        assert reminder.subject.startswith("[STILL FIRING]") and "node01" in reminder.subject
        assert len(ours(smtp_sink, 2, 1)) == 2  # one each, no more

        sim.recover_host(node01)
        wait_until(lambda: store.get(inc.id).state == "resolved", timeout=60,
                   what="the host incident resolved (hook for the host, reconciler for the VMs)")
        resolved = ours(smtp_sink, 3, 30)[2]
        ours(chat_sink, 3, 10, lambda m: m.title)
        assert resolved.subject.startswith("[RESOLVED]") and "node01" in resolved.subject
        time.sleep(3.0)  # more beat ticks and reconciler passes: still one resolve each
        assert len(ours(smtp_sink, 3, 1)) == 3 and len(ours(chat_sink, 3, 1, lambda m: m.title)) == 3
        assert [i.id for i in store.list(open_only=True)] == []
    finally:
        if beat is not None:
            beat.stop()
        gateway.terminate()
        gateway.wait(timeout=20)
