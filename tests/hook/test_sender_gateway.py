"""The sender against the real gateway (Flask app over HTTP, real Redis): the contract holds."""

from __future__ import annotations

import ssl
import threading

import pytest
import redis
import trustme
from werkzeug.serving import make_server

from gateway.app import create_app
from gateway.config import settings_from_dict
from gateway.domain.events import Event
from gateway.local import free_port
from tests.hook.support import HookRunner, fixture_b64

KEY = "fe1-key"


class Gateway:
    """`create_app` served on a free port in a thread (what `oneha serve --dev` runs)."""

    def __init__(self, redis_url: str, key_prefix: str, ssl_context=None, port: int = 0):
        self.settings = settings_from_dict(
            {"redis_url": redis_url, "key_prefix": key_prefix,
             "ingest": {"frontends": {"fe1": {"keys": [KEY]}}}}, env={})
        self.server = make_server("127.0.0.1", port, create_app(self.settings), threaded=True,
                                  ssl_context=ssl_context)
        scheme = "https" if ssl_context else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def log(self) -> list[Event]:
        r = redis.Redis.from_url(self.settings.redis_url)
        return [Event.from_json(f[b"event"])
                for _id, f in r.xrange(self.settings.key_prefix + "events:log")]

    def __enter__(self) -> "Gateway":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        redis.Redis.from_url(self.settings.redis_url).delete(self.settings.task_queue)


@pytest.fixture
def hook(tmp_path):
    return HookRunner(tmp_path, key=KEY, frontend="fe1")


def test_host_and_vm_events_are_recorded_once_each(hook, redis_url, key_prefix):
    with Gateway(redis_url, key_prefix) as gw:
        hook.configure(urls=gw.url)
        for token in (fixture_b64("host-error.xml"), fixture_b64("vm-unknown.xml"),
                      fixture_b64("vm-unknown.xml")):  # oned fired the VM hook twice
            result = hook.run(stdin=token)
            assert result.returncode == 0 and "accepted by" in result.stderr, result.stderr
        log = gw.log()
    assert [(e.object_key, e.condition, e.status, e.hook) for e in log] == [
        ("host:7", "HOST/ERROR", "firing", "oneha-host-error"),
        ("vm:42", "VM/ACTIVE/UNKNOWN", "firing", "oneha-vm-unknown")]
    assert log[1].labels["host"] == "node07" and log[0].frontend == "fe1"
    assert hook.spooled() == [] and hook.rejected() == []


def test_events_spooled_while_redis_was_down_are_flushed_exactly_once(hook, own_redis, key_prefix):
    with Gateway(own_redis.url, key_prefix) as gw:
        hook.configure(urls=gw.url)
        own_redis.stop()
        assert hook.run(stdin=fixture_b64("host-error.xml")).returncode == 0  # gateway says 503
        assert "HTTP 503" in hook.log() and len(hook.spooled()) == 1
        own_redis.start()
        assert hook.run("--flush").returncode == 0
        assert hook.run("--flush").returncode == 0
        assert [e.object_key for e in gw.log()] == ["host:7"]
    assert hook.spooled() == []


def test_with_the_gateway_stopped_events_spool_in_time_and_one_flush_delivers_each_once(
        hook, redis_url, key_prefix):
    port = free_port()  # where the gateway will listen: nothing does yet
    hook.configure(urls=f"http://127.0.0.1:{port}", timeout="2")
    for fixture in ("host-error.xml", "vm-unknown.xml"):  # (the time bound: test_sender.py)
        result = hook.run(stdin=fixture_b64(fixture))
        assert result.returncode == 0 and "spooled" in result.stderr, result.stderr
    assert len(hook.spooled()) == 2
    with Gateway(redis_url, key_prefix, port=port) as gw:
        assert hook.run("--flush").returncode == 0
        assert hook.run("--flush").returncode == 0  # nothing left: nothing sent again
        assert [e.object_key for e in gw.log()] == ["host:7", "vm:42"]  # oldest first, once each
    assert hook.spooled() == []


def test_wrong_key_is_refused_by_the_gateway_and_kept(hook, redis_url, key_prefix):
    with Gateway(redis_url, key_prefix) as gw:
        hook.configure(urls=gw.url, key="not-the-key")
        assert hook.run(stdin=fixture_b64("host-error.xml")).returncode == 0
        assert gw.log() == []
    [rejected] = hook.rejected()
    assert '"status": 401' in rejected.read_text()


# --- https: a gateway behind TLS with a private CA (the sender's ca_file) -------------------------

@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """A private CA and a certificate for 127.0.0.1 only, as a site's own PKI would issue."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    ca_file = tmp_path_factory.mktemp("pki") / "oneha-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return server, ca_file


def test_https_gateway_with_the_sites_ca_accepts_the_event(hook, redis_url, key_prefix, tls):
    server, ca_file = tls
    with Gateway(redis_url, key_prefix, ssl_context=server) as gw:
        assert gw.url.startswith("https://")
        hook.configure(urls=gw.url, ca_file=str(ca_file))
        result = hook.run(stdin=fixture_b64("host-error.xml"))
        assert result.returncode == 0 and "accepted by" in result.stderr, result.stderr
        assert [e.object_key for e in gw.log()] == ["host:7"]
    assert hook.spooled() == []


@pytest.mark.parametrize("case, why", [("no ca_file", "unable to get local issuer certificate"),
                                       ("name not in the certificate", "Hostname mismatch")])
def test_https_gateway_the_sender_cannot_verify_gets_nothing_and_the_event_is_spooled(
        hook, redis_url, key_prefix, tls, case, why):
    server, ca_file = tls
    with Gateway(redis_url, key_prefix, ssl_context=server) as gw:
        if case == "no ca_file":  # the system's CAs do not know the site's CA
            hook.configure(urls=gw.url)
        else:  # same server, reached by a name its certificate does not carry
            hook.configure(urls=gw.url.replace("127.0.0.1", "localhost"), ca_file=str(ca_file))
        result = hook.run(stdin=fixture_b64("host-error.xml"))
        assert result.returncode == 0, result.stderr  # oned's hook never fails
        assert gw.log() == []  # not a byte of the event reached the gateway's store
    assert len(hook.spooled()) == 1
    assert "CERTIFICATE_VERIFY_FAILED" in hook.log() and why in hook.log()  # says what to fix
