"""One partitioned network over several boards: :class:`Cluster`, the host as spike router.

Each board (real or emulated, any :class:`~snnkit.device.Device` URL) runs one core's network
of a :class:`~snnkit.partition.Partition`. Every step the host sends each board its input
spikes (network inputs and the spikes routed from other boards), one RUN frame of one step,
in the partition's wave order (boards of one wave in parallel threads), and routes the
spikes that come back: to boards of later waves in the same step (delay-0 crossings), to all
boards in the next step (delay >= 1). The result equals ``simulate(net, backend="fixed")``
bit for bit (docs/hardware.md, "Many cores"); the link bytes of each step are counted.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

import numpy as np
import torch

from .compiler import HardwareConfig
from .device import Device
from .errors import DeviceError
from .network import Network
from .partition import Partition, partition
from .result import Result


@dataclass
class LinkStats:
    """Link use of the last :meth:`Cluster.run` (all boards, all samples)."""

    steps: int  # steps run (samples x steps)
    bytes_out: int  # RUN frame bytes host -> boards
    bytes_in: int  # RUN response bytes boards -> host
    routed: int  # spikes the host forwarded from one board to another

    @property
    def bytes_per_step(self) -> float:
        """Both directions, all boards, per network step."""
        return (self.bytes_out + self.bytes_in) / max(self.steps, 1)

    def __str__(self) -> str:
        return (f"{self.steps} steps: {self.bytes_per_step:.1f} link bytes per step "
                f"({self.bytes_out:,} out, {self.bytes_in:,} in), "
                f"{self.routed / max(self.steps, 1):.1f} spikes routed per step")


class Cluster:
    """Several boards running one network, spikes routed between them by the host.

    Parameters
    ----------
    ports : one pyserial URL (or open port) per board
    **device_options : passed to each :class:`~snnkit.device.Device` (baudrate, timeout ...)

    Example::

        with snnkit.Cluster(["socket://127.0.0.1:5555", "socket://127.0.0.1:5556"]) as c:
            c.load(net)                       # partitioned over the two boards
            res = c.run(x)                    # == simulate(net, x, backend="fixed")
            print(c.link)                     # bytes per step

    Raises
    ------
    DeviceError : a board cannot be opened or does not identify itself
    """

    def __init__(self, ports, **device_options):
        ports = list(ports)
        if not ports:
            raise DeviceError("Cluster: give at least one board URL")
        self.devices: list[Device] = []
        try:
            for url in ports:
                self.devices.append(Device(url, **device_options))
        except BaseException:
            self.close()
            raise
        self.partition: Partition | None = None
        self.link: LinkStats | None = None
        self._learned = False  # the boards' weights learned since the load
        self._pool = ThreadPoolExecutor(max_workers=len(self.devices))

    @property
    def limits(self) -> HardwareConfig:
        """The smallest board's sizes (every core of a partition must fit every board)."""
        configs = [d.info.config for d in self.devices]
        return HardwareConfig(**{f.name: min(getattr(c, f.name) for c in configs)
                                 for f in fields(HardwareConfig)})

    def load(self, net: Network | Partition, allocator: str = "metis",
             learning: bool | None = None) -> Partition:
        """Partition ``net`` over the boards (or take a ready :class:`Partition`) and load
        each core's network onto its board (verified by read-back); returns the partition.

        ``learning``: switch on-chip STDP on or off on every board (default: on, for the
        projections whose STDP is enabled).

        Raises
        ------
        NetworkError : the network does not fit the boards
        DeviceError : more cores than boards, or a board failed
        """
        part = net if isinstance(net, Partition) else partition(
            net, len(self.devices), self.limits, allocator)
        if len(part.cores) > len(self.devices):
            raise DeviceError(f"Cluster: the partition has {len(part.cores)} cores but "
                              f"there are {len(self.devices)} boards")
        for core in part.cores:
            if core.net is not None:
                dev = self.devices[core.index]
                dev.load(core.net)
                if learning is not None:
                    dev.set_learning(learning)
        self.partition, self._learning, self._learned = part, learning, False
        return part

    def run(self, inputs, steps: int | None = None) -> Result:
        """Run the loaded network; the same :class:`Result` as ``simulate(net,
        backend="fixed")`` (spikes of every population; final weights of the learning
        projections). Batch samples run one after another, each from the reset state and
        the weights of the load. Link use: :attr:`link`.

        Raises
        ------
        SimulationError : bad inputs
        DeviceError : nothing loaded, or a board failed
        """
        from .inputs import check_inputs

        part = self.partition
        if part is None:
            raise DeviceError("Cluster: no network loaded: call cluster.load(net) first")
        net = part.net
        arrays, steps, batch = check_inputs(net, inputs, steps)
        learns = self._learning is not False and any(
            pr.stdp is not None and pr.stdp.enabled for pr in net.projections)
        active = [c for c in part.cores if c.net is not None]
        before = [(d.stats["bytes_out"], d.stats["bytes_in"]) for d in self.devices]
        spikes = {p.name: np.zeros((steps, batch, p.size), bool) for p in net.neuron_populations}
        finals: dict[int, list[dict[str, torch.Tensor]]] = {c.index: [] for c in active}
        routed = 0
        for b in range(batch):
            for core in active:  # every sample from the load's weights, an earlier run's too
                if learns and (b or self._learned):
                    self.devices[core.index].restore_weights()
                self.devices[core.index].reset()
            self._learned = learns
            x = {p.name: arrays[p.name][:, b].cpu().numpy() for p in net.inputs}
            prev = {name: np.zeros(s.shape[2], bool) for name, s in spikes.items()}
            for t in range(steps):
                now = {name: v[t] for name, v in x.items()}
                now.update({name: np.zeros(s.shape[2], bool) for name, s in spikes.items()})
                for wave in part.waves:
                    events = {k: part.step_events(k, now, prev) for k in wave}
                    routed += sum(self._routed(k, now, prev) for k in wave)
                    outs = self._step(wave, events)
                    for k in wave:
                        part.scatter(k, outs[k], now)
                for name in spikes:
                    spikes[name][t, b] = now[name]
                prev = now
            if learns:
                for core in active:
                    finals[core.index].append(self.devices[core.index].read_weights())
        after = [(d.stats["bytes_out"], d.stats["bytes_in"]) for d in self.devices]
        self.link = LinkStats(steps * batch, sum(a[0] - b[0] for a, b in zip(after, before)),
                              sum(a[1] - b[1] for a, b in zip(after, before)), routed)
        return self._result(arrays, spikes, finals, steps, batch)

    def _routed(self, k: int, now, prev) -> int:
        """Spikes core k gets from other boards this step (through its proxies)."""
        return sum(int(np.count_nonzero((prev if s.lag else now)[s.population][s.indices]))
                   for s in self.partition.cores[k].sources.values() if s.proxy)

    def _step(self, wave: list[int], events: dict[int, list[int]]) -> dict[int, list[int]]:
        """One step on the boards of one wave (in parallel when there are several)."""
        def one(k):
            return self.devices[k].run_events([events[k]])[0]

        if len(wave) == 1:
            return {wave[0]: one(wave[0])}
        return dict(zip(wave, self._pool.map(one, wave)))

    def _result(self, arrays, spikes, finals, steps, batch) -> Result:
        part = self.partition
        results = []
        for core in part.cores:
            if core.net is None:
                results.append(None)
                continue
            sp = {name: torch.from_numpy(spikes[name][..., idx].copy())
                  for name, idx in core.parts.items()}
            w = {}
            if finals[core.index]:
                for name in finals[core.index][0]:
                    w[name] = torch.stack([f[name] for f in finals[core.index]])
            results.append(Result("cluster", steps, batch, sp, {}, w,
                                  lsb=2.0 ** -part.net.quantization.frac_bits))
        return part.merge(arrays, results, "cluster")

    def close(self) -> None:
        """Close every board's port."""
        for d in self.devices:
            d.close()
        if hasattr(self, "_pool"):
            self._pool.shutdown(wait=False)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
