"""The test receivers themselves: what a sender puts in is what a test reads out."""

import apprise
import pytest


def test_smtp_sink_receives_a_plain_text_mail_from_apprise(smtp_sink):
    a = apprise.Apprise()
    assert a.add(smtp_sink.url(to="ops@example.com", sender="ha@example.com"))
    assert a.notify(body="line one\nline two", title="Subject ü", body_format="text")
    [mail] = smtp_sink.wait_for(1)
    assert mail.subject == "Subject ü"
    assert mail.sender == "ha@example.com"
    assert mail.to == "ops@example.com"
    assert mail.rcpt_tos == ["ops@example.com"]
    assert mail.text.strip() == "line one\nline two"


def test_chat_sink_fails_the_next_posts_then_accepts(chat_sink):
    a = apprise.Apprise()
    assert a.add(chat_sink.url())
    chat_sink.fail_next(2, status=503)
    assert not a.notify(body="1", title="t")
    assert not a.notify(body="2", title="t")
    assert a.notify(body="3", title="t")
    [post] = chat_sink.wait_for(1)
    assert (post.title, post.message, post.path) == ("t", "3", "/hook")
    assert [p.status for p in chat_sink.attempts] == [503, 503, 200]


def test_wait_for_names_what_arrived_when_too_few_came(chat_sink):
    with pytest.raises(AssertionError, match="expected 1 chat message"):
        chat_sink.wait_for(1, timeout=0.2)
