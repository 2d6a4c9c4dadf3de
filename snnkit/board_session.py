"""Whether the board is still the one the network was loaded on, and reconnecting when it is
not: the part of :class:`snnkit.Device` that survives resets and lost ports.

The board's decoder counts the good frames it receives (region LINK, word 0) from power-on.
Every response the driver accepts is one more good frame the board received, so the count
can only grow by at least that much; a count below it means the board was reset,
power-cycled, reprogrammed or replaced (an emulator restarted) and lost the network. Each
operation that reads results or relies on the network checks it (one 4-byte read), and then
raises :class:`BoardReset`, or, with ``reconnect=True``, reopens the port if it failed,
reloads the network and repeats the operation. Without a driver-side token in the protocol,
the RTL stays as it is (the iCE40 build has no room to spare).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from .errors import DeviceError
from .link import PortLost
from .protocol import Region

T = TypeVar("T")


class BoardReset(DeviceError):
    """The board was reset, power-cycled or replaced since the network was loaded."""


class BoardSession:
    """Mixin of :class:`snnkit.Device`: the frame-count check and the recovery (it uses the
    device's link, ports, identify, upload and learning switch)."""

    def _board_frames(self, got: int | None = None) -> int:
        """The board's count of good frames received (region LINK word 0, or ``got`` just
        read); on a lossy line read again until two reads agree (the second counts itself
        and its resends)."""
        if got is None:
            got = self.read_region(Region.LINK, 0, 1)[0]
        for _ in range(5 if self.link.lossy else 0):
            sent = self.stats["frames"]
            again = self.read_region(Region.LINK, 0, 1)[0]
            if 1 <= again - got <= self.stats["frames"] - sent:
                return again
            got = again
        return got

    def _check_session(self, count: int | None = None) -> None:
        """Raise :class:`BoardReset` when the board's frame counter is below what it must
        be: every response accepted since the last reading is one more good frame, so a
        board that lost count was reset, power-cycled or replaced (or its FPGA
        reprogrammed)."""
        if self._floor is None:
            return
        count = self._board_frames() if count is None else count
        least = self._floor[0] + self.link.acks - self._floor[1]
        if count < least:
            self._floor = None
            raise BoardReset(f"the board was reset or replaced: its frame counter reads "
                             f"{count}, at least {least} expected; the network loaded on it "
                             f"is gone (load it again, or open the Device with "
                             f"reconnect=True)")
        self._floor = (count, self.link.acks)

    def _guarded(self, op: Callable[[], T], keeps_state: bool = False, check: bool = True) -> T:
        """``op()``, then (``check``) a check that the board is still the one it ran on. On
        a lost port or a reset board: raise, or (``reconnect``) recover and run ``op`` again;
        an operation whose answer needs the board's evolved state (``keeps_state``) cannot
        be repeated after a reload."""
        for _ in range(3):
            try:
                out = op()
                if check:
                    self._check_session()
                return out
            except (BoardReset, PortLost) as e:
                if not self.reconnect:
                    if isinstance(e, BoardReset):
                        self.net = None  # gone from the board: nothing may run or read it
                    raise
                reloaded = self._recover(e)
                if reloaded and keeps_state:
                    raise DeviceError(f"{e}; the network was reloaded, but the state and "
                                      f"weights the board had reached are lost") from e
        raise DeviceError("the board kept resetting or disconnecting; giving up")

    def _recover(self, err: DeviceError) -> bool:
        """Reopen the port if it failed, identify the board, and reload the network if the
        board lost it. Returns whether it reloaded."""
        self.stats["reconnects"] += 1
        if isinstance(err, PortLost):
            if self._url is None:
                raise DeviceError(f"{err}; reconnect needs a port URL, not an open port") from err
            self.close()
            end = time.monotonic() + max(10.0, self.timeout)
            while True:
                try:
                    self._port = self.link.port = self._open()
                    info = self.identify()
                    break
                except DeviceError:
                    if time.monotonic() > end:
                        raise
                    time.sleep(0.2)
        else:
            info = self.identify()
        if info.config != self.info.config:
            raise DeviceError(f"{err}; the board there now is another configuration "
                              f"({info.config} instead of {self.info.config})") from err
        reset = isinstance(err, BoardReset)
        if not reset:
            try:
                self._check_session()
            except BoardReset:
                reset = True
        if reset:
            self.stats["board_resets"] += 1
            self._journal = {}
            if self.net is not None:
                learning = self._learning
                self._reload()
                if not learning:
                    self._set_learning(False)
        return reset

