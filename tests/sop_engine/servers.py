"""Local stand-ins for the outside services the SOP channels talk to, speaking the real protocols.

- WebhookReceiver: an HTTP server (http.server in a thread on 127.0.0.1, a free port) that records every
  request (headers and the raw body) and answers from a script of status codes (the last one repeats), or
  sleeps before answering (a target that times out).
- SmtpReceiver: aiosmtpd's Controller on 127.0.0.1 and a free port, keeping every message it accepts.

Only these outside services are faked; the database, Redis and Celery are always the real ones.
"""

import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class WebhookReceiver:
    """`with WebhookReceiver(codes=[500, 500, 200]) as hook:` … hook.url, hook.requests."""

    def __init__(self, codes=(200,), *, delay: float = 0.0):
        self.codes = list(codes)
        self.delay = delay
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                code = receiver._record(self.path, dict(self.headers.items()), body)
                if receiver.delay:
                    time.sleep(receiver.delay)
                answer = b'{"ok":true}' if code < 300 else f"status {code}".encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:  # the client gave up waiting (the timeout case)
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def _record(self, path: str, headers: dict, body: bytes) -> int:
        with self._lock:
            self.requests.append(Received(path, headers, body, time.monotonic()))
            index = len(self.requests) - 1
            return self.codes[min(index, len(self.codes) - 1)]

    def keys(self) -> Counter:
        """How many requests came with each Idempotency-Key."""
        with self._lock:
            return Counter(r.headers.get("Idempotency-Key") for r in self.requests)

    def __enter__(self):
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


class _Collector:
    def __init__(self):
        self.messages: list[EmailMessage] = []
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.envelopes.append(envelope)
        self.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
        return "250 Message accepted for delivery"


class SmtpReceiver:
    """`with SmtpReceiver() as smtp:` … smtp.host, smtp.port, smtp.messages (email.message.EmailMessage)."""

    def __init__(self):
        self.collector = _Collector()
        self.host, self.port = "127.0.0.1", free_port()
        self.controller = Controller(self.collector, hostname=self.host, port=self.port)

    @property
    def messages(self) -> list[EmailMessage]:
        return self.collector.messages

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()
