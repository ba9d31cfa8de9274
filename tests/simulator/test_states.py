"""The simulator's state tables and codes against OpenNebula's own documents.

Never against the gateway's tables: the simulator exists to check the gateway, and a mistake the
two shared would pass every test. host.xsd documents the host STATE values and vm.xsd the HISTORY
ACTION values in comments; vm.xsd gives no STATE/LCM_STATE values (it only links the docs), so
VM and LCM states are checked against the enums of the 7.4.0 headers, copied verbatim in
opennebula_states.h.
"""

import re
from pathlib import Path

import pytest

from simulator import codes, model, states
from tests.support.xsd import XSD_DIR

HEADER = Path(__file__).with_name("opennebula_states.h")

# A comment directly followed by the element it documents; `(?!-->)` keeps it to one comment.
_DOCUMENTED_ELEMENT = re.compile(r'<!--((?:(?!-->).)*)-->\s*<xs:element name="(\w+)"', re.S)
_XSD_VALUE = re.compile(r"^\s*(\w+)\s*=\s*(\d+)\b", re.M)  # "  MONITORED  = 2  The host ..."
_ENUM = re.compile(r"enum (\w+)\s*\{(.*?)\};", re.S)
_ENUM_ENTRY = re.compile(r"^\s*(//)?\s*(\w+)\s*=\s*(\d+)", re.M)  # "//FAILED = 7," is removed


def xsd_values(xsd: str, element: str) -> dict[int, str]:
    """The `NAME = code` lines of the comment just before `<xs:element name="element">`."""
    for comment, name in _DOCUMENTED_ELEMENT.findall((XSD_DIR / xsd).read_text()):
        if name == element:
            return {int(code): value for value, code in _XSD_VALUE.findall(comment)}
    return {}


def header_enum(name: str) -> tuple[dict[int, str], dict[int, str]]:
    """(live, removed) entries of `enum name`; removed ones are commented out in the header."""
    body = dict(_ENUM.findall(HEADER.read_text()))[name]
    live: dict[int, str] = {}
    removed: dict[int, str] = {}
    for commented, value, code in _ENUM_ENTRY.findall(body):
        (removed if commented else live)[int(code)] = value
    return live, removed


def test_host_states_are_the_ones_host_xsd_documents():
    documented = xsd_values("host.xsd", "STATE")
    assert documented, "host.xsd no longer documents STATE values: update xsd_values"
    wrong = {code: name for code, name in states.HOST_STATES.items() if documented.get(code) != name}
    assert not wrong, f"not as host.xsd documents them: {wrong}; host.xsd: {documented}"


def test_host_xsd_values_left_out_are_the_legacy_ones_host_h_removed():
    live, removed = header_enum("HostState")
    documented = xsd_values("host.xsd", "STATE")
    assert documented == live | removed  # the excerpt and the schema tell the same story
    assert {c: n for c, n in documented.items() if c not in states.HOST_STATES} == removed


@pytest.mark.parametrize("table, enum", [
    (states.HOST_STATES, "HostState"),
    (states.VM_STATES, "VmState"),
    (states.LCM_STATES, "LcmState"),
])
def test_tables_are_the_live_entries_of_the_header_enums(table, enum):
    live, removed = header_enum(enum)
    assert live, f"enum {enum} not found in {HEADER.name}"
    assert table == live
    assert not set(table) & set(removed), "a removed state oned never reports"


def test_name_to_code_tables_invert_the_tables():
    for table, by_name in [(states.HOST_STATES, states.HOST_STATE_CODES),
                           (states.VM_STATES, states.VM_STATE_CODES),
                           (states.LCM_STATES, states.LCM_STATE_CODES)]:
        assert {code: name for name, code in by_name.items()} == table  # no name twice


def test_state_machine_constants_agree_with_the_tables():
    """codes.py names its constants after the states (hosts with an H_ prefix)."""
    checked = {}
    for name, value in vars(codes).items():
        if not isinstance(value, int) or name.startswith("_"):
            continue
        if name.startswith("H_"):
            checked[name] = (value, states.HOST_STATE_CODES.get(name[2:]))
        elif name in states.VM_STATE_CODES:
            checked[name] = (value, states.VM_STATE_CODES[name])
        elif name in states.LCM_STATE_CODES:
            checked[name] = (value, states.LCM_STATE_CODES[name])
    assert {"ACTIVE", "UNKNOWN", "BOOT_FAILURE", "H_ERROR"} <= set(checked)
    wrong = {name: pair for name, pair in checked.items() if pair[0] != pair[1]}
    assert not wrong, f"(codes.py, table): {wrong}"


def test_history_action_codes_are_the_ones_vm_xsd_documents():
    documented = xsd_values("vm.xsd", "ACTION")
    assert documented, "vm.xsd no longer documents HISTORY ACTION values: update xsd_values"
    # model.ACTION_FOO is FOO_ACTION; codes.ACTIONS maps "reboot-hard" to REBOOT_HARD_ACTION.
    ours = {f"{name[len('ACTION_'):]}_ACTION": code
            for name, code in vars(model).items() if name.startswith("ACTION_")}
    ours |= {f"{action.upper().replace('-', '_')}_ACTION": code
             for action, code in codes.ACTIONS.items()}
    wrong = {name: code for name, code in ours.items() if documented.get(code) != name}
    assert not wrong, f"not as vm.xsd documents them: {wrong}"
