"""OpenNebula over pyone, aware of the front-end Raft cluster. Read in this order:

1. `client.py`    — `OpenNebula`: the typed reads (domain objects from the raw XML) and writes.
2. `frontends.py` — how a call reaches a server: reads to any healthy front-end, writes to the
   Raft leader (or a follower that proxies to it), real timeouts, bounded retries.
3. `errors.py`    — what a failed call means: `Unavailable` (ask another server) or
   `OneCallError` (OpenNebula said no: a `Permanent`).
"""

from .client import HOST_DISABLED, HOST_ENABLED, HOST_OFFLINE, VM_RECOVER, OpenNebula
from .errors import OneCallError

__all__ = ["HOST_DISABLED", "HOST_ENABLED", "HOST_OFFLINE", "OneCallError", "OpenNebula",
           "VM_RECOVER"]
