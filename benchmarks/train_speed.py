"""Training speed and memory: one forward + backward pass of surrogate-gradient BPTT, snnkit
against snntorch on the same network, batch and surrogate.

Workload (issue 16): 784 -> 1000 LIF -> 10 LIF (beta 0.9, threshold 1, no bias), T = 25
steps, batch 64, Bernoulli(0.1) input spikes, identical weights, the fast sigmoid surrogate
with slope 25 (snntorch's ``surrogate.fast_sigmoid(slope=25)`` is the same function),
cross-entropy of the output spike counts, gradients set to None before each pass. Timed:
forward, loss and backward (no optimizer step). The neurons differ: snnkit's reset by
subtraction subtracts the threshold at once, snntorch's default ``Leaky`` one step late
(snnkit's ``reset="delayed"``), so the spikes are not the same.

``--workload users`` (:func:`make_users`): the network as users write it, the same neurons on
both sides. snntorch's default ``Leaky`` (beta 0.9, threshold 1: the delayed reset) behind
``nn.Linear`` layers with biases, same sizes, T, batch, input and surrogate; snnkit's network
is imported from snntorch's own NIR export (``export_to_nir``, written to a file, read by
``from_nir(path, convention="snntorch")``), weights and biases trainable on both sides
("snnkit fixed": the automatic 8-bit format of :func:`snnkit.quantize.auto_quantization`). The
forward spikes of both layers are compared with snntorch's and the count of differing ones
printed (float32 rounding of a membrane within an ulp of the threshold could differ).

``--workload rleaky`` (:func:`make_rleaky`): the users' workload with snntorch's ``RLeaky``
(all-to-all recurrent ``nn.Linear(1000, 1000)`` with bias, the spikes of one step feeding the
next) in place of the hidden ``Leaky``: weights, biases and the recurrent weights trained on
both sides; snnkit's network from snntorch's NIR export as above (the recurrent layer comes
in as a self projection with delay 1). "snnkit float torch path" is the step loop under
autograd (``SNNKIT_KERNELS=0``; what such networks trained on before the fused kernel ran
self projections).

Time: all contenders in this one process, in interleaved rounds after a warm-up, quoted as
median and best and as ratios to snntorch; ``--cpu-time`` counts process CPU time instead of
wall-clock (robust on a shared machine). A round times ``--passes`` (default 3) consecutive
passes of each contender, the time per pass their mean: a training loop runs its passes back
to back. ``--passes 1`` times a single pass right after another contender's: on this VM the
second vCPU sleeps through snntorch's mostly single-threaded pass, and waking it costs
snnkit's first parallel pass ~1.3 ms (the same after 50 ms of sleep: ~2 ms), a cost a
training loop does not pay.

Memory: each contender in a fresh process whose allocations of 64 KB and more are mapped and
unmapped on free (glibc's ``MALLOC_MMAP_THRESHOLD_`` fixed at 64 KB, so the resident size
follows the live tensors instead of malloc's caching): after a warm-up pass, freed memory is
handed back (the gradients set to None, ``malloc_trim``; snnkit's scratch pool emptied), the
peak-RSS counter is reset
(``/proc/self/clear_refs``), one pass runs, and the peak RSS above the RSS before the pass is
the pass's peak memory (the model and the input data are in the baseline). On CUDA:
``torch.cuda.max_memory_allocated`` above the allocation before the pass.

    .venv/bin/python benchmarks/train_speed.py [--repeat 9] [--threads 2] [--cpu-time]
        [--passes 3] [--device cpu|cuda] [--workload default|users|rleaky] [--json out.json]
        [--wgrad-densities 0.05,0.1,0.2,0.3]

``--wgrad-densities``: the input projection's weight gradient alone, the event pass against
the AMX int8 tiles (:func:`wgrad_crossover`), at each input spike density.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings

import torch

T, B, N_IN, N_HID, N_OUT, P, BETA, SLOPE = 25, 64, 784, 1000, 10, 0.1, 0.9, 25.0
CONTENDERS = ("snntorch", "snnkit float", "snnkit float lean", "snnkit fixed",
              "snnkit float torch path")
USERS_CONTENDERS = ("snntorch", "snnkit float", "snnkit float lean", "snnkit fixed",
                    "snnkit float torch path")


def workload(seed=0):
    global T
    T = int(os.environ.get("TRAIN_SPEED_STEPS", T))
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(N_HID, N_IN, generator=g) * 0.1
    w2 = torch.randn(N_OUT, N_HID, generator=g) * 0.3
    x = torch.rand(T, B, N_IN, generator=g) < P
    y = torch.randint(0, N_OUT, (B,), generator=g)
    return w1, w2, x, y


def make(name: str, device: str):
    """A function running one forward + backward pass of contender ``name``."""
    if os.environ.get("TRAIN_SPEED_WORKLOAD") == "users":
        return make_users(name, device)
    if os.environ.get("TRAIN_SPEED_WORKLOAD") == "rleaky":
        return make_users(name, device, recurrent=True)
    w1, w2, x, y = workload()
    if name == "snntorch":
        import snntorch as snn
        from snntorch import surrogate

        sg = surrogate.fast_sigmoid(slope=SLOPE)
        fc1 = torch.nn.Linear(N_IN, N_HID, bias=False).to(device)
        fc2 = torch.nn.Linear(N_HID, N_OUT, bias=False).to(device)
        fc1.weight.data, fc2.weight.data = w1.to(device), w2.to(device)
        l1 = snn.Leaky(beta=BETA, spike_grad=sg).to(device)
        l2 = snn.Leaky(beta=BETA, spike_grad=sg).to(device)
        xf, yd = x.float().to(device), y.to(device)

        def step():
            fc1.zero_grad(set_to_none=True)
            fc2.zero_grad(set_to_none=True)
            m1, m2 = l1.init_leaky(), l2.init_leaky()
            counts = 0
            for t in range(T):
                s1, m1 = l1(fc1(xf[t]), m1)
                s2, m2 = l2(fc2(s1), m2)
                counts = counts + s2
            torch.nn.functional.cross_entropy(counts, yd).backward()

        return _dropping(step, fc1, fc2)
    import snnkit
    from snnkit.training import SNN

    if name.endswith("torch path"):
        os.environ["SNNKIT_KERNELS"] = "0"
    net = snnkit.Network()
    net.add_input("in", N_IN)
    net.add_population("hid", N_HID, snnkit.LIF(beta=BETA, threshold=1.0))
    net.add_population("out", N_OUT, snnkit.LIF(beta=BETA, threshold=1.0))
    net.connect("in", "hid", w1.double().numpy())
    net.connect("hid", "out", w2.double().numpy())
    kw = {"memory": "lean"} if "lean" in name else {}
    if "fixed" in name:
        kw.update(arithmetic="fixed", quantization=snnkit.Quantization(frac_bits=5))
    m = SNN(net, "fast_sigmoid", slope=SLOPE, trainable=("weight",), device=device, **kw)
    xd, yd = x.to(device), y.to(device)

    def step():
        m.zero_grad(set_to_none=True)
        counts = m(xd).spikes["out"].sum(0)
        torch.nn.functional.cross_entropy(counts, yd).backward()

    return _dropping(step, m)


def _dropping(step, *modules):
    """``step`` with ``step.drop_grads()``: the gradients of ``modules`` set to None (before
    the memory baseline: the gradients a pass makes count in its peak, for every contender)."""
    step.drop_grads = lambda: [x.zero_grad(set_to_none=True) for x in modules]
    return step


REC_SD = 0.02  # the recurrent weights' spread: a few % of the hidden neurons fire per step


def users_model(recurrent: bool = False):
    """snntorch's default Leaky behind nn.Linear (with biases), as users write it: ``(fc1,
    lif1, fc2, lif2)`` with the workload's weights and seeded biases; ``recurrent``: lif1 an
    ``RLeaky`` (all-to-all, its own ``nn.Linear`` with bias, seeded weights)."""
    import snntorch as snn
    from snntorch import surrogate

    w1, w2, _, _ = workload()
    g = torch.Generator().manual_seed(1)
    fc1, fc2 = torch.nn.Linear(N_IN, N_HID), torch.nn.Linear(N_HID, N_OUT)
    with torch.no_grad():
        fc1.weight.copy_(w1)
        fc2.weight.copy_(w2)
        fc1.bias.copy_(torch.randn(N_HID, generator=g) * 0.05)
        fc2.bias.copy_(torch.randn(N_OUT, generator=g) * 0.05)
    sg = surrogate.fast_sigmoid(slope=SLOPE)
    if not recurrent:
        return fc1, snn.Leaky(beta=BETA, spike_grad=sg), fc2, snn.Leaky(beta=BETA, spike_grad=sg)
    rl = snn.RLeaky(beta=BETA, linear_features=N_HID, spike_grad=sg)
    with torch.no_grad():
        rl.recurrent.weight.copy_(torch.randn(N_HID, N_HID, generator=g) * REC_SD)
        rl.recurrent.bias.copy_(torch.randn(N_HID, generator=g) * 0.05)
    return fc1, rl, fc2, snn.Leaky(beta=BETA, spike_grad=sg)


def users_network(fc1, fc2, path, recurrent=None):
    """snnkit's side of the users' workload: snntorch's NIR export of the same layers (the
    exporter needs per-neuron beta and threshold tensors), written to ``path`` and read back
    as users do; the neuron layers are populations "1" and "3". ``recurrent``: the RLeaky
    whose recurrent weights the hidden layer gets."""
    import nir
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    import snnkit

    def lif(n):
        return snn.Leaky(beta=torch.full((n,), BETA), threshold=torch.ones(n), init_hidden=True)

    hid = lif(N_HID)
    if recurrent is not None:
        hid = snn.RLeaky(beta=torch.full((N_HID,), BETA), threshold=torch.ones(N_HID),
                         linear_features=N_HID, init_hidden=True)
        hid.recurrent.load_state_dict(recurrent.recurrent.state_dict())
    graph = export_to_nir(torch.nn.Sequential(fc1, hid, fc2, lif(N_OUT)), torch.zeros(N_IN))
    nir.write(path, graph)
    with warnings.catch_warnings():  # its notes: the delayed reset, the biases (both exact)
        warnings.simplefilter("ignore", snnkit.NIRApproximationWarning)
        return snnkit.from_nir(path, convention="snntorch")


def snntorch_pass(fc1, lif1, fc2, lif2, x):
    """Spikes of both layers ``[T, B, n]`` (the loop of snntorch's tutorials; an RLeaky
    ``lif1`` takes its last spikes too)."""
    import snntorch as snn

    rec = isinstance(lif1, snn.RLeaky)
    (s1, m1), m2 = lif1.init_rleaky() if rec else (None, lif1.init_leaky()), lif2.init_leaky()
    s1s, s2s = [], []
    for t in range(x.shape[0]):
        s1, m1 = lif1(fc1(x[t]), s1, m1) if rec else lif1(fc1(x[t]), m1)
        s2, m2 = lif2(fc2(s1), m2)
        s1s.append(s1)
        s2s.append(s2)
    return torch.stack(s1s), torch.stack(s2s)


def make_users(name: str, device: str, recurrent: bool = False):
    """``make`` for ``--workload users`` (``rleaky``: ``recurrent``): weights and biases
    trained on both sides."""
    _, _, x, y = workload()
    fc1, lif1, fc2, lif2 = users_model(recurrent)
    xd, yd = x.to(device), y.to(device)
    if name == "snntorch":
        fc1, lif1, fc2, lif2 = (m.to(device) for m in (fc1, lif1, fc2, lif2))
        xf = xd.float()

        def step():
            for m in (fc1, lif1, fc2):
                m.zero_grad(set_to_none=True)
            counts = snntorch_pass(fc1, lif1, fc2, lif2, xf)[1].sum(0)
            torch.nn.functional.cross_entropy(counts, yd).backward()

        return _dropping(step, fc1, lif1, fc2)
    import tempfile

    from snnkit.training import SNN

    with tempfile.TemporaryDirectory() as d:
        net = users_network(fc1, fc2, os.path.join(d, "users.nir"),
                            lif1 if recurrent else None)
    kw = {"memory": "lean"} if "lean" in name else {}
    if "fixed" in name:  # the automatic format (8-bit weights)
        kw["arithmetic"] = "fixed"
    m = SNN(net, "fast_sigmoid", slope=SLOPE, trainable=("weight", "bias"), device=device, **kw)

    def step():
        m.zero_grad(set_to_none=True)
        counts = m(xd).spikes["3"].sum(0)
        torch.nn.functional.cross_entropy(counts, yd).backward()

    return _dropping(step, m)


def users_spikes_differ(recurrent: bool = False) -> dict[str, tuple[int, int]]:
    """Per layer: (spikes that differ between snntorch and snnkit's trained forward pass, all
    of snntorch's spikes) on the users' workload (``recurrent``: the rleaky one)."""
    import tempfile

    from snnkit.training import SNN

    _, _, x, _ = workload()
    fc1, lif1, fc2, lif2 = users_model(recurrent)
    with torch.no_grad():
        ref = snntorch_pass(fc1, lif1, fc2, lif2, x.float())
    with tempfile.TemporaryDirectory() as d:
        net = users_network(fc1, fc2, os.path.join(d, "users.nir"), lif1 if recurrent else None)
    names = [p.name for p in net.neuron_populations]  # "1" ("1.lif": RLeaky), "3"
    assert [p.neuron.reset for p in net.neuron_populations] == ["delayed", "delayed"]
    assert [(pr.source, pr.target, pr.delay) for pr in net.projections
            if pr.source == pr.target] == ([(names[0], names[0], 1)] if recurrent else [])
    got = SNN(net, "fast_sigmoid", slope=SLOPE, trainable=("weight", "bias"))(x).spikes
    return {k: (int((got[k].detach() != r).sum()), int(r.sum())) for k, r in zip(names, ref)}


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def peak_memory(name: str, device: str, threads: int) -> float:
    """MB above the pass's starting point, in this (fresh) process."""
    torch.set_num_threads(threads)
    step = make(name, device)
    step()
    step()
    step.drop_grads()
    if "snnkit" in name:
        from snnkit.training import fused

        fused.POOL.clear()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2 ** 20
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS
    base = _rss_kb("VmRSS")
    step()
    return (_rss_kb("VmHWM") - base) / 1024


def timings(names, device, repeat, threads, cpu_time, passes=1) -> dict[str, list[float]]:
    """{name: [seconds per pass, a round each]}: interleaved rounds, ``passes`` consecutive
    passes of each contender a round."""
    torch.set_num_threads(threads)
    clock = time.process_time if cpu_time else time.perf_counter
    steps = {}
    for n in names:  # each contender's kernel switch is set while it is built and run
        steps[n] = make(n, device)
        os.environ.pop("SNNKIT_KERNELS", None)
    out = {n: [] for n in names}
    for n, f in steps.items():
        _with_env(n, f)
        _with_env(n, f)
    for _ in range(repeat):
        for n, f in steps.items():
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = clock()
            for _ in range(passes):
                _with_env(n, f)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            out[n].append((clock() - t0) / passes)
    return out


def wgrad_crossover(densities, repeat: int) -> None:
    """The weight gradient of the input projection alone (784 sources, 1000 targets, T x B =
    1600 rows in the backward pass's chunks of 8 steps), event pass against the AMX tiles, at
    the given input spike densities: where the tiles start to pay (snnkit.training.kernel
    takes them from 1/8 on)."""
    from snnkit.training import kernel as K

    lib = K.load()
    if lib is None or not lib.snn_train_amx_available():
        print("no AMX tile unit here: the event pass only")
        return
    g0 = torch.Generator().manual_seed(0)
    g = torch.randn(T * B, 1008, generator=g0)
    out = torch.empty(N_IN, N_HID)
    print(f"{'density':>8} {'events ms':>10} {'tiles ms':>9} {'events / tiles':>15}")
    for d in densities:
        off, idx = K.event_lists(lib, torch.rand(T * B, N_IN, generator=g0) < d)
        rows = 8 * B
        best = {}
        for mode in ("0", "2") * repeat:  # 2: the tiles whatever the density
            os.environ["SNNKIT_TRAIN_AMX"] = mode
            t0 = time.process_time()
            for r0 in range(0, T * B, rows):
                r1 = min(T * B, r0 + rows)
                K.event_wgrad(lib, off, idx, N_IN, r0, r1, 0, g[r0:r1], out, r0 > 0)
            best[mode] = min(best.get(mode, 1e9), time.process_time() - t0)
        os.environ.pop("SNNKIT_TRAIN_AMX", None)
        print(f"{d:>8.2f} {1e3 * best['0']:>10.2f} {1e3 * best['2']:>9.2f} "
              f"{best['0'] / best['2']:>15.2f}")


def _with_env(name, f):
    if name.endswith("torch path"):
        os.environ["SNNKIT_KERNELS"] = "0"
    try:
        f()
    finally:
        os.environ.pop("SNNKIT_KERNELS", None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cpu-time", action="store_true")
    ap.add_argument("--passes", type=int, default=3,
                    help="consecutive passes of a contender timed in each round (default 3, "
                         "as a training loop runs them; 1: a single pass after another's)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=T, help="time steps (default 25)")
    ap.add_argument("--json")
    ap.add_argument("--only", help="comma-separated contenders (default: all)")
    ap.add_argument("--workload", choices=("default", "users", "rleaky"), default="default",
                    help="users: snntorch's default Leaky with biases, imported through NIR; "
                         "rleaky: the same with an all-to-all RLeaky hidden layer")
    ap.add_argument("--wgrad-densities", help="comma-separated input spike densities: time "
                    "the input projection's weight gradient alone, event pass vs AMX tiles")
    ap.add_argument("--memory-of", help=argparse.SUPPRESS)  # the child process's job
    args = ap.parse_args(argv)
    if args.wgrad_densities:
        torch.set_num_threads(args.threads)
        wgrad_crossover([float(d) for d in args.wgrad_densities.split(",")], args.repeat)
        return 0
    os.environ["TRAIN_SPEED_STEPS"] = str(args.steps)  # for this process and its children
    os.environ["TRAIN_SPEED_WORKLOAD"] = args.workload
    if args.memory_of:
        print(json.dumps(peak_memory(args.memory_of, args.device, args.threads)))
        return 0
    names = args.only.split(",") if args.only else list(
        USERS_CONTENDERS if args.workload != "default" else CONTENDERS)
    if args.workload != "default":
        differ = users_spikes_differ(args.workload == "rleaky")
        print(f"{args.workload} workload, forward spikes snnkit vs snntorch: " + ", ".join(
            f"layer {k}: {d} of {n} differ" for k, (d, n) in differ.items()))
    if args.device.startswith("cuda"):
        names = [n for n in names if n != "snnkit fixed"]  # float64: not a GPU workload
    if args.passes < 1:
        ap.error(f"--passes must be at least 1, got {args.passes}")
    t = timings(names, args.device, args.repeat, args.threads, args.cpu_time, args.passes)
    mem = {}
    for n in names:
        r = subprocess.run([sys.executable, __file__, "--memory-of", n, "--device", args.device,
                            "--threads", str(args.threads), "--steps", str(args.steps)],
                           capture_output=True, text=True, check=True,
                           env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"})
        mem[n] = float(r.stdout.strip().splitlines()[-1])
    med = {n: statistics.median(v) for n, v in t.items()}
    best = {n: min(v) for n, v in t.items()}
    ref = "snntorch"
    clock = "CPU time" if args.cpu_time else "wall clock"
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} threads, {clock}, {args.repeat} rounds of {args.passes} passes each, "
          f"device {args.device}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'contender':<26} {'median ms':>10} {'best ms':>8} {'x snntorch':>13} "
          f"{'peak MB':>8} {'mem / snntorch':>15}")
    for n in names:
        print(f"{n:<26} {1e3 * med[n]:>10.1f} {1e3 * best[n]:>8.1f} "
              f"{med[ref] / med[n]:>6.2f} / {best[ref] / best[n]:<5.2f} {mem[n]:>8.1f} "
              f"{mem[n] / mem[ref]:>15.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"times": t, "peak_mb": mem, "threads": args.threads,
                       "cpu_time": args.cpu_time, "device": args.device}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
