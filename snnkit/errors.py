"""The exception tree: every error snnkit raises on purpose derives from SnnkitError."""


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
