"""sklearn's digits with a fixed split, and the built-in example ANNs trained on it.

Everything here is deterministic for a given seed and needs no download (the digits ship with
scikit-learn). Trained weights are cached under ``$SNNKIT_CACHE`` or ``~/.cache/snnkit``.

A whole conversion experiment in a few lines::

    from snnkit import datasets
    from snnkit.convert import convert

    x_tr, y_tr, x_te, y_te = datasets.digits()
    model = datasets.train_mlp()
    conv = convert(model, x_tr[:500], mode="rate")
    print(datasets.evaluate(conv, x_te, y_te, steps=32, backend="fixed"))
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .ann import to_qcfs
from .errors import NetworkError
from .qrnn import QRNN

SPLIT_SEED = 0  # the fixed train/test split; never change it, results depend on it
TEST_FRACTION = 0.25
# hyper-parameters are chosen on this many training samples held out (digits_validation),
# never on the test split, which is read once for the figure reported
VALIDATION_SIZE = 200


def cache_dir() -> Path:
    """``$SNNKIT_CACHE`` or ``~/.cache/snnkit``, created on demand."""
    d = Path(os.environ.get("SNNKIT_CACHE") or Path.home() / ".cache" / "snnkit")
    d.mkdir(parents=True, exist_ok=True)
    return d


def digits(image: bool = False):
    """sklearn's 8x8 digits, pixel values / 16 (so in [0, 1], multiples of 1/16).

    Parameters
    ----------
    image : shape samples ``[1, 8, 8]`` (for the CNN) instead of ``[64]``

    Returns
    -------
    ``(x_train, y_train, x_test, y_test)``: float32 inputs, int64 labels; 1347 / 450 samples,
    stratified, the same on every machine
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    if image:
        x = x.reshape(-1, 1, 8, 8)
    xtr, xte, ytr, yte = train_test_split(x, d.target.astype(np.int64), test_size=TEST_FRACTION,
                                          random_state=SPLIT_SEED, stratify=d.target)
    return xtr, ytr, xte, yte


def digits_validation(n: int = VALIDATION_SIZE):
    """The training split cut in two for choosing hyper-parameters: ``(x_fit, y_fit, x_val,
    y_val)``, ``n`` validation samples, stratified, the same on every machine; the test
    split is not touched."""
    from sklearn.model_selection import train_test_split

    xtr, ytr, _, _ = digits()
    xf, xv, yf, yv = train_test_split(xtr, ytr, test_size=n, random_state=SPLIT_SEED,
                                      stratify=ytr)
    return xf, yf, xv, yv


def mlp(hidden: int = 128) -> nn.Sequential:
    """64 -> hidden -> 10 with ReLU and Dropout."""
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(hidden, 10))


def cnn() -> nn.Sequential:
    """A small CNN for 1x8x8 digits: conv-BN-ReLU-pool, conv-ReLU-pool, linear."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Dropout(0.1), nn.Linear(64, 10))


def fit(model: nn.Module, x, y, epochs: int = 60, lr: float = 3e-3, batch_size: int = 64,
        seed: int = 0) -> nn.Module:
    """Train in place with Adam and cross-entropy, deterministically for ``seed``; leaves the
    model in eval mode, in float32.

    The training runs in float64: in float32 the sums' order follows the CPU's vector width
    (torch's and MKL's AVX2 and AVX-512 kernels), and 100 epochs grow that last-bit difference
    into another model with another accuracy; in float64 they train the same example MLP bit
    for bit (the CNN's convolutions and batch norm still differ in the last bits)."""
    torch.manual_seed(seed)
    model.double()
    xt, yt = torch.as_tensor(np.asarray(x), dtype=torch.float64), torch.as_tensor(np.asarray(y))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=gen).split(batch_size):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
        sched.step()
    return model.float().eval()


def _cached(key: str, build, train) -> nn.Module:
    model = build()
    # "f64": trained by fit's float64 recipe; older float32-trained files are not reused
    path = cache_dir() / f"{key}-f64-torch{torch.__version__.split('+')[0]}.pt"
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    train(model)
    tmp = path.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)
    return model.eval()


def train_mlp(seed: int = 0, epochs: int = 60, hidden: int = 128, cache: bool = True):
    """The example MLP trained on the digits training set (cached)."""
    xtr, ytr, _, _ = digits()
    key = f"digits-mlp{hidden}-s{seed}-e{epochs}"
    return _train(key, lambda: mlp(hidden), xtr, ytr, epochs, seed, cache)


def train_cnn(seed: int = 0, epochs: int = 60, cache: bool = True):
    """The example CNN trained on the digits training set (cached)."""
    xtr, ytr, _, _ = digits(image=True)
    return _train(f"digits-cnn-s{seed}-e{epochs}", cnn, xtr, ytr, epochs, seed, cache)


def _train(key, build, x, y, epochs, seed, cache):
    def train(m):
        fit(m, x, y, epochs=epochs, seed=seed)

    if not cache:
        m = build()
        train(m)
        return m
    return _cached(key, lambda: _seeded(build, seed), train)


def _seeded(build, seed):
    torch.manual_seed(seed)
    return build()


def train_qcfs(base: str = "mlp", levels: int = 8, seed: int = 0, epochs: int = 40,
               cache: bool = True):
    """The example ``base`` ("mlp" or "cnn") fine-tuned with :class:`~snnkit.qcfs.QCFS`
    activations of ``levels`` steps (output included), ready for a lossless conversion."""
    if base not in ("mlp", "cnn"):
        raise NetworkError(f"base: must be 'mlp' or 'cnn', got {base!r}")
    xtr, ytr, _, _ = digits(image=base == "cnn")
    ann = train_mlp(seed) if base == "mlp" else train_cnn(seed)

    def build():
        return to_qcfs(ann, levels, xtr[:500])

    def train(m):
        fit(m, xtr, ytr, epochs=epochs, lr=1e-3, seed=seed)

    if not cache:
        m = build()
        train(m)
        return m.eval()
    return _cached(f"digits-{base}-qcfs{levels}-s{seed}-e{epochs}", build, train)


def example_model(name: str) -> nn.Module:
    """A built-in example by name: "mlp", "cnn", "mlp-qcfs8", "cnn-qcfs16", ..."""
    base, levels = example_name(name)
    if levels:
        return train_qcfs(base, levels)
    return train_mlp() if base == "mlp" else train_cnn()


def example_name(name: str) -> tuple[str, int]:
    """``(base, QCFS levels or 0)`` of an example's name; an unknown name is refused before
    anything is trained."""
    base, _, q = name.partition("-")
    if base not in ("mlp", "cnn") or (q and not (q.startswith("qcfs") and q[4:].isdigit())):
        raise NetworkError(f"example: unknown example {name!r}; choose 'mlp', 'cnn', "
                           f"'mlp-qcfsL' or 'cnn-qcfsL' (L levels)")
    return base, int(q[4:]) if q else 0


# sequence tasks: name -> (element shape, hidden units, levels, output levels, input code).
# The row-wise model fits the iCE40 target: 40 input + 2 clock + 56 x 3 + 10 x 4 = 250 of 256
# neurons; one pixel per element affords the unary code (the finest first-layer weights).
# S/PS need not fit it: 16 levels (2112 neurons) instead of 8 keep the QRNN within a point of
# its float RNN (chosen on digits_validation, see benchmarks/RESULTS.md).
SEQUENCE_TASKS = {"row": ((8,), 56, 3, 4, "split"), "s": ((1,), 128, 16, 4, "unary"),
                  "ps": ((1,), 128, 16, 4, "unary")}
# and their default training: (float epochs, QRNN epochs, QRNN learning rate, weight decay,
# rounding noise QRNN.noise, QRNN.recurrent_init). Over 64 elements the straight-through QRNN
# fine-tuning drifts at 3e-4, so S/PS fine-tune gently; their float RNN overfits 1347
# sequences, hence the stronger weight decay; an orthogonal recurrent start (the state
# neither fades nor grows over 64 pixels) lifts it most (validation: 87 -> 90.5-94%).
SEQUENCE_TRAINING = {"row": (100, 40, 3e-4, 0.05, 1.0, "normal"),
                     "s": (150, 10, 3e-5, 0.3, 2.0, "orthogonal"),
                     "ps": (150, 10, 3e-5, 0.3, 2.0, "orthogonal")}
PERMUTATION_SEED = 0  # PS-digits' fixed pixel order


def digit_sequences(task: str, x) -> np.ndarray:
    """Digits ``[n, 64]`` as sequences ``[n, T, *element]``: "row" (8 rows of 8 pixels), "s"
    (64 pixels one by one, S-digits) or "ps" (the same in a fixed random order, PS-digits)."""
    if task not in SEQUENCE_TASKS:
        raise NetworkError(f"task: must be one of {tuple(SEQUENCE_TASKS)}, got {task!r}")
    x = np.asarray(x).reshape(len(x), 64)
    if task == "row":
        return x.reshape(-1, 8, 8)
    if task == "ps":
        x = x[:, np.random.default_rng(PERMUTATION_SEED).permutation(64)]
    return x.reshape(-1, 64, 1)


def fit_qrnn(q: QRNN, x, y, epochs: int, lr: float, smoothing: float = 0.0,
             seed: int = 0, weight_decay: float = 0.05) -> QRNN:
    """Train in place (float64, like :func:`fit`): AdamW (``weight_decay``), cosine
    schedule, gradient norm clipped to 1 (a ReLU RNN over 64 elements needs it). Trains the
    float model (with the rounding noise ``q.noise``) or the QRNN as ``q.exact`` says."""
    torch.manual_seed(seed)
    q.double()
    opt = torch.optim.AdamW(q.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, epochs))
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.as_tensor(np.asarray(x), dtype=torch.float64), torch.as_tensor(np.asarray(y))
    q.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=gen).split(64):
            loss = nn.functional.cross_entropy(q(xt[idx]), yt[idx], label_smoothing=smoothing)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(q.parameters(), 1.0)
            opt.step()
        sched.step()
    return q.float().eval()


def train_qrnn(task: str = "row", exact: bool = True, seed: int = 0, epochs: int | None = None,
               qepochs: int | None = None, cache: bool = True, validation: bool = False) -> QRNN:
    """The example sequence model of ``task`` (:data:`SEQUENCE_TASKS`, cached): a float
    clipped-ReLU RNN trained ``epochs`` with label smoothing 0.1 and rounding noise
    (:attr:`QRNN.noise`; ``exact=False`` returns it), then fine-tuned ``qepochs`` as the QRNN
    (integer weights and levels); epochs default to :data:`SEQUENCE_TRAINING`.
    ``validation``: trained on the training split less :func:`digits_validation`'s samples,
    to be scored on those (how the defaults are chosen)."""
    if task not in SEQUENCE_TASKS:
        raise NetworkError(f"task: must be one of {tuple(SEQUENCE_TASKS)}, got {task!r}")
    shape, hidden, levels, out_levels, code = SEQUENCE_TASKS[task]
    e_default, q_default, qlr, wd, noise, init = SEQUENCE_TRAINING[task]
    epochs = e_default if epochs is None else epochs
    qepochs = q_default if qepochs is None else qepochs
    xtr, ytr = digits_validation()[:2] if validation else digits()[:2]
    xtr = digit_sequences(task, xtr)

    def build():
        q = QRNN(shape, hidden, 10, levels=levels, output_levels=out_levels, input_code=code,
                 seed=seed, recurrent_init=init)
        q.exact, q.noise = False, noise
        return q

    def train_float(q):
        fit_qrnn(q, xtr, ytr, epochs, 3e-3, smoothing=0.1, seed=seed, weight_decay=wd)

    key = (f"digits-qrnn-{task}-h{hidden}x{levels}o{out_levels}-{code}-s{seed}-e{epochs}"
           f"-wd{wd:g}-noise{noise:g}" + ("" if init == "normal" else f"-{init}")
           + (f"-val{VALIDATION_SIZE}" if validation else ""))
    if not cache:
        q = build()
        train_float(q)
    else:
        q = _cached(key, build, train_float)
    q.exact = False
    if not exact:
        return q

    def from_float():
        q2 = build()
        q2.load_state_dict(q.state_dict())
        q2.exact = True
        return q2

    def train_exact(q2):
        fit_qrnn(q2, xtr, ytr, qepochs, qlr, seed=seed, weight_decay=wd)

    if not cache:
        q2 = from_float()
        train_exact(q2)
        return q2
    q2 = _cached(f"{key}-q{qepochs}-lr{qlr:g}", from_float, train_exact)
    q2.exact = True
    return q2


def ann_predict(model: nn.Module, x) -> np.ndarray:
    """The ANN's class per sample (argmax; ties: lowest index, as the SNN's readout)."""
    with torch.no_grad():
        out = model.eval()(torch.as_tensor(np.asarray(x), dtype=torch.float32))
    return out.argmax(-1).numpy()


def evaluate(conv, x, y, steps: int | None = None, backend: str = "float",
             batch_size: int = 256, seed: int = 0) -> dict:
    """Accuracy and spikes per inference of a :class:`~snnkit.convert.Conversion`.

    Returns
    -------
    dict with ``accuracy``, ``spikes`` (mean spikes per inference in the converted layers),
    ``predictions`` (array) and ``steps``
    """
    preds, spikes = [], []
    x, y = np.asarray(x), np.asarray(y)
    for i in range(0, len(x), batch_size):
        res = conv.run(x[i:i + batch_size], steps, backend, seed=None if seed is None else seed + i)
        preds.append(res.predict(conv.output).cpu().numpy())
        spikes.append(conv.spike_count(res))
    p = np.concatenate(preds)
    return {"accuracy": float((p == y).mean()), "spikes": float(np.concatenate(spikes).mean()),
            "predictions": p, "steps": steps or conv.steps}
