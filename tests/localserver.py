"""A quiet threaded HTTP server on 127.0.0.1 for the test servers (newsroom, model stub)."""

from __future__ import annotations

import contextlib
import http.server
import socket
import socketserver
import sys
import threading
from typing import Any


class LocalServer(http.server.ThreadingHTTPServer):
    """Daemon threads, no reverse DNS at bind, connections closable at stop, no noise on hang-ups."""

    daemon_threads = True
    block_on_close = False  # stop() must not wait for keep-alive connections or slow answers
    request_queue_size = 128  # benchmarks open many connections at once

    def __init__(self, address: tuple[str, int], handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can be slow.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # clients hanging up, timeouts, connections shut down by stop()
        super().handle_error(request, client_address)
