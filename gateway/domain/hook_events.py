"""A state hook's request body -> a validated `Event` (pure: no Flask, no Redis).

The body is the JSON of the event contract (docs/architecture.md): resource, id, name, state,
lcm_state, xml (base64 of the object's XML exactly as oned passed it), hook, frontend, sent_at,
event_id. Everything is checked before anything is recorded; each problem raises `BadInput` with a
short reason code (`error`, also the metrics label) and a detail a person can act on.

What becomes of it:
- `condition`: `HOST/<state>` (`HOST/ERROR`), `VM/<state>` or, for ACTIVE VMs,
  `VM/ACTIVE/<lcm state>` (`VM/ACTIVE/UNKNOWN`, `VM/ACTIVE/BOOT_FAILURE`).
- `status`: `firing` iff the object is failing — a host in ERROR (or legacy MONITORING_ERROR); a VM
  ACTIVE+UNKNOWN, ACTIVE in an LCM `*_FAILURE` state, FAILED or CLONING_FAILURE. Every other
  state is `resolved` (the object is healthy, or was put there on purpose by an operator).
- `labels` (all strings, used by routing, inhibition and silences):
  `resource`, `name`, `id`, `state` (as people read it: `ERROR`, `ACTIVE/UNKNOWN`, `POWEROFF`),
  `frontend`; for a VM also `lcm_state` (when ACTIVE), `host` and `host_id` (its last HISTORY
  record: where it runs or ran), `cluster_id` (same record), `owner` (UNAME), `group` (GNAME);
  for a host `host` and `host_id` (itself, so host and VM events share the `host` label),
  `cluster` and `cluster_id`.
  Plus the operator's own labels: every single-valued key of a VM's USER_TEMPLATE or a host's
  TEMPLATE whose name starts with `ONEHA_` becomes a label named by the rest of the key in lower
  case (`ONEHA_TEAM="db"` -> `team=db`, `ONEHA_ENV` -> `env`). Vector attributes and empty values
  are ignored, and a built-in label above always wins over an `ONEHA_` key of the same name.
- `occurred_at`: the sender's `sent_at` (a spooled event replayed later keeps the time it
  happened) unless it is missing or later than the gateway's receive time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from typing import Any

from defusedxml import DefusedXmlException

from . import states
from ..errors import BadInput
from .events import Event
from .objects import (HistoryRecord, HostInfo, VmInfo, XmlError, _flat_template, _int,
                      _require_int, _text, host_from_element, parse_xml)

RESOURCES = ("HOST", "VM")
EVENT_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_OBJECT_ID = 2**31 - 1  # oned keeps object ids in a signed 32-bit int
LABEL_PREFIX = "ONEHA_"
VM_FAILED_STATES = frozenset({states.VM_STATE_CODES["FAILED"], states.VM_STATE_CODES["CLONING_FAILURE"]})


def event_from_hook(payload: Mapping[str, Any], frontend: str, received_at: float) -> Event:
    """Validate a decoded hook body sent by (authenticated) `frontend` and build its `Event`."""
    resource = payload.get("resource")
    if resource not in RESOURCES:
        raise BadInput("unknown_resource", f"resource must be one of {', '.join(RESOURCES)}, "
                                           f"got {resource!r}")
    object_id = _field(payload, "id", int)
    if not 0 <= object_id <= MAX_OBJECT_ID:
        raise BadInput("bad_field", f"id must be >= 0 and <= {MAX_OBJECT_ID} (an OpenNebula "
                                    f"object id), got {str(object_id)[:40]}")
    _field(payload, "name", str)
    state = _field(payload, "state", int)
    lcm_state = _field(payload, "lcm_state", int, optional=True)
    event_id = _field(payload, "event_id", str)
    if not EVENT_ID.match(event_id):
        raise BadInput("bad_field", "event_id must be 32 lowercase hex digits")
    hook = _field(payload, "hook", str, optional=True) or ""
    sent_at = _field(payload, "sent_at", (int, float), optional=True)
    for key in ("state_name", "lcm_state_name"):
        _field(payload, key, str, optional=True)
    body_frontend = _field(payload, "frontend", str, optional=True)
    if body_frontend is not None and body_frontend != frontend:
        raise BadInput("frontend_mismatch", f"body says front-end {body_frontend!r} but the request "
                                            f"was signed as {frontend!r}")
    _check_states(resource, state, lcm_state)
    xml = _decode_xml(_field(payload, "xml", str))
    root = _parse(xml, resource)
    try:
        info = host_from_element(root) if resource == "HOST" else _vm_essentials(root)
    except XmlError as exc:
        raise BadInput("bad_xml", str(exc)) from None
    if info.id != object_id:
        raise BadInput("id_mismatch", f"id is {object_id} but the XML describes {resource} {info.id}")
    xml_lcm = info.lcm_state if isinstance(info, VmInfo) else None
    if (info.state, xml_lcm) != (state, lcm_state):
        raise BadInput("state_mismatch", f"state/lcm_state {state}/{lcm_state} differ from the "
                                         f"XML's {info.state}/{xml_lcm}")
    occurred_at = sent_at if sent_at is not None and 0 < sent_at <= received_at else received_at
    if isinstance(info, HostInfo):
        return host_event(info, event_id, frontend, hook, float(occurred_at), xml)
    return vm_event(info, event_id, frontend, hook, float(occurred_at), xml)


def content_digest(event: Event) -> str:
    """What makes two deliveries of one event_id "the same body": the object, its state and XML.

    Not the raw request body: a re-fired hook or a re-sent spool entry differs in `sent_at` and is
    still the same event (a duplicate); another state or XML under the same id is a conflict.
    """
    h = hashlib.sha256(f"{event.resource}\n{event.object_id}\n{event.status}\n{event.condition}\n"
                       f"{event.state}\n{event.lcm_state}\n".encode())
    h.update((event.xml or "").encode("utf-8"))
    return h.hexdigest()


def host_is_failing(state: int | None) -> bool:
    return state in states.HOST_FAILED_STATES


def vm_is_failing(state: int | None, lcm_state: int | None) -> bool:
    return (states.vm_is_unknown(state, lcm_state) or states.vm_is_failed(state, lcm_state)
            or state in VM_FAILED_STATES)


def host_event(info: HostInfo, event_id: str, frontend: str, hook: str, occurred_at: float,
                xml: str) -> Event:
    label = info.state_label
    labels = _operator_labels(info.labels)
    labels.update(resource="HOST", name=info.name, id=str(info.id), state=label, frontend=frontend,
                  host=info.name, host_id=str(info.id))
    _put(labels, "cluster", info.cluster)
    _put(labels, "cluster_id", info.cluster_id)
    return Event(
        event_id=event_id, source="hook", resource="HOST", object_id=str(info.id), name=info.name,
        status="firing" if host_is_failing(info.state) else "resolved",
        condition=f"HOST/{label}", occurred_at=occurred_at, state=info.state, lcm_state=None,
        frontend=frontend, hook=hook, summary=f"host {info.name} (#{info.id}) is {label}",
        labels=labels, xml=xml)


def vm_event(info: VmInfo, event_id: str, frontend: str, hook: str, occurred_at: float,
              xml: str) -> Event:
    label = info.state_label
    labels = _operator_labels(info.labels)
    labels.update(resource="VM", name=info.name, id=str(info.id), state=label, frontend=frontend)
    if info.state == states.VM_ACTIVE and info.lcm_state is not None:
        labels["lcm_state"] = states.LCM_STATES.get(info.lcm_state, str(info.lcm_state))
    _put(labels, "host", info.host_name)
    _put(labels, "host_id", info.host_id)
    _put(labels, "cluster_id", info.cluster_id)
    _put(labels, "owner", info.uname)
    _put(labels, "group", info.gname)
    where = f" on {info.host_name}" if info.host_name else ""
    return Event(
        event_id=event_id, source="hook", resource="VM", object_id=str(info.id), name=info.name,
        status="firing" if vm_is_failing(info.state, info.lcm_state) else "resolved",
        condition=f"VM/{label}", occurred_at=occurred_at, state=info.state,
        lcm_state=info.lcm_state, frontend=frontend, hook=hook,
        summary=f"VM {info.name} (#{info.id}){where} is {label}", labels=labels,
        last_poll=info.last_poll or None, xml=xml)


def _vm_essentials(root) -> VmInfo:
    """The part of `vm_from_element` an event needs (identity, state, owner, where it runs,
    USER_TEMPLATE, LAST_POLL): disks, NICs and older history are left to the tasks that use
    them, which keeps ~40 µs of a ~1 ms ingest off the hot path."""
    last = max(root.iterfind("HISTORY_RECORDS/HISTORY"), key=lambda h: _int(h, "SEQ") or 0,
               default=None)
    history = () if last is None else (HistoryRecord(
        seq=_int(last, "SEQ") or 0, host_id=_int(last, "HID"), host_name=_text(last, "HOSTNAME"),
        cluster_id=_int(last, "CID")),)
    return VmInfo(id=_require_int(root, "ID", "VM"), name=_text(root, "NAME") or "",
                  state=_int(root, "STATE"), lcm_state=_int(root, "LCM_STATE"),
                  uname=_text(root, "UNAME"), gname=_text(root, "GNAME"), history=history,
                  labels=_flat_template(root.find("USER_TEMPLATE")),
                  last_poll=_int(root, "LAST_POLL"))


def _operator_labels(template: Mapping[str, str]) -> dict[str, str]:
    return {key[len(LABEL_PREFIX):].lower(): value for key, value in template.items()
            if key.upper().startswith(LABEL_PREFIX) and len(key) > len(LABEL_PREFIX) and value}


def _put(labels: dict[str, str], key: str, value: object) -> None:
    if value is not None and value != "":
        labels[key] = str(value)


def _field(payload: Mapping[str, Any], key: str, kind: type | tuple[type, ...],
           optional: bool = False) -> Any:
    value = payload.get(key)
    if value is None:
        if optional:
            return None
        raise BadInput("bad_field", f"field {key!r} is required")
    # bool is an int in Python, but `"state": true` is a broken sender, not state 1.
    if isinstance(value, bool) or not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise BadInput("bad_field", f"field {key!r} must be {names}, got {type(value).__name__}")
    return value


def _check_states(resource: str, state: int, lcm_state: int | None) -> None:
    if resource == "HOST":
        if state not in states.HOST_STATES:
            raise BadInput("unknown_state", f"{state} is not a host state code")
        if lcm_state is not None:
            raise BadInput("bad_field", "lcm_state must be null for a HOST")
        return
    if state not in states.VM_STATES:
        raise BadInput("unknown_state", f"{state} is not a VM state code")
    if lcm_state is None:
        raise BadInput("bad_field", "field 'lcm_state' is required for a VM")
    if lcm_state not in states.LCM_STATES or lcm_state in states.REMOVED_LCM_STATES:
        raise BadInput("unknown_state", f"{lcm_state} is not an LCM state code OpenNebula reports")


def _decode_xml(encoded: str) -> str:
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadInput("bad_base64", f"field 'xml' is not valid base64: {exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("bad_xml", "the decoded XML is not UTF-8") from None


def _parse(xml: str, resource: str):
    try:
        root = parse_xml(xml)
    except XmlError as exc:
        if isinstance(exc.__cause__, DefusedXmlException):
            raise BadInput("forbidden_xml", f"{exc} (DTDs, entities and external references are "
                                            "refused)") from None
        raise BadInput("bad_xml", str(exc)) from None
    if root.tag != resource:
        raise BadInput("resource_mismatch", f"resource is {resource} but the XML is a <{root.tag}> "
                                            "document")
    return root
