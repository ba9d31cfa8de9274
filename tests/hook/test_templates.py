"""The onehook templates and the fixtures: what OpenNebula and the XSDs require of them."""

from __future__ import annotations

import base64
import importlib.machinery
import importlib.util
import re

import pytest
import xmlschema

from gateway.adapters import hooks as adapter
from gateway.domain import states
from gateway.errors import ConfigError
from tests.hook.support import FIXTURES, ONE_NS, SENDER
from tests.support.xsd import XSD_DIR

TEMPLATES = adapter.load_templates()
BY_NAME = {t.name: t for t in TEMPLATES}
STATE_TEMPLATES = [t for t in TEMPLATES if t.attributes["TYPE"] == "state"]  # all but the drill


@pytest.mark.parametrize("fixture, xsd", [("host-error.xml", "host.xsd"),
                                          ("vm-unknown.xml", "vm.xsd")])
def test_fixtures_are_valid_opennebula_documents(fixture, xsd):
    text = (FIXTURES / fixture).read_text()
    # oned's $TEMPLATE carries no namespace; the schemas have a target namespace
    qualified = re.sub(r"^<(HOST|VM)>", rf'<\1 xmlns="{ONE_NS}">', text, count=1)
    xmlschema.XMLSchema(str(XSD_DIR / xsd)).validate(qualified)


def test_every_vm_failure_state_has_its_own_hook():
    failure_hooks = {t.attributes["LCM_STATE"] for t in TEMPLATES
                     if t.attributes.get("ON") == "CUSTOM"}
    assert failure_hooks == {states.LCM_STATES[c] for c in states.LCM_FAILURE_STATES}
    for t in TEMPLATES:
        if t.attributes.get("ON") == "CUSTOM":
            assert t.path.parent.name == "vm-failure"
            assert t.attributes["STATE"] == "ACTIVE"


def test_the_core_hooks_exist():
    assert BY_NAME["oneha-host-error"].attributes["STATE"] == "ERROR"
    assert BY_NAME["oneha-host-monitored"].attributes["STATE"] == "MONITORED"
    assert BY_NAME["oneha-vm-unknown"].attributes["ON"] == "UNKNOWN"


def test_the_drill_hook_is_an_api_hook_on_the_drills_call_with_the_call_on_stdin():
    from gateway.domain import drills
    a = BY_NAME[drills.DRILL_HOOK].attributes
    assert (a["TYPE"], a["CALL"]) == ("api", drills.DRILL_CALL)
    assert (a["ARGUMENTS"], a["ARGUMENTS_STDIN"], a["REMOTE"]) == ("--drill $API", "yes", "no")
    assert a["COMMAND"] == adapter.DEFAULT_COMMAND
    assert adapter.parse_template(BY_NAME[drills.DRILL_HOOK].render()) == a
    assert [t.name for t in TEMPLATES if t.attributes["TYPE"] != "state"] == [drills.DRILL_HOOK]


@pytest.mark.parametrize("template", STATE_TEMPLATES, ids=lambda t: t.name)
def test_template_is_ready_for_onehook_create(template):
    a = template.attributes
    assert a["TYPE"] == "state" and a["RESOURCE"] in ("HOST", "VM")
    assert a["ARGUMENTS"] == "$TEMPLATE"
    assert a["ARGUMENTS_STDIN"] == "yes"  # OpenNebula honours only "yes" (FACTS.md §b)
    assert a["REMOTE"] == "no"
    assert a["COMMAND"] == adapter.DEFAULT_COMMAND
    assert 3 < int(a["TIMEOUT"]) <= 60  # above the sender's own 3 s budget
    if a["RESOURCE"] == "HOST":
        assert a["STATE"] in ("INIT", "MONITORED", "ERROR", "DISABLED", "OFFLINE")
    # what oned would store parses back to the same attributes
    assert adapter.parse_template(template.render()) == a


def test_sender_names_events_after_the_hook_that_fired():
    loader = importlib.machinery.SourceFileLoader("oneha_hook_names", str(SENDER))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    sender = importlib.util.module_from_spec(spec)
    loader.exec_module(sender)
    for t in STATE_TEMPLATES:
        want = t.expected()
        if want["RESOURCE"] == "HOST":
            xml = f"<HOST><ID>1</ID><NAME>h</NAME><STATE>{states.HOST_STATE_CODES[want['STATE']]}</STATE></HOST>"
        else:
            xml = (f"<VM><ID>1</ID><NAME>v</NAME><STATE>{states.VM_STATE_CODES[want['STATE']]}</STATE>"
                   f"<LCM_STATE>{states.LCM_STATE_CODES[want['LCM_STATE']]}</LCM_STATE></VM>")
        event = sender.build_event(base64.b64encode(xml.encode()).decode(), {"frontend": "f"})
        assert event["hook"] == t.name


def test_command_override_and_expected_attributes():
    t = BY_NAME["oneha-vm-unknown"].with_command("/opt/oneha/oneha-hook")
    assert 'COMMAND = "/opt/oneha/oneha-hook"' in t.render()
    assert t.expected()["STATE"] == "ACTIVE" and t.expected()["LCM_STATE"] == "UNKNOWN"
    assert "ON" not in t.expected()


@pytest.mark.parametrize("text, message", [
    ('NAME = "oneha-x"\nTYPE = "state"\n', "no COMMAND"),
    ('NAME = "x"\nTYPE = "state"\nCOMMAND = "c"\nRESOURCE = "HOST"\n', "must start with"),
    ('NAME = "oneha-x"\nTYPE = "state"\nCOMMAND = "c"\n', "needs RESOURCE"),
    ('NAME = "oneha-x"\nNAME = "oneha-y"\n', "set twice"),
    ('NAME "oneha-x"\n', "expected KEY"),
])
def test_bad_templates_are_refused_with_a_clear_message(text, message):
    with pytest.raises(ConfigError, match=message):
        adapter.parse_template(text, "t.tmpl")


def test_templates_dir_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        adapter.load_templates(tmp_path / "nope")
    with pytest.raises(ConfigError, match="no \\*.tmpl"):
        adapter.load_templates(tmp_path)


def test_templates_dir_from_the_environment(tmp_path, monkeypatch):
    import shutil
    copy = tmp_path / "hook_templates"
    shutil.copytree(adapter.templates_dir(), copy)
    monkeypatch.setenv("ONEHA_HOOK_TEMPLATES", str(copy))
    assert adapter.templates_dir() == copy
    assert adapter.sender_path() == copy / "oneha-hook"
    assert {t.path.parent for t in adapter.load_templates()} == {copy, copy / "vm-failure"}
