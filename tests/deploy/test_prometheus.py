"""deploy/prometheus: the alert rules load (`promtool check rules`), fire when they should and
not otherwise (`promtool test rules`), and name only metrics the gateway really exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app
from gateway.config import settings_from_dict

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "oneha-rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "oneha-rules.test.yml"
WANTED = {"OneHAWorkerAbsent", "OneHAQueueGrowing", "OneHANotificationsDeadLettered",
          "OneHARedisDown", "OneHAFrontendSilent", "OneHANoEventFromFrontend"}


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is missing (Debian package prometheus; `make services` installs it)")
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_rules_load():
    result = promtool("check", "rules", RULES.name, cwd=RULES.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    names = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    assert WANTED <= names, f"missing alerts: {WANTED - names}"


def test_rules_unit_tests_pass():
    result = promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_tests_can_fail(tmp_path):
    """The same tests against rules whose worker alert never fires: promtool says so."""
    broken = RULES.read_text().replace("max(oneha_workers_alive) == 0", "max(oneha_workers_alive) < 0")
    assert broken != RULES.read_text()
    (tmp_path / RULES.name).write_text(broken)
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    result = promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0 and "OneHAWorkerAbsent" in result.stdout + result.stderr


def test_rules_name_only_metrics_the_gateway_exports(redis_url, key_prefix):
    settings = settings_from_dict({"redis_url": redis_url, "key_prefix": key_prefix}, env={})
    resp = create_app(settings).test_client().get("/metrics")
    assert resp.status_code == 200
    # family names: a counter's samples (`_total`) appear only once it has a label set
    exported = {f.name for f in text_string_to_metric_families(resp.data.decode())}
    exprs = " ".join(r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"]
                     for r in g["rules"])
    used = {re.sub(r"_total$", "", m) for m in re.findall(r"\boneha_[a-z_]+\b", exprs)}
    assert used and used <= exported, f"not exported by /metrics: {sorted(used - exported)}"


DASHBOARD = ROOT / "deploy" / "grafana" / "oneha-dashboard.json"


def dashboard_exprs() -> list[str]:
    import json
    dash = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dash["panels"] for t in p["targets"]]


def test_dashboard_queries_parse(tmp_path):
    """Each panel's PromQL, loaded by promtool as a recording rule (so a typo fails here)."""
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"oneha:dashboard_panel_{i}", "expr": e}
        for i, e in enumerate(dashboard_exprs())]}]}
    (tmp_path / "dashboard-rules.yml").write_text(yaml.safe_dump(rules))
    result = promtool("check", "rules", "dashboard-rules.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    (tmp_path / "broken.yml").write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [
        {"record": "oneha:x", "expr": "sum(rate(oneha_workers_alive[5m])"}]}]}))
    assert promtool("check", "rules", "broken.yml", cwd=tmp_path).returncode != 0


def test_dashboard_shows_only_exported_metrics(redis_url, key_prefix):
    settings = settings_from_dict({"redis_url": redis_url, "key_prefix": key_prefix}, env={})
    resp = create_app(settings).test_client().get("/metrics")
    exported = {f.name for f in text_string_to_metric_families(resp.data.decode())}
    used = {re.sub(r"_(total|bucket)$", "", m)
            for e in dashboard_exprs() for m in re.findall(r"\boneha_[a-z_]+\b", e)}
    assert used <= exported, f"not exported by /metrics: {sorted(used - exported)}"
