"""Unsupervised STDP learning of digits in the style of Diehl & Cook (2015).

64 Poisson pixel inputs drive ``n_exc`` LIF neurons whose threshold adapts (homeostasis);
the input weights learn by STDP and the neurons inhibit each other (an all-but-self negative
projection with delay 1), so each neuron comes to respond to one kind of digit. After
training every neuron is labelled with the class it answers most, and a test digit is
classified by the mean response of each class's neurons.

Learning is one long batch-1 run: the digits follow each other (``steps_per_sample`` steps
each, then ``rest_steps`` of background input), so weights and thresholds carry over from
one digit to the next, exactly as the board runs it. There is no weight normalisation (the
hardware has none). Its effect, pulling down the weights of pixels that are dark when the
neuron fires, comes from the rest period: every pixel then fires at a weak background rate
while the neuron's postsynaptic trace is still high, so every weight is depressed in
proportion to the neuron's recent activity, while potentiation during the digit follows the
pixel's intensity. With soft bounds each weight settles near ``w_max * r / (r + c)`` for a
pixel of mean rate ``r``: a prototype of the digits the neuron wins.

Example::

    from snnkit import unsupervised as us
    x_tr, y_tr, x_te, y_te = us.digits()
    net = us.build_network()
    trained = us.train(net, x_tr, backend="fixed")
    labels = us.assign_labels(trained, x_tr, y_tr, backend="fixed")
    print(us.evaluate(trained, labels, x_te, y_te, backend="fixed"))
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from .encoders import poisson
from .errors import SimulationError
from .network import LIF, STDP, Network
from .quantize import quantize
from .simulator import simulate

INPUT, EXC = "pixels", "exc"
PLASTIC = f"{INPUT}->{EXC}"


@dataclass
class Schedule:
    """How digits become spikes: rates, presentation and rest lengths."""

    steps_per_sample: int = 40  # steps each digit is shown
    rest_steps: int = 20  # background-only steps after each digit (depression phase)
    max_rate: float = 0.25  # spike probability per step of a full-intensity pixel
    rest_rate: float = 0.05  # spike probability per step of every pixel during rest
    eval_steps: int = 40  # steps per digit when labelling and testing (no learning)


def digits(seed: int = 0):
    """sklearn's 8x8 digits, split 75/25 stratified with ``random_state=seed``.

    Returns
    -------
    ``(x_train, y_train, x_test, y_test)``; pixels scaled to [0, 1] (float64, [n, 64]).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.data / 16.0
    x_tr, x_te, y_tr, y_te = train_test_split(x, d.target, test_size=0.25, random_state=seed,
                                              stratify=d.target)
    return x_tr, y_tr, x_te, y_te


def build_network(n_exc: int = 100, *, threshold: float = 4.0, beta: float = 0.9,
                  refractory: int = 2, theta_plus: float = 0.1, theta_decay: float = 1.0,
                  inhibition: float = 4.0, w_max: float = 0.98, w_init: float = 0.3,
                  stdp: STDP | None = None, seed: int = 0) -> Network:
    """The Diehl & Cook network: pixels -> adaptive LIF neurons with lateral inhibition.

    Parameters
    ----------
    n_exc : number of excitatory (learning) neurons
    threshold, beta, refractory : LIF threshold, membrane decay per step, refractory steps
    theta_plus, theta_decay : threshold increase per spike and its decay per step
    inhibition : weight (made negative) of every exc -> other exc synapse, delay 1
    w_max : upper weight bound (0.98 < 127/128 gives 8-bit weights with 7 fractional bits)
    w_init : initial weights are uniform in [0, w_init * w_max]
    stdp : the learning rule; default soft-bounded all-pairs STDP in [0, w_max]
    seed : random seed of the initial weights

    Returns
    -------
    :class:`~snnkit.network.Network` with input ``"pixels"`` [64] and population ``"exc"``
    """
    rng = np.random.default_rng(seed)
    stdp = stdp or STDP(a_plus=0.02, a_minus=0.02, pre_decay=0.8, post_decay=0.95,
                        rule="all_pairs", bounds="soft", w_min=0.0, w_max=w_max)
    net = Network(dt=1e-3, name="diehl-cook-digits")
    net.add_input(INPUT, 64)
    net.add_population(EXC, n_exc, LIF(beta=beta, threshold=threshold, reset="value",
                                       v_reset=0.0, refractory=refractory,
                                       adapt_plus=theta_plus, adapt_decay=theta_decay))
    net.connect(INPUT, EXC, rng.uniform(0.0, w_init * w_max, (n_exc, 64)), stdp=stdp)
    net.connect(EXC, EXC, -inhibition * (1.0 - np.eye(n_exc)), delay=1)
    return net


def _check_images(x, label: str) -> np.ndarray:
    arr = np.asarray(x, np.float64)
    if arr.ndim != 2 or arr.shape[1] != 64:
        raise SimulationError(f"{label}: expected images shaped [n, 64], got {arr.shape}")
    if arr.size == 0 or arr.min() < 0 or arr.max() > 1:
        raise SimulationError(f"{label}: pixels must be in [0, 1] (sklearn digits / 16)")
    return arr


def sequence(x, schedule: Schedule, seed: int = 0):
    """One long batch-1 input ``[n * (steps + rest), 1, 64]``: each digit, then rest."""
    x = _check_images(x, "x")
    s = schedule
    period = s.steps_per_sample + s.rest_steps
    rates = np.empty((len(x), period, 64))
    rates[:, :s.steps_per_sample] = x[:, None, :] * s.max_rate
    rates[:, s.steps_per_sample:] = s.rest_rate
    return poisson(rates.reshape(-1, 64), 1, seed=seed).reshape(-1, 1, 64)


def train(net: Network, x_train, backend: str = "fixed", epochs: int = 1,
          schedule: Schedule | None = None, seed: int = 0, progress: bool = False):
    """Learn the input weights by STDP on a sequential presentation of ``x_train``.

    Parameters
    ----------
    net : from :func:`build_network`
    x_train : images [n, 64] in [0, 1]
    backend : "float" or "fixed" (the hardware's arithmetic; "verilator" works too, slowly)
    epochs : passes over ``x_train``, in one run
    schedule : rates and lengths; default :class:`Schedule`
    seed : seed of the Poisson spikes
    progress : show a progress bar

    Returns
    -------
    ``(trained, theta)``: a copy of ``net`` (quantised for the fixed backend) with the learned
    weights and the adaptive thresholds folded into ``threshold`` (``adapt_plus`` = 0, so it
    is ready for labelling and testing), and the final threshold increase ``theta`` [n_exc].
    """
    schedule = schedule or Schedule()
    if not isinstance(epochs, int) or epochs < 1:
        raise SimulationError(f"epochs: must be a positive integer, got {epochs!r}")
    if backend != "float":
        net, _ = quantize(net)  # pin the format so the trained copy keeps it
    x = _check_images(x_train, "x_train")
    inputs = sequence(np.concatenate([x] * epochs), schedule, seed)
    res = simulate(net, inputs, backend=backend, record=("theta",), learning=True,
                   progress=progress)
    lsb = res.lsb or 1.0
    w = res.weights[PLASTIC][0].cpu().numpy().astype(np.float64) * lsb
    theta = res.states[EXC]["theta"][-1, 0].cpu().numpy().astype(np.float64) * lsb
    return freeze(net, w, theta), theta


def freeze(net: Network, w: np.ndarray, theta: np.ndarray) -> Network:
    """A copy of ``net`` with input weights ``w`` and ``theta`` folded into the threshold."""
    out = copy.deepcopy(net)
    proj = next(p for p in out.projections if p.name == PLASTIC)
    proj.weight = np.asarray(w, np.float64).copy()
    exc = out.population(EXC).neuron
    exc.threshold = np.broadcast_to(exc.threshold, theta.shape) + theta
    exc.adapt_plus = 0.0
    return out


def responses(net: Network, x, backend: str = "fixed", schedule: Schedule | None = None,
              seed: int = 1) -> np.ndarray:
    """Spike counts ``[n, n_exc]`` of every image shown on its own, without learning."""
    s = schedule or Schedule()
    x = _check_images(x, "x")
    inputs = poisson(x * s.max_rate, s.eval_steps, seed=seed)
    res = simulate(net, inputs, backend=backend, learning=False)
    return res.counts(EXC).cpu().numpy().astype(np.float64)


def assign_labels(net: Network, x, y, backend: str = "fixed", schedule: Schedule | None = None,
                  n_classes: int = 10) -> np.ndarray:
    """Label each neuron with the class whose digits make it fire most on average.

    Returns
    -------
    int array [n_exc]; -1 for a neuron that never fired
    """
    y = np.asarray(y)
    counts = responses(net, x, backend, schedule)
    if len(y) != len(counts):
        raise SimulationError(f"y: {len(y)} labels for {len(counts)} images")
    mean = np.stack([counts[y == c].mean(0) if np.any(y == c) else np.zeros(counts.shape[1])
                     for c in range(n_classes)])
    return np.where(mean.max(0) > 0, mean.argmax(0), -1)


def predict(counts: np.ndarray, labels: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """Class with the highest mean spike count over its labelled neurons, per sample."""
    score = np.full((len(counts), n_classes), -1.0)
    for c in range(n_classes):
        if np.any(labels == c):
            score[:, c] = counts[:, labels == c].mean(1)
    return score.argmax(1)


def evaluate(net: Network, labels: np.ndarray, x, y, backend: str = "fixed",
             schedule: Schedule | None = None) -> float:
    """Accuracy (0..1) on ``(x, y)`` of the neurons' labels."""
    counts = responses(net, x, backend, schedule, seed=2)
    return float(np.mean(predict(counts, labels) == np.asarray(y)))
