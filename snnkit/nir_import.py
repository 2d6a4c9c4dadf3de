"""Import of NIR graphs (the Neuromorphic Intermediate Representation) as a Network.

NIR describes neurons in continuous time; snnkit steps in discrete time. The import
discretises with forward Euler at the step ``dt`` the caller gives (what snntorch and norse
do): ``beta = 1 - dt/tau``, and the input gain ``dt*r/tau`` (times ``dt/tau_syn*w_in`` for
CubaLIF) is folded into the incoming weights. Linear parts of the graph (Affine, Linear,
Scale, Conv2d, SumPool2d, AvgPool2d, Flatten, Delay) are composed into one projection per
(source population, target population, delay): a convolution projection (one shared kernel;
a pool is a convolution of fixed weights) while the route is one, else a dense matrix over
indices flattened channel-major (``index = (c*H + y)*W + x``, as ``torch.flatten``).
Shapes the exporter left out are inferred. docs/nir.md lists every mapping, per exporter.

Whatever the import had to interpret or approximate is listed in ``net.nir_report`` and in
one :class:`~snnkit.nir_report.NIRApproximationWarning`; :mod:`snnkit.nir_export` goes the
other way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import nir_digest
from .errors import NetworkError
from .network import IF, LIF, NEURON_MODELS, CubaLIF, Network
from .nir_graph import Wire, check_types, drop_added_inputs, inline, load, update_order
from .nir_linear import Route, compose, spatial_op
from .nir_report import NIRApproximationWarning, Note, warn
from .nir_shapes import Shapes

__all__ = ["from_nir", "NIRApproximationWarning", "Note", "CONVENTIONS"]

CONVENTIONS = ("nir", "snntorch", "norse", "sinabs", "rockpool")
# dt where the exporter fixes it, so the caller may leave it out: snntorch's export_to_nir
# writes its time constants for dt = 1e-4 (any other dt reads its betas wrong); sinabs writes
# tau in steps (dt enters no decay). norse's and rockpool's dt is the user's, not in the file.
EXPORTER_DT = {"snntorch": 1e-4, "sinabs": 1e-3}
# Both libraries' default neurons emit several spikes in a step where v reaches several
# thresholds, which the file does not say; snnkit emits one.
_MULTI_SPIKE = {
    "sinabs": "one spike per step (sinabs' spike_fn=SingleSpike); sinabs' default MultiSpike "
              "emits floor(v/threshold) spikes, so the spikes differ wherever v reaches twice "
              "the threshold",
    "rockpool": "one spike per step (rockpool's max_spikes_per_dt=1); its default (2**16) "
                "emits floor(v/threshold) spikes, so the spikes differ wherever v reaches "
                "twice the threshold"}
_NEURONS = ("LIF", "CubaLIF", "IF")
_LINEAR = ("Affine", "Linear", "Scale", "Conv2d", "SumPool2d", "AvgPool2d", "Flatten", "Delay")
_CONST = "__const__"  # pseudo source of Affine/Conv biases
_SNAP = 1e-6  # gains this close to 1 are 1: float32 tau round trips (snntorch) lose ~1e-7


def from_nir(graph_or_path, dt: float | None = None, *, convention: str = "nir",
             input_encoding: str = "spikes") -> Network:
    """Build a :class:`~snnkit.Network` from a NIR graph.

    Parameters
    ----------
    graph_or_path : ``nir.NIRGraph``, its ``to_dict()`` dict, or a path to a ``.nir`` file
    dt : time step in seconds used to discretise the time constants and delays; may be left
        out where the exporter fixes it (``"snntorch"``: 1e-4, ``"sinabs"``: taus in steps),
        and must then be that value for ``"snntorch"``, or where snnkit wrote the graph (it
        carries the step it was exported at; another is reported as approximated)
    convention : how to read neuron nodes whose meaning depends on the exporter:
        ``"nir"`` the NIR definition (reset to ``v_reset`` at once; norse's LIFBoxCell and IAF,
        snntorch with ``reset_mechanism="zero"``); ``"snntorch"`` snntorch's default Leaky /
        Synaptic, which subtract the threshold one step after a spike: ``reset="delayed"``
        (``v_reset`` ignored);
        ``"norse"`` graphs from ``norse.torch.to_nir``, which writes ``dt*tau`` into the time
        constants and whose LIFCell adds input to the current with gain 1;
        ``"sinabs"`` (IAF, LIF with ``norm_input=False``) and ``"rockpool"`` (LIFTorch):
        exact exponential decays (sinabs: ``tau`` in steps), fire on ``v >= thr``, subtract
        the threshold (one spike per step: sinabs ``SingleSpike``, rockpool
        ``max_spikes_per_dt=1``)
    input_encoding : ``"spikes"`` or ``"current"`` for every Input node

    Returns
    -------
    Network, with ``nir_report`` (list of :class:`Note`) and ``nir_outputs`` (NIR Output
    node -> population name) attached

    Raises
    ------
    NetworkError : unsupported node (named with its type), bad parameters
    StepError : dt missing where the graph does not fix it, or not the exporter's
    """
    if convention not in CONVENTIONS:
        raise NetworkError(f"convention: must be one of {CONVENTIONS}, got {convention!r}")
    graph = load(graph_or_path)
    saved = _saved_step(graph)
    net = Network(dt=_step(saved if dt is None and convention == "nir" else dt, convention))
    where = f"{graph_or_path}: " if isinstance(graph_or_path, (str, Path)) else ""
    if where:
        _check_digest(graph, where)
    try:
        nodes, edges = drop_added_inputs(*inline(graph))
        check_types(nodes, _NEURONS + _LINEAR + ("Input", "Output"))
        notes = []
        if saved is not None and not np.isclose(net.dt, saved, rtol=1e-6, atol=0):
            notes.append(Note("graph", "dt", f"read at dt={net.dt:g} s; snnkit exported it at "
                              f"dt={saved:g} s, so every decay differs from the exported "
                              f"network's (leave dt out to read it as exported)", False))
        return _Importer(nodes, edges, net, convention, input_encoding, notes).run()
    except NetworkError as e:  # a file's errors name the file too
        if not where or str(e).startswith(where):
            raise
        raise NetworkError(where + str(e)) from None
    except _MALFORMED as e:  # parameters of the wrong kind or shape reaching numpy
        raise NetworkError(f"{where or 'graph: '}a malformed NIR graph "
                           f"({type(e).__name__}: {e})") from None


class StepError(NetworkError):
    """``dt`` missing, or not the one the exporter fixed: the caller's choice, which the
    command line reports as a usage error of ``--dt``."""


def _saved_step(graph) -> float | None:
    """The step a graph snnkit exported was simulated at (``snnkit_dt``), or None."""
    saved = (getattr(graph, "metadata", None) or {}).get("snnkit_dt")
    try:
        saved = float(np.asarray(saved).reshape(()))
    except (TypeError, ValueError):
        return None
    return saved if np.isfinite(saved) and saved > 0 else None


def _step(dt, convention: str) -> float:
    """The step to import with: the caller's, or the one the exporter fixed."""
    fixed = EXPORTER_DT.get(convention)
    if dt is None:
        if fixed is None:
            raise StepError(f"dt: required with convention={convention!r} (NIR time "
                            f"constants are in seconds and the file does not say the step "
                            f"they were exported for); give the step in seconds, e.g. "
                            f"dt=1e-3" + (" (norse.torch.to_nir's default)"
                                          if convention == "norse" else ""))
        return fixed
    if convention == "snntorch" and isinstance(dt, (int, float)) and dt != fixed:
        raise StepError(f"dt: snntorch's export_to_nir writes its time constants for "
                        f"dt = {fixed:g}; dt={dt!r} would read every beta wrong (leave dt "
                        f"out)")
    return dt


def _check_digest(graph, where: str) -> None:
    """A file snnkit exported carries a digest of its contents: a damaged one is an error,
    not another network (NIR files have no checksum of their own)."""
    stored = (getattr(graph, "metadata", None) or {}).get(nir_digest.KEY)
    if stored is None:
        return
    stored = stored.decode() if isinstance(stored, bytes) else str(stored)
    if stored != nir_digest.digest(graph):
        raise NetworkError(f"{where}its contents differ from the {nir_digest.KEY} snnkit "
                           f"wrote with them: the file is damaged (or was edited; remove "
                           f"the graph's {nir_digest.KEY} metadata to import an edited file)")


# what a well-formed file with wrong contents (a damaged or hand-made file) raises on the way
_MALFORMED = (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError,
              ZeroDivisionError, RecursionError, MemoryError, StopIteration)


class _Importer:
    """Turns a flat NIR graph into populations and projections (one pass each)."""

    def __init__(self, nodes, edges, net, convention, encoding, notes=()):
        self.nodes, self.edges, self.net = nodes, edges, net
        self.conv, self.encoding = convention, encoding
        self.dt = net.dt
        self.notes: list[Note] = list(notes)
        self.pred = {n: [a for a, b in edges if b == n] for n in nodes}
        for a, b in edges:
            for end in (a, b):
                if end not in nodes:
                    raise NetworkError(f"NIR edge ({a!r}, {b!r}): no node named {end!r}")
        for n in nodes:  # else it and all it computes would vanish from the network unsaid
            if not self.pred[n] and self.kind(n) in _LINEAR + ("Output",):
                raise NetworkError(f"NIR node {n!r} ({self.kind(n)}): nothing feeds it (no "
                                   f"edge into it); connect it to an Input or neuron node, or "
                                   f"remove it")
        self.shape: dict[str, tuple] = {}
        self.shapes: Shapes | None = None
        self.names: dict[str, str] = {}  # NIR node -> population name
        self._cache: dict[str, tuple] = {}

    def note(self, node, param, msg, exact=True):
        self.notes.append(Note(node, param, msg, exact))

    def kind(self, name) -> str:
        n = self.nodes[name]
        return "Wire" if isinstance(n, Wire) else type(n).__name__

    # ---- the steps

    def run(self) -> Network:
        self._infer_shapes()
        pops = [n for n in self.nodes if self.kind(n) in ("Input",) + _NEURONS]
        routes = {t: self._group(t) for t in pops if self.kind(t) in _NEURONS}
        order = update_order(self.nodes, pops, routes, _CONST)
        specs = {t: self._neuron(t) for t in routes}
        needs_unit = any(self.kind(t) == "CubaLIF" and not specs[t]["exact"]
                         and _CONST in {r[0] for r in routes[t]} for t in routes)
        for name in order:
            if self.kind(name) == "Input":
                enc = self.nodes[name].metadata.get("snnkit_encoding", self.encoding)
                pop = self.net.add_input(self._pop_name(name), self._pop_size(name), str(enc))
                self.names[name] = pop.name
        if needs_unit:
            self._add_bias_unit()
        for name in order:
            if name in routes:
                self._add_population(name, specs[name], routes[name])
        for name in order:
            if name in routes:
                self._connect(name, specs[name], routes[name], order)
        self.net.nir_report = self.notes
        self.net.nir_outputs = self._outputs()
        warn(self.notes, "NIR import: parameters interpreted or approximated", 3)
        return self.net

    # ---- shapes

    def _infer_shapes(self) -> None:
        self.shapes = Shapes(self.nodes, self.pred, self.kind, lambda *a: self.note(*a),
                             _NEURONS)
        self.shapes.infer(lambda name, image: self._spatial(name, image)[0].conv.out_shape)
        self.shape = self.shapes.shape
        self._check_empty()

    def _check_empty(self) -> None:
        """An empty node (``None``) is whatever module its exporter could not write: norse
        writes one for ``torch.nn.Flatten``, but also for ``LIFRecurrentCell``, ``LICell``,
        pooling, activations and dropout. Read as a Flatten only where it can be nothing
        else (a [C, H, W] in, only dense layers of that many inputs out); anywhere else
        passing it through would import another network without a word."""
        for name, node in self.nodes.items():
            if not (isinstance(node, Wire) and node.empty):
                continue
            shp = self.shape[name]
            if len(shp) < 2 or self.shapes.dense_inputs(name) != {self._size(name)}:
                outs = [b for a, b in self.edges if a == name]
                raise NetworkError(
                    f"NIR node {name!r} is empty (None): its exporter wrote no NIR for that "
                    f"module (norse.to_nir writes None for every module it cannot express, "
                    f"e.g. LIF (the module that loops over time: use LIFCell, which it "
                    f"exports), LIFRecurrentCell, LICell, pooling, ReLU, Dropout, Flatten); "
                    f"between "
                    f"{self.pred[name]} (shape {list(shp)}) and {outs} it is not a Flatten, and "
                    f"snnkit cannot know what it computed. Export the model without that "
                    f"module, or replace the node in the graph with the NIR node it stands for "
                    f"before importing")
            self.note(name, "node", f"empty node read as a Flatten of {list(shp)} (norse "
                      f"writes None for torch.nn.Flatten)")

    def _size(self, name) -> int:
        return int(np.prod(self.shape[name]))

    def _pop_size(self, name):
        """The population's size, or its [C, H, W] shape when it has one."""
        return self.shapes.population_shape(name) or self._size(name)

    # ---- linear routes

    def _group(self, target) -> list[list]:
        """Routes into ``target`` merged per (source, delay steps):
        ``[source, steps, matrix or None, structure or None, meta, convolution or None]``
        (a convolution route keeps its kernel; two routes that add up become one matrix)."""
        merged: dict[tuple[str, int], list] = {}
        for p in self.pred[target]:
            for r in self._routes(p, (target,)):
                steps = 0 if r.source == _CONST else self._steps(r.delay, target)
                key = (r.source, steps)
                if key in merged:
                    old, new = merged[key], [r.source, 0, r.m, r.s, None, r.c]
                    s1, s2 = self._struct(old), self._struct(new)
                    old[2] = self._dense(old) + self._dense(new)
                    old[3] = None if s1 is None or s2 is None else s1 | s2
                    old[4] = old[5] = None
                elif r.c is not None:
                    merged[key] = [r.source, steps, None, None, r.meta if r.hops == 1 else None,
                                   r.c]
                else:
                    m = np.eye(self._size(r.source)) if r.m is None else r.m
                    s = r.s if r.m is not None else np.eye(m.shape[0], dtype=bool)
                    merged[key] = [r.source, steps, m, s, r.meta if r.hops == 1 else None, None]
        return list(merged.values())

    def _struct(self, entry) -> np.ndarray | None:
        """The structure of a grouped route (None: dense)."""
        if entry[5] is not None:
            return entry[5].conv.structure()
        return np.eye(self._size(entry[0]), dtype=bool) if entry[2] is None else entry[3]

    def _dense(self, entry) -> np.ndarray:
        """The matrix of a grouped route (a convolution expanded)."""
        if entry[5] is not None:
            return entry[5].dense()
        return np.eye(self._size(entry[0])) if entry[2] is None else entry[2]

    def _steps(self, delay: float, target: str) -> int:
        steps = delay / self.dt
        k = round(steps)
        if abs(steps - k) > 1e-6 * max(1.0, abs(steps)):
            self.note(target, "delay", f"{delay:g} s is {steps:g} steps of dt; rounded to {k}",
                      exact=False)
        return k

    def _routes(self, name, seen) -> list[Route]:
        kind = self.kind(name)
        if kind in ("Input",) + _NEURONS:
            return [Route(name, None, None, 0.0, None, 0)]
        if kind == "Output":
            raise NetworkError(f"NIR node {name!r}: an Output node cannot feed other nodes")
        if name in seen:
            raise NetworkError(f"NIR node {name!r}: part of a loop without a neuron node")
        m, s, bias, delay, op = self._linear(name)
        out = []
        weighted = m is not None or op is not None
        for p in self.pred[name]:
            for r in self._routes(p, seen + (name,)):
                out.append(compose(r, m, s, delay, self.nodes[name] if weighted else None, op))
        if bias is not None and np.any(bias != 0):
            out.append(Route(_CONST, bias[:, None], None, 0.0, None, 1))
        return out

    def _linear(self, name):
        """(matrix or None, structure or None, bias or None, delay seconds, convolution or
        None) of one node."""
        node, kind = self.nodes[name], self.kind(name)
        if kind in ("Affine", "Linear"):
            w = np.asarray(node.weight, np.float64)
            if w.ndim != 2:
                raise NetworkError(f"NIR node {name!r} ({kind}): weight must be 2-D, got "
                                   f"shape {w.shape}")
            n_in = self._size(self.pred[name][0]) if self.pred[name] else w.shape[1]
            if n_in != w.shape[1]:
                raise NetworkError(f"NIR node {name!r} ({kind}): weight expects {w.shape[1]} "
                                   f"inputs, its input has {n_in}")
            bias = np.asarray(node.bias, np.float64).reshape(-1) if kind == "Affine" else None
            return w, None, bias, 0.0, None
        if kind == "Scale":
            sc = np.broadcast_to(np.asarray(node.scale, np.float64).reshape(-1),
                                 (self._size(name),))
            return np.diag(sc), np.eye(sc.size, dtype=bool), None, 0.0, None
        if kind in ("Conv2d", "SumPool2d", "AvgPool2d"):
            op, bias = self._spatial(name, self.shapes.spatial_in[name])
            return None, None, bias, 0.0, op
        if kind == "Delay":
            d = np.unique(np.asarray(node.delay, np.float64))
            if d.size != 1:
                raise NetworkError(f"NIR node {name!r} (Delay): per-neuron delays differ "
                                   f"({d.min():g}..{d.max():g} s); snnkit delays are per "
                                   f"projection")
            return None, None, None, float(d[0]), None
        return None, None, None, 0.0, None  # Flatten, wires

    def _spatial(self, name, image):
        """(convolution, bias or None) of a conv or pool reading ``image`` [C, H, W], cached."""
        if name not in self._cache:
            self._cache[name] = spatial_op(name, self.nodes[name], self.kind(name),
                                           tuple(int(x) for x in image))
        return self._cache[name]

    # ---- neurons

    def _pop_name(self, name: str) -> str:
        ok = "".join(c if c.isalnum() or c in "_.-" else "_" for c in name) or "pop"
        base, i = ok, 1
        while any(p.name == ok for p in self.net.populations):
            ok, i = f"{base}_{i}", i + 1
        return ok

    def _param(self, name, field):
        v = getattr(self.nodes[name], field)
        v = np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v, np.float64)
        return np.broadcast_to(v.reshape(-1) if v.size > 1 else v.reshape(()),
                               (self._size(name),)).copy()

    def _neuron(self, name) -> dict:
        """snnkit model, input gain per neuron, whether snnkit's metadata restored it."""
        meta = _snnkit_meta(self.nodes[name])
        if self.conv in ("sinabs", "rockpool") and meta is None:
            return self._exp_neuron(name)
        kind, dt = self.kind(name), self.dt
        thr = _strict_to_inclusive(self._param(name, "v_threshold"))
        v_reset = self._param(name, "v_reset")
        ones = np.ones(self._size(name))
        if kind == "IF":
            gain, model, bias = self._param(name, "r"), IF(threshold=thr), 0 * ones
            beta, alpha = ones, 0 * ones
        else:
            scale = dt if self.conv == "norse" else 1.0  # norse writes dt*tau
            tm = self._param(name, "tau" if kind == "LIF" else "tau_mem") / scale
            r = self._param(name, "r")
            # tau = r = inf: no leak, r / tau = 1 / dt (snntorch writes beta = 1 so)
            integrator = np.isposinf(tm) & np.isposinf(r)
            beta = self._decay(name, "tau" if kind == "LIF" else "tau_mem", tm, integrator)
            with np.errstate(invalid="ignore"):
                gain = np.where(integrator, 1.0, dt * r / tm)
            bias = dt / tm * self._param(name, "v_leak")
            if np.any(integrator):
                self.note(name, "tau", "tau = r = inf (snntorch's beta = 1): an integrator, "
                          "beta 1 and input gain 1")
            alpha = 0 * ones
            if kind == "CubaLIF":
                ts = self._param(name, "tau_syn") / scale
                alpha = self._decay(name, "tau_syn", ts)
                w_in = self._param(name, "w_in")
                gain = gain * (w_in if self.conv == "norse" else dt / ts * w_in)
                model = CubaLIF(alpha=alpha, beta=beta, threshold=thr, bias=bias)
            else:
                model = LIF(beta=beta, threshold=thr, bias=bias)
            if np.any(bias != 0) and meta is None:
                self.note(name, "v_leak", "dt/tau*v_leak added to v every step as the bias")
            if self.conv == "norse" and meta is None and np.any(self._param(name, "v_leak")):
                model.v_init = self._param(name, "v_leak")
                self.note(name, "v_init", "norse starts the membrane at v_leak")
        if meta is None:
            self.note(name, "v_threshold", "raised by one float32 step: NIR fires on v > thr, "
                      "snnkit on v >= thr (same spikes in float32)")
        gain = np.where(np.abs(gain - 1) <= _SNAP, 1.0, gain)
        if np.any(gain != 1) and meta is None:
            self.note(name, "r", f"input gain {_fmt(gain)} folded into incoming weights")
        if self.conv == "snntorch" and kind != "IF" and meta is None:
            model.reset = "delayed"
            self.note(name, "v_reset", "snntorch subtracts the threshold one step after the "
                      "spike: reset='delayed' (reset_mechanism='subtract', its default; the "
                      "file does not say which: for 'zero' read it with convention='nir')")
        else:
            model.reset, model.v_reset = "value", v_reset
        restored = meta is not None and self._restore(name, meta, model, beta, alpha)
        return {"model": restored or model, "gain": gain, "exact": bool(restored)}

    def _exp_neuron(self, name) -> dict:
        """sinabs and rockpool neurons: ``exp(-dt/tau)`` decays (sinabs: ``exp(-1/tau)``, tau
        in steps), unit input gain (rockpool: its input passes the synaptic decay once),
        ``v >= thr``, reset by subtraction."""
        kind, unit = self.kind(name), 1.0 if self.conv == "sinabs" else self.dt
        thr = self._param(name, "v_threshold")
        if kind != "IF" and np.any(self._param(name, "v_leak") != 0):
            raise NetworkError(f"NIR node {name!r}.v_leak: must be 0 for convention "
                               f"{self.conv!r} (it writes none)")

        def decay(field):
            tau = self._param(name, field)
            if np.any(tau <= 0) or np.any(~np.isfinite(tau)):
                raise NetworkError(f"NIR node {name!r}.{field}: time constants must be "
                                   f"positive and finite, got {_fmt(tau)}")
            return np.exp(-unit / tau)

        gain = self._param(name, "r") if kind == "IF" or self.conv == "sinabs" else \
            np.ones(self._size(name))
        if kind == "IF":
            model = IF(threshold=thr)
        elif kind == "LIF":
            model = LIF(beta=decay("tau"), threshold=thr)
        else:
            alpha = decay("tau_syn")
            model = CubaLIF(alpha=alpha, beta=decay("tau_mem"), threshold=thr)
            gain = gain * alpha
        self.note(name, "spikes", _MULTI_SPIKE[self.conv], exact=False)
        if self.conv == "sinabs" and kind == "LIF":
            self.note(name, "norm_input", "read as sinabs' LIF(norm_input=False, tau_syn=None), "
                      "which the file cannot tell from its defaults: its LIF's default "
                      "norm_input=True scales the input by 1 - exp(-1/tau), so the spikes "
                      "differ; build the layer with norm_input=False", exact=False)
        if kind != "IF":
            self.note(name, "tau", f"{self.conv}: exact decay exp(-{'1' if unit == 1 else 'dt'}"
                      f"/tau); r and w_in are not read (its input gain is "
                      f"{'1' if kind == 'LIF' else 'the synaptic decay'})")
        return {"model": model, "gain": gain, "self": [], "exact": False}

    def _decay(self, name, field, tau, integrator=False) -> np.ndarray:
        """``1 - dt / tau``; 1 where ``integrator``; within float32 rounding of 0 (the tau
        of snntorch's beta = 0 is float32(dt), a hair below dt): 0."""
        if np.any(tau <= 0) or np.any(~np.isfinite(tau) & ~integrator):
            raise NetworkError(f"NIR node {name!r}.{field}: time constants must be positive "
                               f"and finite (or tau = r = inf, an integrator), got {_fmt(tau)}")
        d = np.where(integrator, 1.0, 1 - self.dt / tau)
        d = np.where(np.abs(d) <= _SNAP, 0.0, d)
        if np.any(d < 0):
            hint = "" if self.conv == "snntorch" else (
                " (a file from snntorch's export_to_nir: convention='snntorch', which takes "
                "its dt = 1e-4 itself)")
            raise NetworkError(f"NIR node {name!r}.{field}: dt={self.dt:g} s exceeds the time "
                               f"constant {tau.min():.9g} s (forward Euler would give a negative "
                               f"decay); use a smaller dt or the exporter's" + hint)
        return d

    def _restore(self, name, meta, model, beta, alpha):
        """Use snnkit's exact values from metadata when they agree with the NIR fields."""
        cls = NEURON_MODELS.get(str(meta.get("model", "")))
        if cls is None:
            return None
        kw = {f: meta[f] for f in cls.param_names() if f in meta}
        refr = np.asarray(meta.get("refractory", 0))
        kw.update(reset=str(meta.get("reset", model.reset)),
                  refractory=int(refr) if refr.ndim == 0 else refr.astype(np.int64))
        restored = cls(**kw)
        for f, ref in (("beta", beta), ("alpha", alpha), ("threshold", model.threshold)):
            if f in kw and not np.allclose(np.broadcast_to(kw[f], ref.shape), ref, rtol=1e-6,
                                           atol=1e-9):
                self.note(name, "metadata", "snnkit metadata disagrees with the NIR fields; "
                          "using the NIR fields", exact=False)
                return None
        return restored

    def _add_bias_unit(self) -> None:
        self.net.add_population("bias_unit", 1, IF(threshold=1.0, bias=1.0))
        self.note("bias_unit", "bias", "a constant input through a synapse (Affine bias into "
                  "CubaLIF) is driven by this always-on neuron (fires every step)")

    def _add_population(self, name, spec, routes) -> None:
        pop = self.net.add_population(self._pop_name(name), self._pop_size(name), spec["model"])
        self.names[name] = pop.name
        const = [r for r in routes if r[0] == _CONST]
        if const and self.kind(name) != "CubaLIF" and not spec["exact"]:
            c = spec["gain"] * const[0][2][:, 0]
            spec["model"].bias = pop.neuron.bias + c
            pop.neuron.validate(f"population {pop.name!r}", pop.size)
            self.note(name, "bias", "constant input (Affine/Conv bias) added to the neuron bias")

    def _connect(self, name, spec, routes, order) -> None:
        tgt = self.names[name]
        for src, steps, m, s, meta, op in routes:
            if src != _CONST and steps == 0 and order.index(src) >= order.index(name):
                steps = 1
                self.note(name, "input", f"recurrent route from {src!r} takes one time step")
            if op is not None and self._connect_conv(name, spec["gain"], src, steps, meta, op):
                continue
            w = spec["gain"][:, None] * (op.dense() if op is not None else m)
            if op is not None:
                s = op.conv.structure()
            if src == _CONST:
                if self.kind(name) == "CubaLIF" and not spec["exact"]:
                    self.net.connect("bias_unit", tgt, w)
                continue
            mask = None if s is None or s.all() else s
            w, mask = _exact_weight(meta, w, mask)
            self.net.connect(self.names[src], tgt, w, mask=mask, delay=steps)

    def _connect_conv(self, name, gain, src, steps, meta, op) -> bool:
        """Connect a convolution route as a convolution projection; False when it must be
        expanded instead: the input gain differs inside a channel, or the populations' shapes
        are not the convolution's."""
        tgt = self.net.population(self.names[name])
        source = self.net.population(self.names[src])
        g = gain.reshape(op.conv.out_shape[0], -1)
        if (source.shape != op.conv.in_shape or tgt.shape not in (None, op.conv.out_shape)
                or np.any(g != g[:, :1])):
            self.note(name, "input", f"the convolution from {src!r} is expanded to a dense "
                      f"matrix (its input gain or shapes differ within a channel)")
            return False
        kernel, _ = _exact_weight(meta, g[:, 0, None, None, None] * op.kernel, None)
        self.net.connect_conv(source.name, tgt.name, kernel, delay=steps, **op.conv.options())
        return True

    def _outputs(self) -> dict[str, str]:
        out = {}
        for name in self.nodes:
            if self.kind(name) != "Output":
                continue
            srcs = self.pred[name]
            if len(srcs) != 1 or srcs[0] not in self.names:
                raise NetworkError(f"NIR node {name!r} (Output): must be fed by exactly one "
                                   f"neuron or Input node, got {srcs}")
            out[name] = self.names[srcs[0]]
        return out


def _exact_weight(meta, w, mask):
    """snnkit's stored weight and mask when they agree with the NIR weight (rounding only)."""
    if not meta or "snnkit_weight" not in meta:
        return w, mask
    exact = np.asarray(meta["snnkit_weight"], np.float64)
    if exact.shape != w.shape or not np.allclose(exact, w, rtol=1e-6, atol=1e-12):
        return w, mask
    if "snnkit_mask" in meta:
        mask = np.asarray(meta["snnkit_mask"], bool)
    return exact, mask


def _snnkit_meta(node) -> dict | None:
    md = getattr(node, "metadata", None) or {}
    out = {k[len("snnkit_"):]: v for k, v in md.items() if str(k).startswith("snnkit_")}
    out = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in out.items()}
    return out if "model" in out else None


def _strict_to_inclusive(thr: np.ndarray) -> np.ndarray:
    """The float32 threshold t' with ``v >= t'`` exactly when ``v > thr`` (v in float32)."""
    return np.nextafter(thr.astype(np.float32), np.float32(np.inf)).astype(np.float64)



def _fmt(a) -> str:
    a = np.asarray(a)
    return f"{a.min():g}..{a.max():g}" if a.size and a.min() != a.max() else f"{a.reshape(-1)[0]:g}"
