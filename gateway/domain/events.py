"""The one shape every input becomes: a hook's object XML, a reconciler finding, a Raft check or
an Alertmanager alert. The incident engine only ever sees `Event`s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

Source = Literal["hook", "reconciler", "raft", "alertmanager", "test"]
Status = Literal["firing", "resolved"]


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    source: Source
    resource: str  # HOST | VM | FRONTEND | ALERT
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
    xml: str | None = None  # the object's XML as OpenNebula gave it (decoded), when there is one

    @property
    def object_key(self) -> str:
        """`host:7`, `vm:42`, `frontend:zone0/1`, `alert:<fingerprint>` — an incident's identity."""
        return f"{self.resource.lower()}:{self.object_id}"

    def to_json(self) -> str:
        # Not dataclasses.asdict: its deep copy is half the cost on the ingest path, and every
        # field here is already a JSON value (labels is a flat dict of strings).
        return json.dumps({name: getattr(self, name) for name in self.__slots__},
                          separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> "Event":
        return cls(**json.loads(text))
