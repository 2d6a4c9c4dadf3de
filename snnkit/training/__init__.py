"""Surrogate-gradient training of spiking networks (docs/training.md).

:class:`SNN` makes any :class:`~snnkit.network.Network` a trainable torch module, in float or
in the hardware's exact fixed point; :func:`fit` and :func:`evaluate` train and measure it on
labelled data; :func:`finetune_converted` is the ANN -> conversion -> BPTT fine-tuning recipe.
"""

from .module import SNN, board_quantization

__all__ = ["SNN", "board_quantization"]
