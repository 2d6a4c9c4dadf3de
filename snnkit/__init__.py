"""snnkit: spiking neural networks in software and on an FPGA.

One :class:`Network` description runs in a float simulator, in the hardware's bit-exact
fixed point, and on the Verilog core (emulated or on a board).
"""

import importlib

from . import encoders
from .convert import convert  # eager: the submodule would shadow a lazy attribute
from .errors import DeviceError, NetworkError, SimulationError, SnnkitError
from .network import IF, LIF, STDP, CubaLIF, Network, Quantization, load
from .parameters import STDPBoundsWarning, ThresholdWarning
from .partition import partition  # eager: the submodule would shadow a lazy attribute
from .quantize import quantize
from .result import Result
from .simulator import Simulator, simulate
from .sweep import sweep  # eager (it imports Ray only when a sweep runs), as above

__version__ = "0.1.0"


_LAZY = {  # heavy or optional parts load on first use: name -> (module, attribute)
    "plot": ("snnkit.plot", None),
    "datasets": ("snnkit.datasets", None),
    "unsupervised": ("snnkit.unsupervised", None),
    "from_nir": ("snnkit.nir_import", "from_nir"),
    "to_nir": ("snnkit.nir_export", "to_nir"),
    "NIRApproximationWarning": ("snnkit.nir_report", "NIRApproximationWarning"),
    "compile": ("snnkit.compiler", "compile"),
    "Device": ("snnkit.device", "Device"),
    "SNN": ("snnkit.training", "SNN"),
    "training": ("snnkit.training", None),
    "surrogate": ("snnkit.surrogate", None),
    "Cluster": ("snnkit.cluster", "Cluster"),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'snnkit' has no attribute {name!r}")
    module, attr = _LAZY[name]
    mod = importlib.import_module(module)
    return mod if attr is None else getattr(mod, attr)


__all__ = [
    "Network", "IF", "LIF", "CubaLIF", "STDP", "Quantization", "Result", "load", "simulate",
    "Simulator", "quantize", "encoders", "plot", "from_nir", "to_nir", "convert", "compile",
    "Device", "partition", "Cluster", "sweep", "NIRApproximationWarning", "STDPBoundsWarning",
    "ThresholdWarning", "SNN",
    "SnnkitError", "NetworkError", "SimulationError", "DeviceError",
]
