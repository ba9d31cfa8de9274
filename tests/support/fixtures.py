"""Shared pytest fixtures for real receivers (registered in tests/conftest.py's pytest_plugins)."""

import pytest

from tests.support.sinks import ChatSink, SmtpSink


@pytest.fixture
def smtp_sink():
    """A real SMTP server on a free 127.0.0.1 port; `.url(to=...)` is its apprise mailto URL."""
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def chat_sink():
    """A real HTTP webhook receiver on a free 127.0.0.1 port; `.url()` is its apprise json URL."""
    with ChatSink() as sink:
        yield sink
