import pytest

from gateway.config import settings_from_dict
from gateway.domain.remediation.policy import RemediationConfig, vm_policy
from gateway.errors import ConfigError


def test_defaults_are_approval_with_every_action():
    p = RemediationConfig().for_labels({"cluster": "x"})
    assert p.mode == "approval" and p.grace_cycles == 2 and p.allows("resched")


def test_first_matching_override_wins_and_is_named():
    cfg = RemediationConfig.model_validate({"mode": "auto", "overrides": [
        {"match": {"cluster": "prod", "resource": "HOST"}, "mode": "approval", "grace_cycles": 5},
        {"match": {"cluster": "prod"}, "mode": "off"}]})
    p = cfg.for_labels({"cluster": "prod", "resource": "HOST"})
    assert (p.mode, p.grace_cycles, p.matched) == ("approval", 5, "cluster=prod, resource=HOST")
    assert cfg.for_labels({"cluster": "prod", "resource": "VM"}).mode == "off"
    assert cfg.for_labels({"cluster": "dev"}).mode == "auto"


@pytest.mark.parametrize("section, message", [
    ({"mode": "sometimes"}, "remediation.mode"),
    ({"fencing": {"command": "/sbin/fence"}}, "not in fencing.allowlist"),
    ({"fencing": {"command": "fence", "allowlist": ["fence"]}}, "absolute path"),
    ({"allowed_actions": ["reboot"]}, "remediation.allowed_actions"),
    ({"storm": {"max_error_percent": 0}}, "remediation.storm.max_error_percent"),
    ({"verify_timeout": "soon"}, "duration like 30s"),
    ({"max_retrys": 3}, "remediation.max_retrys: unknown key"),
])
def test_bad_sections_name_the_key(section, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        settings_from_dict({"remediation": section}, env={})


def test_durations_are_read_like_everywhere_else():
    s = settings_from_dict({"remediation": {"verify_timeout": "2m", "approval_ttl": "1h"}}, env={})
    assert (s.remediation.verify_timeout, s.remediation.approval_ttl) == (120.0, 3600.0)


@pytest.mark.parametrize("labels, mode, prio", [
    ({}, None, 0), ({"ONEHA_POLICY": "off"}, "off", 0), ({"ONEHA_POLICY": "Manual"}, "off", 0),
    ({"ONEHA_POLICY": "approval", "ONEHA_PRIORITY": "7"}, "approval", 7),
    ({"ONEHA_POLICY": "whatever"}, "approval", 0),  # unreadable opt-out: ask a human
    ({"ONEHA_PRIORITY": "high"}, None, 0),
])
def test_vm_template_opt_out_and_priority(labels, mode, prio):
    vp = vm_policy(labels)
    assert (vp.mode, vp.priority) == (mode, prio)
