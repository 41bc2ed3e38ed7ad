"""A TCP proxy in front of PostgreSQL that a test can cut: one daemon's database
connection partitioned while the other's stays up (issue 19's failover tests).

:meth:`DbProxy.cut` makes it a black hole, as a dropped network is: the open
connections stay open and carry nothing either way, and new ones are accepted but
never reach the server. :meth:`DbProxy.heal` closes what it held and forwards anew."""

from __future__ import annotations

import contextlib
import select
import socket
import threading


class DbProxy:
    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.cut_off = threading.Event()
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self.cut_off.set()

    def heal(self) -> None:
        with self._lock:
            held, self._held = self._held, []
        for sock in held:
            with contextlib.suppress(OSError):
                sock.close()
        self.cut_off.clear()

    def close(self) -> None:
        self.heal()
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self._held.append(client)
            if self.cut_off.is_set():
                continue  # (accepted, never answered: a black hole)
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._held.append(server)
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        pair = {a: b, b: a}
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 0.2)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if not self.cut_off.is_set():
                        pair[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()
