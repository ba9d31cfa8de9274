"""Real peers for the hook sender: an HTTP gateway stand-in that verifies signatures, a black
hole that accepts connections and never answers, and a runner for the sender as a subprocess."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SENDER = ROOT / "hook_templates" / "oneha-hook"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ONE_NS = "http://opennebula.org/XMLSchema"


def fixture_b64(name: str, **replace: str) -> str:
    """A fixture's XML as oned passes it ($TEMPLATE: base64, no declaration, no namespace)."""
    text = (FIXTURES / name).read_text().strip()
    for old, new in replace.items():
        text = text.replace(old, new)
    return base64.b64encode(text.encode()).decode()


def expected_signature(key: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(key.encode(), timestamp.encode() + b"." + body,
                                hashlib.sha256).hexdigest()


class Receiver:
    """A stand-in gateway on a free port: checks the three headers and the HMAC like the real
    ingest does; then answers from `script` (status codes, default 202 for ever)."""

    def __init__(self, key: str = "s3cret", frontend: str = "fe1", script: list[int] | None = None):
        self.key, self.frontend = key, frontend
        self.script = list(script or [])
        self.accepted: list[dict] = []  # bodies answered 202 and not duplicate
        self.requests: list[dict] = []  # every request: path, headers, body, verdict
        self._seen: dict[str, bytes] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 (http.server API)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, answer = receiver._answer(self.path, self.headers, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _answer(self, path: str, headers, body: bytes) -> tuple[int, dict]:
        with self._lock:
            record = {"path": path, "headers": headers, "body": body}
            self.requests.append(record)
            ts = headers.get("X-OneHA-Timestamp", "")
            if path not in ("/v1/events", "/v1/heartbeats", "/v1/drills"):
                record["verdict"] = "not found"
                return 404, {"error": "not_found", "detail": path}
            if headers.get("X-OneHA-Frontend") != self.frontend:
                record["verdict"] = "unknown front-end"
                return 401, {"error": "unknown_frontend", "detail": "no key for this front-end"}
            if not ts.isdigit() or abs(time.time() - int(ts)) > 300:
                record["verdict"] = "stale"
                return 401, {"error": "stale_timestamp", "detail": ts}
            sig = headers.get("X-OneHA-Signature", "")
            if not hmac.compare_digest(sig, expected_signature(self.key, ts, body)):
                record["verdict"] = "bad signature"
                return 401, {"error": "bad_signature", "detail": "HMAC does not match"}
            if path != "/v1/events":  # a heartbeat after --flush, a drill: signed like events
                record["verdict"] = "accepted"
                return 202, {"frontend": self.frontend}
            status = self.script.pop(0) if self.script else 202
            if status != 202:
                record["verdict"] = f"scripted {status}"
                return status, {"error": "scripted", "detail": f"scripted answer {status}"}
            event = json.loads(body)
            duplicate = event["event_id"] in self._seen
            if duplicate and self._seen[event["event_id"]] != body:
                record["verdict"] = "conflict"
                return 409, {"error": "event_id_conflict", "detail": "same id, other body"}
            self._seen[event["event_id"]] = body
            record["verdict"] = "duplicate" if duplicate else "accepted"
            if not duplicate:
                self.accepted.append(event)
            return 202, {"event_id": event["event_id"], "duplicate": duplicate}

    def verdicts(self, path: str = "/v1/events") -> list[str]:
        """What became of each request to `path` (events by default; also /v1/heartbeats)."""
        with self._lock:
            return [r["verdict"] for r in self.requests if r["path"] == path]

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class BlackHole:
    """Accepts TCP connections and never answers (a hung gateway or a stalled proxy)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.held: list[socket.socket] = []
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self):
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
                self.held.append(conn)
            except OSError:
                continue

    def __enter__(self) -> "BlackHole":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop = True
        self._thread.join(timeout=2)
        for conn in self.held:
            conn.close()
        self.sock.close()


def closed_port_url() -> str:
    """A URL where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class HookRunner:
    """Runs the sender as oned's hook manager does, with its own config file and spool."""

    def __init__(self, tmp: Path, key: str = "s3cret", frontend: str = "fe1"):
        self.spool = tmp / "spool"
        self.log_file = tmp / "oneha-hook.log"
        self.config = tmp / "oneha-hook.conf"
        self.settings = {"key": key, "frontend": frontend, "spool_dir": str(self.spool),
                         "timeout": "3", "log_file": str(self.log_file), "auto_flush": "no"}

    def configure(self, **values: str) -> None:
        self.settings.update(values)

    def env(self) -> dict[str, str]:
        self.config.write_text("# written by the test\n" + "".join(
            f"{k} = {v}\n" for k, v in self.settings.items()))
        self.config.chmod(0o600)  # it holds the key (the sender warns about a world-readable one)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ONEHA_")}
        env["ONEHA_HOOK_CONFIG"] = str(self.config)
        return env

    def run(self, *args: str, stdin: str | None = None, env: dict | None = None,
            timeout: float = 30, python: str = sys.executable) -> subprocess.CompletedProcess:
        return subprocess.run([python, str(SENDER), *args], input=stdin,
                              capture_output=True, text=True, env=env or self.env(),
                              timeout=timeout)

    def spooled(self) -> list[Path]:
        return sorted(p for p in self.spool.glob("*.json")) if self.spool.exists() else []

    def rejected(self) -> list[Path]:
        d = self.spool / "rejected"
        return sorted(d.glob("*.json")) if d.exists() else []

    def log(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""
