"""The SMTP and chat sinks live in the package (`oneha demo` shows what they receive)."""

from simulator.sinks import ChatPost, ChatSink, ReceivedMail, SmtpSink

__all__ = ["ChatPost", "ChatSink", "ReceivedMail", "SmtpSink"]
