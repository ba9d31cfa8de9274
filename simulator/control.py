"""A small JSON control API of a running simulator (what the `oneha-simulator` CLI talks to).

`GET /v1/state`, `/v1/action_log`, `/v1/hook_executions`; `POST /v1/<operation>` with the
operation's arguments as a JSON object, e.g. `POST /v1/crash_host {"host_id": 1}`.
Errors: `{"error", "detail"}` with 400 (bad arguments) or 404 (unknown operation).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# operation -> (argument name, type) list; each maps to the Simulator method of the same name
OPERATIONS: dict[str, tuple[tuple[str, type], ...]] = {
    "crash_host": (("host_id", int),),
    "recover_host": (("host_id", int),),
    "partition": (("host_ids", list),),
    "heal": (("host_ids", list),),
    "freeze_vm": (("vm_id", int),),
    "fail_vm": (("vm_id", int), ("phase", str)),
    "kill_leader": (),
    "kill_server": (("server_id", int),),
    "restart_server": (("server_id", int),),
    "lag_follower": (("server_id", int), ("entries", int)),
    "reset_server": (("server_id", int),),
    "set_log_retention": (("n", int),),
    "append_log": (("entries", int),),
    "set_hooks_enabled": (("enabled", bool),),
    "delay_answers": (("method", str), ("seconds", float)),
}
MAX_BODY = 64 * 1024


class ControlServer:
    def __init__(self, sim, host: str = "127.0.0.1", port: int = 0):
        self.sim = sim
        handler = type("Handler", (_Handler,), {"sim": sim})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, name="sim-control",
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "ControlServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def parse_arguments(operation: str, body: dict) -> dict:
    """Check a control request's arguments; ValueError names the key that is wrong."""
    spec = OPERATIONS[operation]
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    unknown = set(body) - {name for name, _ in spec}
    if unknown:
        raise ValueError(f"unknown argument(s) for {operation}: {', '.join(sorted(unknown))}")
    args = {}
    for name, kind in spec:
        if name not in body:
            raise ValueError(f"missing argument {name!r} for {operation}")
        value = body[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # JSON has one number type: 2 is as good as 2.0
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is list:
            ok = ok and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        if not ok:
            want = "a list of integers" if kind is list else kind.__name__
            raise ValueError(f"argument {name!r} must be {want}, got {value!r}")
        args[name] = value
    return args


class _Handler(BaseHTTPRequestHandler):
    sim = None  # set by ControlServer

    def log_message(self, format, *args):  # noqa: A002
        pass

    def _send(self, status: int, payload) -> None:
        body = json.dumps(payload, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        sim = self.sim
        routes = {"/v1/state": sim.state, "/v1/action_log": lambda: list(sim.action_log),
                  "/v1/hook_executions": lambda: sim.hook_executions}
        if self.path not in routes:
            return self._send(404, {"error": "not found", "detail": self.path})
        return self._send(200, routes[self.path]())

    def do_POST(self):  # noqa: N802
        operation = self.path.removeprefix("/v1/")
        if not self.path.startswith("/v1/") or operation not in OPERATIONS:
            return self._send(404, {"error": "unknown operation",
                                    "detail": f"{self.path}; known: {', '.join(OPERATIONS)}"})
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self._send(413, {"error": "body too large", "detail": f"> {MAX_BODY} bytes"})
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = json.loads(raw or b"{}")
            args = parse_arguments(operation, body)
            result = getattr(self.sim, operation)(**args)
        except json.JSONDecodeError as exc:
            return self._send(400, {"error": "invalid JSON", "detail": str(exc)})
        except ValueError as exc:
            return self._send(400, {"error": "invalid arguments", "detail": str(exc)})
        return self._send(200, {"ok": True, "operation": operation, "result": result})
