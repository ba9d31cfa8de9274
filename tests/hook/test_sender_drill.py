"""The sender's two small duties besides events: a signed heartbeat after each scheduled
`--flush`, and the drill hook's `--drill $API` (the drill id back to /v1/drills, never spooled)."""

import base64
import json

import pytest

from tests.hook.support import HookRunner, Receiver, closed_port_url, expected_signature


@pytest.fixture
def hook(tmp_path):
    return HookRunner(tmp_path)


def call_info(template: str, result: int = 1) -> str:
    """What oned's HookAPI gives an API hook on one.hook.update ($API: base64 of CALL_INFO)."""
    xml = (f"<CALL_INFO><RESULT>{result}</RESULT><PARAMETERS>"
           "<PARAMETER><POSITION>1</POSITION><TYPE>IN</TYPE><VALUE>****</VALUE></PARAMETER>"
           "<PARAMETER><POSITION>2</POSITION><TYPE>IN</TYPE><VALUE>7</VALUE></PARAMETER>"
           f"<PARAMETER><POSITION>3</POSITION><TYPE>IN</TYPE><VALUE>{template}</VALUE></PARAMETER>"
           "</PARAMETERS><EXTRA/></CALL_INFO>")
    return base64.b64encode(xml.encode()).decode()


def test_flush_signs_a_heartbeat_with_what_is_still_spooled(hook):
    with Receiver() as gw:
        hook.configure(urls=gw.url)
        assert hook.run("--flush").returncode == 0
    assert gw.verdicts() == []  # nothing was spooled
    assert gw.verdicts("/v1/heartbeats") == ["accepted"]
    (req,) = [r for r in gw.requests if r["path"] == "/v1/heartbeats"]
    beat = json.loads(req["body"])
    assert (beat["frontend"], beat["spooled"]) == ("fe1", 0)
    ts = req["headers"]["X-OneHA-Timestamp"]
    assert req["headers"]["X-OneHA-Signature"] == expected_signature("s3cret", ts, req["body"])


def test_no_heartbeat_when_switched_off_and_a_failed_one_is_only_logged(hook):
    with Receiver() as gw:
        hook.configure(urls=gw.url, heartbeat="no")
        assert hook.run("--flush").returncode == 0
    assert gw.requests == []
    hook.configure(urls=closed_port_url(), heartbeat="yes")
    done = hook.run("--flush")
    assert done.returncode == 0 and "heartbeat NOT delivered" in done.stderr


@pytest.mark.parametrize("how", ["stdin", "argv"])
def test_the_drill_hook_sends_the_drill_id_back_signed(hook, how):
    payload = call_info('ONEHA_DRILL = "0123456789abcdef"')
    with Receiver() as gw:
        hook.configure(urls=gw.url)
        done = (hook.run(stdin=f"--drill {payload}") if how == "stdin"
                else hook.run("--drill", payload))
    assert done.returncode == 0, done.stderr
    assert gw.verdicts("/v1/drills") == ["accepted"]
    (req,) = gw.requests
    body = json.loads(req["body"])
    assert (body["drill_id"], body["frontend"], body["hook"]) == ("0123456789abcdef", "fe1",
                                                                 "oneha-drill")
    assert hook.spooled() == []


def test_another_hook_update_or_a_failed_call_sends_nothing_and_a_lost_drill_is_not_spooled(hook):
    with Receiver() as gw:
        hook.configure(urls=gw.url)
        assert hook.run("--drill", call_info('COMMAND = "/bin/true"')).returncode == 0
        assert hook.run("--drill", call_info('ONEHA_DRILL = "0123456789abcdef"', result=0)
                        ).returncode == 0
    assert gw.requests == []
    hook.configure(urls=closed_port_url())
    done = hook.run("--drill", call_info('ONEHA_DRILL = "0123456789abcdef"'))
    assert done.returncode == 0 and "NOT delivered" in done.stderr
    assert hook.spooled() == []
