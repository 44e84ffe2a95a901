"""gunicorn's thread worker as Hongtu runs it: connections are closed off the accept loop.

To close a connection whose answer said ``Connection: close``, gunicorn's thread worker sends
its FIN and then waits, on the thread that accepts every connection, for the client to close
too (up to 2 s; RFC 9112 §9.6, so that request bytes the app did not read cannot turn into a
reset that cuts the answer short). A client that neither reads nor closes then holds the
accept loop for 2 s, and a handful of them stall every other user of the worker. Here the FIN
is sent at once and one thread of the worker's own drains and closes such sockets, however
many linger.
"""

from __future__ import annotations

import functools
import heapq
import selectors
import socket
import threading
import time
from collections import deque

from gunicorn.workers import gthread

#: How long a closed-for-writing socket waits for the client to close (seconds), and how many
#: bytes of the client's are read and dropped meanwhile: gunicorn's own figures.
LINGER_SECONDS = 2.0
LINGER_BYTES = 65536
#: Sockets that may linger at once; beyond, a socket is closed at once.
MAX_LINGERING = 1024


class LingeringCloser:
    """Half-closes sockets and lets one thread finish closing them (see the module's description)."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        self._handed: deque[socket.socket] = deque()
        self._deadlines: list[tuple[float, int, socket.socket]] = []
        self._drained: dict[socket.socket, int] = {}
        threading.Thread(target=self._run, name="hongtu-closer", daemon=True).start()

    def close(self, sock: socket.socket) -> None:
        """Send the FIN now; the rest of the close happens on the closer's thread."""
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return
        if len(self._drained) + len(self._handed) >= MAX_LINGERING:
            sock.close()
            return
        self._handed.append(sock)
        try:
            self._wake_write.send(b"\0")
        except BlockingIOError:
            pass  # a wake-up is already pending

    def _run(self) -> None:
        while True:
            timeout = max(0.0, self._deadlines[0][0] - time.monotonic()) if self._deadlines else None
            for key, _ in self._selector.select(timeout):
                if key.fileobj is self._wake_read:
                    self._take_handed()
                else:
                    self._drain(key.fileobj)
            now = time.monotonic()
            while self._deadlines and self._deadlines[0][0] <= now:
                self._finish(heapq.heappop(self._deadlines)[2])

    def _take_handed(self) -> None:
        try:
            while self._wake_read.recv(4096):
                pass
        except BlockingIOError:
            pass
        while self._handed:
            sock = self._handed.popleft()
            sock.setblocking(False)
            self._drained[sock] = 0
            self._selector.register(sock, selectors.EVENT_READ)
            heapq.heappush(self._deadlines, (time.monotonic() + LINGER_SECONDS, id(sock), sock))

    def _drain(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        self._drained[sock] += len(data)
        if not data or self._drained[sock] >= LINGER_BYTES:
            self._finish(sock)

    def _finish(self, sock: socket.socket) -> None:
        if self._drained.pop(sock, None) is None:
            return  # already closed: its deadline came after the client's own close
        self._selector.unregister(sock)
        sock.close()


class ThreadWorker(gthread.ThreadWorker):
    """gunicorn's ``gthread`` worker, closing finished connections through a :class:`LingeringCloser`."""

    def init_process(self) -> None:
        self.closer = LingeringCloser()
        super().init_process()

    def finish_request(self, conn, fs) -> None:
        # The connection's own close, once per connection (a kept-alive one comes back here).
        if "close" not in vars(conn):
            conn.close = functools.partial(self._close, conn, conn.close)
        super().finish_request(conn, fs)

    def _close(self, conn, plain_close, graceful: bool = False) -> None:
        if graceful:
            self.closer.close(conn.sock)
        else:
            plain_close()
