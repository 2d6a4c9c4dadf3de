"""Surrogate-gradient training of spiking networks (docs/training.md).

:class:`SNN` makes any :class:`~snnkit.network.Network` a trainable torch module, in float or
in the hardware's exact fixed point; :func:`fit` and :func:`evaluate` train and measure it on
labelled data.
"""

from .fit import History, encode, evaluate, fit
from .module import SNN, board_quantization

__all__ = ["SNN", "fit", "evaluate", "encode", "History", "board_quantization"]
