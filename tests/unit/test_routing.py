"""Routing tree and inhibition rules: matching, inheritance, continue, validation."""

import pytest

from gateway.config import settings_from_dict
from gateway.domain.routing import InhibitRule, Matcher, Route, match_routes, parse_labels
from gateway.errors import ConfigError

RECEIVERS = ["ops-mail", "ops-chat", "db-chat", "lead"]


def tree(**route):
    return Route.model_validate(route)


@pytest.mark.parametrize("text,labels,expected", [
    ("resource=VM", {"resource": "VM"}, True),
    ("resource=VM", {"resource": "HOST"}, False),
    ('resource!="VM"', {"resource": "HOST"}, True),
    ("host=~node0[1-3]", {"host": "node02"}, True),
    ("host=~node0[1-3]", {"host": "node021"}, False),  # anchored like Alertmanager
    ("host!~node0.*", {"host": "db1"}, True),
    ("team=", {}, True),  # a missing label reads as ""
    ("team!=", {"team": "db"}, True),
])
def test_matchers_follow_alertmanager_semantics(text, labels, expected):
    assert Matcher.model_validate(text).matches(labels) is expected


@pytest.mark.parametrize("bad", ["resource", "=VM", "host=~(", "9x=1"])
def test_bad_matchers_are_refused_with_the_text(bad):
    with pytest.raises(ValueError):
        Matcher.model_validate(bad)


def test_default_route_reaches_every_receiver_grouped_by_host():
    [m] = match_routes(Route(), {"resource": "VM", "host": "node07"}, RECEIVERS)
    assert m.route_id == "root"
    assert m.receivers == tuple(RECEIVERS)
    assert m.group_by == ("host",)
    assert m.group_key({"host": "node07"}, "x") == "root|host=node07"


def test_first_matching_child_wins_and_inherits_timing():
    root = tree(receivers=["ops-mail"], group_wait="10s", repeat_interval="1h", routes=[
        {"matchers": ["team=db"], "receiver": "db-chat", "group_wait": "2s"},
        {"matchers": ["resource=VM"], "receiver": "ops-chat"},
    ])
    [m] = match_routes(root, {"team": "db", "resource": "VM"}, RECEIVERS)
    assert (m.route_id, m.receivers, m.group_wait, m.repeat_interval) == \
        ("root.0", ("db-chat",), 2.0, 3600.0)
    [m] = match_routes(root, {"resource": "VM"}, RECEIVERS)
    assert (m.route_id, m.receivers, m.group_wait) == ("root.1", ("ops-chat",), 10.0)
    [m] = match_routes(root, {"resource": "HOST"}, RECEIVERS)
    assert (m.route_id, m.receivers) == ("root", ("ops-mail",))


def test_continue_lets_later_siblings_match_too():
    root = tree(receivers=["ops-mail"], routes=[
        {"matchers": ["team=db"], "receiver": "db-chat", "continue": True},
        {"matchers": ["resource=VM"], "receiver": "ops-chat",
         "routes": [{"matchers": ["host=~node0.*"], "receiver": "lead"}]},
    ])
    found = match_routes(root, {"team": "db", "resource": "VM", "host": "node01"}, RECEIVERS)
    assert [(m.route_id, m.receivers) for m in found] == [("root.0", ("db-chat",)),
                                                          ("root.1.0", ("lead",))]
    assert found[1].matchers == ('resource="VM"', 'host=~"node0.*"')


def test_group_by_ellipsis_is_one_group_per_incident():
    [m] = match_routes(tree(group_by=["..."]), {"host": "a"}, RECEIVERS)
    assert m.group_key({"host": "a"}, "vm-1-x") != m.group_key({"host": "a"}, "vm-2-y")


def test_config_refuses_routes_to_undefined_receivers_naming_them():
    with pytest.raises(ConfigError, match="undefined receiver.*pager"):
        settings_from_dict({"receivers": [{"name": "ops-mail", "urls": ["mailto://a@b"]}],
                            "route": {"routes": [{"matchers": ["resource=VM"],
                                                  "escalate_to": ["pager"]}]}}, env={})


def test_config_refuses_unknown_route_keys_and_bad_durations():
    with pytest.raises(ConfigError, match="route.group_whait"):
        settings_from_dict({"route": {"group_whait": "5s"}}, env={})
    with pytest.raises(ConfigError, match="route.repeat_interval"):
        settings_from_dict({"route": {"repeat_interval": "soon"}}, env={})
    with pytest.raises(ConfigError, match="route.routes.0.matchers.0"):
        settings_from_dict({"route": {"routes": [{"matchers": ["host=~("]}]}}, env={})


def test_inhibit_rule_needs_equal_labels():
    rule = InhibitRule(source_matchers=["resource=HOST"], target_matchers=["resource=VM"],
                       equal=["host"])
    host = {"resource": "HOST", "host": "node07"}
    assert rule.inhibits(host, {"resource": "VM", "host": "node07"})
    assert not rule.inhibits(host, {"resource": "VM", "host": "node08"})
    assert not rule.inhibits({"resource": "VM", "host": "node07"}, {"resource": "VM", "host": "node07"})


def test_parse_labels_for_routes_test():
    assert parse_labels(["resource=VM", "name=a=b"]) == {"resource": "VM", "name": "a=b"}
    with pytest.raises(ValueError, match="LABEL=VALUE"):
        parse_labels(["resource"])
