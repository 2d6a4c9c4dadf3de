"""Simulator speed against the peers, on workloads as their users write them.

Each workload is built in the peer with the peer's defaults (biases on, default reset),
exported by the peer to NIR and imported with ``snnkit.from_nir``; its spikes are checked
identical to the peer's own run (every population, every step) before anything is timed:

- ``ff``: snntorch ``Linear(784, 1000) -> Leaky -> Linear(1000, 10) -> Leaky``;
- ``ff_norse``: the same in norse (``LIFBoxCell``), exported by ``norse.to_nir``. norse's
  update ``v + dt/tau * (v_leak - v + i)`` is another float formula than snnkit's (and
  snntorch's) ``beta * v + i``, equal in real arithmetic only, so a membrane within an ulp of
  the threshold may flip: at most 1e-5 of the neuron-steps may differ (8 of 6.5 M here);
- ``rleaky``: snntorch ``Linear(784, 1000) -> RLeaky`` (all-to-all recurrent weights)
  ``-> Linear(1000, 10) -> Leaky``;
- ``diehl_cook``: a Diehl & Cook network: 784 inputs -> 400 excitatory LIF neurons with
  adaptive thresholds, STDP on the input weights, and lateral inhibition through 400
  inhibitory LIF partners. The peer is the same network written with snntorch neurons plus the
  STDP update in torch, as a user would (snntorch has no STDP); snnkit builds it with its own
  API, since NIR carries neither STDP nor adaptive thresholds.

Weights are ``torch.nn.Linear``'s default initialisation times a factor (``GAIN``) so that the
layers are about as active as in a trained network (5-20% of the neurons firing per step;
with the initialisation as is, 1% and 0%), rounded to multiples of 2^-12 (``GRID``): every
float32 sum of them is then exact in any order, so the spikes can be compared bit for bit.
(Unrounded, a membrane within an ulp of the threshold flips on summation order alone: 21 of
6.4 M neuron-steps of ``ff``, from the order in which torch's ``addmm`` adds the bias; the
same run by a reordered ``x @ W.T + b`` in torch flips the same 21.) Inputs are Bernoulli
spikes. snntorch's per-neuron
``beta`` and ``threshold`` are tensors: its export of scalar ones fails NIR's type inference
(jeshraghian/snntorch#410).

Contenders run in one process in interleaved rounds (``--runs``, default 3, consecutive runs
each per round, timed together, after a warm-up: a loop over batches runs them back to back;
``--runs 1`` times a single run right after another contender's, which on this VM pays for
waking the vCPU that slept through a single-threaded peer's run), 2 torch threads by
default, forward pass only (no gradients). The snnkit rows run a
``snnkit.Simulator`` built once beforehand (quantising and laying out the weights once, as
the peers build their modules once); the fixed rows simulate the network quantised once
(``snnkit.quantize``, its automatic format). "torch path" rows are snnkit with its CPU kernel
off (``SNNKIT_KERNELS=0``); the fixed-point kernel is checked to give their integers exactly.

    .venv/bin/python benchmarks/sim_speed.py [--repeat 9] [--runs 3] [--workloads ff rleaky ...]
    .venv/bin/python benchmarks/sim_speed.py --threads 1 --cpu-time   # on a busy machine
    .venv/bin/python benchmarks/sim_speed.py --workloads ff --rate 0.3  # denser inputs
    .venv/bin/python benchmarks/sim_speed.py --workloads conv   # the convolutional workload

Convolutional workload (issue 17, ``--workloads conv``, not run by default: it needs sinabs):
benchmarks/conv_workload.py, built in snntorch and in sinabs, each imported through the peer's
own NIR export and checked spike for spike against the peer's run before timing.

A workload is a function returning a :class:`Workload`; add one to ``WORKLOADS``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

import snnkit

GAIN = {"ff": 3.0, "rleaky": 2.0}


@dataclass
class Workload:
    """A peer's model, its run, and the snnkit network imported from it."""

    name: str
    peer: str  # the peer's name, e.g. "snntorch"
    run_peer: Callable[[], dict[str, torch.Tensor]]  # {snnkit population: spikes [T, B, n]}
    net: snnkit.Network
    x: torch.Tensor  # bool [steps, batch, inputs]
    note: str = ""
    peer_weights: Callable[[], torch.Tensor] | None = None  # plastic weights after a run
    exact: bool = True  # False: the peer's update is another float formula (equal in reals)

    @property
    def steps(self) -> int:
        return self.x.shape[0]

    @property
    def batch(self) -> int:
        return self.x.shape[1]


def _import(graph, convention: str) -> snnkit.Network:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the import's notes: listed in net.nir_report
        return snnkit.from_nir(graph, dt=1e-4 if convention == "snntorch" else 1e-3,
                               convention=convention)


GRID = 2.0 ** -12  # weights and biases on this grid: float32 sums of them are exact


def _scaled(*layers, gain: float) -> None:
    """Default weights and biases times ``gain``, rounded to :data:`GRID`."""
    with torch.no_grad():
        for layer in layers:
            for p in (layer.weight, layer.bias):
                if p is not None:
                    p.copy_(torch.round(p * gain / GRID) * GRID)


def _input(steps, batch, n, rate, seed) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(steps, batch, n, generator=g) < rate


def _leaky(n, beta=0.9, **kw):
    import snntorch as snn

    return snn.Leaky(beta=torch.full((n,), beta), threshold=torch.ones(n), init_hidden=True,
                     **kw)


def _step_snntorch(model, names, x):
    """Step an ``init_hidden`` Sequential as its users do; the spikes of its neuron layers."""
    from snntorch import utils

    utils.reset(model)
    xf = x.float()
    out = {k: [] for k in names}
    with torch.no_grad():
        for t in range(x.shape[0]):
            h = xf[t]
            for layer in model:
                h = layer(h)
                h = h[0] if isinstance(h, tuple) else h
                if layer in names.values():
                    out[next(k for k, v in names.items() if v is layer)].append(h)
    return {k: torch.stack(v).bool() for k, v in out.items()}


def ff(n_in=784, n_hid=1000, n_out=10, steps=100, batch=64, rate=0.1, seed=0) -> Workload:
    """snntorch feed-forward: Linear -> Leaky -> Linear -> Leaky (biases, delayed reset)."""
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(seed)
    fc1, fc2 = torch.nn.Linear(n_in, n_hid), torch.nn.Linear(n_hid, n_out)
    _scaled(fc1, fc2, gain=GAIN["ff"])
    l1, l2 = _leaky(n_hid), _leaky(n_out, output=False)
    model = torch.nn.Sequential(fc1, l1, fc2, l2)
    net = _import(export_to_nir(model, torch.zeros(n_in)), "snntorch")
    hid, out = (p.name for p in net.neuron_populations)
    x = _input(steps, batch, n_in, rate, seed)
    return Workload("ff", "snntorch", lambda: _step_snntorch(model, {hid: l1, out: l2}, x),
                    net, x, f"{n_in}-{n_hid}-{n_out} snn.Leaky, delayed reset, biases")


def ff_norse(n_in=784, n_hid=1000, n_out=10, steps=100, batch=64, rate=0.1,
             seed=0) -> Workload:
    """norse feed-forward: Linear -> LIFBoxCell -> Linear -> LIFBoxCell (biases)."""
    import norse.torch as norse

    torch.manual_seed(seed)
    fc1, fc2 = torch.nn.Linear(n_in, n_hid), torch.nn.Linear(n_hid, n_out)
    _scaled(fc1, fc2, gain=GAIN["ff"] / (1e-3 * 100.0))  # norse's input gain is dt/tau
    cells = [norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.full((n,), 100.0),
                                                     v_th=torch.ones(n), v_leak=torch.zeros(n)))
             for n in (n_hid, n_out)]
    model = norse.SequentialState(fc1, cells[0], fc2, cells[1])
    net = _import(norse.to_nir(model, torch.zeros(1, n_in), dt=1e-3), "norse")
    names = [p.name for p in net.neuron_populations]
    x = _input(steps, batch, n_in, rate, seed)

    def run():
        xf, out, states = x.float(), {k: [] for k in names}, [None, None]
        with torch.no_grad():
            for t in range(steps):
                h = xf[t]
                for k, (fc, cell) in enumerate(((fc1, cells[0]), (fc2, cells[1]))):
                    h, states[k] = cell(fc(h), states[k])
                    out[names[k]].append(h)
        return {k: torch.stack(v).bool() for k, v in out.items()}

    return Workload("ff_norse", "norse", run, net, x,
                    f"{n_in}-{n_hid}-{n_out} LIFBoxCell, biases", exact=False)


def rleaky(n_in=784, n_hid=1000, n_out=10, steps=100, batch=64, rate=0.1,
           seed=0) -> Workload:
    """snntorch recurrent: Linear -> RLeaky (all-to-all) -> Linear -> Leaky."""
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(seed)
    fc1, fc2 = torch.nn.Linear(n_in, n_hid), torch.nn.Linear(n_hid, n_out)
    rl = snn.RLeaky(beta=torch.full((n_hid,), 0.9), threshold=torch.ones(n_hid),
                    linear_features=n_hid, init_hidden=True)
    _scaled(fc1, fc2, rl.recurrent, gain=GAIN["rleaky"])
    l2 = _leaky(n_out)
    model = torch.nn.Sequential(fc1, rl, fc2, l2)
    net = _import(export_to_nir(model, torch.zeros(n_in)), "snntorch")
    hid, out = (p.name for p in net.neuron_populations)
    x = _input(steps, batch, n_in, rate, seed)
    return Workload("rleaky", "snntorch", lambda: _step_snntorch(model, {hid: rl, out: l2}, x),
                    net, x, f"{n_in}-{n_hid}(all-to-all recurrent)-{n_out} snn.RLeaky, delayed "
                            f"reset, biases")


def diehl_cook(n_in=784, n_exc=400, steps=500, batch=1, rate=0.05, seed=0) -> Workload:
    """Diehl & Cook: input -> excitatory (adaptive threshold, STDP) <-> inhibitory."""
    import snntorch as snn

    beta_e, beta_i, thr, thr_i, theta_plus, w_ei, w_ie = 0.95, 0.9, 2.0, 0.5, 0.05, 1.0, 0.5
    stdp = snnkit.STDP(a_plus=0.01, a_minus=0.0105, pre_decay=0.95, post_decay=0.95,
                       rule="all_pairs", bounds="hard", w_min=0.0, w_max=1.0)
    g = torch.Generator().manual_seed(seed)
    w0 = torch.rand(n_exc, n_in, generator=g) * 0.2
    eye = torch.eye(n_exc, dtype=torch.bool)
    x = _input(steps, batch, n_in, rate, seed)

    net = snnkit.Network(dt=1e-3, name="diehl-cook")
    net.add_input("in", n_in)
    net.add_population("exc", n_exc, snnkit.LIF(beta=beta_e, threshold=thr, reset="value",
                                                v_reset=0.0, adapt_plus=theta_plus,
                                                adapt_decay=1.0))
    net.add_population("inh", n_exc, snnkit.LIF(beta=beta_i, threshold=thr_i, reset="delayed"))
    net.connect("in", "exc", w0.double().numpy(), stdp=stdp)
    net.connect("exc", "inh", w_ei * eye.double().numpy(), mask=eye.numpy())
    net.connect("inh", "exc", -w_ie * (~eye).double().numpy(), mask=(~eye).numpy(), delay=1)

    final = {}

    def run():
        """The peer, as a user writes it: snntorch neurons, STDP in torch (batch 1 learner
        per sample: weights [batch, exc, in])."""
        exc = snn.Leaky(beta=beta_e, threshold=thr, reset_mechanism="zero", reset_delay=False)
        inh = snn.Leaky(beta=beta_i, threshold=thr_i)  # snntorch's default: delayed subtract
        w = w0.expand(batch, -1, -1).clone()
        w_inh = -w_ie * (~eye).float()
        xf = x.float()
        theta = torch.zeros(batch, n_exc)
        x_pre, x_post = torch.zeros(batch, n_in), torch.zeros(batch, n_exc)
        s_inh = torch.zeros(batch, n_exc)
        mem_e, mem_i = exc.init_leaky(), inh.init_leaky()
        out_e, out_i = [], []
        with torch.no_grad():
            for t in range(steps):
                exc.threshold = thr + theta
                cur = torch.einsum("bs,bts->bt", xf[t], w) + s_inh @ w_inh.T
                s_exc, mem_e = exc(cur, mem_e)
                s_inh, mem_i = inh(s_exc * w_ei, mem_i)
                theta = theta * 1.0 + s_exc * theta_plus
                x_pre, x_post = x_pre * stdp.pre_decay, x_post * stdp.post_decay
                up, down = x_pre * stdp.a_plus, x_post * stdp.a_minus
                dw = s_exc[:, :, None] * up[:, None, :] - down[:, :, None] * xf[t][:, None, :]
                w = (w + dw).clamp(stdp.w_min, stdp.w_max)
                x_pre, x_post = x_pre + xf[t], x_post + s_exc
                out_e.append(s_exc)
                out_i.append(s_inh)
        final["w"] = w
        return {"exc": torch.stack(out_e).bool(), "inh": torch.stack(out_i).bool()}

    return Workload("diehl_cook", "snntorch + torch STDP", run, net, x,
                    f"{n_in}-{n_exc} exc (adaptive threshold, STDP) <-> {n_exc} inh, batch "
                    f"{batch}", lambda: final["w"])


WORKLOADS = {"ff": ff, "ff_norse": ff_norse, "rleaky": rleaky, "diehl_cook": diehl_cook}


# --------------------------------------------------------------------------- checks


def check_same_as_peer(w: Workload, sim: snnkit.Simulator | None = None) -> snnkit.Result:
    """snnkit's float run against the peer's: the same spikes (and learned weights); raises
    AssertionError naming the population and how many neuron-steps differ."""
    ref = w.run_peer()
    res = (sim or snnkit.Simulator(w.net, device="cpu")).run(w.x)
    res.flips = 0
    for name, want in ref.items():
        got = res.spikes[name]
        diff = int((got != want).sum())
        assert diff == 0 or not w.exact, \
            f"{w.name}: {diff} of {want.numel()} spikes of {name!r} differ"
        assert want.any(), f"{w.name}: {name!r} is silent; the check is void"
        res.flips += diff
    total = sum(v.numel() for v in ref.values())
    assert res.flips <= 1e-5 * total, f"{w.name}: {res.flips} of {total} spikes differ"
    if w.peer_weights is not None:
        (name, got), = res.weights.items()
        assert torch.equal(got, w.peer_weights()), f"{w.name}: learned weights differ"
    return res


def synaptic_events(net: snnkit.Network, res: snnkit.Result) -> int:
    """Spikes delivered: per projection, each source spike times the synapses it reaches."""
    total = 0
    for pr in net.projections:
        count = res.spikes[pr.source].sum((0, 1)).double().numpy()
        total += int(count @ pr.connections().sum(0))
    return total


# --------------------------------------------------------------------------- timing


def _cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def time_all(contenders, repeat, clock=time.perf_counter, runs=1):
    """Interleaved rounds: every contender ``runs`` times in a row per round; returns
    {name: [seconds per run, a round each]}.

    No pause between runs: snnkit's kernels run on torch's own OpenMP team, so no contender's
    threads wait for another's spinning workers; a pause would let the idle core sleep, and
    waking it cost this VM 2-5 ms after a 20 ms pause (the conv workload's 3.5 ms run took
    6-8 ms), a cost runs in a loop do not pay."""
    for f in contenders.values():  # warm-up (and the kernel's one-off build)
        f()
    ts = {k: [] for k in contenders}
    for _ in range(repeat):
        for k, f in contenders.items():
            t0 = clock()
            for _ in range(runs):
                f()
            ts[k].append((clock() - t0) / runs)
    return ts


def _snnkit(sim, x, kernel=True):
    def f():
        os.environ["SNNKIT_KERNELS"] = "1" if kernel else "0"
        try:
            return sim.run(x)
        finally:
            os.environ.pop("SNNKIT_KERNELS")

    return f


def bench(w: Workload, repeat: int, clock, torch_path: bool, runs: int = 1) -> dict:
    sim = snnkit.Simulator(w.net, device="cpu")
    res = check_same_as_peer(w, sim)
    qnet, _ = snnkit.quantize(w.net)
    fixed = snnkit.Simulator(qnet, "fixed", device="cpu")
    contenders = {w.peer: w.run_peer, "snnkit float": _snnkit(sim, w.x),
                  "snnkit fixed": _snnkit(fixed, w.x)}
    if torch_path:
        contenders["snnkit float, torch path"] = _snnkit(sim, w.x, kernel=False)
        contenders["snnkit fixed, torch path"] = _snnkit(fixed, w.x, kernel=False)
    fk, ft = _snnkit(fixed, w.x)(), _snnkit(fixed, w.x, kernel=False)()
    assert all(torch.equal(fk.spikes[k], ft.spikes[k]) for k in fk.spikes), \
        f"{w.name}: the fixed-point kernel differs from the torch path"
    assert all(torch.equal(fk.weights[k], ft.weights[k]) for k in fk.weights)
    ts = time_all(contenders, repeat, clock, runs)
    updates = w.steps * w.batch * w.net.n_neurons
    events = synaptic_events(w.net, res)
    # the quantised network is another network: its own spikes, its own synaptic events
    ev_fixed = synaptic_events(qnet, fk)
    rate = {p.name: float(res.spikes[p.name].float().mean()) for p in w.net.neuron_populations}
    return {"times": ts, "updates": updates, "events": events, "rates": rate,
            "flips": res.flips, "events_by": {"snnkit fixed": ev_fixed,
                                              "snnkit fixed, torch path": ev_fixed}}


def report(w: Workload, r: dict) -> None:
    med = {k: statistics.median(v) for k, v in r["times"].items()}
    best = {k: min(v) for k, v in r["times"].items()}
    peer = w.peer
    rates = ", ".join(f"{k} {v:.1%}" for k, v in r["rates"].items())
    same = ("spikes identical to the peer's run" if not r["flips"] else
            f"{r['flips']} neuron-steps differ from the peer's run (float formula)")
    print(f"\n{w.name}: {w.note}; T = {w.steps}, batch {w.batch}; spikes per neuron and step: "
          f"{rates}; {same}")
    print(f"{'contender':<28} {'median ms':>9} {'best ms':>8} {'x peer':>11} "
          f"{'neuron upd/s':>13} {'syn events/s':>13}")
    for k, t in med.items():
        ev = r["events_by"].get(k, r["events"])
        print(f"{k:<28} {t * 1e3:>9.1f} {best[k] * 1e3:>8.1f} "
              f"{med[peer] / t:>5.2f}/{best[peer] / best[k]:<5.2f} "
              f"{r['updates'] / t:>13.3g} {ev / t:>13.3g}")
    ev_q = r["events_by"]["snnkit fixed"]
    if ev_q != r["events"]:
        print(f"synaptic events per run: {r['events']:.4g} (the float network's), "
              f"{ev_q:.4g} (the quantised network's own spikes: the fixed rows' rate)")


# --------------------------------------------------------------------------- conv workload


def conv_main(args):
    """The convolutional workload (benchmarks/conv_workload.py) against snntorch and sinabs:
    each import checked spike for spike against its peer's run, then timed side by side."""
    from conv_workload import conv_sinabs, conv_snntorch

    torch.set_num_threads(args.threads)
    ws = [conv_snntorch(), conv_sinabs()]
    q, _ = snnkit.quantize(ws[0]["net"])
    contenders, checks = {}, {}
    for w in ws:
        contenders[f"{w['peer']} ({w['name']})"] = w["run_peer"]
        contenders[f"snnkit float ({w['name']})"] = _snnkit(
            snnkit.Simulator(w["net"], device="cpu"), w["x"])
        ref, got = w["run_peer"](), contenders[f"snnkit float ({w['name']})"]()
        checks[w["peer"]] = {k: int((got.spikes[k] != v).sum()) for k, v in ref.items()}
        assert all(r.float().mean() > 0 for r in ref.values()), "a silent layer: void check"
    contenders["snnkit fixed (conv)"] = _snnkit(snnkit.Simulator(q, "fixed", device="cpu"),
                                                ws[0]["x"])
    net, x = ws[0]["net"], ws[0]["x"]
    res = snnkit.simulate(net, x)
    spikes = {p.name: int(res.spikes[p.name].sum()) for p in net.populations}
    events = sum(spikes[pr.source] * (pr.conv.out_shape[0] * pr.conv.kernel[0] * pr.conv.kernel[1]
                                      / (pr.conv.stride[0] * pr.conv.stride[1]) if pr.conv else
                                      net.population(pr.target).size) for pr in net.projections)
    neurons = net.n_neurons
    steps, batch = x.shape[:2]
    ts = time_all(contenders, args.repeat, _cpu_seconds if args.cpu_time else time.perf_counter,
                  args.runs)
    times = {k: statistics.median(v) for k, v in ts.items()}
    st, sb = times["snntorch (conv)"], times["sinabs (conv_sinabs)"]
    print(f"conv workload: {steps} steps x batch {batch}, {ws[0]['note']}; {neurons} neurons "
          f"({', '.join(f'{p.name} {list(p.shape or [p.size])}' for p in net.neuron_populations)}"
          f"); {args.threads} threads, torch {torch.__version__}; {args.repeat} rounds of "
          f"{args.runs} runs; "
          f"{'process CPU time' if args.cpu_time else 'wall clock'}; load {os.getloadavg()[0]:.1f}")
    print(f"{'contender':<28} {'median ms':>9} {'best ms':>8} {'x snntorch':>10} "
          f"{'x sinabs':>9} {'neuron upd/s':>13} {'syn events/s':>13}")
    for k, t in times.items():
        print(f"{k:<28} {t * 1e3:>9.1f} {min(ts[k]) * 1e3:>8.1f} {st / t:>10.2f} "
              f"{sb / t:>9.2f} {steps * batch * neurons / t:>13.3g} {events / t:>13.3g}")
    print(f"spikes per population {spikes}; synaptic events {events:.4g} (spikes x fan-out); "
          f"spikes differing from the peer's run, per population: {checks}")
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3,
                    help="consecutive runs of a contender timed in each round (default 3, as a "
                         "loop over batches runs them; 1: a single run after another's)")
    ap.add_argument("--workloads", nargs="+", choices=[*WORKLOADS, "conv"],
                    default=list(WORKLOADS))
    ap.add_argument("--cpu-time", action="store_true",
                    help="time by the process's CPU time instead of the wall clock: with "
                         "--threads 1 this measures work, nearly unaffected by other jobs")
    ap.add_argument("--no-torch-path", action="store_true",
                    help="leave out the timing of snnkit's torch path (still checked)")
    ap.add_argument("--rate", type=float, default=None,
                    help="input spikes per source and step for ff, ff_norse and rleaky "
                         "(default 0.1; denser inputs sum on the AMX tiles where they pay)")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error(f"--runs must be at least 1, got {args.runs}")
    if "conv" in args.workloads:
        conv_main(args)
        args.workloads = [w for w in args.workloads if w != "conv"]
    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"{args.threads} threads, torch {torch.__version__}; {args.repeat} rounds of "
          f"{args.runs} runs; "
          f"{'process CPU time' if args.cpu_time else 'wall clock'}; ratios: of medians / "
          f"of best runs; rates from medians")
    for name in args.workloads:
        w = WORKLOADS[name](**({} if args.rate is None or name == "diehl_cook"
                               else {"rate": args.rate}))
        r = bench(w, args.repeat, _cpu_seconds if args.cpu_time else time.perf_counter,
                  not args.no_torch_path, args.runs)
        report(w, r)
    print(f"\nload average {load0:.2f} before, {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
