"""`oneha hooks install|list|remove` through the OpenNebula client (pyone) against the simulator,
and the installed sender firing into a signature-checking HTTP receiver when a host crashes."""

from __future__ import annotations

import base64
import json
import sys

import pyone
import pytest
from click.testing import CliRunner

from gateway.adapters import hooks as adapter
from gateway.adapters.opennebula import OpenNebula
from gateway.cli import main as oneha_cli
from gateway.errors import ConfigError, Permanent, Transient
from tests.hook.support import SENDER, Receiver

simulator = pytest.importorskip("simulator.core", reason="the simulator package is not there")
from simulator.spec import CloudSpec  # noqa: E402

TEMPLATES = adapter.load_templates()


@pytest.fixture
def sim():
    with simulator.Simulator(CloudSpec(hosts=2, vms=3, frontends=1, monitoring_interval=0.2),
                             control_port=None) as s:
        yield s


@pytest.fixture
def one(sim):
    return OpenNebula(sim.endpoints, sim.session, timeout=5, retries=0)


def config_file(tmp_path, sim) -> str:
    path = tmp_path / "oneha.yaml"
    path.write_text(json.dumps({"opennebula": {"endpoints": sim.endpoints,
                                               "session": sim.session}}))
    return str(path)


def test_install_is_idempotent_by_name(one):
    first = adapter.install(one, TEMPLATES)
    assert [c.action for c in first] == ["created"] * len(TEMPLATES)
    again = adapter.install(one, TEMPLATES)
    assert [c.action for c in again] == ["unchanged"] * len(TEMPLATES)
    installed = adapter.list_hooks(one)
    assert sorted(h.name for h in installed) == sorted(t.name for t in TEMPLATES)
    by_name = {h.name: h for h in installed}
    assert by_name["oneha-host-error"].trigger == "HOST/ERROR"
    assert by_name["oneha-vm-unknown"].trigger == "VM/ACTIVE/UNKNOWN"  # oned turned ON= into states
    assert by_name["oneha-vm-boot-failure"].trigger == "VM/ACTIVE/BOOT_FAILURE"
    assert {h.command for h in installed} == {adapter.DEFAULT_COMMAND}


def test_a_changed_command_replaces_only_oneha_hooks(one):
    foreign = one.hook_allocate('NAME = "site-host-error"\nTYPE = "state"\nRESOURCE = "HOST"\n'
                                'STATE = "ERROR"\nCOMMAND = "ft/host_error.rb"\n')
    adapter.install(one, TEMPLATES)
    moved = adapter.install(one, [t.with_command("/opt/oneha/oneha-hook") for t in TEMPLATES])
    assert {c.action for c in moved} == {"replaced"}
    assert all("COMMAND" in c.reason for c in moved)
    assert {h.command for h in adapter.list_hooks(one)} == {"/opt/oneha/oneha-hook"}
    removed = adapter.remove(one)
    assert len(removed) == len(TEMPLATES)
    assert adapter.list_hooks(one) == []
    assert [h.name for h in adapter.list_hooks(one, prefix="")] == ["site-host-error"]
    assert [h.id for h in adapter.list_hooks(one, prefix="")] == [foreign]
    assert adapter.remove(one) == []  # nothing left: not an error


def test_remove_by_name_refuses_foreign_hooks(one):
    adapter.install(one, TEMPLATES)
    [change] = adapter.remove(one, ["oneha-vm-unknown"])
    assert (change.action, change.name) == ("removed", "oneha-vm-unknown")
    assert len(adapter.list_hooks(one)) == len(TEMPLATES) - 1
    with pytest.raises(ConfigError, match="not oneha's"):
        adapter.remove(one, ["site-host-error"])


def test_errors_say_which_call_failed(sim, one):
    wrong = OpenNebula(sim.endpoints, "oneadmin:wrong-password", timeout=5, retries=0)
    with pytest.raises(Permanent, match="hookpool.info.*authenticated"):
        adapter.list_hooks(wrong)
    host_error = next(t for t in TEMPLATES if t.name == "oneha-host-error")
    bogus = adapter.HookTemplate(host_error.path, {**host_error.attributes, "STATE": "BOGUS"})
    with pytest.raises(Permanent, match="hook.allocate.*Invalid STATE: BOGUS"):
        adapter.install(one, [bogus])
    sim.stop()
    with pytest.raises(Transient, match="hookpool.info"):
        adapter.list_hooks(OpenNebula(sim.endpoints, sim.session, timeout=2, retries=0))


def test_cli_install_list_remove(sim, tmp_path):
    cli = CliRunner()
    conf = ["-c", config_file(tmp_path, sim)]
    installed = cli.invoke(oneha_cli, [*conf, "hooks", "install", "--command", "/opt/x/oneha-hook"])
    assert installed.exit_code == 0, installed.output
    assert f"{len(TEMPLATES)} hook(s), {len(TEMPLATES)} changed" in installed.output
    again = cli.invoke(oneha_cli, [*conf, "hooks", "install", "--command", "/opt/x/oneha-hook"])
    assert f"{len(TEMPLATES)} hook(s), 0 changed" in again.output
    listed = cli.invoke(oneha_cli, [*conf, "hooks", "list"])
    assert listed.exit_code == 0
    assert "oneha-host-error" in listed.output and "HOST/ERROR" in listed.output
    assert "/opt/x/oneha-hook" in listed.output
    removed = cli.invoke(oneha_cli, [*conf, "hooks", "remove"])
    assert removed.exit_code == 0 and f"{len(TEMPLATES)} hook(s) removed" in removed.output
    empty = cli.invoke(oneha_cli, [*conf, "hooks", "list"])
    assert "no oneha hooks installed" in empty.output


def test_cli_reports_an_unreachable_opennebula_clearly(tmp_path):
    path = tmp_path / "oneha.yaml"
    path.write_text(json.dumps({"opennebula": {"endpoints": ["http://127.0.0.1:9/RPC2"]}}))
    result = CliRunner().invoke(oneha_cli, ["-c", str(path), "hooks", "list"])
    assert result.exit_code == 1
    assert "hookpool.info" in result.output and "127.0.0.1:9" in result.output


def test_installed_sender_fires_when_a_host_crashes(sim, one, tmp_path):
    """The whole path: hook installed through pyone -> simulator's hook manager runs the real
    sender with $TEMPLATE on stdin -> signed POST -> receiver verifies the HMAC."""
    spool = tmp_path / "spool"
    conf = tmp_path / "oneha-hook.conf"
    with Receiver(key="fe-key", frontend="fe1") as gw:
        conf.write_text(f"urls = {gw.url}\nkey = fe-key\nfrontend = fe1\n"
                        f"spool_dir = {spool}\ntimeout = 3\nauto_flush = no\n")
        # what an operator's install looks like: the sender in place, its config next to it
        wrapper = tmp_path / "oneha-hook"
        wrapper.write_text(f"#!/bin/sh\nONEHA_HOOK_CONFIG={conf} exec {sys.executable} "
                           f"{SENDER} \"$@\"\n")
        wrapper.chmod(0o755)
        adapter.install(one, [t.with_command(str(wrapper)) for t in TEMPLATES])

        host = next(h for h in sim.hosts() if h["vm_ids"])
        sim.crash_host(host["id"])
        sim.wait_for(lambda: any(e["resource"] == "HOST" for e in gw.accepted), timeout=20,
                     message="the host-error event at the receiver")
        sim.wait_for(lambda: sum(e["resource"] == "VM" for e in gw.accepted) >= len(host["vm_ids"]),
                     timeout=20, message="a VM-unknown event per VM of the crashed host")
        assert sim.wait_hooks_idle(20)

    [host_event] = [e for e in gw.accepted if e["resource"] == "HOST"]
    assert (host_event["id"], host_event["state_name"], host_event["hook"]) == \
        (host["id"], "ERROR", "oneha-host-error")
    assert base64.b64decode(host_event["xml"]).startswith(b"<HOST>")
    vm_events = [e for e in gw.accepted if e["resource"] == "VM"]
    assert sorted(e["id"] for e in vm_events) == sorted(host["vm_ids"])
    assert {(e["state_name"], e["lcm_state_name"], e["hook"]) for e in vm_events} == \
        {("ACTIVE", "UNKNOWN", "oneha-vm-unknown")}
    assert "bad signature" not in gw.verdicts()
    runs = [x for x in sim.hook_executions if x["hook_name"].startswith("oneha-")]
    assert runs and all(x["rc"] == 0 and x["stdin"] for x in runs)
    assert not list(spool.glob("*.json"))


def test_an_event_neither_sent_nor_spooled_fails_the_run_and_onehook_retry_delivers_it(
        sim, one, tmp_path):
    """The sender's one non-zero exit: gateway down AND spool unwritable. oned records the failed
    run; once things are fixed, `onehook retry` (one.hook.retry) replays that run's $TEMPLATE."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")  # a file where the spool's parent should be: mkdir fails
    conf = tmp_path / "oneha-hook.conf"
    wrapper = tmp_path / "oneha-hook"
    wrapper.write_text(f"#!/bin/sh\nONEHA_HOOK_CONFIG={conf} exec {sys.executable} "
                       f"{SENDER} \"$@\"\n")
    wrapper.chmod(0o755)
    host_error = next(t for t in TEMPLATES if t.name == "oneha-host-error")
    [change] = adapter.install(one, [host_error.with_command(str(wrapper))])
    with Receiver(key="fe-key", frontend="fe1") as gw:
        conf.write_text(f"urls = http://127.0.0.1:9/\nkey = fe-key\nfrontend = fe1\n"
                        f"spool_dir = {blocker / 'spool'}\ntimeout = 2\nauto_flush = no\n")
        host = sim.hosts()[0]
        sim.crash_host(host["id"])
        sim.wait_for(lambda: sim.hook_executions, 20, message="the hook's first run")
        assert sim.wait_hooks_idle(20)
        [failed] = sim.hook_executions
        assert failed["rc"] == 1 and "NOT spooled" in failed["stderr"] and gw.requests == []

        conf.write_text(f"urls = {gw.url}\nkey = fe-key\nfrontend = fe1\n"
                        f"spool_dir = {tmp_path / 'spool'}\ntimeout = 2\nauto_flush = no\n")
        raw = pyone.OneServer(sim.endpoints[0], session=sim.session)
        assert raw.hook.retry(change.hook_id, failed["execution_id"]) == change.hook_id
        sim.wait_for(lambda: gw.accepted, 20, message="the replayed event at the gateway")
        assert sim.wait_hooks_idle(20)
    [event] = gw.accepted
    assert (event["resource"], event["id"], event["state_name"]) == ("HOST", host["id"], "ERROR")
    assert [x["rc"] for x in sim.hook_executions] == [1, 0] and sim.hook_executions[1]["retry"]
