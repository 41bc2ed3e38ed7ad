"""Hand-written fakes the tests share: real servers on 127.0.0.1 that record what they get."""

from __future__ import annotations

import http.server
import json
import threading
from typing import Any


class WebhookReceiver:
    """A webhook endpoint on a free port of 127.0.0.1, served from its own threads (so a
    blocking command and an event loop alike can post to it): records each JSON body.
    ``mode``: "ok" (200), "fail" (500), or "hang" (holds each request until ``release``)."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.bodies: list[dict[str, Any]] = []
        self.hanging = 0  # requests being held (mode "hang")
        self.release = threading.Event()
        self._server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> str:
        """Serve; the URL to post to."""
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append(json.loads(body))
                if receiver.mode == "hang":
                    receiver.hanging += 1
                    receiver.release.wait()
                self.send_response(500 if receiver.mode == "fail" else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}/hook"

    def stop(self) -> None:
        """Let held requests go, stop serving."""
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
