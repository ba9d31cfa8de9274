"""What the incident page shows of each message: per receiver and URL, the state, the attempts
and the last error, read back from the delivery records in the real Redis."""

from gateway.adapters.store.notifications import NotificationStore
from gateway.config import settings_from_dict
from gateway.domain.notifications import Notification
from gateway.runtime import Runtime


def note(nid: str, receiver: str, at: float) -> Notification:
    return Notification(nid, receiver, "firing", {"id": "host-7-abc", "title": "Host node07"}, at)


def test_each_url_reads_its_state_attempts_and_last_error(redis_url, key_prefix):
    rt = Runtime.from_settings(settings_from_dict(
        {"redis_url": redis_url, "key_prefix": key_prefix}, env={}))
    store = NotificationStore(rt)
    mail, chat = note("g1:firing:1:mail", "mail", 100.0), note("g1:firing:1:chat", "chat", 100.0)
    store.open(mail, {"m1": "mailto://smtp/****"}, 100.0)
    store.open(chat, {"c1": "json://hook/****", "c2": "json://other/****"}, 100.0)
    # mail: sent at once; chat: c1 failed then sent, c2 failed and is waiting to retry
    claim = store.claim(mail.notification_id, "m1", 100.0, 3)
    store.finish(mail, "m1", ["m1"], claim, "sent", "", {"url": "mailto://smtp/****"}, 100.1)
    for attempt, (key, outcome, error) in enumerate(
            [("c1", "failed", "HTTP 500"), ("c1", "sent", ""), ("c2", "failed", "refused")]):
        claim = store.claim(chat.notification_id, key, 101.0 + attempt * 20, 3)
        store.finish(chat, key, ["c1", "c2"], claim, outcome, "",
                     {"url": f"json://{key}/****", "error": error}, 101.0 + attempt * 20,
                     not_before=101.0 + attempt * 20 + 10)

    found = store.deliveries([chat.notification_id, mail.notification_id, "g1:firing:1:gone",
                              mail.notification_id])
    assert [(d["receiver"], d["transition"], d["status"]) for d in found] == [
        ("chat", "firing", "retrying"), ("mail", "firing", "sent")]  # the unknown id left out
    chat_urls = {u["url_key"]: u for u in found[0]["urls"]}
    assert (chat_urls["c1"]["state"], chat_urls["c1"]["attempts"], chat_urls["c1"]["error"]) == \
        ("sent", 2, "")
    assert (chat_urls["c2"]["state"], chat_urls["c2"]["attempts"], chat_urls["c2"]["error"]) == \
        ("failed", 1, "refused")
    assert found[1]["urls"] == [{"url_key": "m1", "url": "mailto://smtp/****", "attempts": 1,
                                 "error": "", "state": "sent"}]
    assert store.deliveries([]) == []
