"""Import of NIR graphs (the Neuromorphic Intermediate Representation) as a Network.

NIR describes neurons in continuous time; snnkit steps in discrete time. The import
discretises with forward Euler at the step ``dt`` the caller gives (what snntorch and norse
do): ``beta = 1 - dt/tau``, and the input gain ``dt*r/tau`` (times ``dt/tau_syn*w_in`` for
CubaLIF) is folded into the incoming weights. Linear parts of the graph (Affine, Linear,
Scale, Conv2d, SumPool2d, AvgPool2d, Flatten, Delay) are composed into one projection per
(source population, target population, delay); conv outputs are flattened channel-major
(``index = (c*H + y)*W + x``, as ``torch.flatten``). docs/nir.md lists every mapping.

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
from .nir_linear import Route, compose, spatial_matrix
from .nir_report import NIRApproximationWarning, Note, warn

__all__ = ["from_nir", "NIRApproximationWarning", "Note", "CONVENTIONS"]

CONVENTIONS = ("nir", "snntorch", "norse")
_NEURONS = ("LIF", "CubaLIF", "IF")
_LINEAR = ("Affine", "Linear", "Scale", "Conv2d", "SumPool2d", "AvgPool2d", "Flatten", "Delay")
_CONST = "__const__"  # pseudo source of Affine/Conv biases
_SNAP = 1e-6  # gains this close to 1 are 1: float32 tau round trips (snntorch) lose ~1e-7


def from_nir(graph_or_path, dt: float, *, convention: str = "nir",
             input_encoding: str = "spikes") -> Network:
    """Build a :class:`~snnkit.Network` from a NIR graph.

    Parameters
    ----------
    graph_or_path : ``nir.NIRGraph``, its ``to_dict()`` dict, or a path to a ``.nir`` file
    dt : time step in seconds used to discretise the time constants and delays
    convention : how to read neuron nodes whose meaning depends on the exporter:
        ``"nir"`` the NIR definition (reset to ``v_reset`` at once; norse's LIFBoxCell and IAF,
        snntorch with ``reset_mechanism="zero"``); ``"snntorch"`` snntorch's default Leaky /
        Synaptic, which subtract the threshold one step after a spike (``v_reset`` ignored);
        ``"norse"`` graphs from ``norse.torch.to_nir``, which writes ``dt*tau`` into the time
        constants and whose LIFCell adds input to the current with gain 1
    input_encoding : ``"spikes"`` or ``"current"`` for every Input node

    Returns
    -------
    Network, with ``nir_report`` (list of :class:`Note`) and ``nir_outputs`` (NIR Output
    node -> population name) attached

    Raises
    ------
    NetworkError : unsupported node (named with its type), bad parameters, bad dt
    """
    if convention not in CONVENTIONS:
        raise NetworkError(f"convention: must be one of {CONVENTIONS}, got {convention!r}")
    net = Network(dt=dt)
    graph = _load(graph_or_path)
    where = f"{graph_or_path}: " if isinstance(graph_or_path, (str, Path)) else ""
    if where:
        _check_digest(graph, where)
    try:
        nodes, edges = _flatten(graph)
        _check_types(nodes)
        return _Importer(nodes, edges, net, convention, input_encoding).run()
    except NetworkError as e:  # a file's errors name the file too
        if not where or str(e).startswith(where):
            raise
        raise NetworkError(where + str(e)) from None
    except _MALFORMED as e:  # parameters of the wrong kind or shape reaching numpy
        raise NetworkError(f"{where or 'graph: '}a malformed NIR graph "
                           f"({type(e).__name__}: {e})") from None


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


def _load(graph_or_path):
    import nir

    if isinstance(graph_or_path, (str, Path)):
        path = Path(graph_or_path)
        if not path.is_file():
            raise NetworkError(f"{path}: no such file")
        try:
            return nir.read(path)
        except Exception as e:  # noqa: BLE001 - h5py/nir raise many types
            raise NetworkError(f"{path}: not a NIR file, or damaged ({type(e).__name__}: "
                               f"{e})") from None
    if isinstance(graph_or_path, dict):
        try:
            return nir.NIRGraph.from_dict(graph_or_path)
        except Exception as e:  # noqa: BLE001
            raise NetworkError(f"graph_or_path: dict is not a NIR graph ({e})")
    if isinstance(graph_or_path, nir.NIRGraph):
        return graph_or_path
    raise NetworkError(f"graph_or_path: expected a nir.NIRGraph, a dict or a path, got "
                       f"{type(graph_or_path).__name__}")


def _flatten(graph, prefix: str = "") -> tuple[dict, list[tuple[str, str]]]:
    """Inline sub-graphs (snntorch's RLeaky/RSynaptic); their Input/Output become wires."""
    nodes, edges, entry, exit_ = {}, [], {}, {}
    for key, node in graph.nodes.items():
        name = prefix + str(key)
        if type(node).__name__ != "NIRGraph":
            nodes[name] = node
            continue
        sub_nodes, sub_edges = _flatten(node, name + ".")
        entry[key] = [n for n, v in sub_nodes.items() if type(v).__name__ == "Input"]
        exit_[key] = [n for n, v in sub_nodes.items() if type(v).__name__ == "Output"]
        for n in entry[key] + exit_[key]:
            sub_nodes[n] = _Wire(sub_nodes[n])
        nodes.update(sub_nodes)
        edges += sub_edges
    for a, b in graph.edges:
        for src in exit_.get(a, [prefix + str(a)]):
            for dst in entry.get(b, [prefix + str(b)]):
                edges.append((src, dst))
    return nodes, edges


class _Wire:
    """An Input/Output node inside a sub-graph: passes its input through."""

    def __init__(self, node):
        self.kind = type(node).__name__
        self.metadata = {}


def _check_types(nodes: dict) -> None:
    known = _NEURONS + _LINEAR + ("Input", "Output")
    for name, node in nodes.items():
        t = type(node).__name__
        if not isinstance(node, _Wire) and t not in known:
            raise NetworkError(f"NIR node {name!r}: type {t} is not supported (supported: "
                               f"{', '.join(known)})")


class _Importer:
    """Turns a flat NIR graph into populations and projections (one pass each)."""

    def __init__(self, nodes, edges, net, convention, encoding):
        self.nodes, self.edges, self.net = nodes, edges, net
        self.conv, self.encoding = convention, encoding
        self.dt = net.dt
        self.notes: list[Note] = []
        self.pred = {n: [a for a, b in edges if b == n] for n in nodes}
        for a, b in edges:
            for end in (a, b):
                if end not in nodes:
                    raise NetworkError(f"NIR edge ({a!r}, {b!r}): no node named {end!r}")
        self.shape: dict[str, tuple] = {}
        self.names: dict[str, str] = {}  # NIR node -> population name
        self._cache: dict[str, tuple] = {}

    def note(self, node, param, msg, exact=True):
        self.notes.append(Note(node, param, msg, exact))

    def kind(self, name) -> str:
        n = self.nodes[name]
        return "Wire" if isinstance(n, _Wire) else type(n).__name__

    # ---- the steps

    def run(self) -> Network:
        self._infer_shapes()
        pops = [n for n in self.nodes if self.kind(n) in ("Input",) + _NEURONS]
        routes = {t: self._group(t) for t in pops if self.kind(t) in _NEURONS}
        order = self._order(pops, routes)
        specs = {t: self._neuron(t) for t in routes}
        needs_unit = any(self.kind(t) == "CubaLIF" and not specs[t]["exact"]
                         and _CONST in {r[0] for r in routes[t]} for t in routes)
        for name in order:
            if self.kind(name) == "Input":
                enc = self.nodes[name].metadata.get("snnkit_encoding", self.encoding)
                pop = self.net.add_input(self._pop_name(name), self._size(name), str(enc))
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
        for _ in range(len(self.nodes) + 1):
            changed = False
            for name in self.nodes:
                if name not in self.shape:
                    shp = self._shape_of(name)
                    if shp is not None:
                        self.shape[name], changed = shp, True
            if not changed:
                break
        missing = [n for n in self.nodes if n not in self.shape]
        if missing:
            raise NetworkError(f"NIR node {missing[0]!r}: cannot infer its size (no typed input "
                               f"reaches it)")

    def _in_shape(self, name):
        for p in self.pred[name]:
            if p in self.shape:
                return self.shape[p]
        return None

    def _shape_of(self, name):
        node, kind = self.nodes[name], self.kind(name)
        if kind == "Input":
            return tuple(int(x) for x in np.atleast_1d(node.input_type["input"]))
        if kind in ("Affine", "Linear"):
            return (int(node.weight.shape[0]),)
        shp = self._in_shape(name)
        if kind in _NEURONS:
            n = np.asarray(node.v_threshold).size
            if n > 1 and (shp is None or int(np.prod(shp)) != n):
                return (n,)
        if shp is None:
            return None
        if kind in ("Conv2d", "SumPool2d", "AvgPool2d"):
            return self._spatial(name, shp)[3]
        if kind == "Flatten":
            return (int(np.prod(shp)),)
        return shp

    def _size(self, name) -> int:
        return int(np.prod(self.shape[name]))

    # ---- linear routes

    def _group(self, target) -> list[tuple[str, int, np.ndarray, np.ndarray | None, dict | None]]:
        """Routes into ``target`` merged per (source, delay steps): (src, delay, M, S, meta)."""
        merged: dict[tuple[str, int], list] = {}
        for p in self.pred[target]:
            for r in self._routes(p, (target,)):
                steps = self._steps(r.delay, target)
                m = np.eye(self._size(r.source) if r.source != _CONST else 1) if r.m is None \
                    else r.m
                if r.source == _CONST:
                    steps = 0
                key = (r.source, steps)
                if key in merged:
                    old = merged[key]
                    old[2] = old[2] + m
                    old[3] = None if old[3] is None or r.s is None else old[3] | r.s
                    old[4] = None
                else:
                    s = r.s if r.m is not None else np.eye(m.shape[0], dtype=bool)
                    merged[key] = [r.source, steps, m, s, r.meta if r.hops == 1 else None]
        return [tuple(v) for v in merged.values()]

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
        m, s, bias, delay = self._linear(name)
        out = []
        for p in self.pred[name]:
            for r in self._routes(p, seen + (name,)):
                out.append(compose(r, m, s, delay, self.nodes[name] if m is not None else None))
        if bias is not None and np.any(bias != 0):
            out.append(Route(_CONST, bias[:, None], None, 0.0, None, 1))
        return out

    def _linear(self, name):
        """(matrix or None, structure or None, bias or None, delay seconds) of one node."""
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
            return w, None, bias, 0.0
        if kind == "Scale":
            sc = np.broadcast_to(np.asarray(node.scale, np.float64).reshape(-1),
                                 (self._size(name),))
            return np.diag(sc), np.eye(sc.size, dtype=bool), None, 0.0
        if kind in ("Conv2d", "SumPool2d", "AvgPool2d"):
            shp = self._in_shape(name)
            m, s, bias, _ = self._spatial(name, shp)
            return m, s, bias, 0.0
        if kind == "Delay":
            d = np.unique(np.asarray(node.delay, np.float64))
            if d.size != 1:
                raise NetworkError(f"NIR node {name!r} (Delay): per-neuron delays differ "
                                   f"({d.min():g}..{d.max():g} s); snnkit delays are per "
                                   f"projection")
            return None, None, None, float(d[0])
        return None, None, None, 0.0  # Flatten, wires

    def _spatial(self, name, shp):
        """(matrix [out, in], structure, bias, output shape) of a conv or pool, cached."""
        if name not in self._cache:
            self._cache[name] = spatial_matrix(name, self.nodes[name], self.kind(name),
                                               tuple(int(x) for x in shp))
        return self._cache[name]

    # ---- order

    def _order(self, pops, routes) -> list[str]:
        """Update order: snnkit's saved order, else the graph's order if consistent, else Kahn."""
        idx = [self.nodes[p].metadata.get("snnkit_index") for p in pops]
        if all(i is not None for i in idx):
            return [p for _, p in sorted(zip([int(i) for i in idx], pops))]
        deps = {t: {r[0] for r in rs if r[1] == 0 and r[0] != _CONST} for t, rs in routes.items()}
        pos = {p: i for i, p in enumerate(pops)}
        if all(pos[s] < pos[t] or self._reaches(t, s, deps) for t in deps for s in deps[t]):
            return pops
        order, left = [], list(pops)
        while left:
            ready = [p for p in left if not (deps.get(p, set()) - set(order) - {p})]
            order.append(ready[0] if ready else left[0])
            left.remove(order[-1])
        return order

    @staticmethod
    def _reaches(a, b, deps) -> bool:
        """True when spikes of ``a`` reach ``b`` through delay-0 routes (a loop closes)."""
        stack, seen = [a], set()
        while stack:
            x = stack.pop()
            if x == b:
                return True
            seen.add(x)
            stack += [t for t, ss in deps.items() if x in ss and t not in seen]
        return False

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
        """snnkit model, input gain per neuron, bias per neuron, extra self-projections."""
        meta = _snnkit_meta(self.nodes[name])
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
            beta = self._decay(name, "tau" if kind == "LIF" else "tau_mem", tm)
            gain = dt * self._param(name, "r") / tm
            bias = dt / tm * self._param(name, "v_leak")
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
        if meta is None:
            self.note(name, "v_threshold", "raised by one float32 step: NIR fires on v > thr, "
                      "snnkit on v >= thr (same spikes in float32)")
        gain = np.where(np.abs(gain - 1) <= _SNAP, 1.0, gain)
        if np.any(gain != 1) and meta is None:
            self.note(name, "r", f"input gain {_fmt(gain)} folded into incoming weights")
        selfs = []
        if self.conv == "snntorch" and kind != "IF" and meta is None:
            selfs = [(1, -(1 - beta) * thr)] + ([(2, alpha * (1 - beta) * thr)]
                                                 if np.any(alpha != 0) else [])
            self.note(name, "v_reset", "snntorch subtracts the threshold one step after the "
                      "spike: reset by subtraction plus self-projection(s) with delay 1"
                      + (" and 2" if len(selfs) > 1 else "") + " restoring that timing")
        else:
            model.reset, model.v_reset = "value", v_reset
        restored = meta is not None and self._restore(name, meta, model, beta, alpha)
        return {"model": restored or model, "gain": gain, "self": selfs, "exact": bool(restored)}

    def _decay(self, name, field, tau) -> np.ndarray:
        if np.any(tau <= 0) or np.any(~np.isfinite(tau)):
            raise NetworkError(f"NIR node {name!r}.{field}: time constants must be positive "
                               f"and finite, got {_fmt(tau)}")
        d = 1 - self.dt / tau
        if np.any(d < 0):
            raise NetworkError(f"NIR node {name!r}.{field}: dt={self.dt:g} s exceeds the time "
                               f"constant {tau.min():g} s (forward Euler would give a negative "
                               f"decay); use a smaller dt or the exporter's dt")
        return d

    def _restore(self, name, meta, model, beta, alpha):
        """Use snnkit's exact values from metadata when they agree with the NIR fields."""
        cls = NEURON_MODELS.get(str(meta.get("model", "")))
        if cls is None:
            return None
        kw = {f: meta[f] for f in cls.param_names() if f in meta}
        kw.update(reset=str(meta.get("reset", model.reset)),
                  refractory=int(meta.get("refractory", 0)))
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
        pop = self.net.add_population(self._pop_name(name), self._size(name), spec["model"])
        self.names[name] = pop.name
        const = [r for r in routes if r[0] == _CONST]
        if const and self.kind(name) != "CubaLIF" and not spec["exact"]:
            c = spec["gain"] * const[0][2][:, 0]
            spec["model"].bias = pop.neuron.bias + c
            pop.neuron.validate(f"population {pop.name!r}", pop.size)
            self.note(name, "bias", "constant input (Affine/Conv bias) added to the neuron bias")

    def _connect(self, name, spec, routes, order) -> None:
        tgt = self.names[name]
        for src, steps, m, s, meta in routes:
            w = spec["gain"][:, None] * m
            if src == _CONST:
                if self.kind(name) == "CubaLIF" and not spec["exact"]:
                    self.net.connect("bias_unit", tgt, w)
                continue
            if steps == 0 and order.index(src) >= order.index(name):
                steps = 1
                self.note(name, "input", f"recurrent route from {src!r} takes one time step")
            mask = None if s is None or s.all() else s
            w, mask = _exact_weight(meta, w, mask)
            self.net.connect(self.names[src], tgt, w, mask=mask, delay=steps)
        for steps, wd in spec["self"]:
            self.net.connect(tgt, tgt, np.diag(wd), mask=np.eye(wd.size, dtype=bool), delay=steps)

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
