"""The front-end Raft cluster as oneha sees it, and the rules that say what is wrong with it.

Pure. Read in this order:

1. `status.py`   — what one server says: `RaftStatus`/`ZoneInfo` read from `one.zone.raftstatus`
   / `one.zone.info` XML.
2. `health.py`   — the rules: `assess` takes the statuses of one poll (plus what the store
   remembers of earlier polls) and returns findings — values with reasons.
3. `episodes.py` — findings over time become `Event`s for the normal incident path.
"""

from .episodes import Episode, EventPlan, plan_events
from .health import (Assessment, Finding, LeaderMark, RaftMemory, RaftRules, ServerView, assess,
                     server_views)
from .status import (CANDIDATE, FOLLOWER, LEADER, RAFT_STATES, SOLO, RaftStatus, ZoneInfo,
                     ZoneServer, normalize_endpoint, parse_raft_status, parse_zone)

__all__ = ["Assessment", "CANDIDATE", "Episode", "EventPlan", "FOLLOWER", "Finding", "LEADER",
           "LeaderMark", "RAFT_STATES", "RaftMemory", "RaftRules", "RaftStatus", "SOLO",
           "ServerView", "ZoneInfo", "ZoneServer", "assess", "normalize_endpoint",
           "parse_raft_status", "parse_zone", "plan_events", "server_views"]
