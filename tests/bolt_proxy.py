"""A TCP proxy in front of the Neo4j test server that can break one connection at its COMMIT.

    with CommitCutter(server_port) as proxy:
        proxy.arm(b"SET m.state = 'switched'", forward_commit=True)
        kg = mmkg.open_store(neo4j_uri=proxy.uri)

Once armed, the first connection whose client sends a message containing `fragment` is broken at its next
COMMIT message: with `forward_commit` the COMMIT reaches Neo4j (which commits) but its answer never reaches
the client; without, the connection closes before Neo4j sees the COMMIT (Neo4j rolls back).  Either way the
driver raises `IncompleteCommit`.  Real sockets, a real server: only the network between them misbehaves.
"""
from __future__ import annotations

import socket
import threading

COMMIT = b"\x00\x02\xb0\x12\x00\x00"  # one chunk holding Bolt's COMMIT message (struct of 0 fields, tag 0x12)


class CommitCutter:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.uri = f"bolt://127.0.0.1:{self.port}"
        self._fragment: bytes | None = None
        self._forward = False
        self._lock = threading.Lock()
        self.cut: str | None = None  # "after forwarding COMMIT" | "before forwarding COMMIT" once it happened
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, fragment: bytes, *, forward_commit: bool) -> None:
        with self._lock:
            self._fragment, self._forward, self.cut = fragment, forward_commit, None

    def __enter__(self) -> CommitCutter:
        return self

    def __exit__(self, *exc) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            _Connection(self, client, server).start()

    def _claim(self, seen: bytes) -> bool | None:
        """The forward flag if this connection's traffic so far triggers the armed cut (and disarm it)."""
        with self._lock:
            if self._fragment is not None and self._fragment in seen:
                self._fragment = None
                return self._forward
        return None


class _Connection:
    def __init__(self, proxy: CommitCutter, client: socket.socket, server: socket.socket):
        self.proxy, self.client, self.server = proxy, client, server
        self.triggered: bool | None = None  # forward flag once this connection carried the fragment
        self.swallow_answer = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._client_to_server, daemon=True).start()
        threading.Thread(target=self._server_to_client, daemon=True).start()

    def _close(self) -> None:
        for sock in (self.client, self.server):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _client_to_server(self) -> None:
        seen = b""
        try:
            while data := self.client.recv(65536):
                if self.triggered is None:
                    seen = (seen + data)[-1_000_000:]
                    self.triggered = self.proxy._claim(seen)
                elif COMMIT in data:
                    if self.triggered:
                        self.swallow_answer.set()
                        self.server.sendall(data)
                        self.proxy.cut = "after forwarding COMMIT"
                    else:
                        self.proxy.cut = "before forwarding COMMIT"
                        self._close()
                    return
                self.server.sendall(data)
        except OSError:
            pass
        self._close()

    def _server_to_client(self) -> None:
        try:
            while data := self.server.recv(65536):
                if self.swallow_answer.is_set():
                    break  # Neo4j answered the COMMIT: the client never hears it
                self.client.sendall(data)
        except OSError:
            pass
        self._close()
