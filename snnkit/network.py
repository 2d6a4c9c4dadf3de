"""The network description shared by every simulator, the converter, NIR and the compiler.

A :class:`Network` is an ordered list of populations (inputs and neurons) and a list of
projections between them. The order matters: populations are updated in that order within a
time step, and the *global neuron index* used by the hardware is the population's offset (the
sum of the sizes of all populations before it, inputs included) plus the neuron's index inside
the population.

Time is discrete: every decay is a factor per time step (``beta = exp(-dt/tau)``), every
delay is a whole number of steps. Weights are shaped ``[target, source]`` as in
``torch.nn.Linear``; a convolution projection (:meth:`Network.connect_conv`) keeps one shared
kernel ``[C_out, C_in/groups, kH, kW]`` as ``torch.nn.Conv2d`` between populations shaped
``[C, H, W]`` (flattened channel-major, see :mod:`snnkit.conv`).

A network saves itself as the ``.snn`` file of docs/network-format.md: it converts itself to
and from the manifest (:meth:`Network.to_manifest`, :meth:`Network.from_manifest`), and
:mod:`snnkit.fileformat` keeps the container (zip, arrays, atomic write, format version).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import fileformat
from .conv import Conv
from .errors import NetworkError
from .parameters import (  # noqa: F401 - re-exported: the parameters belong to the description
    IF,
    LIF,
    NEURON_MODELS,
    STDP,
    CubaLIF,
    NeuronModel,
    Quantization,
    is_number,
)
from .summary import summarize


@dataclass
class Population:
    """A named group of neurons, or of inputs when ``neuron`` is None.

    Inputs with ``encoding="current"`` take real values (analog input, e.g. a converted ANN's
    first layer) instead of spikes; their projections deliver ``weight @ value``.
    """

    name: str
    size: int
    neuron: NeuronModel | None = None  # None: an input population
    encoding: str = "spikes"  # inputs only: "spikes" or "current"
    shape: tuple[int, int, int] | None = None  # [C, H, W] (flattened channel-major), or flat

    @property
    def is_input(self) -> bool:
        return self.neuron is None


@dataclass
class Projection:
    """Weights from every neuron of ``source`` to every neuron of ``target``; or, when
    ``conv`` is set, one kernel shared by every position of a convolution."""

    source: str
    target: str
    weight: np.ndarray  # float64 [target.size, source.size]; conv: [C_out, C_in/groups, kH, kW]
    mask: np.ndarray | None = None  # bool [target, source]; None = all-to-all
    delay: int = 0  # steps; 0 only forward in population order
    stdp: STDP | None = None
    plastic_mask: np.ndarray | None = None  # bool [target, source]; None = every connection
    conv: Conv | None = None  # the geometry of a convolution projection

    @property
    def name(self) -> str:
        return f"{self.source}->{self.target}"

    def learns(self, learning: bool | None = None) -> bool:
        """Whether STDP changes this projection in a run: its ``stdp.enabled``, or the run's
        ``learning`` override (``simulate(..., learning=...)``) where that is not None."""
        return self.stdp is not None and (self.stdp.enabled if learning is None
                                          else bool(learning))

    def connections(self) -> np.ndarray:
        """Boolean [target, source]: which synapses exist."""
        if self.conv is not None:
            return self.conv.structure()
        return np.ones(self.weight.shape, bool) if self.mask is None else self.mask

    def dense_weight(self) -> np.ndarray:
        """The ``[target, source]`` weights (a convolution's kernel at every position)."""
        return self.weight if self.conv is None else self.conv.dense(self.weight)

    @property
    def n_synapses(self) -> int:
        if self.conv is not None:
            return self.conv.n_synapses()
        return int(self.connections().sum())


_NAME_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


class Network:
    """A spiking network: ordered populations, projections, optional quantisation.

    Example::

        net = Network(dt=1e-3)
        net.add_input("in", 64)
        net.add_population("hid", 100, LIF(beta=0.9))
        net.connect("in", "hid", w)  # w: [100, 64]
    """

    def __init__(self, dt: float = 1e-3, quantization: Quantization | None = None, name: str = ""):
        if not is_number(dt) or not math.isfinite(dt) or dt <= 0:
            raise NetworkError(f"dt: must be a positive number of seconds, got {dt!r}")
        self.dt = float(dt)
        self.name = name
        self.populations: list[Population] = []
        self.projections: list[Projection] = []
        self.quantization = quantization
        if quantization is not None:
            quantization.validate()

    # ---- building

    def _check_new_name(self, name: str, where: str) -> None:
        if not isinstance(name, str) or not name or not set(name) <= _NAME_OK:
            raise NetworkError(f"{where}.name: must be a non-empty string of letters, digits, "
                               f"'_', '.', '-'; got {name!r}")
        if any(p.name == name for p in self.populations):
            raise NetworkError(f"{where}.name: a population named {name!r} already exists")

    @staticmethod
    def _check_size(size: Any, where: str) -> tuple[int, tuple | None]:
        """(size, shape): ``size`` is a count or a ``[C, H, W]`` shape."""
        def whole(x):
            return isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x > 0

        if isinstance(size, (tuple, list)) and len(size) == 3 and all(whole(x) for x in size):
            shape = tuple(int(x) for x in size)
            return int(np.prod(shape)), shape
        if not whole(size):
            raise NetworkError(f"{where}.size: must be a positive integer, got {size!r} (or a "
                               f"[C, H, W] shape of positive integers)")
        return int(size), None

    def add_input(self, name: str, size, encoding: str = "spikes") -> Population:
        """Append an input population (a spike or current source) of ``size`` inputs, or of
        shape ``[C, H, W]`` (the source of a convolution)."""
        where = f"populations[{len(self.populations)}]"
        self._check_new_name(name, where)
        size, shape = self._check_size(size, f"{where} ({name})")
        if encoding not in ("spikes", "current"):
            raise NetworkError(f"{where} ({name}).encoding: must be 'spikes' or 'current', "
                               f"got {encoding!r}")
        pop = Population(name, size, None, encoding, shape)
        self.populations.append(pop)
        return pop

    def add_population(self, name: str, size, neuron: NeuronModel | None = None) -> Population:
        """Append a population of ``size`` neurons (a count, or a ``[C, H, W]`` shape) of the
        given model (default ``LIF()``)."""
        where = f"populations[{len(self.populations)}]"
        self._check_new_name(name, where)
        size, shape = self._check_size(size, f"{where} ({name})")
        neuron = LIF() if neuron is None else neuron
        if not isinstance(neuron, NeuronModel):
            raise NetworkError(f"{where} ({name}).neuron: expected a neuron model such as LIF(), "
                               f"got {type(neuron).__name__}")
        neuron.validate(f"{where} ({name}).neuron", size)
        pop = Population(name, size, neuron, shape=shape)
        self.populations.append(pop)
        return pop

    def connect(self, source: str, target: str, weight, *, mask=None, delay: int = 0,
                stdp: STDP | None = None, plastic_mask=None) -> Projection:
        """Add a projection; ``weight`` is a scalar (all equal) or an array ``[target, source]``."""
        where = f"projections[{len(self.projections)}] ({source}->{target})"
        src, tgt = self._pop(source, f"{where}.source"), self._pop(target, f"{where}.target")
        if tgt.is_input:
            raise NetworkError(f"{where}.target: {target!r} is an input population and cannot "
                               f"receive projections")
        shape = (tgt.size, src.size)
        w = np.full(shape, float(weight)) if is_number(weight) else self._array(
            weight, np.float64, shape, f"{where}.weight")
        if not np.all(np.isfinite(w)):
            raise NetworkError(f"{where}.weight: contains NaN or inf")
        m = None if mask is None else self._array(mask, bool, shape, f"{where}.mask")
        if m is not None:
            w = np.where(m, w, 0.0)
        pm = None if plastic_mask is None else self._array(plastic_mask, bool, shape,
                                                           f"{where}.plastic_mask")
        self._check_delay(source, target, delay, where)
        if stdp is not None:
            if not isinstance(stdp, STDP):
                raise NetworkError(f"{where}.stdp: expected snnkit.STDP, got {type(stdp).__name__}")
            if src.is_input and src.encoding == "current":
                raise NetworkError(f"{where}.stdp: plasticity needs spiking sources, but "
                                   f"{source!r} is a current input")
            stdp.validate(f"{where}.stdp")
        proj = Projection(source, target, w, m, int(delay), stdp, pm)
        if stdp is not None:
            learns = proj.connections() if pm is None else proj.connections() & pm
            stdp.warn_outside(where, w[learns])
        self.projections.append(proj)
        return proj

    def connect_conv(self, source: str, target: str, weight, *, stride=1, padding=0,
                     dilation=1, groups: int = 1, delay: int = 0, stdp=None) -> Projection:
        """Add a convolution projection: ``weight`` is one kernel ``[C_out, C_in/groups, kH,
        kW]`` (as ``torch.nn.Conv2d``; zero padding on each side) shared by every position.

        ``source`` must have a ``[C, H, W]`` shape; ``target`` has the output's shape, or is
        flat with as many neurons.

        Raises
        ------
        NetworkError : a source without a shape, a kernel that does not fit it, a target of
            another shape or size, NaN or inf weights, a bad delay, or ``stdp`` (plasticity
            learns each synapse's own weight; a convolution shares its weights)
        """
        where = f"projections[{len(self.projections)}] ({source}->{target})"
        src, tgt = self._pop(source, f"{where}.source"), self._pop(target, f"{where}.target")
        if tgt.is_input:
            raise NetworkError(f"{where}.target: {target!r} is an input population and cannot "
                               f"receive projections")
        if src.shape is None:
            raise NetworkError(f"{where}.source: a convolution needs a [C, H, W] source; "
                               f"{source!r} is flat (give its size as a shape, e.g. "
                               f"add_input({source!r}, (C, H, W)))")
        try:
            w = np.array(weight, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise NetworkError(f"{where}.weight: cannot be read as float64 array ({e})")
        conv = Conv.make(src.shape, w.shape, stride, padding, dilation, groups, where)
        if not np.all(np.isfinite(w)):
            raise NetworkError(f"{where}.weight: contains NaN or inf")
        out = conv.out_shape
        if tgt.shape not in (None, out) or tgt.size != int(np.prod(out)):
            raise NetworkError(f"{where}.target: the convolution's output is {list(out)} "
                               f"({int(np.prod(out))} neurons), {target!r} is "
                               f"{list(tgt.shape) if tgt.shape else tgt.size}")
        self._check_delay(source, target, delay, where)
        if stdp is not None:
            raise NetworkError(f"{where}.stdp: plasticity is not supported on a convolution "
                               f"(STDP learns each synapse's weight; a convolution shares one "
                               f"kernel); use connect() with proj.dense_weight() to learn")
        proj = Projection(source, target, w, delay=int(delay), conv=conv)
        self.projections.append(proj)
        return proj

    def _check_delay(self, source: str, target: str, delay, where: str) -> None:
        if not isinstance(delay, (int, np.integer)) or isinstance(delay, bool) or delay < 0:
            raise NetworkError(f"{where}.delay: must be an integer number of steps >= 0, "
                               f"got {delay!r}")
        if delay == 0 and self.index_of(source) >= self.index_of(target):
            raise NetworkError(
                f"{where}.delay: a projection from {source!r} to itself or to an earlier "
                f"population needs delay >= 1 (spikes of step t reach it at step t + delay)")

    @staticmethod
    def _array(value, dtype, shape, label) -> np.ndarray:
        try:
            raw = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
        except (TypeError, ValueError) as e:
            raise NetworkError(f"{label}: cannot be read as an array ({e})") from None
        if raw.dtype.kind == "c":  # numpy would drop the imaginary part with a warning only
            raise NetworkError(f"{label}: complex values ({raw.dtype}); give real numbers")
        if dtype is bool and raw.dtype.kind in "iuf" and raw.size \
                and not np.isin(raw, (0, 1)).all():  # 0.5 would read as True
            raise NetworkError(f"{label}: must hold 0/1 or True/False, got values in "
                               f"[{raw.min():g}, {raw.max():g}]")
        try:
            arr = np.array(raw, dtype=dtype)
        except (TypeError, ValueError) as e:
            raise NetworkError(f"{label}: cannot be read as {np.dtype(dtype).name} array ({e})")
        if arr.shape != shape:
            raise NetworkError(f"{label}: shape {tuple(arr.shape)} does not match "
                               f"[target, source] = {shape}")
        return arr

    # ---- queries

    def _pop(self, name: str, label: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        known = ", ".join(repr(p.name) for p in self.populations) or "none"
        raise NetworkError(f"{label}: no population named {name!r} (known: {known})")

    def population(self, name: str) -> Population:
        return self._pop(name, "population")

    def index_of(self, name: str) -> int:
        """Position of a population in the update order."""
        return self.populations.index(self._pop(name, "population"))

    def offset(self, name: str) -> int:
        """Global index of the population's first neuron (inputs count too)."""
        off = 0
        for p in self.populations:
            if p.name == name:
                return off
            off += p.size
        raise NetworkError(f"population: no population named {name!r}")

    @property
    def inputs(self) -> list[Population]:
        return [p for p in self.populations if p.is_input]

    @property
    def neuron_populations(self) -> list[Population]:
        return [p for p in self.populations if not p.is_input]

    @property
    def n_inputs(self) -> int:
        return sum(p.size for p in self.inputs)

    @property
    def n_neurons(self) -> int:
        return sum(p.size for p in self.neuron_populations)

    @property
    def n_synapses(self) -> int:
        return sum(p.n_synapses for p in self.projections)

    def incoming(self, name: str) -> list[Projection]:
        return [p for p in self.projections if p.target == name]

    @property
    def max_delay(self) -> int:
        return max((p.delay for p in self.projections), default=0)

    def summary(self) -> str:
        """A human-readable table of the network (what ``snnkit info`` prints)."""
        return summarize(self)

    # ---- files

    def save(self, path) -> None:
        """Write the network to ``path`` (format: docs/network-format.md); atomic."""
        fileformat.write(path, *self.to_manifest())

    @staticmethod
    def load(path) -> Network:
        """Read a network file: :func:`snnkit.load`, beside :meth:`save` where it is sought
        (as ``Result.load`` is beside ``Result.save``)."""
        return load(path)

    def to_manifest(self) -> tuple[dict, dict[str, np.ndarray]]:
        """The file's manifest (every scalar) and the arrays it refers to by key."""
        arrays: dict[str, np.ndarray] = {}

        def value(key: str, v: Any):
            if isinstance(v, np.ndarray):
                arrays[key] = v
                return {"array": key}
            return v

        pops = []
        for i, p in enumerate(self.populations):
            d: dict[str, Any] = {"name": p.name, "size": p.size}
            if p.shape is not None:
                d["shape"] = list(p.shape)
            if p.is_input:
                d.update(kind="input", encoding=p.encoding)
            else:
                params = {f.name: value(f"populations.{i}.{f.name}", getattr(p.neuron, f.name))
                          for f in dataclasses.fields(p.neuron)}
                d.update(kind="neurons", model=p.neuron.model, params=params)
            pops.append(d)
        projs = []
        for i, pr in enumerate(self.projections):
            d = {"source": pr.source, "target": pr.target, "delay": pr.delay,
                 "weight": value(f"projections.{i}.weight", pr.weight)}
            if pr.mask is not None:
                d["mask"] = value(f"projections.{i}.mask", pr.mask)
            if pr.plastic_mask is not None:
                d["plastic_mask"] = value(f"projections.{i}.plastic_mask", pr.plastic_mask)
            if pr.stdp is not None:
                d["stdp"] = dataclasses.asdict(pr.stdp)
            if pr.conv is not None:
                d["conv"] = {k: list(v) if isinstance(v, tuple) else v
                             for k, v in pr.conv.options().items()}
            projs.append(d)
        q = self.quantization
        manifest = {
            "format": fileformat.FORMAT, "version": fileformat.VERSION, "name": self.name,
            "dt": self.dt, "quantization": None if q is None else dataclasses.asdict(q),
            "populations": pops, "projections": projs,
        }
        return manifest, arrays

    @classmethod
    def from_manifest(cls, manifest: dict, value) -> Network:
        """The network a manifest describes (its format and version already checked).

        ``value(v, label)`` returns ``v``, or the array that ``v = {"array": key}`` refers to.

        Raises
        ------
        NetworkError : a missing or mistyped field, an unknown model or parameter, or an
            invalid network; the message names the field
        """
        field = fileformat.field
        q = manifest.get("quantization")
        quant = None
        if q is not None:
            try:
                quant = Quantization(**q)
            except TypeError as e:
                raise NetworkError(f"quantization: {e}")
        net = cls(dt=field(manifest, "dt", "manifest", (int, float)), quantization=quant,
                  name=manifest.get("name", ""))
        for i, d in enumerate(field(manifest, "populations", "manifest", list)):
            label = f"populations[{i}]"
            name, size = field(d, "name", label, str), field(d, "size", label, int)
            if "shape" in d:
                shape = field(d, "shape", label, list)
                if int(np.prod(shape)) != size:
                    raise NetworkError(f"{label}.shape: {shape} does not hold size {size}")
                size = shape
            kind = field(d, "kind", label, str)
            if kind == "input":
                net.add_input(name, size, d.get("encoding", "spikes"))
            elif kind == "neurons":
                net.add_population(name, size, _neuron_from(d, label, name, value))
            else:
                raise NetworkError(f"{label}.kind: must be 'input' or 'neurons', got {kind!r}")
        for i, d in enumerate(field(manifest, "projections", "manifest", list)):
            label = f"projections[{i}]"
            src, tgt = field(d, "source", label, str), field(d, "target", label, str)
            label = f"{label} ({src}->{tgt})"
            stdp = d.get("stdp")
            if stdp is not None:
                try:
                    stdp = STDP(**stdp)
                except TypeError as e:
                    raise NetworkError(f"{label}.stdp: {e}")
            if "conv" in d:
                opts = field(d, "conv", label, dict)
                extra = set(opts) - {"stride", "padding", "dilation", "groups"}
                if extra or stdp is not None or "mask" in d:
                    raise NetworkError(f"{label}.conv: unknown field(s) {sorted(extra)}" if extra
                                       else f"{label}: a convolution has no mask or stdp")
                net.connect_conv(src, tgt, value(field(d, "weight", label), f"{label}.weight"),
                                 delay=field(d, "delay", label, int), **opts)
                continue
            net.connect(
                src, tgt, value(field(d, "weight", label), f"{label}.weight"),
                mask=value(d.get("mask"), f"{label}.mask"),
                delay=field(d, "delay", label, int), stdp=stdp,
                plastic_mask=value(d.get("plastic_mask"), f"{label}.plastic_mask"))
        return net

    def __repr__(self) -> str:
        pops = ", ".join(f"{p.name}[{'x'.join(map(str, p.shape)) if p.shape else p.size}]"
                         for p in self.populations)
        return f"Network({pops}; {len(self.projections)} projections, {self.n_synapses} synapses)"


def _neuron_from(d: dict, label: str, name: str, value) -> NeuronModel:
    """The neuron model of the manifest's population entry ``d`` (``label``, named ``name``)."""
    model = fileformat.field(d, "model", label, str)
    cls = NEURON_MODELS.get(model)
    if cls is None:
        raise NetworkError(f"{label} ({name}).model: unknown neuron model {model!r} "
                           f"(known: {', '.join(NEURON_MODELS)})")
    params = fileformat.field(d, "params", label, dict)
    extra = set(params) - {f.name for f in dataclasses.fields(cls)}
    if extra:
        raise NetworkError(f"{label} ({name}).params: unknown parameter(s) {sorted(extra)} "
                           f"for model {model!r}")
    return cls(**{k: value(v, f"{label} ({name}).params.{k}") for k, v in params.items()})


def load(path) -> Network:
    """Read a network file written by :meth:`Network.save`.

    Raises
    ------
    NetworkError : the file is missing, not a snnkit archive, truncated, of a newer format
        version, or describes an invalid network; the message names the file and the field
    """
    return fileformat.read(path, Network.from_manifest)
