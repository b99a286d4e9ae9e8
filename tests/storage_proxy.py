"""A TCP proxy in front of Azurite that can refuse connections for a while: Table Storage
"refusing connections" as a network fault, with the real Azurite behind it (no mock of the
store). ``refuse()`` closes the listening socket and every open connection, so new connections
are refused (ECONNREFUSED) and requests in flight fail; ``restore()`` listens again on the same
port."""

from __future__ import annotations

import contextlib
import socket
import threading

from local_runner.azurite import connection_string


class TcpProxy:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self._target = (host, target_port)
        self._host = host
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.port = 0
        self.refusals = 0
        self._listen()

    @property
    def connection_string(self) -> str:
        return connection_string(self.port)

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self._host, self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="storage-proxy", daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed: refusing
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._connections += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def refuse(self) -> None:
        """From now on, connections are refused and open ones are cut."""
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, []
            self.refusals += 1
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread: close alone leaves it listening
            listener.close()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def restore(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
        self._listen()

    @property
    def refusing(self) -> bool:
        return self._listener is None

    def close(self) -> None:
        self.refuse()
