"""ANN -> spiking network -> BPTT fine-tuning at a few time steps, the recipe of "Rethinking
Pretraining as a Bridge from ANNs to SNNs": the converted network starts where the ANN is, and
a few epochs of surrogate-gradient training at small T recover what rate coding loses there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import NetworkError
from .fit import History, encode, fit
from .module import SNN


@dataclass
class FineTuned:
    """What :func:`finetune_converted` produced."""

    network: object  # the fine-tuned Network (exported from snn)
    converted: object  # the Conversion before fine-tuning
    snn: SNN  # the trained module
    history: History
    steps: int
    encoding: str  # how samples become inputs: "current" or "regular" (spikes)

    @property
    def output(self) -> str:
        return self.converted.output

    def inputs(self, x):
        """Inputs ``[steps, batch, inputs]`` for samples ``x``, as fine-tuning fed them."""
        x = np.asarray(x, np.float64)
        return encode(x.reshape(len(x), -1), self.steps, self.encoding)

    def predict(self, x, backend: str = "float", **options) -> np.ndarray:
        """Class per sample from :func:`snnkit.simulate` of the fine-tuned network."""
        from ..simulator import simulate

        res = simulate(self.network, self.inputs(x), self.steps, backend, **options)
        return res.predict(self.output).cpu().numpy()


def finetune_converted(model, x, y, *, steps: int = 4, input: str = "current",
                       arithmetic: str = "float", epochs: int = 20, lr: float = 1e-3,
                       calibration: int = 500, trainable=("weight",), per_neuron: bool = False,
                       test=None, seed: int = 0, progress: bool = True, **fit_options
                       ) -> FineTuned:
    """Convert ``model`` (rate mode, :func:`snnkit.convert`) and fine-tune the spiking network
    with BPTT at ``steps`` time steps.

    Parameters
    ----------
    model : the trained torch ANN (see :func:`snnkit.convert`)
    x, y : training samples ``[N, ...]`` (values in [0, 1] for spike input) and labels
    steps : time steps per inference, for training and for the result's ``steps``
    input : "current" (analog first layer; the simulators only) or "spikes" (deterministic
        rate-coded spikes, :func:`snnkit.encoders.regular`: what the hardware takes)
    arithmetic : "float", or "fixed": fine-tune in the conversion's fixed-point format, so the
        board computes exactly what training measured
    calibration : samples used to balance the thresholds
    trainable, per_neuron : as :class:`SNN` (default: weights only; population-scalar
        parameters deploy to today's hardware)
    test : ``(x_test, y_test)`` evaluated after each epoch
    fit_options : passed to :func:`snnkit.training.fit` (batch_size, checkpoint, plot, ...)

    Raises
    ------
    NetworkError : unsupported model layers, a bad ``input``
    """
    from ..convert import convert

    if input not in ("current", "spikes"):
        raise NetworkError(f"input: must be 'current' or 'spikes', got {input!r}")
    x = np.asarray(x, np.float64)
    conv = convert(model, x[:calibration], mode="rate",
                   input="current" if input == "current" else "poisson", steps=steps)
    snn = SNN(conv.network, arithmetic=arithmetic, trainable=trainable, per_neuron=per_neuron,
              quantization=conv.network.quantization if arithmetic == "fixed" else None)
    flat = x.reshape(len(x), -1)
    if test is not None:
        test = (np.asarray(test[0], np.float64).reshape(len(test[0]), -1), test[1])
    history = fit(snn, flat, y, epochs=epochs, steps=steps, lr=lr, seed=seed,
                  encoding="current" if input == "current" else "regular",
                  output=conv.output, test=test, progress=progress, **fit_options)
    return FineTuned(snn.network(), conv, snn, history, steps,
                     "current" if input == "current" else "regular")
