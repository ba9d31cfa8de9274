"""A real worker with ONEHA_LOG_FORMAT=json: every line it writes while it processes an event is
one JSON object; the event's and the incident's ids are fields; no key of the configuration is in
any line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from gateway.app import create_app
from gateway.config import settings_from_dict
from tests.integration.test_ingest import signed_headers, vm_event
from tests.support.worker import WorkerHandle, test_config, wait_until, write_config

KEY = "fe1-json-log-key-83c1d"
SECRET = "approval-secret-json-logs-19"


def test_worker_logs_one_json_object_per_line_without_secrets(redis_url, key_prefix, tmp_path):
    config = test_config(key_prefix, redis_url, secret_key=SECRET,
                         ingest={"frontends": {"fe1": {"keys": [KEY]}}},
                         remediation={"mode": "off"}, raft={"enabled": False},
                         reconciler={"enabled": False})
    worker = debug_worker(config, tmp_path)
    try:
        client = create_app(settings_from_dict(config, env={})).test_client()
        body = json.dumps(vm_event()).encode()
        resp = client.post("/v1/events", data=body,
                           headers=signed_headers(body, key=KEY, frontend="fe1"))
        assert resp.status_code == 202
        event_id = resp.get_json()["event_id"]

        def processed():  # the applier's line per event (debug), or the one-event task's
            return [r for r in _records(worker.log())
                    if r.get("event") in ("event_applied", "event_processed")]
        wait_until(processed, timeout=30, what="the worker logged the event it applied")
        [record] = processed()
        assert record["event_id"] == event_id and record["incident_id"].startswith("vm-42-")
        assert record["level"] in ("debug", "info") and record["logger"] and record["timestamp"]
        text = worker.log()
        assert KEY not in text and SECRET not in text
    finally:
        worker.stop()


def debug_worker(config: dict, tmp_path) -> WorkerHandle:
    """`oneha worker --loglevel debug` with JSON logs (the per-event line is a debug one)."""
    config_path = write_config(config, tmp_path, "w-oneha.yaml")
    log_path = tmp_path / "worker.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONEHA_", "REDIS_URL"))}
    env.update(ONEHA_CONFIG=str(config_path), ONEHA_LOG_FORMAT="json", PYTHONUNBUFFERED="1")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "worker", "--concurrency=1", "--loglevel=debug",
             f"--name=logs-{os.getpid()}@localhost"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return WorkerHandle(proc, log_path, config_path).wait_ready()


def _records(text: str) -> list[dict]:
    """Every line up to the shutdown must parse; Celery prints its last words with print()."""
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("worker: "):
            continue
        out.append(json.loads(line))  # a line that is not JSON fails the test here
    return out
