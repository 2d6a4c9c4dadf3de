"""The built-in tasks of :func:`snnkit.sweep`: one configuration in, a dict of metrics out.

A task is any function ``task(params: dict) -> dict`` of numbers (a sweep names it
``"package.module:function"``); these three cover the paths snnkit has on the digits data:

- ``convert``: the example MLP (trained once per seed and cached) converted to an SNN and
  scored on the test digits (conversion hyper-parameters);
- ``train``: the MLP trained with the given hyper-parameters (not cached), then converted and
  scored as above (training hyper-parameters);
- ``stdp``: the Diehl & Cook style unsupervised experiment (STDP and network
  hyper-parameters; :func:`snnkit.unsupervised.experiment`).
"""

from __future__ import annotations

from .errors import SweepError


def take(params: dict, task: str) -> dict:
    """Built-in ``task``'s parameters: its defaults (:data:`PARAMS`) updated by ``params``;
    SweepError naming those it does not know (checked when the sweep is configured too)."""
    allowed = PARAMS[task]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise SweepError(f"parameters {unknown} are not known to task {task!r} (known: "
                         f"{sorted(allowed)})")
    return {**allowed, **params}


SCORES = ("accuracy", "spikes", "ann_accuracy")  # what convert and train return


def _score(model, p: dict, x_tr, x_te, y_te) -> dict:
    from . import datasets
    from .convert import convert as to_snn

    conv = to_snn(model, x_tr[:500], mode="rate", input=p["input"],
                  normalization=p["normalization"], percentile=p["percentile"],
                  per_channel=p["per_channel"], v_init=p["v_init"], steps=p["steps"],
                  weight_bits=p["weight_bits"])
    n = p["n_test"] or len(x_te)
    ev = datasets.evaluate(conv, x_te[:n], y_te[:n], p["steps"], p["backend"], seed=p["seed"])
    ann = float((datasets.ann_predict(model, x_te[:n]) == y_te[:n]).mean())
    return dict(zip(SCORES, (ev["accuracy"], ev["spikes"], ann)))


CONVERT = {"steps": 16, "backend": "fixed", "input": "current", "normalization": "percentile",
           "percentile": 99.9, "per_channel": False, "v_init": 0.5, "weight_bits": 8,
           "hidden": 128, "n_test": 0, "seed": 0}


def convert(params: dict) -> dict:
    """Rate conversion of the digits MLP (trained once per seed and width, cached):
    ``accuracy`` of the SNN, ``spikes`` per inference, ``ann_accuracy``. Parameters:
    :data:`CONVERT` (``n_test`` 0: every test digit)."""
    from . import datasets

    p = take(params, "convert")
    x_tr, _, x_te, y_te = datasets.digits()
    model = datasets.train_mlp(seed=p["seed"], hidden=p["hidden"])
    return _score(model, p, x_tr, x_te, y_te)


TRAIN = {**CONVERT, "epochs": 30, "lr": 3e-3, "batch_size": 64}


def train(params: dict) -> dict:
    """Train the digits MLP with ``epochs``, ``lr``, ``batch_size``, ``hidden`` and ``seed``,
    convert it and score it as :func:`convert` does. Parameters: :data:`TRAIN`."""
    import torch

    from . import datasets

    p = take(params, "train")
    x_tr, y_tr, x_te, y_te = datasets.digits()
    torch.manual_seed(p["seed"])
    model = datasets.fit(datasets.mlp(p["hidden"]), x_tr, y_tr, epochs=p["epochs"], lr=p["lr"],
                         batch_size=p["batch_size"], seed=p["seed"])
    return _score(model, p, x_tr, x_te, y_te)


STDP_TASK = {"backend": "fixed", "quick": True, "n_exc": 100, "epochs": 1, "seed": 0,
             "a_plus": None, "a_minus": None, "theta_plus": 0.5, "threshold": 40.0,
             "w_max": 0.98}


def stdp(params: dict) -> dict:
    """The unsupervised digits experiment: ``accuracy`` (class-profile vote) and
    ``accuracy_mean_vote``. Parameters: :data:`STDP_TASK` (``a_plus`` / ``a_minus`` None:
    the experiment's STDP rule; otherwise that rule with these amplitudes)."""
    import dataclasses

    from . import unsupervised as u

    p = take(params, "stdp")
    net_kw = {k: p[k] for k in ("theta_plus", "threshold", "w_max")}
    if p["a_plus"] is not None or p["a_minus"] is not None:
        rule = u.build_network(1, w_max=p["w_max"]).projections[0].stdp
        net_kw["stdp"] = dataclasses.replace(
            rule, **{k: float(p[k]) for k in ("a_plus", "a_minus") if p[k] is not None})
    r = u.experiment(p["backend"], quick=p["quick"], n_exc=p["n_exc"], epochs=p["epochs"],
                     seed=p["seed"], **net_kw)
    return {"accuracy": r["accuracy"], "accuracy_mean_vote": r["accuracy_mean_vote"]}


BUILTIN = {"convert": convert, "train": train, "stdp": stdp}
# each built-in task's parameters and the metrics it returns (checked before a sweep starts)
PARAMS = {"convert": CONVERT, "train": TRAIN, "stdp": STDP_TASK}
METRICS = {"convert": SCORES, "train": SCORES, "stdp": ("accuracy", "accuracy_mean_vote")}
