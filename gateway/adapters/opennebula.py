"""OpenNebula over pyone, aware of the front-end Raft cluster.

One client knows every front-end endpoint. Reads go to any healthy server (the one that answered
last first); writes go to the current Raft leader (found with `one.zone.raftstatus`, cached,
re-discovered on failure). Every call has a real timeout: pyone's own `timeout` only sets the
process-wide socket default and does not bound its `requests.post` (see shared/STACK.md §3), so
each server gets a transport that passes `timeout=` to requests.

What fails over to the next server: connection errors, timeouts, HTTP errors, and OpenNebula's
"no leader found" / "election mode" / "replicating log" answers. After `retries` extra rounds
over all servers the call raises `Transient`. An answer of OpenNebula itself (no such VM, wrong
state, not authorised) is `OneCallError`, a `Permanent`: asking another server will not help.

When the leader does not answer oneha but a follower does (a partial partition), the write goes
to that follower, which oned proxies to its leader. A write is retried only when it certainly did
not run (connection refused, no leader). A write that timed out or whose connection broke mid-call
may have run: it raises `Transient` with `outcome unknown` and the caller re-reads the live state
before trying again.

Reads fetch the raw XML (pyone's generateDS binding is skipped) and parse it with the tolerant
readers of `gateway.domain` — the same code that reads a hook's `$TEMPLATE`, so 6.x and 7.x
documents with missing fields are fine and there is one conversion, not two.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
import xmlrpc.client
from typing import Any, Callable

import pyone
import requests
import urllib3.exceptions
from pyone.server_xrpc import OneServerXRPC, RequestsTransport

from gateway.domain import objects
from gateway.domain.objects import HostInfo, VmInfo, XmlError
from gateway.domain.raft import FOLLOWER, RaftStatus, ZoneInfo, parse_raft_status, parse_zone
from gateway.errors import Permanent, Transient

# Answers that mean "ask again later or elsewhere" (RequestXRPC.cc): the call did not run.
_NOT_NOW_MARKERS = ("no leader found", "election mode", "replicating log")
# The leader could not replicate the record to a majority: it may still be applied later.
_MAYBE_MARKERS = ("error replicating log entry",)

# Error codes by pyone exception class (include/Request.h), so a caller can branch on the code.
_CODES = (
    (pyone.OneAuthenticationException, 0x0100),
    (pyone.OneAuthorizationException, 0x0200),
    (pyone.OneNoExistsException, 0x0400),
    (pyone.OneActionException, 0x0800),
    (pyone.OneApiException, 0x1000),
    (pyone.OneInternalException, 0x2000),
)

HOST_ENABLED, HOST_DISABLED, HOST_OFFLINE = 0, 1, 2  # one.host.status codes (HostAPI.h)
VM_RECOVER = {"failure": 0, "success": 1, "retry": 2, "delete": 3, "delete-recreate": 4,
              "delete-db": 5}


class OneCallError(Permanent):
    """OpenNebula answered and said no. `code` is OpenNebula's error code (0x0400 no such object,
    0x0800 action not allowed in this state, 0x0100/0x0200 authentication/authorisation, ...)."""

    NO_EXISTS = 0x0400
    ACTION = 0x0800
    AUTHENTICATION = 0x0100
    AUTHORIZATION = 0x0200

    def __init__(self, method: str, code: int, message: str, endpoint: str = ""):
        super().__init__(f"{method} failed on {endpoint or '?'} (code {code:#x}): {message}")
        self.method = method
        self.code = code
        self.message = message
        self.endpoint = endpoint


class _Unavailable(Exception):
    """This server could not answer now; `ran` says whether a write may have happened."""

    def __init__(self, endpoint: str, reason: str, maybe_ran: bool):
        super().__init__(f"{endpoint}: {reason}")
        self.endpoint = endpoint
        self.reason = reason
        self.maybe_ran = maybe_ran


class _TimeoutTransport(RequestsTransport):
    """pyone's transport with a real per-call (connect, read) timeout."""

    def __init__(self, timeout: float, https: bool, verify: bool = True):
        super().__init__()
        self.timeout = timeout
        self.set_https(https)
        self.set_https_verify(verify)

    def request(self, host, handler, request_body, verbose=False):
        url = self._build_url(host, handler)
        resp = requests.post(url, data=request_body, headers=self.headers,
                             verify=self.https_verify, timeout=self.timeout)
        try:
            resp.raise_for_status()
        except requests.RequestException as exc:
            raise xmlrpc.client.ProtocolError(url, resp.status_code, str(exc), resp.headers)
        return self.parse_response(resp)


class _RawServer(OneServerXRPC):
    """pyone's server, answering XML documents as the raw string instead of generateDS objects
    (errors still become pyone's typed exceptions)."""

    def _OneServerXRPC__response(self, raw_response):
        if raw_response[0] and isinstance(raw_response[1], str):
            return raw_response[1]
        return super()._OneServerXRPC__response(raw_response)


class OpenNebula:
    def __init__(self, endpoints: list[str], session: str, timeout: float = 5.0, retries: int = 2,
                 log=None, backoff: float = 0.5, sleep: Callable[[float], None] = time.sleep):
        if not endpoints:
            raise ValueError("OpenNebula needs at least one endpoint")
        self.endpoints = list(dict.fromkeys(endpoints))
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = backoff
        self._sleep = sleep
        self.log = log or logging.getLogger("oneha.opennebula")
        self._session = session
        self._servers = {url: self._server(url) for url in self.endpoints}
        self._last_good: str | None = None
        self._leader: str | None = None

    @classmethod
    def from_settings(cls, settings) -> "OpenNebula":
        one = settings.opennebula
        return cls(one.endpoints, one.session.get_secret_value(), timeout=one.timeout,
                   retries=one.retries)

    @classmethod
    def of(cls, runtime) -> "OpenNebula":
        """The process's client (one per `Runtime`, so its leader cache is shared by all tasks)."""
        return runtime.cached("opennebula", lambda: cls.from_settings(runtime.settings))

    def _server(self, url: str) -> _RawServer:
        # timeout=None: pyone would otherwise set the process-wide socket default.
        server = _RawServer(url, self._session, timeout=None)
        server._ServerProxy__transport = _TimeoutTransport(self.timeout, url.startswith("https"))
        return server

    def _known(self, url: str) -> None:
        if url not in self._servers:
            self._servers[url] = self._server(url)

    # ---- reads ------------------------------------------------------------------------------

    def host(self, host_id: int) -> HostInfo:
        return self._parsed("host.info", objects.parse_host, int(host_id))

    def hosts(self) -> list[HostInfo]:
        return self._parsed("hostpool.info", objects.parse_host_pool)

    def vm(self, vm_id: int) -> VmInfo:
        return self._parsed("vm.info", objects.parse_vm, int(vm_id))

    def vms(self, state: int = -1) -> list[VmInfo]:
        """Every VM (filter -2 = all users), `state` -1 = any but DONE, >= 0 that VM STATE.

        Always the extended pool: `one.vmpool.info` entries are cut short by oned
        (VirtualMachine::to_xml_short: disks without PERSISTENT/TM_MAD, USER_TEMPLATE without
        ONEHA_* labels), which would read as "no persistent disk" — unsafe for remediation."""
        return self._parsed("vmpool.infoextended", objects.parse_vm_pool, -2, -1, -1, int(state))

    def system_config(self) -> dict[str, str]:
        """oned.conf as `{"MONITORING_INTERVAL_HOST": "60", "RAFT/LOG_RETENTION": "250000", ...}`:
        single values, and vector attributes' single values as `VECTOR/KEY` (first one wins)."""
        def parse(text):
            root = objects.parse_xml(text, "OPENNEBULA_CONFIGURATION")
            config: dict[str, str] = {}
            for child in root:
                if len(child) == 0:
                    config.setdefault(child.tag, (child.text or "").strip())
                for leaf in child:
                    if len(leaf) == 0:
                        config.setdefault(f"{child.tag}/{leaf.tag}", (leaf.text or "").strip())
            return config
        return self._parsed("system.config", parse)

    def version(self) -> str:
        return str(self._read("system.version"))

    def zone(self, zone_id: int = 0) -> ZoneInfo:
        return self._parsed("zone.info", parse_zone, int(zone_id))

    def hooks(self) -> list[dict[str, Any]]:
        """`[{"id", "name", "type", "template": {KEY: value}}]` of `one.hookpool.info`."""
        def parse(text):
            root = objects.parse_xml(text, "HOOK_POOL")
            hooks = []
            for el in root.findall("HOOK"):
                tmpl = el.find("TEMPLATE")
                leaves = [c for c in (tmpl if tmpl is not None else []) if len(c) == 0]
                template = {c.tag: (c.text or "").strip() for c in leaves}
                hooks.append({"id": objects._int(el, "ID"), "name": objects._text(el, "NAME") or "",
                              "type": objects._text(el, "TYPE") or "", "template": template})
            return hooks
        return self._parsed("hookpool.info", parse)

    # ---- Raft -------------------------------------------------------------------------------

    def raft_status(self, endpoint: str) -> RaftStatus:
        """That one server's own Raft view. Raises Transient when it cannot answer.

        `endpoint` may be one the client was not configured with (a server of the zone pool):
        it is polled, never used for reads or writes."""
        self._known(endpoint)
        try:
            text = self._call(endpoint, "zone.raftstatus", ())
        except _Unavailable as exc:
            raise Transient(f"one.zone.raftstatus: {exc}") from None
        return self._parse(endpoint, "zone.raftstatus", parse_raft_status, text)

    def raft_statuses(self, endpoints: list[str] | None = None
                      ) -> dict[str, RaftStatus | Exception]:
        """Every endpoint (default: the configured ones) polled in parallel: a stalled server
        costs one timeout, not one per server."""
        endpoints = list(dict.fromkeys(endpoints or self.endpoints))
        for url in endpoints:  # before the threads start: they only read the dict
            self._known(url)

        def one(url):
            try:
                return self.raft_status(url)
            except (Transient, Permanent) as exc:
                return exc
        if len(endpoints) == 1:
            return {endpoints[0]: one(endpoints[0])}
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(endpoints)) as pool:
            return dict(zip(endpoints, pool.map(one, endpoints)))

    def leader(self) -> str:
        """Endpoint of the current leader (cached; re-discovered after a failure)."""
        url, is_leader = self._write_target()
        if not is_leader:
            raise Transient(f"the Raft leader does not answer (followers like {url} do)")
        return url

    def _write_target(self) -> tuple[str, bool]:
        """(endpoint, is_leader): the leader, or — when the leader does not answer us but a
        follower does — that follower, which oned proxies writes from to its leader (a partial
        partition between oneha and the leader must not stop remediation)."""
        if self._leader is not None:
            return self._leader, True
        statuses = self.raft_statuses()
        leaders = [(s.term, url) for url, s in statuses.items()
                   if isinstance(s, RaftStatus) and s.is_leader]
        if leaders:
            # Two servers claiming leadership: the higher term is the real one.
            term, url = max(leaders)
            self.log.info("leader_discovered endpoint=%s term=%s", url, term)
            self._leader = url
            return url, True
        followers = [(s.term, url) for url, s in statuses.items()
                     if isinstance(s, RaftStatus) and s.state == FOLLOWER]
        if followers and any(not isinstance(s, RaftStatus) for s in statuses.values()):
            term, url = max(followers)
            self.log.warning("leader_unreachable writing_via=%s term=%s", url, term)
            return url, False
        seen = ", ".join(f"{url}={s.state_name if isinstance(s, RaftStatus) else 'unreachable'}"
                         for url, s in statuses.items())
        raise Transient(f"no Raft leader among the front-ends ({seen})")

    # ---- writes (to the leader) -------------------------------------------------------------

    def vm_action(self, action: str, vm_id: int) -> int:
        return int(self._write("vm.action", str(action), int(vm_id)))

    def vm_recover(self, vm_id: int, op: int) -> int:
        return int(self._write("vm.recover", int(vm_id), int(op)))

    def vm_deploy(self, vm_id: int, host_id: int, enforce: bool = False) -> int:
        return int(self._write("vm.deploy", int(vm_id), int(host_id), bool(enforce)))

    def host_status(self, host_id: int, status: int) -> int:
        return int(self._write("host.status", int(host_id), int(status)))

    def host_force_update(self, host_id: int) -> None:
        """Like `onehost forceupdate`: OFFLINE, 0.5 s, ENABLED makes the monitor re-sync it."""
        self.host_status(host_id, HOST_OFFLINE)
        self._sleep(0.5)
        self.host_status(host_id, HOST_ENABLED)

    def hook_allocate(self, template: str) -> int:
        return int(self._write("hook.allocate", str(template)))

    def hook_delete(self, hook_id: int) -> int:
        return int(self._write("hook.delete", int(hook_id)))

    # ---- the machinery ----------------------------------------------------------------------

    def _parsed(self, method: str, parse: Callable[[str], Any], *params):
        text = self._read(method, *params)
        return self._parse(self._last_good or "?", method, parse, text)

    def _parse(self, endpoint: str, method: str, parse, text):
        if not isinstance(text, str):
            raise OneCallError(f"one.{method}", 0, f"expected an XML document, got {text!r:.80}",
                               endpoint)
        try:
            return parse(text)
        except XmlError as exc:
            raise OneCallError(f"one.{method}", 0, f"unreadable answer: {exc}", endpoint) from exc

    def _read_order(self) -> list[str]:
        first = self._last_good
        if first is None:
            return list(self.endpoints)
        return [first] + [u for u in self.endpoints if u != first]

    def _read(self, method: str, *params):
        failures: list[str] = []
        for round_no in range(self.retries + 1):
            if round_no:
                self._sleep(self.backoff * round_no)
            for url in self._read_order():
                try:
                    result = self._call(url, method, params)
                except _Unavailable as exc:
                    failures.append(str(exc))
                    if self._last_good == url:
                        self._last_good = None
                    continue
                self._last_good = url
                return result
        raise Transient(f"one.{method}: no front-end answered after {self.retries + 1} round(s): "
                        + "; ".join(failures[-len(self.endpoints):]))

    def _write(self, method: str, *params):
        failures: list[str] = []
        for round_no in range(self.retries + 1):
            if round_no:
                self._sleep(self.backoff * round_no)
            try:
                url, _ = self._write_target()
            except Transient as exc:
                failures.append(str(exc))
                continue
            started = time.monotonic()
            try:
                result = self._call(url, method, params)
            except _Unavailable as exc:
                self._leader = None  # whatever happened, ask again who leads
                if exc.maybe_ran:
                    raise Transient(f"one.{method}: outcome unknown ({exc}); re-read the state "
                                    "before trying again") from None
                failures.append(str(exc))
                continue
            self.log.info("one_write_done endpoint=%s method=one.%s args=%s elapsed_ms=%s", url,
                          method, params, _ms(started))
            return result
        raise Transient(f"one.{method}: no leader took the call after {self.retries + 1} round(s): "
                        + "; ".join(failures[-3:]))

    def _call(self, url: str, method: str, params: tuple):
        """One call to one server: its answer, `OneCallError`, or `_Unavailable`."""
        started = time.monotonic()
        server = self._servers[url]
        try:
            # pyone turns attribute paths into "one.<path>" and prepends the session.
            result = server._ServerProxy__request(method, params)
        except requests.exceptions.ReadTimeout:
            raise self._unavailable(url, method, started, f"no answer within {self.timeout:g}s",
                                    maybe_ran=True) from None
        except requests.exceptions.ConnectionError as exc:
            broke = _broke_mid_call(exc)
            raise self._unavailable(url, method, started, _short(exc), maybe_ran=broke) from None
        except requests.exceptions.RequestException as exc:
            raise self._unavailable(url, method, started, _short(exc), maybe_ran=True) from None
        except xmlrpc.client.ProtocolError as exc:
            raise self._unavailable(url, method, started, f"HTTP {exc.errcode} {exc.errmsg}",
                                    maybe_ran=True) from None
        except (xmlrpc.client.ResponseError, OSError) as exc:
            raise self._unavailable(url, method, started, _short(exc), maybe_ran=True) from None
        except pyone.OneException as exc:
            message = str(exc)
            lowered = message.lower()
            if any(marker in lowered for marker in _NOT_NOW_MARKERS + _MAYBE_MARKERS):
                maybe = any(marker in lowered for marker in _MAYBE_MARKERS)
                raise self._unavailable(url, method, started, message, maybe_ran=maybe) from None
            code = next((c for cls, c in _CODES if isinstance(exc, cls)), 0)
            self.log.info("one_call_refused endpoint=%s method=one.%s code=%#x elapsed_ms=%s "
                          "message=%s", url, method, code, _ms(started), message)
            raise OneCallError(f"one.{method}", code, message, url) from None
        self.log.debug("one_call_answered endpoint=%s method=one.%s elapsed_ms=%s", url, method,
                       _ms(started))
        return result

    def _unavailable(self, url, method, started, reason, maybe_ran) -> _Unavailable:
        self.log.warning("one_call_failed endpoint=%s method=one.%s elapsed_ms=%s reason=%s", url,
                         method, _ms(started), reason)
        return _Unavailable(url, reason, maybe_ran)


def _broke_mid_call(exc: requests.exceptions.ConnectionError) -> bool:
    """Refused/unreachable (never sent) vs aborted after the request went out (may have run)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return False
    cause = exc.args[0] if exc.args else None
    return isinstance(cause, urllib3.exceptions.ProtocolError)


def _short(exc: Exception) -> str:
    cause = exc.args[0] if exc.args else None
    reason = getattr(cause, "reason", None)  # urllib3's MaxRetryError wraps the real cause
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        return "connection refused or unreachable"
    if isinstance(cause, urllib3.exceptions.ProtocolError):
        return f"connection broke mid-call ({cause.args[0] if cause.args else cause})"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
