"""The convolutional workload of sim_speed.py (issue 17), built in snntorch and in sinabs.

2x34x34 event frames (Bernoulli ``rate``) -> Conv2d(2, 16, 5, stride 2) + LIF ->
Conv2d(16, 32, 3, stride 2) + LIF -> Flatten -> Linear(1568, 10) + LIF (beta 0.9, biases on,
as ``torch.nn`` makes them). Weights and biases are the default initialisation times a gain
(so that the layers are about as active as in a trained network), rounded to multiples of
2^-12: float32 sums of them are exact in any order, so the spikes compare bit for bit.

- snntorch: ``snn.Leaky`` (its ``beta`` and ``threshold`` as tensors of the layer's shape:
  with scalars ``export_to_nir`` fails NIR's type check), stepped as its users do, exported by
  ``export_to_nir`` (a batched sample, ``ignore_dims=[0]``) and imported with
  ``convention="snntorch"`` (its default reset, the default here: neurons with
  ``reset="delayed"``) or ``"nir"`` (``reset="zero"``);
- sinabs: ``LIFSqueeze`` (``norm_input=False``, ``SingleSpike``, its subtractive reset), all
  steps of a layer at once as sinabs runs, exported by ``sinabs.to_nir`` and imported with
  ``convention="sinabs"``.

Each function returns the fields of sim_speed's workload: ``name, peer, run_peer`` (the peer's
run: ``{snnkit population: bool spikes [T, B, n]}``), ``net`` (imported), ``x`` (bool
``[T, B, 2312]``) and ``note``.
"""

from __future__ import annotations

import math
import warnings

import torch

import snnkit

GRID = 2.0 ** -12  # weights and biases on this grid: float32 sums of them are exact
GAIN = (3.0, 3.0, 2.0)
BETA = 0.9
FRAME = (2, 34, 34)


def _layers(seed):
    torch.manual_seed(seed)
    layers = [torch.nn.Conv2d(2, 16, 5, stride=2), torch.nn.Conv2d(16, 32, 3, stride=2),
              torch.nn.Linear(32 * 7 * 7, 10)]
    with torch.no_grad():
        for layer, gain in zip(layers, GAIN):
            for p in (layer.weight, layer.bias):
                p.copy_(torch.round(p * gain / GRID) * GRID)
    return layers


def _frames(steps, batch, rate, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand((steps, batch) + FRAME, generator=g) < rate


def _import(graph, **kw) -> snnkit.Network:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the import's notes: listed in net.nir_report
        return snnkit.from_nir(graph, **kw)


def conv_snntorch(steps=100, batch=16, rate=0.05, seed=0, reset="subtract") -> dict:
    import snntorch as snn
    from snntorch import utils
    from snntorch.export_nir import export_to_nir

    c1, c2, fc = _layers(seed)
    leaky = [snn.Leaky(beta=torch.full(s, BETA), threshold=torch.ones(s), init_hidden=True,
                       reset_mechanism=reset) for s in ((16, 15, 15), (32, 7, 7), (10,))]
    model = torch.nn.Sequential(c1, leaky[0], c2, leaky[1], torch.nn.Flatten(), fc, leaky[2])
    graph = export_to_nir(model, torch.zeros((1,) + FRAME), ignore_dims=[0])
    net = _import(graph, dt=1e-4, convention="snntorch" if reset == "subtract" else "nir")
    names = [p.name for p in net.neuron_populations]
    x = _frames(steps, batch, rate, seed)

    def run():
        utils.reset(model)
        xf, out = x.float(), {k: [] for k in names}
        with torch.no_grad():
            for t in range(steps):
                h, k = xf[t], 0
                for layer in model:
                    h = layer(h)
                    if layer in leaky:
                        out[names[k]].append(h.reshape(batch, -1))
                        k += 1
        return {k: torch.stack(v).bool() for k, v in out.items()}

    return dict(name="conv", peer="snntorch", run_peer=run, net=net,
                x=x.reshape(steps, batch, -1),
                note=f"2x34x34 -> conv 16x15x15 -> conv 32x7x7 -> 10, snn.Leaky, reset {reset}, "
                     f"biases")


def conv_sinabs(steps=100, batch=16, rate=0.05, seed=0) -> dict:
    import sinabs
    import sinabs.layers as sl
    from sinabs.activation import SingleSpike

    c1, c2, fc = _layers(seed)
    lif = dict(tau_mem=-1 / math.log(BETA), norm_input=False, spike_fn=SingleSpike,
               batch_size=batch)
    neurons = [sl.LIFSqueeze(**lif) for _ in range(3)]
    model = torch.nn.Sequential(c1, neurons[0], c2, neurons[1], torch.nn.Flatten(), fc,
                                neurons[2])
    net = _import(sinabs.to_nir(model, torch.zeros((batch,) + FRAME)), dt=1e-3,
                  convention="sinabs")
    sinabs.reset_states(model)  # the export ran the model once
    names = [p.name for p in net.neuron_populations]
    x = _frames(steps, batch, rate, seed)
    xs = x.transpose(0, 1).reshape((batch * steps,) + FRAME).float()  # [batch * time, ...]

    def run():
        sinabs.reset_states(model)
        outs = []
        hooks = [m.register_forward_hook(lambda m, a, o: outs.append(o)) for m in neurons]
        with torch.no_grad():
            model(xs)
        for h in hooks:
            h.remove()
        return {k: o.reshape(batch, steps, -1).transpose(0, 1).bool()
                for k, o in zip(names, outs)}

    return dict(name="conv_sinabs", peer="sinabs", run_peer=run, net=net,
                x=x.reshape(steps, batch, -1),
                note="the same network in sinabs: LIFSqueeze, subtractive reset, biases")
