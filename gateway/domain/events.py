"""The one shape every input becomes: a hook's object XML, a reconciler finding, a Raft check or
an Alertmanager alert. The incident engine only ever sees `Event`s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

Source = Literal["hook", "reconciler", "raft", "alertmanager", "remediation", "readiness", "drill",
                 "test"]
Status = Literal["firing", "resolved"]


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    source: Source
    resource: str  # HOST | VM | FRONTEND | ALERT | CLOUD (the storm guard)
    object_id: str  # "7" for host 7, "42" for VM 42, "zone0/1" for a front-end server
    name: str
    status: Status  # firing = something is wrong; resolved = the object is healthy again
    condition: str  # HOST/ERROR, VM/ACTIVE/UNKNOWN, VM/ACTIVE/BOOT_FAILURE, RAFT/NO_LEADER, ...
    occurred_at: float  # unix seconds
    state: int | None = None
    lcm_state: int | None = None
    frontend: str = ""
    hook: str = ""
    summary: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    # A VM's LAST_POLL: when monitoring last saw it (how long an UNKNOWN VM has been down).
    last_poll: int | None = None
    # The object's XML as OpenNebula gave it (decoded). Read once, where the event is built: it
    # is not recorded or queued (see `to_json`), what the tasks need of it travels as fields.
    xml: str | None = None

    @property
    def object_key(self) -> str:
        """`host:7`, `vm:42`, `frontend:zone0/1`, `alert:<fingerprint>` — an incident's identity."""
        return f"{self.resource.lower()}:{self.object_id}"

    def to_dict(self, *, with_xml: bool = True) -> dict:
        # Not dataclasses.asdict: its deep copy is half the cost on the ingest path, and every
        # field here is already a JSON value (labels is a flat dict of strings).
        return {name: getattr(self, name) for name in self.__slots__ if with_xml or name != "xml"}

    def to_json(self, *, with_xml: bool = True) -> str:
        """The event as JSON; `with_xml=False` is the form that is logged and queued."""
        return _ENCODE(self.to_dict(with_xml=with_xml))

    @classmethod
    def from_json(cls, text: str | bytes) -> "Event":
        """Fields this version does not know are left out, so a gateway that is upgraded before
        its workers does not make them refuse its events."""
        data = json.loads(text)
        return cls(**{k: v for k, v in data.items() if k in _FIELDS})


_FIELDS = frozenset(Event.__slots__)
# One encoder for every event (json.dumps with options builds a new one per call).
_ENCODE = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode
