"""A fault-injecting TCP proxy for a board's ``socket://`` URL: tries the driver on a noisy
line, a lost connection or a board swapped mid-session, without a real noisy cable.

Each byte passing through, in either direction, is flipped (one random bit), dropped or
duplicated, each with probability ``rate / 3``. The tests and benchmarks/link_soak.py put it
between :class:`snnkit.Device` and the emulated board (``snnkit emulate``)::

    with running(config) as (url, _), LossyProxy(url, rate=0.01) as proxy:
        dev = snnkit.Device(proxy.url)
"""

from __future__ import annotations

import random
import select
import socket
import threading
from typing import Self


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("socket://").rsplit(":", 1)
    return host, int(port)


class LossyProxy:
    """Serves ``socket://127.0.0.1:PORT`` (:attr:`url`) and passes bytes to and from ``target``.

    Parameters
    ----------
    target : the board's ``socket://host:port``
    rate : probability that a byte is damaged (flipped, dropped or duplicated, a third each)
    seed : of the random faults (a run is repeatable up to thread timing)
    """

    def __init__(self, target: str, rate: float = 0.0, seed: int = 0):
        self.target, self.rate, self.rng = _address(target), float(rate), random.Random(seed)
        self.faults = 0  # bytes damaged so far
        self.passed = 0  # bytes passed so far (both directions, before damage)
        self._cut: int | None = None  # client bytes left before the connection is cut
        self._new_target: tuple[str, int] | None = None
        self._lock = threading.Lock()
        self._srv = socket.socket()
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind(("127.0.0.1", 0))
        self._srv.listen(1)
        self.url = f"socket://127.0.0.1:{self._srv.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ control

    def retarget(self, target: str) -> None:
        """Pass the following bytes to another board (a board swapped behind the cable: the
        client's connection stays open)."""
        with self._lock:
            self._new_target = _address(target)

    def cut_after(self, n: int) -> None:
        """Close the client's connection after ``n`` more bytes from it (a cable pulled);
        the proxy then waits for the client to connect again."""
        with self._lock:
            self._cut = int(n)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._srv.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ the loop

    def _damage(self, data: bytes) -> bytes:
        out = bytearray()
        rate, rng = self.rate, self.rng
        for byte in data:
            r = rng.random()
            if r >= rate:
                out.append(byte)
                continue
            self.faults += 1
            if r < rate / 3:
                out.append(byte ^ (1 << rng.randrange(8)))  # flipped
            elif r >= 2 * rate / 3:
                out += bytes([byte, byte])  # duplicated
            # otherwise dropped
        self.passed += len(data)
        return bytes(out)

    def _serve(self) -> None:
        client = upstream = None
        while not self._stop.is_set():
            with self._lock:
                target, self._new_target = self._new_target, None
            if target is not None:
                self.target = target
                if upstream is not None:
                    upstream.close()
                    upstream = socket.create_connection(self.target) if client else None
            socks = [s for s in (self._srv if client is None else None, client, upstream) if s]
            ready, _, _ = select.select(socks, [], [], 0.005)
            for s in ready:
                if s is self._srv:
                    client, _ = self._srv.accept()
                    upstream = socket.create_connection(self.target)
                    continue
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:  # either end closed: drop both, wait for the next client
                    for x in (client, upstream):
                        x.close()
                    client = upstream = None
                    break
                if s is client:
                    with self._lock:
                        cut = self._cut
                        if cut is not None:
                            self._cut = None if cut <= len(data) else cut - len(data)
                    if cut is not None and cut <= len(data):
                        upstream.sendall(self._damage(data[:cut]))
                        client.close()
                        upstream.close()
                        client = upstream = None
                        break
                    upstream.sendall(self._damage(data))
                else:
                    client.sendall(self._damage(data))
        for x in (client, upstream):
            if x is not None:
                x.close()
