"""The sender's pure parts, loaded as a module: event building, ids, config, URL parsing."""

from __future__ import annotations

import ast
import base64
import hashlib
import importlib.machinery
import importlib.util
import sys

import pytest

from gateway.domain import states
from tests.hook.support import FIXTURES, SENDER, fixture_b64


@pytest.fixture(scope="module")
def sender():
    loader = importlib.machinery.SourceFileLoader("oneha_hook_under_test", str(SENDER))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


CONF = {"frontend": "fe1"}


def test_state_tables_match_the_domain(sender):
    assert dict(enumerate(sender.HOST_STATES)) == states.HOST_STATES
    assert dict(enumerate(sender.VM_STATES)) == states.VM_STATES
    assert dict(enumerate(sender.LCM_STATES)) == states.LCM_STATES


def test_vm_event_id_follows_the_contract(sender):
    event = sender.build_event(fixture_b64("vm-unknown.xml"), CONF, now=1764092301.5)
    # last HISTORY SEQ is 1, LAST_POLL 1764092300 (see the fixture)
    identity = "VM:42:3:16:1/1764092300"
    assert event["event_id"] == hashlib.sha256(identity.encode()).hexdigest()[:32]
    assert event["sent_at"] == 1764092301.5


def test_host_event_id_uses_the_monitoring_timestamp_or_last_mon_time(sender):
    event = sender.build_event(fixture_b64("host-error.xml"), CONF)
    assert event["event_id"] == hashlib.sha256(b"HOST:7:3::1764092345").hexdigest()[:32]
    old = base64.b64encode(b"<HOST><ID>7</ID><NAME>n</NAME><STATE>3</STATE>"
                           b"<LAST_MON_TIME>1500000000</LAST_MON_TIME></HOST>").decode()
    assert sender.build_event(old, CONF)["event_id"] == \
        hashlib.sha256(b"HOST:7:3::1500000000").hexdigest()[:32]


def test_the_same_state_change_always_gets_the_same_id(sender):
    a = sender.build_event(fixture_b64("vm-unknown.xml"), CONF, now=1.0)
    b = sender.build_event(fixture_b64("vm-unknown.xml"), CONF, now=99.0)
    polled = sender.build_event(fixture_b64("vm-unknown.xml", **{
        "<LAST_POLL>1764092300<": "<LAST_POLL>1764092400<"}), CONF)
    moved = sender.build_event(fixture_b64("vm-unknown.xml", **{"<SEQ>1<": "<SEQ>2<"}), CONF)
    assert a["event_id"] == b["event_id"]
    assert len({a["event_id"], polled["event_id"], moved["event_id"]}) == 3


def test_hook_message_wrapper_and_namespaced_xml_are_read(sender):
    inner = (FIXTURES / "host-error.xml").read_text().strip()
    wrapped = ("<HOOK_MESSAGE><HOOK_TYPE>STATE</HOOK_TYPE><HOOK_OBJECT>HOST</HOOK_OBJECT>"
               "<STATE>ERROR</STATE><RESOURCE_ID>7</RESOURCE_ID>" + inner + "</HOOK_MESSAGE>")
    namespaced = inner.replace("<HOST>", '<HOST xmlns="http://opennebula.org/XMLSchema">', 1)
    plain = sender.build_event(base64.b64encode(inner.encode()).decode(), CONF)
    for text in (wrapped, namespaced):
        event = sender.build_event(base64.b64encode(text.encode()).decode(), CONF)
        assert (event["resource"], event["id"], event["state"]) == ("HOST", 7, 3)
        assert event["event_id"] == plain["event_id"]


def test_object_fields_are_read_only_at_the_object_level(sender):
    """IDs and NAMEs nested deeper (NIC, HISTORY, MONITORING) must not leak into the event."""
    fields = sender.read_object((FIXTURES / "vm-unknown.xml").read_text())
    assert (fields["id"], fields["name"], fields["seqs"]) == ("42", "web-42", ["0", "1"])


@pytest.mark.parametrize("url, parts", [
    ("http://gw:8080/v1/events", ("http", "gw", 8080, "/v1/events")),
    ("https://gw.example.org/v1/events", ("https", "gw.example.org", 443, "/v1/events")),
    ("http://[::1]:9000/v1/events", ("http", "::1", 9000, "/v1/events")),
])
def test_parse_url(sender, url, parts):
    assert sender.parse_url(url) == parts


def test_events_url_appends_the_path_once(sender):
    assert sender.events_url("http://gw:8080/") == "http://gw:8080/v1/events"
    assert sender.events_url("http://gw:8080/v1/events") == "http://gw:8080/v1/events"


def test_config_file_then_environment(sender, tmp_path):
    conf_file = tmp_path / "c.conf"
    conf_file.write_text('# comment\nurls = http://a:1, http://b:2\nkey = "k1"\ntimeout = 2.5\n'
                         "frontend = fe9\nbogus = 1\ntimeout_typo\n")
    conf_file.chmod(0o644)
    conf, problems = sender.load_config({"ONEHA_HOOK_CONFIG": str(conf_file)})
    assert conf["url_list"] == ["http://a:1/v1/events", "http://b:2/v1/events"]
    assert (conf["key"], conf["timeout_s"], conf["frontend"]) == ("k1", 2.5, "fe9")
    assert len(problems) == 3 and "world-readable" in problems[0]
    assert "bogus" in problems[1] and "timeout_typo" in problems[2]
    conf_file.chmod(0o640)
    assert len(sender.load_config({"ONEHA_HOOK_CONFIG": str(conf_file)})[1]) == 2
    conf, _ = sender.load_config({"ONEHA_HOOK_CONFIG": str(conf_file), "ONEHA_KEY": "k2",
                                  "ONEHA_URLS": "http://c:3", "ONEHA_TIMEOUT": "oops"})
    assert (conf["key"], conf["url_list"], conf["timeout_s"]) == ("k2", ["http://c:3/v1/events"], 3.0)


def test_missing_explicit_config_file_is_reported(sender, tmp_path):
    _, problems = sender.load_config({"ONEHA_HOOK_CONFIG": str(tmp_path / "nope.conf")})
    assert problems and "does not exist" in problems[0]


def test_sender_is_python36_syntax_and_standard_library_only():
    source = SENDER.read_text()
    tree = ast.parse(source, feature_version=(3, 6))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
        # 3.6 has no dataclasses, no walrus, no `from __future__ import annotations`
        assert not isinstance(node, ast.NamedExpr)
    # _sha2 is _sha256's name from Python 3.12 on (the sender tries both)
    stdlib = set(sys.stdlib_module_names) | {"_sha2", "_sha256"}
    assert imported <= stdlib, imported - stdlib
    assert not imported & {"dataclasses", "__future__", "contextvars"}
    assert source.startswith("#!/usr/bin/env python3\n")
    assert SENDER.stat().st_mode & 0o111, "the sender must be executable"


@pytest.mark.parametrize("key", [b"", b"k", b"s3cret" * 5, b"x" * 64, b"long key " * 20])
def test_hmac_from_the_c_module_equals_the_hmac_module(sender, key):
    import hmac
    message = b"1764092301." + b'{"a":1}' * 100
    assert sender.hmac_sha256(key, message) == hmac.new(key, message, hashlib.sha256).hexdigest()


def test_json_writer_equals_json_dumps(sender):
    import json
    event = sender.build_event(fixture_b64("vm-unknown.xml"), CONF, now=1764092301.123)
    odd = dict(event, name='we"ird\\ näme \u2603\n\t', lcm_state=None, flag=True, off=False,
               big=2 ** 40, neg=-1, tiny=0.1)
    for value in (event, odd):
        assert sender.dumps(value) == json.dumps(value, sort_keys=True, separators=(",", ":"))


def test_bad_base64_is_refused(sender):
    for token in ("not base64!", "", "QUJD*REVG"):
        with pytest.raises(sender.BadInput, match="not base64"):
            sender.decode_object(token)


def test_a_stalled_name_lookup_costs_no_more_than_the_time_budget(sender):
    import socket
    import threading

    release = threading.Event()

    def stalled(*_args):
        release.wait(10)
        return []

    try:
        with pytest.raises(socket.timeout, match="looking up gw.example took longer"):
            sender.resolve(b"gw.example", 80, 0.2, getaddrinfo=stalled)
    finally:
        release.set()


def test_names_and_addresses_still_resolve(sender):
    assert sender.resolve(b"localhost", 80, 2.0)
    seen = []
    assert sender.resolve("127.0.0.1", 80, 2.0,
                          getaddrinfo=lambda *a: seen.append(a) or [("addr",)]) == [("addr",)]
    assert seen, "an IP literal is passed straight through, without a thread"
