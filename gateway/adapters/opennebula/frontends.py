"""The front-end servers of one zone, called as one: reads to any, writes to the Raft leader.

One client knows every front-end endpoint. Reads go to any healthy server (the one that answered
last first); writes go to the current Raft leader (found with `one.zone.raftstatus`, cached,
re-discovered on failure). Every call has a real timeout: pyone's own `timeout` only sets the
process-wide socket default and does not bound its `requests.post` (see shared/STACK.md §3), so
each server gets a transport that passes `timeout=` to requests. After `retries` extra rounds
over all servers a call raises `Transient` (what counts as a server failing: `errors.py`).

When the leader does not answer oneha but a follower does (a partial partition), the write goes
to that follower, which oned proxies to its leader. A write is retried only when it certainly did
not run (connection refused, no leader). A write that timed out or whose connection broke mid-call
may have run: it raises `Transient` with `outcome unknown` and the caller re-reads the live state
before trying again.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
import xmlrpc.client
from typing import Any, Callable

import requests
from pyone.server_xrpc import OneServerXRPC, RequestsTransport

from gateway.domain.objects import XmlError
from gateway.domain.raft import FOLLOWER, RaftStatus, parse_raft_status
from gateway.errors import Permanent, Transient

from .errors import CALL_FAILURES, OneCallError, Unavailable, error_code, unavailable_reason


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


class Frontends:
    """Every configured endpoint, which one answered last, and which one leads."""

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

    def _server(self, url: str) -> _RawServer:
        # timeout=None: pyone would otherwise set the process-wide socket default.
        server = _RawServer(url, self._session, timeout=None)
        server._ServerProxy__transport = _TimeoutTransport(self.timeout, url.startswith("https"))
        return server

    def _known(self, url: str) -> None:
        if url not in self._servers:
            self._servers[url] = self._server(url)

    # ---- Raft -------------------------------------------------------------------------------

    def raft_status(self, endpoint: str) -> RaftStatus:
        """That one server's own Raft view. Raises Transient when it cannot answer.

        `endpoint` may be one the client was not configured with (a server of the zone pool):
        it is polled, never used for reads or writes."""
        self._known(endpoint)
        try:
            text = self._call(endpoint, "zone.raftstatus", ())
        except Unavailable as exc:
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

    # ---- reads (any server) and writes (the leader) -----------------------------------------

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
                except Unavailable as exc:
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
            except Unavailable as exc:
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
        """One call to one server: its answer, `OneCallError`, or `Unavailable`."""
        started = time.monotonic()
        server = self._servers[url]
        try:
            # pyone turns attribute paths into "one.<path>" and prepends the session.
            result = server._ServerProxy__request(method, params)
        except CALL_FAILURES as exc:
            unavailable = unavailable_reason(exc, self.timeout)
            if unavailable is not None:
                reason, maybe_ran = unavailable
                self.log.warning("one_call_failed endpoint=%s method=one.%s elapsed_ms=%s "
                                 "reason=%s", url, method, _ms(started), reason)
                raise Unavailable(url, reason, maybe_ran) from None
            code = error_code(exc)
            self.log.info("one_call_refused endpoint=%s method=one.%s code=%#x elapsed_ms=%s "
                          "message=%s", url, method, code, _ms(started), str(exc))
            raise OneCallError(f"one.{method}", code, str(exc), url) from None
        self.log.debug("one_call_answered endpoint=%s method=one.%s elapsed_ms=%s", url, method,
                       _ms(started))
        return result


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
