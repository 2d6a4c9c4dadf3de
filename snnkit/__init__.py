"""snnkit: spiking neural networks in software and on an FPGA.

One :class:`Network` description runs in a float simulator, in the hardware's bit-exact
fixed point, and on the Verilog core (emulated or on a board).
"""

from . import encoders
from .errors import DeviceError, NetworkError, SimulationError, SnnkitError
from .fileformat import load
from .network import IF, LIF, STDP, CubaLIF, Network, Quantization
from .quantize import quantize
from .result import Result
from .simulator import simulate

__version__ = "0.1.0"


def __getattr__(name):  # heavy or optional parts load on first use
    if name == "plot":
        from . import plot

        return plot
    if name in ("from_nir", "to_nir"):
        from . import nir_io

        return getattr(nir_io, name)
    if name == "convert":
        from .convert import convert

        return convert
    if name == "compile":
        from .compiler import compile

        return compile
    if name == "Device":
        from .device import Device

        return Device
    raise AttributeError(f"module 'snnkit' has no attribute {name!r}")


__all__ = [
    "Network", "IF", "LIF", "CubaLIF", "STDP", "Quantization", "Result", "load", "simulate",
    "quantize", "encoders", "plot", "from_nir", "to_nir", "convert", "compile", "Device",
    "SnnkitError", "NetworkError", "SimulationError", "DeviceError",
]
