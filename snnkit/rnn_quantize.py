"""A recurrent model read by :func:`snnkit.rnn.read`, made into the :class:`QRNN` that a
recurrent conversion reproduces exactly: the clip value of every activation from the
calibration data (or the model's own QCFS), its levels, and the weights on the hardware grid.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .ann import activation_scale
from .errors import NetworkError
from .qcfs import QCFS
from .qrnn import QRNN
from .rnn import INSTEAD, Recorder, Spec, read


def _lam(act_values: np.ndarray, module, percentile: float) -> float:
    if isinstance(module, QCFS):
        return float(module.threshold.detach())
    v = activation_scale(np.maximum(act_values, 0), (act_values.shape[1],), "percentile",
                         percentile, False)
    return float(v[0])


def to_qrnn(model: nn.Module, calibration_data, levels: int = 4, output_levels: int | None = None,
            input_levels: int = 16, input_code: str = "binary", weight_bits: int = 8,
            percentile: float = 99.9) -> QRNN:
    """The :class:`QRNN` of a float recurrent model: every activation a QCFS of ``levels``
    (or its own, for QCFS modules) with the clip value at the ``percentile`` of its
    calibration activations, the output too (``output_levels``), weights on the hardware
    grid. Fine-tune it (``snnkit.datasets.fit_qrnn``) before converting.

    Parameters
    ----------
    model : see the module docstring for the accepted forms
    calibration_data : sequences ``[batch, T, ...]`` as the model takes them, values in [0, 1]
        on the grid ``1/input_levels``

    Raises
    ------
    NetworkError : an unsupported form (named), or bad calibration data
    """
    if isinstance(model, QRNN):
        return model
    calib = torch.as_tensor(np.asarray(calibration_data.detach().cpu() if isinstance(
        calibration_data, torch.Tensor) else calibration_data), dtype=torch.float64)
    if calib.dim() < 3 or len(calib) == 0:
        raise NetworkError(f"calibration_data: expected [batch, T, ...] sequences, got shape "
                           f"{tuple(calib.shape)}")
    eshape = tuple(calib.shape[2:])
    loops, spec = read(model, eshape)
    acts = _activations(loops, calib, spec)
    return _build_qrnn(spec, acts, eshape, levels, output_levels or levels, input_levels,
                       input_code, weight_bits, percentile, loops, calib)


def _activations(model, calib: torch.Tensor, spec: Spec) -> list[np.ndarray]:
    """Every slot's and tail layer's activations on the calibration data ``[samples, n]``,
    and the model's output last; checks the spec against the model."""
    rec = Recorder(model)
    try:
        y = rec.run(model, calib)
        outs = [inp for _, _, inp in rec.calls]
    finally:
        rec.close()
    want = _run_spec(spec, calib)
    got = y.reshape(len(calib), -1).numpy()
    if want.shape != got.shape or not np.allclose(want, got, rtol=1e-6, atol=1e-6):
        raise NetworkError("model: its output differs from the recurrence read from it (an "
                           "operation that is not an affine map or an nn.ReLU/QCFS module, "
                           f"e.g. torch.relu or a product of activations?); {INSTEAD}")
    del outs
    return _spec_activations(spec, calib)


def _act(module, z: np.ndarray) -> np.ndarray:
    if isinstance(module, QCFS):
        lv, lam = module.levels, float(module.threshold.detach())
        return np.clip(np.floor(z * lv / lam + 0.5), 0, lv) * (lam / lv)
    return np.maximum(z, 0.0)


def _spec_activations(spec: Spec, calib: torch.Tensor) -> list[np.ndarray]:
    """Activations of every slot (all elements) and tail layer, then the output."""
    x = calib.reshape(len(calib), calib.shape[1], -1).numpy()
    T = x.shape[1]
    h = [np.zeros((len(x), len(s["bias"]))) for s in spec.slots]
    seen = [[] for _ in spec.slots]
    for t in range(T):
        src = x[:, t]
        for k, s in enumerate(spec.slots):
            z = src @ s["w_in"].T + s["bias"]
            if s["w_rec"] is not None:
                z = z + h[k] @ s["w_rec"].T
            h[k] = src = _act(s["module"], z)
            seen[k].append(src)
    res = [np.concatenate(v) for v in seen]
    src = h[-1]
    for tl in spec.tail:
        src = _act(tl["module"], src @ tl["w"].T + tl["bias"])
        res.append(src)
    if spec.out_w is not None:
        src = src @ spec.out_w.T + spec.out_b
    res.append(src)
    return res


def _run_spec(spec: Spec, calib: torch.Tensor) -> np.ndarray:
    return _spec_activations(spec, calib)[-1]


def _build_qrnn(spec, acts, eshape, levels, output_levels, input_levels, input_code,
                weight_bits, percentile, loops, calib) -> QRNN:
    del loops, calib
    n_feat = next(k for k, s in enumerate(spec.slots) if s["w_rec"] is not None)
    layers = spec.slots + spec.tail
    if spec.out_w is None and not spec.tail:
        raise NetworkError("model: returns the hidden state itself; add a read-out layer "
                           "(e.g. nn.Linear) after the recurrence")
    lams, lvs = [], []
    for k, ly in enumerate(layers):
        last = k == len(layers) - 1 and spec.out_w is None
        m = ly["module"]
        lvs.append(m.levels if isinstance(m, QCFS) else (output_levels if last else levels))
        lams.append(_lam(acts[k], m, percentile))
    if spec.out_w is not None:
        lvs.append(output_levels)
        lams.append(_lam(acts[-1], None, percentile))
    feats = [nn.Linear(len(s["w_in"][0]), len(s["w_in"])) for s in spec.slots[:n_feat]]
    hidden = [len(s["w_in"]) for s in spec.slots[n_feat:]]
    readout_sizes = [len(t["w"]) for t in spec.tail]
    outputs = len(spec.out_w) if spec.out_w is not None else readout_sizes.pop()
    q = QRNN(eshape if not feats else eshape, hidden, outputs,
             levels=lvs[n_feat:n_feat + len(hidden)], output_levels=lvs[-1], features=feats,
             feature_levels=lvs[:n_feat] or None, readout=readout_sizes,
             readout_levels=lvs[n_feat + len(hidden):-1] or None, input_levels=input_levels,
             input_code=input_code, weight_bits=weight_bits)
    mats = [(s["w_in"], s["w_rec"], s["bias"]) for s in spec.slots]
    mats += [(t["w"], None, t["bias"]) for t in spec.tail]
    if spec.out_w is not None:
        mats.append((spec.out_w, None, spec.out_b))
    unit_in = 1.0 / input_levels
    with torch.no_grad():
        for layer, (w, r, b), lam, lv in zip([*q.features, *q.rnn, *q.readout], mats, lams, lvs):
            unit = lam / lv
            layer.op.weight.copy_(torch.from_numpy(w * unit_in / unit))
            layer.op.bias.copy_(torch.from_numpy(b / unit))
            if r is not None:
                layer.rec.copy_(torch.from_numpy(r))
            unit_in = unit
    return q.float().eval()
