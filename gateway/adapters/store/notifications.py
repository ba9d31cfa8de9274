"""Delivery state and records of notifications in Redis. Only this module knows these key names
(all under `<prefix>notify:`).

Per notification id `N` and per URL (its `url_key`, a hash that reveals nothing of the URL `U`):
- `notify:state:N:U` — the claim, a string: absent (never tried) | `sending:<token>` (an attempt
  in flight; expires after `claim_ttl`, so a worker that died mid-send does not block the URL
  for ever) | `failed:<not_before>` (retry when due) | `sent` | `dead`. `claim()` is one Lua
  script: it claims the URL only when it is absent or failed-and-due, and counts the attempt.
- `notify:count:N` — hash U → attempts made (bounds retries even when a task runs twice).
- `notify:rec:N` — hash: the notification JSON, receiver, transition, incident id, title,
  created/updated times, `runs` (how many task runs looked at it) and the overall status
  (sending | retrying | sent | failed), computed atomically by `finish()` from every URL's state.
- `notify:urls:N` — hash U → masked URL; `notify:attempts:N` — list of JSON attempts
  (url_key, url, attempt, ok, status, error, elapsed, at, outcome, reason).
- `notify:index` — zset N by creation time (the log).
- `notify:dead` — hash "N U" → JSON dead letter. Dead letters never expire: a delivery that
  failed for good stays visible until an operator deals with it.
Everything else expires after `notify.retention`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from gateway.adapters.store import unavailable_is_transient
from gateway.domain.notifications import DEAD, FAILED, SENT, Notification
from gateway.runtime import Runtime

INDEX_MAX = 50_000  # the log index keeps at most this many ids (records expire anyway)

_CLAIM_LUA = """
-- KEYS[1] state key, KEYS[2] attempt counter hash
-- ARGV now, token, claim ttl ms, url key, max attempts
local v = redis.call('GET', KEYS[1])
if v then
  if v == 'sent' or v == 'dead' then return {v, '0', '0'} end
  if string.sub(v, 1, 8) == 'sending:' then
    return {'sending', '0', tostring(redis.call('PTTL', KEYS[1]))}
  end
  if string.sub(v, 1, 7) == 'failed:' then
    local due = tonumber(string.sub(v, 8)) or 0
    if due > tonumber(ARGV[1]) then
      return {'not_due', '0', tostring(math.ceil((due - tonumber(ARGV[1])) * 1000))}
    end
  end
end
local n = redis.call('HINCRBY', KEYS[2], ARGV[4], 1)
if n > tonumber(ARGV[5]) then
  -- every attempt is spent, yet the URL is not settled: the last attempt's worker died before
  -- recording its outcome. The caller dead-letters it.
  redis.call('HINCRBY', KEYS[2], ARGV[4], -1)
  return {'exhausted', tostring(n - 1), '0'}
end
redis.call('SET', KEYS[1], 'sending:' .. ARGV[2], 'PX', ARGV[3])
return {'claimed', tostring(n), '0'}
"""

_FINISH_LUA = """
-- KEYS[1] state key, [2] attempts list, [3] record hash, [4] dead hash, [5] counter hash,
--   [6..] the state keys of every URL of this notification (for the overall status)
-- ARGV token, outcome (sent|failed|dead), not_before, retention s, attempt json, now,
--   dead field, dead json, last error
local cur = redis.call('GET', KEYS[1])
local mine = (cur == 'sending:' .. ARGV[1])
if ARGV[2] == 'sent' then
  -- delivered is the truth whoever holds the claim now
  redis.call('SET', KEYS[1], 'sent', 'EX', ARGV[4])
elseif mine or not cur or string.sub(cur, 1, 7) == 'failed:' then
  -- ours, or nobody's (an expired claim, or a failure a smaller max_attempts ended)
  if ARGV[2] == 'dead' then
    redis.call('SET', KEYS[1], 'dead', 'EX', ARGV[4])
    redis.call('HSETNX', KEYS[4], ARGV[7], ARGV[8])
  else
    redis.call('SET', KEYS[1], 'failed:' .. ARGV[3], 'EX', ARGV[4])
  end
end
redis.call('RPUSH', KEYS[2], ARGV[5])
local status = 'sent'
local pending, failed, dead = false, false, false
for i = 6, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v == 'dead' then dead = true
  elseif v == 'sent' then
  elseif v and string.sub(v, 1, 7) == 'failed:' then failed = true
  else pending = true end
end
if pending then status = 'sending' elseif failed then status = 'retrying'
elseif dead then status = 'failed' end
redis.call('HSET', KEYS[3], 'status', status, 'updated_at', ARGV[6])
if ARGV[9] ~= '' then redis.call('HSET', KEYS[3], 'last_error', ARGV[9]) end
for i = 2, 5 do
  if i ~= 4 then redis.call('EXPIRE', KEYS[i], ARGV[4]) end
end
return status
"""


@dataclass(frozen=True)
class Claim:
    state: str  # claimed | sent | dead | sending | not_due | exhausted
    attempt: int = 0  # the attempt number this claim makes (claimed) or made (exhausted)
    wait: float = 0.0  # seconds until the URL may be claimed (sending, not_due)
    token: str = ""

    @property
    def claimed(self) -> bool:
        return self.state == "claimed"


class NotificationStore:
    def __init__(self, runtime: Runtime, claim_ttl: float | None = None):
        self._r = runtime.redis
        self._rt = runtime
        cfg = runtime.settings.notify
        self.retention = max(60, int(cfg.retention))
        # A claim must outlive one whole send (apprise's own deadline) with a margin.
        self.claim_ttl = float(cfg.send_timeout) + 30.0 if claim_ttl is None else claim_ttl
        self._claim = self._r.register_script(_CLAIM_LUA)
        self._finish = self._r.register_script(_FINISH_LUA)

    @classmethod
    def of(cls, runtime: Runtime) -> "NotificationStore":
        return runtime.cached("notification_store", lambda: cls(runtime))

    def _k(self, *parts: object) -> str:
        return self._rt.key("notify", *parts)

    # --- writes -----------------------------------------------------------------------------

    def open(self, n: Notification, urls: dict[str, str], now: float) -> None:
        """Create the record (first caller wins; a second run changes nothing but `urls`)."""
        rec = self._k("rec", n.notification_id)
        fields = {"notification": n.to_json(), "receiver": n.receiver,
                  "transition": n.transition, "incident_id": str(n.incident.get("id", "")),
                  "title": str(n.incident.get("title", "")), "created_at": repr(n.created_at),
                  "opened_at": repr(now), "status": "sending", "updated_at": repr(now)}
        with unavailable_is_transient(f"cannot record notification {n.notification_id}"):
            with self._r.pipeline(transaction=True) as p:
                for f, v in fields.items():
                    p.hsetnx(rec, f, v)
                p.hincrby(rec, "runs", 1)  # task runs that looked at it (duplicates show here)
                p.expire(rec, self.retention)
                if urls:
                    p.hset(self._k("urls", n.notification_id), mapping=urls)
                    p.expire(self._k("urls", n.notification_id), self.retention)
                p.zadd(self._k("index"), {n.notification_id: now}, nx=True)
                p.zremrangebyrank(self._k("index"), 0, -INDEX_MAX - 1)
                p.execute()

    def claim(self, notification_id: str, url_key: str, now: float, max_attempts: int) -> Claim:
        token = uuid.uuid4().hex
        with unavailable_is_transient(f"cannot claim {notification_id}/{url_key}"):
            state, attempt, wait_ms = self._claim(
                keys=[self._k("state", notification_id, url_key),
                      self._k("count", notification_id)],
                args=[repr(now), token, int(self.claim_ttl * 1000), url_key, max_attempts])
        return Claim(state=_s(state), attempt=int(attempt), wait=max(int(wait_ms), 0) / 1000,
                     token=token)

    def finish(self, n: Notification, url_key: str, url_keys: list[str], claim: Claim,
               outcome: str, reason: str, result: dict[str, Any], now: float,
               not_before: float = 0.0) -> str:
        """Record one attempt and its outcome (sent | failed | dead); returns the overall status.
        A `dead` outcome adds the dead letter (once per notification and URL)."""
        assert outcome in (SENT, FAILED, DEAD), outcome
        attempt = {"url_key": url_key, "attempt": claim.attempt, "at": now, "outcome": outcome,
                   "reason": reason, **result}
        dead = _dead_letter(n, url_key, result.get("url", ""), claim.attempt,
                            result.get("error", ""), result.get("status", ""), reason, now)
        nid = n.notification_id
        with unavailable_is_transient(f"cannot record the outcome of {nid}/{url_key}"):
            status = self._finish(
                keys=[self._k("state", nid, url_key), self._k("attempts", nid),
                      self._k("rec", nid), self._k("dead"), self._k("count", nid)]
                     + [self._k("state", nid, k) for k in url_keys],
                args=[claim.token, outcome, repr(not_before), self.retention,
                      json.dumps(attempt, sort_keys=True), repr(now), f"{nid} {url_key}",
                      json.dumps(dead, sort_keys=True),
                      "" if outcome == SENT else str(result.get("error", ""))[:500]])
        return _s(status)

    # --- reads ------------------------------------------------------------------------------

    def get(self, notification_id: str) -> dict[str, Any] | None:
        """The whole record: fields, per-URL state/attempt count, and every attempt."""
        nid = notification_id
        rec = self._r.hgetall(self._k("rec", nid))
        if not rec:
            return None
        out: dict[str, Any] = {"notification_id": nid, **{_s(k): _s(v) for k, v in rec.items()}}
        out["notification"] = json.loads(out["notification"])
        for f in ("created_at", "opened_at", "updated_at"):
            out[f] = float(out[f])
        out["runs"] = int(out.get("runs", 0))
        urls = {_s(k): _s(v) for k, v in self._r.hgetall(self._k("urls", nid)).items()}
        counts = {_s(k): int(v) for k, v in self._r.hgetall(self._k("count", nid)).items()}
        keys = sorted(urls)
        states = self._r.mget([self._k("state", nid, k) for k in keys]) if keys else []
        out["urls"] = [{"url_key": k, "url": urls[k], "state": _state_name(s),
                        "attempts": counts.get(k, 0)} for k, s in zip(keys, states)]
        out["attempts"] = [json.loads(a) for a in self._r.lrange(self._k("attempts", nid), 0, -1)]
        return out

    def deliveries(self, notification_ids: list[str]) -> list[dict[str, Any]]:
        """Per notification (oldest first, expired ones left out): receiver, transition,
        created_at, overall status, and each URL masked with its state, attempts and the last
        attempt's error — what a person asks "did it reach them?" (two round trips)."""
        ids = list(dict.fromkeys(notification_ids))
        fields = ("receiver", "transition", "created_at", "status")
        with self._r.pipeline(transaction=False) as p:
            for nid in ids:
                p.hmget(self._k("rec", nid), fields)
                p.hgetall(self._k("urls", nid))
                p.hgetall(self._k("count", nid))
                p.lrange(self._k("attempts", nid), 0, -1)
            rows = p.execute()
        found: list[tuple[str, dict[str, Any], list[str]]] = []
        state_keys: list[str] = []
        for n, nid in enumerate(ids):
            rec, urls, counts, attempts = rows[4 * n: 4 * n + 4]
            if rec[0] is None:
                continue
            urls = {_s(k): _s(v) for k, v in urls.items()}
            counts = {_s(k): int(v) for k, v in counts.items()}
            last: dict[str, dict] = {}  # url_key -> its latest attempt
            for raw in attempts:
                a = json.loads(raw)
                last[a.get("url_key", "")] = a
            keys = sorted(urls)
            item = {"notification_id": nid, **{f: _s(v) if v is not None else ""
                                               for f, v in zip(fields, rec)},
                    "urls": [{"url_key": k, "url": urls[k], "attempts": counts.get(k, 0),
                              "error": "" if last.get(k, {}).get("outcome") in (None, SENT)
                              else str(last[k].get("error", ""))} for k in keys]}
            item["created_at"] = float(item["created_at"] or 0)
            found.append((nid, item, keys))
            state_keys += [self._k("state", nid, k) for k in keys]
        states = iter(self._r.mget(state_keys) if state_keys else [])
        out = []
        for _nid, item, _keys in found:
            for u in item["urls"]:
                u["state"] = _state_name(next(states))
            out.append(item)
        return sorted(out, key=lambda d: d["created_at"])

    def states(self, notification_id: str, url_keys: list[str]) -> dict[str, str]:
        vals = self._r.mget([self._k("state", notification_id, k) for k in url_keys])
        return {k: _state_name(v) for k, v in zip(url_keys, vals)}

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first: id, status, receiver, transition, title, times, last error."""
        ids = [_s(i) for i in self._r.zrevrange(self._k("index"), 0, max(limit, 1) - 1)]
        fields = ("status", "receiver", "transition", "title", "incident_id", "created_at",
                  "updated_at", "last_error")
        with self._r.pipeline(transaction=False) as p:
            for nid in ids:
                p.hmget(self._k("rec", nid), fields)
            rows = p.execute()
        out = []
        for nid, row in zip(ids, rows):
            if row[0] is None:
                continue  # expired record
            item = {"notification_id": nid, **{f: _s(v) if v is not None else ""
                                               for f, v in zip(fields, row)}}
            out.append(item)
        return out

    def dead_letter_count(self) -> int:
        return self._r.hlen(self._k("dead"))

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every dead letter, oldest first."""
        items = [json.loads(v) for v in self._r.hvals(self._k("dead"))]
        return sorted(items, key=lambda d: (d.get("at", 0), d.get("notification_id", "")))

    def status(self, notification_id: str) -> str:
        return _s(self._r.hget(self._k("rec", notification_id), "status")) or ""

    def revive(self, notification_id: str, now: float) -> tuple[Notification, list[str] | None]:
        """Take a notification's dead letters back for another round of attempts (after the
        operator fixed the receiver): its dead URLs become untried again, with fresh attempt
        counts. Returns the notification and the url_keys to deliver (None: all of them, for
        a notification that was rejected before any URL was tried). KeyError: no dead letter."""
        dead_key = self._k("dead")
        fields = self._dead_fields(notification_id)
        if not fields:
            raise KeyError(notification_id)
        letters = [json.loads(v) for v in self._r.hmget(dead_key, fields)]
        keys = [f.rsplit(" ", 1)[1] for f in fields]
        url_keys = [k for k in keys if k != "-"]
        with unavailable_is_transient(f"cannot revive {notification_id}"):
            with self._r.pipeline(transaction=True) as p:
                for k in url_keys:
                    p.delete(self._k("state", notification_id, k))
                    p.hdel(self._k("count", notification_id), k)
                p.hset(self._k("rec", notification_id),
                       mapping={"status": "sending", "updated_at": repr(now)})
                p.hdel(dead_key, *fields)
                p.execute()
        n = Notification.from_json(letters[0]["notification"])
        return n, (url_keys if "-" not in keys else None)

    def dismiss(self, notification_id: str) -> int:
        """Remove a notification's dead letters (the operator dealt with it); how many."""
        fields = self._dead_fields(notification_id)
        return self._r.hdel(self._k("dead"), *fields) if fields else 0

    def _dead_fields(self, notification_id: str) -> list[str]:
        # fields are "<notification id> <url_key or ->"; a notification has a handful at most
        return [f for f in map(_s, self._r.hkeys(self._k("dead")))
                if f.rsplit(" ", 1)[0] == notification_id]

    def reject(self, n: Notification, reason: str, now: float) -> None:
        """A notification that cannot be delivered at all (its receiver is not configured):
        recorded as failed and dead-lettered, never dropped."""
        self.open(n, {}, now)
        dead = _dead_letter(n, "", "", 0, reason, "REJECTED", reason, now)
        with unavailable_is_transient(f"cannot record notification {n.notification_id}"):
            with self._r.pipeline(transaction=True) as p:
                p.hset(self._k("rec", n.notification_id),
                       mapping={"status": "failed", "last_error": reason, "updated_at": repr(now)})
                p.hsetnx(self._k("dead"), f"{n.notification_id} -", json.dumps(dead, sort_keys=True))
                p.execute()


def _dead_letter(n: Notification, url_key: str, url: str, attempts: int, error: str, status: str,
                 reason: str, now: float) -> dict[str, Any]:
    return {"notification_id": n.notification_id, "receiver": n.receiver,
            "transition": n.transition, "incident_id": str(n.incident.get("id", "")),
            "title": str(n.incident.get("title", "")), "url_key": url_key, "url": url,
            "attempts": attempts, "error": error, "status": status, "reason": reason, "at": now,
            "notification": n.to_json()}


def _s(v: Any) -> Any:
    return v.decode() if isinstance(v, bytes) else v


def _state_name(v: Any) -> str:
    v = _s(v)
    if v is None:
        return "pending"
    return v.split(":", 1)[0]
