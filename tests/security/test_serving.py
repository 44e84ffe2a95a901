"""A client that keeps its connection open after a ``Connection: close`` answer does not stall
anyone else's requests (the accept loop of gunicorn's thread worker lingered on each such
socket for up to 2 s: thirty slow clients held other users' API answers for seconds)."""

from __future__ import annotations

import socket
import time
import urllib.request

import pytest

from app.store import Store

from ..conftest import Gunicorn

LINGERERS = 6


@pytest.fixture
def served(tmp_path):
    url = f"sqlite:///{tmp_path}/served.sqlite"
    Store(url).init_schema()
    server = Gunicorn(url, workers=1)
    yield server
    server.close()


def _linger(url: str) -> socket.socket:
    """A connection that asks once, to be closed, then neither reads nor closes."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: hongtu\r\nConnection: close\r\n\r\n")
    return sock


def test_clients_that_keep_closed_connections_open_stall_no_one(served):
    lingering = [_linger(served.url) for _ in range(LINGERERS)]
    time.sleep(0.3)
    took = []
    for _ in range(5):
        started = time.perf_counter()
        urllib.request.urlopen(served.url + "/healthz", timeout=30).read()
        took.append(time.perf_counter() - started)
    assert max(took) < 0.5, took
    for sock in lingering:
        # Each still gets its whole answer, then the server's end of the connection.
        sock.settimeout(5)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"\r\n\r\nok\n"), answer[:80]
        sock.close()
