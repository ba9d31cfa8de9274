"""Wall time of one hook event, relative to starting the interpreter at all.

Runs `hook_templates/oneha-hook` the way oned does (base64 VM XML on stdin) against a local HTTP
server that answers 202, and `python3 -c pass` with the same interpreter, alternating, N times
each; prints the medians and their ratio (target <= 2.5). Exits 1 only if an event was not
delivered (a benchmark of a broken sender means nothing).

    .venv/bin/python bench/sender.py [--runs 30] [--python /usr/bin/python3]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SENDER = ROOT / "hook_templates" / "oneha-hook"
VM_XML = ROOT / "tests" / "hook" / "fixtures" / "vm-unknown.xml"
TARGET = 2.5


class Accepting(BaseHTTPRequestHandler):
    """A gateway that answers 202 at once: what is measured is the sender, not the server."""

    protocol_version = "HTTP/1.1"
    count = 0

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        answer = json.dumps({"event_id": json.loads(body)["event_id"], "duplicate": False}).encode()
        type(self).count += 1  # before answering: the sender exits as soon as it has the answer
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def timed(cmd: list[str], stdin: str | None, env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, input=stdin, text=True, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--python", default=shutil.which("python3", path="/usr/bin") or sys.executable,
                        help="interpreter for both the baseline and the sender (default: the "
                             "system python3, as on a front-end)")
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Accepting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = base64.b64encode(VM_XML.read_text().strip().encode()).decode()
    with tempfile.TemporaryDirectory() as spool:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ONEHA_")}
        env.update(ONEHA_HOOK_CONFIG=os.devnull, ONEHA_URLS=f"http://127.0.0.1:{server.server_port}",
                   ONEHA_KEY="bench-key", ONEHA_FRONTEND="bench", ONEHA_SPOOL_DIR=spool)
        baseline, sender = [], []
        for _ in range(3):  # warm the page cache for both
            timed([args.python, "-c", "pass"], None, env)
            timed([args.python, str(SENDER)], token, env)
        Accepting.count = 0
        for _ in range(args.runs):
            baseline.append(timed([args.python, "-c", "pass"], None, env))
            sender.append(timed([args.python, str(SENDER)], token, env))
        leftovers = list(Path(spool).rglob("*.json"))
    server.shutdown()

    base_ms, send_ms = statistics.median(baseline) * 1000, statistics.median(sender) * 1000
    ratio = send_ms / base_ms
    print(f"sender: {args.runs} runs, {args.python}, {len(token)} B base64 VM XML on stdin")
    print(f"  python3 -c pass  median {base_ms:7.2f} ms")
    print(f"  oneha-hook       median {send_ms:7.2f} ms  (p90 "
          f"{sorted(sender)[int(0.9 * (len(sender) - 1))] * 1000:.2f} ms)")
    print(f"  ratio {ratio:.2f} (target <= {TARGET}: {'met' if ratio <= TARGET else 'MISSED'})")
    if Accepting.count != args.runs or leftovers:
        print(f"  ERROR: {Accepting.count}/{args.runs} events accepted, {len(leftovers)} spooled",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
