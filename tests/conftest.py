import os
import socket
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


class Trap:
    """A loopback server that counts every TCP connection and every HTTP request line reaching it.
    Sandbox tests point hostile pages at it: it must count zero."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.requests: list[str] = []
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            try:
                conn.settimeout(0.5)
                data = conn.recv(4096)
                if data:
                    self.requests.append(data.split(b"\r\n", 1)[0].decode("latin-1"))
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nleaked")
            except OSError:
                pass
            finally:
                conn.close()

    def close(self):
        self._stop = True
        self.sock.close()


@pytest.fixture(scope="session")
def trap():
    t = Trap()
    # sanity: the trap really counts (so a zero elsewhere means something)
    with socket.create_connection(("127.0.0.1", t.port), timeout=2) as s:
        s.sendall(b"GET /probe HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(100)
    deadline = time.time() + 2
    while t.connections < 1 and time.time() < deadline:
        time.sleep(0.01)
    assert t.connections == 1 and t.requests == ["GET /probe HTTP/1.1"]
    t.connections, t.requests = 0, []
    yield t
    t.close()


@pytest.fixture(scope="session")
def shared_dir():
    return SHARED
