"""Real receivers on loopback for what Dossier sends out: an SMTP sink and a chat-robot sink.

Both run in a thread of their own, so they answer whatever the test's event loop is doing (and
a worker in another process can reach them). Use them from a conftest with
`from tests.sinks import chat_sink, smtp_sink`, or `pytest_plugins = ["tests.sinks"]` in the
root conftest.
"""

from __future__ import annotations

import asyncio
import email
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


async def _poll(check: Callable[[], bool], seconds: float, what: str) -> None:
    """Wait until `check()` holds, polling; fail the test with `what` after `seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check():
        if loop.time() > deadline:
            pytest.fail(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.02)


class _FreePortController(Controller):
    """aiosmtpd's Controller bound to port 0: the kernel picks a free port, read back once bound
    (no pick-then-bind race)."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpSink:
    """Accepts every mail on 127.0.0.1 and keeps it parsed, as a relay would receive it.

    Set `refuse` to an SMTP reply (e.g. "550 5.1.1 no such user") to refuse recipients instead.
    """

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Envelope] = []
        self.refuse: str | None = None
        self._controller = _FreePortController(self, hostname="127.0.0.1", port=0)

    @property
    def port(self) -> int:
        return self._controller.port

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refuse is not None:
            return self.refuse
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.envelopes.append(envelope)
        self.messages.append(message)
        return "250 Message accepted"

    async def wait_for(self, count: int, timeout: float = 5) -> list[EmailMessage]:  # noqa: ASYNC109
        """The messages once at least `count` arrived."""
        await _poll(lambda: len(self.messages) >= count, timeout, f"{count} mail(s)")
        return self.messages

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


@dataclass
class RobotRequest:
    path: str
    query: dict[str, str]
    """Decoded query parameters (the last value of each), e.g. DingTalk's timestamp and sign."""
    raw_query: str
    headers: dict[str, str]
    body: Any
    status: int
    """What the sink answered."""


class ChatSink:
    """An HTTP/1.1 receiver standing in for WeCom, DingTalk and Feishu robot webhooks.

    Answers `status` with `answer` as JSON (200 `{"errcode": 0}` by default); set them to answer
    500 (a retry should follow) or 400 (a permanent refusal). Every request is recorded.
    """

    def __init__(self) -> None:
        self.status = 200
        self.answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}
        self.requests: list[RobotRequest] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    def url(self, path: str = "/") -> str:
        """An address on the sink, e.g. `url("/robot/send?access_token=t")`."""
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def delivered(self) -> list[RobotRequest]:
        """The requests answered with success."""
        return [r for r in self.requests if r.status < 300]

    async def wait_for(self, count: int, timeout: float = 5) -> list[RobotRequest]:  # noqa: ASYNC109
        """The recorded requests once at least `count` arrived."""
        await _poll(lambda: len(self.requests) >= count, timeout, f"{count} robot request(s)")
        return self.requests

    def start(self) -> None:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                parts = urlsplit(self.path)
                status, answer = sink.status, json.dumps(sink.answer).encode()
                sink.requests.append(
                    RobotRequest(
                        path=parts.path,
                        query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                        raw_query=parts.query,
                        headers=dict(self.headers.items()),
                        body=body,
                        status=status,
                    )
                )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test output is for the tests."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def stop(self) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """An SMTP server on 127.0.0.1 (free port) collecting parsed messages, for one test."""
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def chat_sink() -> Iterator[ChatSink]:
    """A chat-robot webhook receiver on 127.0.0.1 (free port), for one test."""
    sink = ChatSink()
    sink.start()
    yield sink
    sink.stop()
