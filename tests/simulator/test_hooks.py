"""Hooks through pyone: allocation and validation as oned does it, execution as the HEM does it."""

import base64
import xml.etree.ElementTree as ET
import stat

import pyone
import pytest

from gateway.domain.objects import parse_host, parse_vm

from .conftest import recording_client


def _script(tmp_path, name, body):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_template_syntax_quoted_unquoted_and_comments(one):
    hook_id = one.hook.allocate(
        '# a comment line\n'
        'NAME = "host-error"\n'
        'type=STATE resource = host\n'
        'STATE   = "ERROR"\n'
        'COMMAND = "/usr/bin/env"  ARGUMENTS = "$TEMPLATE -m -p 5"\n'
        'ARGUMENTS_STDIN = yes\n')
    hook = one.hook.info(hook_id)
    assert (hook.NAME, hook.TYPE) == ("host-error", "state")
    assert hook.TEMPLATE["RESOURCE"] == "HOST"
    assert hook.TEMPLATE["STATE"] == "ERROR"
    assert hook.TEMPLATE["ARGUMENTS"] == "$TEMPLATE -m -p 5"
    assert hook.TEMPLATE["REMOTE"] == "NO"


def test_vm_on_is_replaced_by_state_and_lcm_state_names(one):
    hook_id = one.hook.allocate({"NAME": "vm-unknown", "TYPE": "state", "RESOURCE": "VM",
                                 "ON": "UNKNOWN", "COMMAND": "/bin/true"})
    tmpl = one.hook.info(hook_id).TEMPLATE
    assert (tmpl["STATE"], tmpl["LCM_STATE"]) == ("ACTIVE", "UNKNOWN")
    assert "ON" not in tmpl
    custom = one.hook.allocate({"NAME": "vm-custom", "TYPE": "state", "RESOURCE": "VM",
                                "ON": "CUSTOM", "STATE": "ACTIVE", "LCM_STATE": "BOOT_FAILURE",
                                "COMMAND": "/bin/true"})
    assert one.hook.info(custom).TEMPLATE["LCM_STATE"] == "BOOT_FAILURE"


@pytest.mark.parametrize("template, message", [
    ({"NAME": "x", "TYPE": "nope", "COMMAND": "a"}, "Invalid Hook type: nope"),
    ({"TYPE": "state", "RESOURCE": "HOST", "STATE": "ERROR", "COMMAND": "a"}, "Invalid name."),
    ({"NAME": "x", "TYPE": "state", "RESOURCE": "HOST", "STATE": "ERROR"},
     "No COMMAND in template for Hook."),
    ({"NAME": "x", "TYPE": "state", "COMMAND": "a"},
     "RESOURCE attribute is required for STATE hooks."),
    ({"NAME": "x", "TYPE": "state", "RESOURCE": "DISK", "COMMAND": "a"},
     "Invalid resource type: DISK"),
    ({"NAME": "x", "TYPE": "state", "RESOURCE": "HOST", "STATE": "BROKEN", "COMMAND": "a"},
     "Invalid STATE: BROKEN"),
    ({"NAME": "x", "TYPE": "state", "RESOURCE": "VM", "ON": "LUNCH", "COMMAND": "a"},
     "Unkown state condition: LUNCH"),
    ({"NAME": "x", "TYPE": "state", "RESOURCE": "VM", "ON": "CUSTOM", "STATE": "ACTIVE",
      "LCM_STATE": "NAPPING", "COMMAND": "a"}, "Wrong LCM_STATE: NAPPING"),
    # States commented out of the headers: vm_state_from_str / lcm_state_from_str refuse them.
    ({"NAME": "x", "TYPE": "state", "RESOURCE": "VM", "ON": "CUSTOM", "STATE": "FAILED",
      "LCM_STATE": "LCM_INIT", "COMMAND": "a"}, "Wrong STATE: FAILED"),
    ({"NAME": "x", "TYPE": "state", "RESOURCE": "VM", "ON": "CUSTOM", "STATE": "ACTIVE",
      "LCM_STATE": "FAILURE", "COMMAND": "a"}, "Wrong LCM_STATE: FAILURE"),
    ({"NAME": "x", "TYPE": "state", "RESOURCE": "HOST", "STATE": "MONITORING_ERROR",
      "COMMAND": "a"}, "Invalid STATE: MONITORING_ERROR"),
    ({"NAME": "x", "TYPE": "api", "CALL": "one.vm.info", "COMMAND": "a"},
     "API call does not exist or is not supported: one.vm.info"),
])
def test_invalid_templates_are_refused_with_oneds_message(one, template, message):
    with pytest.raises(pyone.OneInternalException) as err:
        one.hook.allocate(template)
    assert str(err.value) == f"[one.hook.allocate] {message}"
    assert one.hookpool.info().HOOK == []


def test_duplicate_name_refused_and_delete(one):
    hid = one.hook.allocate({"NAME": "dup", "TYPE": "api", "CALL": "one.vm.action",
                             "COMMAND": "/bin/true"})
    with pytest.raises(pyone.OneInternalException, match=f"NAME is already taken by Hook {hid}"):
        one.hook.allocate({"NAME": "dup", "TYPE": "api", "CALL": "one.vm.action",
                           "COMMAND": "/bin/true"})
    assert one.hook.delete(hid) == hid
    with pytest.raises(pyone.OneNoExistsException, match=r"Error getting hook \[%d\]" % hid):
        one.hook.info(hid)


def test_host_error_hook_gets_host_xml_on_stdin_and_hooklog_records_it(sim, one, tmp_path):
    out = tmp_path / "stdin.txt"
    script = _script(tmp_path, "rec.sh", f'cat > {out}\necho "got it"\necho oops >&2\nexit 3\n')
    hook_id = one.hook.allocate(
        f'NAME="oneha-host-error"\nTYPE="state"\nRESOURCE="HOST"\nSTATE="ERROR"\n'
        f'COMMAND="{script}"\nARGUMENTS="$TEMPLATE extra"\nARGUMENTS_STDIN="YES"\n')
    sim.crash_host(1)
    sim.wait_for(lambda: sim.hook_executions, 5, message="hook execution")
    assert sim.wait_hooks_idle(5)
    token, extra = out.read_text().split(" ")
    assert extra == "extra"
    host = parse_host(base64.b64decode(token))  # exactly the <HOST> element, no declaration
    assert (host.id, host.state) == (1, 3)
    assert base64.b64decode(token).startswith(b"<HOST>")

    record = one.hook.info(hook_id).HOOKLOG.HOOK_EXECUTION_RECORD[0]
    assert record.HOOK_ID == hook_id and record.EXECUTION_ID == 0
    assert record.ARGUMENTS == f"{token} extra"
    assert record.EXECUTION_RESULT.CODE == "3"
    assert base64.b64decode(record.EXECUTION_RESULT.STDOUT) == b"got it\n"
    assert base64.b64decode(record.EXECUTION_RESULT.STDERR) == b"oops\n"
    assert record.EXECUTION_RESULT.COMMAND == str(script)
    # hookpool.info leaves HOOKLOG out, like oned
    assert one.hookpool.info().HOOK[0].HOOKLOG is None
    assert sim.hook_executions[0]["rc"] == 3


@pytest.mark.parametrize("stdin_value, on_stdin", [("yes", True), ("Yes", True),
                                                   ("true", False), ("no", False)])
def test_arguments_stdin_only_yes_counts(sim, one, tmp_path, stdin_value, on_stdin):
    out = tmp_path / "out.txt"
    script = _script(tmp_path, "rec.sh", f'printf "argv=%s\\n" "$*" > {out}\ncat >> {out}\n')
    one.hook.allocate({"NAME": "h", "TYPE": "state", "RESOURCE": "VM", "ON": "UNKNOWN",
                       "COMMAND": str(script), "ARGUMENTS": "$TEMPLATE marker",
                       "ARGUMENTS_STDIN": stdin_value})
    sim.freeze_vm(4)
    sim.wait_for(lambda: sim.hook_executions, 5, message="hook execution")
    assert sim.wait_hooks_idle(5)
    argv_line, _, stdin_text = out.read_text().partition("\n")
    payload = stdin_text if on_stdin else argv_line.removeprefix("argv=")
    assert (argv_line == "argv=") is on_stdin
    token, marker = payload.split()
    assert marker == "marker"
    vm = parse_vm(base64.b64decode(token))
    assert (vm.id, vm.state, vm.lcm_state) == (4, 3, 16)


def test_relative_command_uses_hook_base_path_and_env_passes_through(make_sim, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setenv("ONEHA_SIM_TEST_MARK", "passed-through")
    out = tmp_path / "env.txt"
    (tmp_path / "ft").mkdir()
    _script(tmp_path / "ft", "host_error.sh", f'echo "$ONEHA_SIM_TEST_MARK" > {out}\n')
    sim = make_sim(hook_base_path=str(tmp_path))
    one = pyone.OneServer(sim.endpoints[0], session=sim.session)
    one.hook.allocate({"NAME": "rel", "TYPE": "state", "RESOURCE": "HOST", "STATE": "ERROR",
                       "COMMAND": "ft/host_error.sh"})
    sim.crash_host(0)
    sim.wait_for(lambda: sim.hook_executions, 5)
    assert sim.wait_hooks_idle(5)
    assert sim.hook_executions[0]["command"] == f"{tmp_path}/ft/host_error.sh"
    assert out.read_text() == "passed-through\n"


def test_timeout_kills_the_command_and_records_255(sim, one, tmp_path):
    hook_id = one.hook.allocate({"NAME": "slow", "TYPE": "state", "RESOURCE": "HOST",
                                 "STATE": "ERROR", "COMMAND": "/bin/sleep 30", "TIMEOUT": "1"})
    sim.crash_host(2)
    sim.wait_for(lambda: sim.hook_executions, 10, message="timed-out hook recorded")
    result = one.hook.info(hook_id).HOOKLOG.HOOK_EXECUTION_RECORD[0].EXECUTION_RESULT
    assert result.CODE == "255"
    assert base64.b64decode(result.STDERR) == b"Timeout executing /bin/sleep 30"


def test_state_machine_never_waits_for_hooks(sim, one):
    one.hook.allocate({"NAME": "slow", "TYPE": "state", "RESOURCE": "HOST", "STATE": "ERROR",
                       "COMMAND": "/bin/sleep 30", "TIMEOUT": "60"})
    sim.crash_host(0)
    sim.wait_for(lambda: sim.host(0)["state_name"] == "ERROR", 5)
    # While the hook still sleeps, the VMs move on and the API answers.
    sim.wait_for(lambda: all(sim.vm(v)["lcm_state_name"] == "UNKNOWN"
                             for v in sim.host(0)["vm_ids"]), 2)
    assert one.host.info(0).STATE == 3
    assert sim.hook_executions == []


def test_disabled_hooks_do_not_fire(sim, one):
    one.hook.allocate({"NAME": "h", "TYPE": "state", "RESOURCE": "HOST", "STATE": "ERROR",
                       "COMMAND": "/bin/true"})
    sim.set_hooks_enabled(False)
    sim.crash_host(1)
    sim.wait_for(lambda: sim.host(1)["state_name"] == "ERROR", 5)
    sim.recover_host(1)
    sim.wait_for(lambda: sim.host(1)["state_name"] == "MONITORED", 5)
    assert sim.wait_hooks_idle(5)
    assert sim.hook_executions == []


def test_api_hook_gets_call_info(sim, one, tmp_path):
    out = tmp_path / "api.txt"
    script = _script(tmp_path, "api.sh", f"cat > {out}\n")
    one.hook.allocate({"NAME": "api", "TYPE": "api", "CALL": "one.vm.action",
                       "COMMAND": str(script), "ARGUMENTS": "$API", "ARGUMENTS_STDIN": "yes"})
    one.vm.action("poweroff", 3)
    sim.wait_for(lambda: sim.hook_executions, 5)
    assert sim.wait_hooks_idle(5)
    info = base64.b64decode(out.read_text()).decode()
    assert info.startswith("<CALL_INFO><RESULT>1</RESULT>")
    assert "<VALUE>poweroff</VALUE>" in info and "<TYPE>OUT</TYPE>" in info


def test_hooklog_info_filters(sim, one, tmp_path):
    ok = one.hook.allocate({"NAME": "ok", "TYPE": "state", "RESOURCE": "HOST", "STATE": "ERROR",
                            "COMMAND": "/bin/true"})
    bad = one.hook.allocate({"NAME": "bad", "TYPE": "state", "RESOURCE": "HOST",
                             "STATE": "ERROR", "COMMAND": "/bin/false"})
    sim.crash_host(0)
    sim.wait_for(lambda: len(sim.hook_executions) == 2, 5)
    # pyone has no binding for a <HOOKLOG> root (it falls back to an empty object, with real
    # oned too), so read the raw answer its transport received.
    raw, rec = recording_client(sim.endpoints[0], sim.session)

    def hook_ids(*args):
        raw.hooklog.info(*args)
        root = ET.fromstring(rec.answers[-1][1])
        assert root.tag == "HOOKLOG"
        return sorted(int(r.findtext("HOOK_ID")) for r in root.findall("HOOK_EXECUTION_RECORD"))

    assert hook_ids(0, 0, -1, 0) == [ok, bad]
    assert hook_ids(0, 0, -1, -1) == [bad]
    assert hook_ids(0, 0, -1, 1) == [ok]
    assert hook_ids(0, 0, ok, 0) == [ok]
    assert hook_ids(0, 1, -1, 0) == []  # max_ts in 1970


def test_retry_runs_a_recorded_execution_again_with_its_arguments(sim, one, tmp_path, schemas):
    # Fails until a flag file exists, and keeps what it got on stdin each time.
    flag, seen = tmp_path / "fixed", tmp_path / "seen"
    script = _script(tmp_path, "flaky.sh",
                     f'cat >> {seen}\necho >> {seen}\n[ -e {flag} ] && exit 0\necho down >&2\n'
                     'exit 1\n')
    hook_id = one.hook.allocate(
        f'NAME="flaky"\nTYPE="state"\nRESOURCE="HOST"\nSTATE="ERROR"\nCOMMAND="{script}"\n'
        'ARGUMENTS="$TEMPLATE"\nARGUMENTS_STDIN="yes"\n')
    sim.crash_host(1)
    sim.wait_for(lambda: sim.hook_executions, 5, message="the first run")
    assert sim.wait_hooks_idle(5) and sim.hook_executions[0]["rc"] == 1
    flag.touch()
    assert one.hook.retry(hook_id, 0) == hook_id
    sim.wait_for(lambda: len(sim.hook_executions) == 2, 5, message="the retried run")
    assert sim.wait_hooks_idle(5)

    first, again = one.hook.info(hook_id).HOOKLOG.HOOK_EXECUTION_RECORD
    assert (first.EXECUTION_ID, first.EXECUTION_RESULT.CODE, first.RETRY) == (0, "1", None)
    assert (again.EXECUTION_ID, again.EXECUTION_RESULT.CODE, again.RETRY) == (1, "0", "yes")
    assert again.ARGUMENTS == first.ARGUMENTS  # the same $TEMPLATE, not the host as it is now
    assert seen.read_text().split() == [first.ARGUMENTS, first.ARGUMENTS]  # on stdin both times
    raw, rec = recording_client(sim.endpoints[0], sim.session)
    raw.hook.info(hook_id)
    schemas.assert_valid(rec.answers[-1][1], "hook.xsd")


def test_retry_of_an_unknown_hook_or_execution_is_refused_as_oned_does(sim, one):
    hook_id = one.hook.allocate({"NAME": "h", "TYPE": "state", "RESOURCE": "HOST",
                                 "STATE": "ERROR", "COMMAND": "/bin/true"})
    with pytest.raises(pyone.OneNoExistsException):
        one.hook.retry(hook_id + 1, 0)
    with pytest.raises(pyone.OneInternalException, match="Arguments not found"):
        one.hook.retry(hook_id, 0)  # it never ran
