"""The exception tree: every error snnkit raises on purpose derives from SnnkitError; and
the one check of a count (steps, sizes) that raises it."""

from __future__ import annotations

import numbers


class SnnkitError(Exception):
    """Base of all snnkit errors."""


class NetworkError(SnnkitError, ValueError):
    """A network description (built in Python or loaded from a file) is invalid.

    The message names the offending field, e.g. ``projections[1] (in->hid).weight``.
    """


class SimulationError(SnnkitError, ValueError):
    """Inputs or options given to a simulator are invalid (shape, dtype, steps, backend)."""


class DeviceError(SnnkitError, IOError):
    """A board (real or emulated) misbehaved: no answer, bad frames, too small for the network."""


class SweepError(SnnkitError, ValueError):
    """A sweep configuration is invalid (the message names the key), or a sweep failed."""


def count(name: str, value, low: int = 1, why: str = "", error=None) -> int:
    """``value`` as an int >= ``low`` (numpy integers too, not bools); else ``error``
    (default SimulationError) ``"{name}: must be a positive integer (why), got ..."``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        what = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise (error or SimulationError)(f"{name}: must be {what}{why}, got {value!r}")
    return int(value)
