"""Float and fixed-point simulator speed against snntorch and norse on the same workload.

Workload (issue 3): 784 -> 1000 LIF -> 10 LIF, T = 100 steps, batch 64, Bernoulli(0.1) input
spikes, 2 torch threads, forward pass only, identical weights. All contenders run in this one
process, in interleaved rounds (one run of each per round, after a warm-up) so that load from
other jobs hits them alike; each is quoted as its median (and best) time and as a ratio to
the peers. "torch path" rows are snnkit with its CPU kernel switched off (SNNKIT_KERNELS=0).
The snnkit rows run a ``snnkit.Simulator`` built once beforehand (quantising, encoding and
laying out the weights is a one-off preparation, like building the peers' modules, which hold
their weights as tensors); the "simulate()" rows pay that preparation on every call.

    .venv/bin/python benchmarks/sim_speed.py [--repeat 15] [--device cpu|cuda] [--breakdown]
    .venv/bin/python benchmarks/sim_speed.py --threads 1 --cpu-time   # on a busy machine
    .venv/bin/python benchmarks/sim_speed.py --workload conv   # the convolutional workload

Convolutional workload (issue 17, ``--workload conv``): benchmarks/conv_workload.py, built
in snntorch and in sinabs, each imported through the peer's own NIR export and checked spike
for spike against the peer's run before timing.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time

import torch

import snnkit

T, B, N_IN, N_HID, N_OUT, P, BETA = 100, 64, 784, 1000, 10, 0.1, 0.9


def workload(seed=0):
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(N_HID, N_IN, generator=g) * 0.05
    w2 = torch.randn(N_OUT, N_HID, generator=g) * 0.05
    x = torch.rand(T, B, N_IN, generator=g) < P
    return w1, w2, x


def snnkit_net(w1, w2):
    net = snnkit.Network()
    net.add_input("in", N_IN)
    net.add_population("hid", N_HID, snnkit.LIF(beta=BETA, threshold=1.0))
    net.add_population("out", N_OUT, snnkit.LIF(beta=BETA, threshold=1.0))
    net.connect("in", "hid", w1.double().numpy())
    net.connect("hid", "out", w2.double().numpy())
    return net


def _peer(cell1, cell2, init, w1, w2, x, device):
    """Linear -> cell -> Linear -> cell, one step at a time, as users of snntorch and norse
    write it; both libraries' cells map ``(input, state)`` to ``(spikes, state)``."""
    fc1, fc2 = torch.nn.Linear(N_IN, N_HID, bias=False), torch.nn.Linear(N_HID, N_OUT, bias=False)
    fc1.weight.data, fc2.weight.data = w1.clone(), w2.clone()
    fc1, fc2, cell1, cell2 = (m.to(device) for m in (fc1, fc2, cell1, cell2))
    xf = x.float().to(device)

    def f():
        with torch.no_grad():
            s1, s2 = init()
            out = []
            for t in range(T):
                z1, s1 = cell1(fc1(xf[t]), s1)
                z2, s2 = cell2(fc2(z1), s2)
                out.append(z2)
            return torch.stack(out)

    return f


def run_snntorch(w1, w2, x, device):
    import snntorch as snn

    l1, l2 = snn.Leaky(beta=BETA), snn.Leaky(beta=BETA)
    return _peer(l1, l2, lambda: (l1.init_leaky(), l2.init_leaky()), w1, w2, x, device)


def run_norse(w1, w2, x, device):
    from norse.torch import LIFBoxCell, LIFBoxParameters

    p = LIFBoxParameters(tau_mem_inv=torch.tensor((1 - BETA) / 1e-3), v_th=torch.tensor(1.0))
    return _peer(LIFBoxCell(p), LIFBoxCell(p), lambda: (None, None), w1, w2, x, device)


def run_snnkit(net, x, backend, device, precision="fp32", kernel=True, prepared=True):
    """snnkit's run; ``prepared``: a Simulator built once (parameters encoded and laid out
    beforehand, as the peers' modules hold theirs), else a whole ``snnkit.simulate`` call."""
    xs = x.to(device)
    sim = snnkit.Simulator(net, backend, device=device, precision=precision)

    def f():
        os.environ["SNNKIT_KERNELS"] = "1" if kernel else "0"
        try:
            if prepared:
                return sim.run(xs, T)
            return snnkit.simulate(net, xs, T, backend=backend, device=device,
                                   precision=precision)
        finally:
            os.environ.pop("SNNKIT_KERNELS")

    return f


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def time_all(contenders, repeat, clock=time.perf_counter):
    """Interleaved rounds: every contender once per round; returns {name: [seconds]}."""
    for f in contenders.values():  # warm-up (and the kernel's one-off build)
        f()
    ts = {k: [] for k in contenders}
    for _ in range(repeat):
        for k, f in contenders.items():
            _sync()
            t0 = clock()
            f()
            _sync()
            ts[k].append(clock() - t0)
    return ts


def breakdown(net, qnet, x, repeat):
    """Where an snnkit CPU run goes: plan (parameters, integer encoding, kernel weight
    layout), the kernel on each layer (fixed point: on AMX where the CPU has it), the whole
    simulate() call; best of ``repeat``."""
    from snnkit import kernels
    from snnkit import plan as plan_mod

    lib = kernels.load()
    if lib is None:
        print("breakdown: no CPU kernel")
        return

    def best(f):
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t0)
        return min(ts) * 1e3

    for backend, n in (("float", net), ("fixed", qnet)):
        def plan(n=n, backend=backend):
            p = plan_mod.fixed_plan(n, n.quantization, "cpu", None) if backend == "fixed" else \
                plan_mod.float_plan(n, "cpu", None)
            for pr in p.projs:
                pr.kernel_weights()
            return p

        p = plan()
        fx = (p.ar.D, p.ar.lo, p.ar.hi) if p.fixed else None
        wv = [pr.amx_weights() if p.fixed and lib.amx else None for pr in p.projs]
        hid, _ = kernels.run_layer(lib, x.reshape(T * B, N_IN), p.projs[0].kernel_weights(),
                                   None, p.neurons["hid"], p.v_init["hid"], T, B, (), fx, wv[0])
        t = {"plan": best(plan),
             "layer 1": best(lambda p=p, fx=fx, wv=wv: kernels.run_layer(
                 lib, x.reshape(T * B, N_IN), p.projs[0].kernel_weights(), None,
                 p.neurons["hid"], p.v_init["hid"], T, B, (), fx, wv[0])),
             "layer 1 neurons only": best(lambda p=p, fx=fx: kernels.run_layer(
                 lib, None, None, None, p.neurons["hid"], p.v_init["hid"], T, B, (), fx)),
             "layer 2": best(lambda p=p, fx=fx, hid=hid, wv=wv: kernels.run_layer(
                 lib, hid.reshape(T * B, N_HID), p.projs[1].kernel_weights(), None,
                 p.neurons["out"], p.v_init["out"], T, B, (), fx, wv[1])),
             "whole simulate()": best(lambda n=n, backend=backend: snnkit.simulate(
                 n, x, T, backend=backend, device="cpu"))}
        print(f"breakdown {backend}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in t.items()))


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
        contenders[f"snnkit float ({w['name']})"] = run_snnkit(w["net"], w["x"], "float",
                                                               args.device)
        ref, got = w["run_peer"](), contenders[f"snnkit float ({w['name']})"]()
        checks[w["peer"]] = {k: int((got.spikes[k] != v).sum()) for k, v in ref.items()}
        assert all(r.float().mean() > 0 for r in ref.values()), "a silent layer: void check"
    contenders["snnkit fixed (conv)"] = run_snnkit(q, ws[0]["x"], "fixed", args.device)
    net, x = ws[0]["net"], ws[0]["x"]
    res = snnkit.simulate(net, x)
    spikes = {p.name: int(res.spikes[p.name].sum()) for p in net.populations}
    events = sum(spikes[pr.source] * (pr.conv.out_shape[0] * pr.conv.kernel[0] * pr.conv.kernel[1]
                                      / (pr.conv.stride[0] * pr.conv.stride[1]) if pr.conv else
                                      net.population(pr.target).size) for pr in net.projections)
    neurons = net.n_neurons
    steps, batch = x.shape[:2]
    ts = time_all(contenders, args.repeat, _cpu_seconds if args.cpu_time else time.perf_counter)
    times = {k: statistics.median(v) for k, v in ts.items()}
    st, sb = times["snntorch (conv)"], times["sinabs (conv_sinabs)"]
    print(f"conv workload: {steps} steps x batch {batch}, {ws[0]['note']}; {neurons} neurons "
          f"({', '.join(f'{p.name} {list(p.shape or [p.size])}' for p in net.neuron_populations)}"
          f"); {args.threads} threads, torch {torch.__version__}; {args.repeat} rounds; "
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
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time by the process's CPU time instead of the wall clock: with "
                         "--threads 1 this measures work, nearly unaffected by other jobs "
                         "taking turns on the cores")
    ap.add_argument("--breakdown", action="store_true",
                    help="also time the parts of an snnkit CPU run (best of --repeat)")
    ap.add_argument("--workload", choices=("ff", "conv"), default="ff",
                    help="ff: 784-1000-10 feed-forward (default); conv: the convolutional "
                         "workload against snntorch and sinabs")
    args = ap.parse_args()
    if args.workload == "conv":
        return conv_main(args)
    torch.set_num_threads(args.threads)
    w1, w2, x = workload()
    net = snnkit_net(w1, w2)
    qnet, _ = snnkit.quantize(net)
    cpu = args.device == "cpu"
    contenders = {
        "snntorch (snn.Leaky)": run_snntorch(w1, w2, x, args.device),
        "norse (LIFBoxCell)": run_norse(w1, w2, x, args.device),
        "snnkit float": run_snnkit(net, x, "float", args.device),
        "snnkit fixed": run_snnkit(qnet, x, "fixed", args.device),
        "snnkit float bf16": run_snnkit(net, x, "float", args.device, "bf16"),
        "snnkit float, simulate()": run_snnkit(net, x, "float", args.device, prepared=False),
        "snnkit fixed, simulate()": run_snnkit(qnet, x, "fixed", args.device, prepared=False),
    }
    if cpu:
        contenders["snnkit float, torch path"] = run_snnkit(net, x, "float", "cpu", kernel=False)
        contenders["snnkit fixed, torch path"] = run_snnkit(qnet, x, "fixed", "cpu", kernel=False)
    load0 = os.getloadavg()[0]
    ts = time_all(contenders, args.repeat, _cpu_seconds if args.cpu_time else time.perf_counter)
    load1 = os.getloadavg()[0]
    times = {k: statistics.median(v) for k, v in ts.items()}
    best = {k: min(v) for k, v in ts.items()}
    res = contenders["snnkit float"]()
    hid_spikes = int(res.spikes["hid"].sum())
    in_spikes = int(x.sum())
    events = in_spikes * N_HID + hid_spikes * N_OUT
    st, no = times["snntorch (snn.Leaky)"], times["norse (LIFBoxCell)"]
    bst, bno = best["snntorch (snn.Leaky)"], best["norse (LIFBoxCell)"]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"{args.threads} threads, device {args.device}, torch {torch.__version__}; "
          f"load average {load0:.2f} before, {load1:.2f} after; {args.repeat} rounds; "
          f"{'process CPU time' if args.cpu_time else 'wall clock'}")
    print(f"{'contender':<28} {'median ms':>9} {'best ms':>8} {'x snntorch':>11} "
          f"{'x norse':>11} {'neuron upd/s':>13} {'syn events/s':>13}")
    for k, t in times.items():
        print(f"{k:<28} {t * 1e3:>9.1f} {best[k] * 1e3:>8.1f} "
              f"{st / t:>5.2f}/{bst / best[k]:<5.2f} {no / t:>5.2f}/{bno / best[k]:<5.2f} "
              f"{T * B * (N_HID + N_OUT) / t:>13.3g} {events / t:>13.3g}")
    print(f"(x peer: ratio of medians / ratio of best runs; rates from medians; hidden spikes "
          f"{hid_spikes}, input spikes {in_spikes}, synaptic events {events})")
    if cpu:  # the kernel against the torch path it replaces
        ref = contenders["snnkit float, torch path"]()
        flips = sum(int((res.spikes[k] != ref.spikes[k]).sum()) for k in res.spikes)
        fx, fr = contenders["snnkit fixed"](), contenders["snnkit fixed, torch path"]()
        same = all(torch.equal(fx.spikes[k], fr.spikes[k]) for k in fx.spikes)
        slots = sum(v.numel() for v in res.spikes.values() if v is not res.spikes.get("in"))
        print(f"float kernel vs torch path: {flips} of {slots} neuron-steps differ (fp32 "
              f"summation order); fixed kernel vs torch path: "
              f"{'identical' if same else 'DIFFERENT'}")
        if args.breakdown:
            breakdown(net, qnet, x, args.repeat)
    return times


if __name__ == "__main__":
    main()
