"""The silence form's matchers: one per line or comma-separated, a comma inside a regex kept."""

import pytest

from gateway.web.console import _matchers


@pytest.mark.parametrize("text, matchers", [
    ("host=node07", ["host=node07"]),
    ("host=node07, severity=critical", ["host=node07", "severity=critical"]),
    ("host=node07\r\n\n  severity!=info  ", ["host=node07", "severity!=info"]),
    ("host=~node0[1,2], cluster!~lab.*", ["host=~node0[1,2]", "cluster!~lab.*"]),
    ("name=~web-[0-9]+,db.*", ["name=~web-[0-9]+,db.*"]),
    (" , \n", []),
])
def test_matchers_split_where_a_new_one_starts(text, matchers):
    assert _matchers(text) == matchers
