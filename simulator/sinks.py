"""Local stand-ins for the people: an SMTP server and a chat webhook, both on 127.0.0.1.

Used by `oneha demo` (to show what a person would receive) and by the integration tests.

    with SmtpSink() as smtp, ChatSink() as chat:
        urls = [smtp.url(to="ops@example.com"), chat.url()]
        ...                                  # something sends through apprise
        mail = smtp.wait_for(1)[0]           # ReceivedMail: .subject .sender .to .text .message
        post = chat.wait_for(1)[0]           # ChatPost: .title .message .body .path .headers

`wait_for(n, timeout)` polls until at least n messages arrived and returns them all (so a test
can then assert that no more than n came); it raises AssertionError naming what did arrive.
`ChatSink.fail_next(n, status=500)` answers the next n POSTs with that status.
Fixtures `smtp_sink` and `chat_sink` live in `tests/support/fixtures.py`.
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

from aiosmtpd.controller import Controller

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(lock: threading.Condition, items: list, n: int, timeout: float, what: str) -> list:
    deadline = time.monotonic() + timeout
    with lock:
        while len(items) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"expected {n} {what}, got {len(items)} after {timeout}s: "
                                     f"{[str(i) for i in items]}")
            lock.wait(left)
        return list(items)


@dataclass
class ReceivedMail:
    """One message as the SMTP server received it (envelope and parsed message)."""

    message: EmailMessage
    mail_from: str  # envelope sender
    rcpt_tos: list[str]  # envelope recipients

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def sender(self) -> str:
        return str(self.message.get("From", ""))

    @property
    def to(self) -> str:
        return str(self.message.get("To", ""))

    @property
    def text(self) -> str:
        """The text/plain body (or the first text part of a multipart mail), decoded, with \\n
        line ends (SMTP carries \\r\\n)."""
        part = self.message.get_body(preferencelist=("plain", "html"))
        return part.get_content().replace("\r\n", "\n") if part is not None else ""

    def __str__(self) -> str:
        return f"<mail to={self.rcpt_tos} subject={self.subject!r}>"


class _SmtpHandler:
    def __init__(self, sink: "SmtpSink"):
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        message = email.message_from_bytes(envelope.original_content or envelope.content,
                                           policy=email.policy.default)
        self.sink._add(ReceivedMail(message, envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


class SmtpSink:
    """An aiosmtpd server on a free port; collects every mail it is given."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None):
        self.host = host
        self.port = port or free_port()
        self.messages: list[ReceivedMail] = []
        self._cond = threading.Condition()
        self._controller: Controller | None = None

    def start(self) -> "SmtpSink":
        self._controller = Controller(_SmtpHandler(self), hostname=self.host, port=self.port,
                                      ready_timeout=10)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> "SmtpSink":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _add(self, mail: ReceivedMail) -> None:
        with self._cond:
            self.messages.append(mail)
            self._cond.notify_all()

    def url(self, to: str = "ops@example.com", sender: str = "oneha@example.com") -> str:
        """The apprise URL that delivers to this server in plain SMTP."""
        return (f"mailto://{self.host}:{self.port}?mode=insecure"
                f"&from={quote(sender, safe='@')}&to={quote(to, safe='@')}")

    def wait_for(self, n: int = 1, timeout: float = 10.0) -> list[ReceivedMail]:
        return _wait(self._cond, self.messages, n, timeout, "mail(s)")

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()


@dataclass
class ChatPost:
    """One POST the webhook received; `body` is the parsed JSON (apprise json://: title, message)."""

    path: str
    headers: dict[str, str]
    body: dict = field(default_factory=dict)
    status: int = 200  # what the sink answered

    @property
    def title(self) -> str:
        return str(self.body.get("title", ""))

    @property
    def message(self) -> str:
        return str(self.body.get("message", ""))

    def __str__(self) -> str:
        return f"<post {self.path} status={self.status} title={self.title!r}>"


class ChatSink:
    """A stdlib HTTP server collecting JSON POSTs, able to fail the next n of them.

    `messages` holds the POSTs it accepted (answered 2xx); `attempts` every POST, failed ones too.
    """

    def __init__(self, host: str = "127.0.0.1", port: int | None = None):
        self.host = host
        self.port = port or free_port()
        self.messages: list[ChatPost] = []
        self.attempts: list[ChatPost] = []
        self._failures: list[int] = []
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "ChatSink":
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                status = sink._record(ChatPost(self.path, dict(self.headers.items()), body))
                payload = b'{"ok":true}' if status < 300 else b'{"ok":false}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "ChatSink":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _record(self, post: ChatPost) -> int:
        with self._cond:
            post.status = self._failures.pop(0) if self._failures else 200
            self.attempts.append(post)
            if post.status < 300:
                self.messages.append(post)
            self._cond.notify_all()
            return post.status

    def fail_next(self, n: int, status: int = 500) -> None:
        """Answer the next `n` POSTs with `status` (they are not counted in `messages`)."""
        with self._cond:
            self._failures.extend([status] * n)

    def url(self, path: str = "hook") -> str:
        return f"json://{self.host}:{self.port}/{path.lstrip('/')}"

    def wait_for(self, n: int = 1, timeout: float = 10.0) -> list[ChatPost]:
        return _wait(self._cond, self.messages, n, timeout, "chat message(s)")

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()
            self.attempts.clear()
            self._failures.clear()
