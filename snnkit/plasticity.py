"""Trace-based pair STDP, written once for both arithmetics (docs/fixed-point.md, "STDP").

Per plastic projection the state is the weights ``[batch, target, source]`` (each batch
element learns on its own copy), a presynaptic trace ``[batch, source]`` fed by spike
*arrivals* (after the axonal delay) and a postsynaptic trace ``[batch, target]``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .arith import Arith


class STDPParams(NamedTuple):
    a_plus: float | int  # float, or integer with (frac + stdp_frac) fractional bits
    a_minus: float | int
    pre_decay: float | int  # float, or unsigned with decay_bits fractional bits
    post_decay: float | int
    nearest: bool  # nearest-neighbour rule: a spike sets the trace to 1 instead of adding 1
    soft: bool  # soft (multiplicative) bounds
    w_min: float | int
    w_max: float | int
    shift_hard: int  # integer arithmetic: right shift of a*x (hard bounds) ...
    shift_soft: int  # ... and of a*x*(bound distance) (soft bounds); 0 for floats
    plastic: torch.Tensor  # bool [target, source]: which synapses learn


class STDPState(NamedTuple):
    w: torch.Tensor  # [batch, target, source]
    x_pre: torch.Tensor  # [batch, source]
    x_post: torch.Tensor  # [batch, target]


def stdp_step(pre: torch.Tensor, post: torch.Tensor, s: STDPState, p: STDPParams,
              ar: Arith) -> STDPState:
    """One plasticity update after the neurons of step t have been updated.

    Order: 1. both traces decay; 2. the weight change uses the *decayed* traces (so a pre and
    a post spike in the same step do not pair with each other); 3. this step's spikes are
    added to the traces. ``pre`` are arrivals ``[batch, source]``, ``post`` target spikes.
    """
    x_pre = ar.decay(s.x_pre, p.pre_decay)
    x_post = ar.decay(s.x_post, p.post_decay)
    postf, pref = post.to(s.w.dtype), pre.to(s.w.dtype)
    if p.soft:  # dw depends on w, so compute per synapse
        up = ar.scale(x_pre[:, None, :] * (p.w_max - s.w), p.a_plus, p.shift_soft)
        down = ar.scale(x_post[:, :, None] * (s.w - p.w_min), p.a_minus, p.shift_soft)
        dw = postf[:, :, None] * up - pref[:, None, :] * down
    else:  # dw is an outer product of per-neuron terms
        up = ar.scale(x_pre, p.a_plus, p.shift_hard)  # [batch, source]
        down = ar.scale(x_post, p.a_minus, p.shift_hard)  # [batch, target]
        dw = postf[:, :, None] * up[:, None, :] - down[:, :, None] * pref[:, None, :]
    w = torch.where(p.plastic, (s.w + dw).clamp(p.w_min, p.w_max), s.w)
    one = ar.trace_one
    if p.nearest:
        x_pre = torch.where(pre, torch.full_like(x_pre, one), x_pre)
        x_post = torch.where(post, torch.full_like(x_post, one), x_post)
    else:
        x_pre = ar.trace_sat(x_pre + pref * one)
        x_post = ar.trace_sat(x_post + postf * one)
    return STDPState(w=w, x_pre=x_pre, x_post=x_post)
