"""Recurrent conversion: QRNN -> recurrent spiking network, exact on every element, float and
fixed point; models read from nn.RNN and loop cells; unsupported forms refused."""

import numpy as np
import pytest
import torch
from torch import nn

import snnkit
from snnkit.convert import QRNN, SequenceConversion, convert, to_qrnn
from snnkit.convert_rnn import build, same_levels
from snnkit.errors import NetworkError, SimulationError
from snnkit.qcfs import QCFS


def _set(layer, w, b, rec=None):
    with torch.no_grad():
        layer.op.weight.copy_(torch.tensor(w, dtype=torch.float32))
        layer.op.bias.copy_(torch.tensor(b, dtype=torch.float32))
        if rec is not None:
            layer.rec.copy_(torch.tensor(rec, dtype=torch.float32))


def _two_step():
    """1 input value (K = 4, unary), 2 hidden units with 3 levels, 2 outputs with 2 levels;
    every weight a multiple of 1/64, the grid of th = 64 (largest |w| = 1)."""
    q = QRNN(1, 2, 2, levels=3, output_levels=2, input_levels=4, input_code="unary")
    _set(q.rnn[0], [[0.5], [0.25]], [0.0, 0.25], [[0.5, 0.0], [1.0, -0.5]])
    _set(q.readout[0], [[1.0, 0.0], [0.5, 0.5]], [0.0, -1.0])
    return q


def test_hand_computed_two_step_recurrence_element_by_element():
    # t=0: m=2: u = (1.0, 0.5 + 0.25) -> levels floor(u + 1/2) = (1, 1)
    # t=1: m=3: u = (1.5 + 0.5*1, 0.75 + 1.0*1 - 0.5*1 + 0.25) = (2.0, 1.5) -> (2, 2)
    # read-out: (2, 0.5*2 + 0.5*2 - 1) = (2, 1) -> levels (2, 1): class 0
    q = _two_step()
    x = np.array([[[2 / 4], [3 / 4]]])
    hidden, out = q.levels(x)
    assert hidden[:, 0].tolist() == [[1, 1], [2, 2]]
    assert out.tolist() == [[2, 1]]
    conv = build(q)
    assert conv.network.population("hidden1").size == 6  # 2 units x 3 level neurons
    assert conv.network.quantization.frac_bits == 6
    for backend in ("float", "fixed"):
        res = conv.run(x, backend)
        assert res.steps == 2  # one step per element
        h = res.spikes["hidden1"][:, 0].cpu().numpy().reshape(2, 2, 3)
        # level neuron j of a unit fires iff its level is >= j + 1
        assert h.tolist() == [[[1, 0, 0], [1, 0, 0]], [[1, 1, 0], [1, 1, 0]]]
        got_hidden, got_out = conv.levels_of(res)
        assert got_hidden[:, 0].tolist() == [[1, 1], [2, 2]]
        assert got_out.tolist() == [[2, 1]]
        assert conv.predict(result=res).tolist() == [0]


@pytest.mark.parametrize("k", [1, 2, 3, 4, 7, 8, 15, 16, 17, 32])
def test_input_codes_send_every_integer(k):
    from snnkit.qrnn import code_spikes, code_weights

    m = np.arange(k + 1)
    for code in ("binary", "split", "unary"):
        w = code_weights(code, k)
        assert np.array_equal(code_spikes(code, k, m).astype(np.int64) @ w, m), code
    binary, split = code_weights("binary", k), code_weights("split", k)
    assert len(split) <= len(binary) + 1
    if k >= 4:  # the largest multiplier halved
        assert split.max() * 2 == binary.max()
    assert code_weights("split", 16).tolist() == [1, 2, 4, 8, 8]


def _random_qrnn(seed):
    rng = np.random.default_rng(seed)
    code = str(rng.choice(["binary", "split", "unary"]))
    k = int(rng.choice([1, 3, 4, 16]))
    conv_feat = rng.random() < 0.3
    shape = (1, int(rng.integers(3, 6))) if conv_feat else (int(rng.integers(1, 5)),)
    features = [nn.Conv1d(1, 2, 3, padding=1)] if conv_feat else \
        ([nn.Linear(shape[0], int(rng.integers(2, 6)))] if rng.random() < 0.3 else [])
    hidden = [int(rng.integers(1, 7)) for _ in range(int(rng.integers(1, 3)))]
    levels = [int(rng.integers(1, 6)) for _ in hidden]
    q = QRNN(shape, hidden, int(rng.integers(2, 5)), levels=levels,
             output_levels=int(rng.integers(1, 6)), features=features,
             readout=[int(rng.integers(2, 5))] if rng.random() < 0.3 else [],
             input_levels=k, input_code=code, weight_bits=int(rng.choice([6, 8])), seed=seed)
    with torch.no_grad():  # larger weights than the training init: levels of every value
        for p in q.parameters():
            p.copy_(torch.from_numpy(rng.normal(0, 1.2, p.shape)))
    x = rng.integers(0, k + 1, (7, int(rng.integers(1, 6))) + shape) / k
    return q, x


@pytest.mark.parametrize("seed", range(9))
def test_random_qrnns_spiking_network_equals_qrnn_on_every_element(seed):
    q, x = _random_qrnn(seed)
    ref = q.levels(x)
    with torch.no_grad():  # the training forward computes the same output levels
        out = q.double()(torch.from_numpy(x)) * (q.readout[-1].levels / 8.0)
        assert torch.equal(out.round(), torch.from_numpy(ref[-1]).double())
        assert torch.allclose(out, out.round())
    conv = build(q, bias=("clock", "neuron", "input")[seed % 3])
    runs = {b: conv.run(x, b) for b in ("float", "fixed")}
    for backend, res in runs.items():
        got = conv.levels_of(res)
        for g, r, name in zip(got, ref, conv.layers):
            assert np.array_equal(g, r), (backend, name)
    # fixed == float spike for spike: every value of the network is on the fixed-point grid
    for name in runs["float"].spikes:
        assert torch.equal(runs["float"].spikes[name].cpu(), runs["fixed"].spikes[name].cpu())
    assert np.array_equal(conv.predict(x), q.predict(x))


def test_same_levels_flags_exactly_the_samples_that_differ():
    q, x = _random_qrnn(1)
    conv = build(q)
    res, ref = conv.run(x, "fixed"), q.levels(x)
    assert same_levels(conv, res, ref).all()
    for layer, index in ((0, (-1, 2, 0)), (-1, (4, 0))):  # a hidden level; an output level
        bad = [r.copy() for r in ref]
        bad[layer][index] += 1
        assert same_levels(conv, res, bad).tolist() == [i != index[-2] for i in range(len(x))]


def test_saved_network_runs_the_same():
    q, x = _random_qrnn(3)
    conv = build(q)
    net = snnkit.load(_save(conv.network))
    a = snnkit.simulate(conv.network, conv.encode(x), backend="fixed")
    b = snnkit.simulate(net, conv.encode(x), backend="fixed")
    assert all(torch.equal(a.spikes[k], b.spikes[k]) for k in a.spikes)


def _save(net):
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "seq.snn"
    net.save(path)
    return path


# --------------------------------------------------------------------------- reading models


class _RowRNN(nn.Module):
    def __init__(self, layers=2):
        super().__init__()
        torch.manual_seed(0)
        self.rnn = nn.RNN(4, 6, num_layers=layers, nonlinearity="relu", batch_first=True)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


class _Loop(nn.Module):
    """A per-element feature layer, a recurrent cell in a Python loop, a QCFS output."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.feat, self.fact = nn.Linear(4, 5), nn.ReLU()
        self.inp, self.rec, self.act = nn.Linear(5, 6), nn.Linear(6, 6, bias=False), nn.ReLU()
        self.out, self.oact = nn.Linear(6, 3), QCFS(3, 2.0)

    def forward(self, x):
        h = torch.zeros(x.shape[0], 6, dtype=x.dtype)
        for t in range(x.shape[1]):
            h = self.act(self.inp(self.fact(self.feat(x[:, t]))) + self.rec(h))
        return self.oact(self.out(h))


def _seqs(n=32, t=5, f=4, k=16, seed=0):
    return np.random.default_rng(seed).integers(0, k + 1, (n, t, f)) / k


def test_nn_rnn_model_is_read_exactly_and_converted():
    model, x = _RowRNN(), _seqs()
    conv = convert(model, x, levels=8)
    assert isinstance(conv, SequenceConversion)
    assert [ly.kind for ly in conv.qrnn.integers()] == ["recurrent", "recurrent", "readout"]
    # the QRNN's first layer is the RNN's, in level units (weights * (1/K) / (lam/L))
    q = conv.qrnn
    unit = q.rnn[0].op.weight.detach().double() / model.rnn.weight_ih_l0.detach().double()
    assert torch.allclose(unit, unit.flatten()[0].expand_as(unit), rtol=1e-5)
    assert torch.allclose(q.rnn[0].rec.detach(), model.rnn.weight_hh_l0.detach())
    for backend in ("float", "fixed"):
        got = conv.levels_of(conv.run(x, backend))
        assert all(np.array_equal(g, r) for g, r in zip(got, q.levels(x)))


def test_loop_cell_with_features_and_qcfs_output_is_read_and_converted():
    model, x = _Loop(), _seqs(seed=1)
    conv = convert(model, x, levels=6)
    q = conv.qrnn
    assert [ly.kind for ly in q.integers()] == ["feature", "recurrent", "readout"]
    assert q.readout[-1].levels == 3  # the model's own QCFS output
    with torch.no_grad():  # the QRNN approximates the float model (8-bit weights, 6 levels)
        want = model.double()(torch.from_numpy(x)).numpy()
    got = q.levels(x)[-1] * 2.0 / 3
    assert np.mean(np.abs(got - want) <= 2.0 / 3 + 1e-9) > 0.9
    assert np.array_equal(conv.predict(x, "fixed"), q.predict(x))


class _CellLoop(nn.Module):
    """nn.RNNCell in a loop, its state started as most people write it: torch.zeros(B, H),
    float32 whatever the input's dtype."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.cell, self.fc = nn.RNNCell(4, 6, nonlinearity="relu"), nn.Linear(6, 3)

    def forward(self, x):
        h = torch.zeros(x.shape[0], 6)
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)
        return self.fc(h)


def test_a_cell_loop_with_a_float32_state_converts():
    """The reading runs the model in float64: its float32 state failed with "mat1 and mat2
    must have the same dtype" (blamed on the model); torch's default dtype is float64 while
    it runs, and restored after."""
    x = _seqs(seed=2).astype(np.float32)
    conv = convert(_CellLoop(), x, levels=4)
    assert torch.get_default_dtype() == torch.float32
    assert [ly.kind for ly in conv.qrnn.integers()] == ["recurrent", "readout"]
    assert np.array_equal(conv.predict(x, "fixed"), conv.qrnn.predict(x))


class _CRNN(nn.Module):
    """A CRNN: a Conv1d over each [1, 8] element, a loop cell, a linear read-out."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.conv, self.cact = nn.Conv1d(1, 3, 3, padding=1), nn.ReLU()
        self.inp, self.rec, self.act = nn.Linear(24, 6), nn.Linear(6, 6, bias=False), nn.ReLU()
        self.out = nn.Linear(6, 4)

    def forward(self, x):
        h = torch.zeros(x.shape[0], 6, dtype=x.dtype)
        for t in range(x.shape[1]):
            h = self.act(self.inp(self.cact(self.conv(x[:, t])).flatten(1)) + self.rec(h))
        return self.out(h)


def test_crnn_with_conv_features_is_read_and_converted_exactly():
    x = np.random.default_rng(0).integers(0, 17, (32, 5, 1, 8)) / 16
    conv = convert(_CRNN(), x, levels=4)
    q = conv.qrnn
    assert [ly.kind for ly in q.integers()] == ["feature", "recurrent", "readout"]
    assert conv.network.population("feature1").size == 24 * 4  # 3 channels x 8, 4 levels
    for backend in ("float", "fixed"):
        got = conv.levels_of(conv.run(x, backend))
        assert all(np.array_equal(g, r) for g, r in zip(got, q.levels(x)))
    assert len(np.unique(q.levels(x)[0])) >= 3  # the feature layer is not all 0 or saturated


def test_qrnn_trains_in_torch_and_stays_exact():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, (64, 4, 2)) / 4
    y = (x[:, 0, 0] > x[:, -1, 1]).astype(np.int64)  # the first element against the last
    q = QRNN(2, 8, 2, levels=3, output_levels=3, input_levels=4, seed=0)
    opt = torch.optim.Adam(q.parameters(), lr=1e-2)
    xt = torch.from_numpy(x).float()
    for _ in range(150):
        loss = nn.functional.cross_entropy(q(xt), torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (q.predict(x) == y).mean() > 0.8
    conv = convert(q)
    assert np.array_equal(conv.predict(x, "fixed"), q.predict(x))


def test_rounding_noise_only_while_the_float_model_trains():
    """QRNN.noise: U(-noise/2, noise/2) on every pre-activation of the float model in train
    mode (the rounding error the QRNN will make); none in eval mode or in the QRNN."""
    q = QRNN(3, 16, 4, levels=6, output_levels=6, input_levels=4, seed=0)
    m = torch.from_numpy(np.random.default_rng(1).integers(0, 5, (32, 3, 3))).float()
    q.exact = False
    q.eval()
    clean = q._run(m)
    q.train()
    noisy = q._run(m)
    first = (noisy[0][0] - clean[0][0]).abs()  # element 0, no recurrent input yet
    inside = (clean[0][0] > 0.5) & (clean[0][0] < 5.5)  # away from the clip at 0 and L
    assert first[inside].max() <= 0.5 and first[inside].min() > 0 and inside.sum() > 50
    assert first[inside].max() > 0.4  # the noise spans the rounding error, not a sliver of it
    q.noise = 0.0
    assert all(torch.equal(a, b) for la, lb in zip(q._run(m), clean) for a, b in zip(la, lb))
    q.noise, q.exact = 1.0, True
    exact_train = q._run(m)
    q.eval()
    assert all(torch.equal(a, b) for la, lb in zip(q._run(m), exact_train)
               for a, b in zip(la, lb))


# --------------------------------------------------------------------------- bad input


class _Wrap(nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn, self.fc = rnn, nn.Linear(6, 3)

    def forward(self, x):
        return self.fc(self.rnn(x)[0][:, -1])


@pytest.mark.parametrize("module, words", [
    (nn.LSTM(4, 6, batch_first=True), ["'rnn'", "LSTM", "nn.RNN(nonlinearity='relu')", "QRNN"]),
    (nn.GRU(4, 6, batch_first=True), ["'rnn'", "GRU", "nn.RNN(nonlinearity='relu')"]),
    (nn.RNN(4, 6, batch_first=True), ["'rnn'", "nonlinearity='tanh'", "nonlinearity='relu'"]),
    (nn.RNN(4, 3, nonlinearity="relu", batch_first=True, bidirectional=True),
     ["'rnn'", "bidirectional"]),
])
def test_unsupported_recurrent_modules_are_refused_by_name(module, words):
    with pytest.raises(NetworkError) as e:
        convert(_Wrap(module), _seqs(4))
    for w in words:
        assert w in str(e.value)


class _TanhLoop(nn.Module):
    def __init__(self, act):
        super().__init__()
        self.inp, self.rec, self.act, self.out = nn.Linear(4, 6), nn.Linear(6, 6), act, \
            nn.Linear(6, 3)

    def forward(self, x):
        h = torch.zeros(x.shape[0], 6, dtype=x.dtype)
        for t in range(x.shape[1]):
            h = self.act(self.inp(x[:, t]) + self.rec(h))
        return self.out(h)


class _FunctionalRelu(_TanhLoop):
    def forward(self, x):
        h = torch.zeros(x.shape[0], 6, dtype=x.dtype)
        for t in range(x.shape[1]):
            h = torch.relu(self.inp(x[:, t]) + self.rec(h))
        return self.act(self.out(h))


class _HiddenTanh(_TanhLoop):
    def forward(self, x):
        h = torch.zeros(x.shape[0], 6, dtype=x.dtype)
        for t in range(x.shape[1]):
            h = self.act(self.inp(x[:, t]) + self.rec(torch.tanh(h)))
        return self.out(h)


def test_unsupported_loop_cells_are_refused():
    with pytest.raises(NetworkError, match="'act' \\(Tanh\\).*tanh is not a clipped ReLU.*QRNN"):
        convert(_TanhLoop(nn.Tanh()), _seqs(4))
    with pytest.raises(NetworkError, match="must be such a module, not torch.relu"):
        convert(_FunctionalRelu(nn.ReLU()), _seqs(4))
    with pytest.raises(NetworkError, match="differs from the recurrence read from it"):
        convert(_HiddenTanh(nn.ReLU()), _seqs(4))
    with pytest.raises(NetworkError, match="mode: recurrent models convert exactly"):
        convert(_RowRNN(), _seqs(4), mode="rate")


def test_orthogonal_recurrent_init_and_the_normal_one_unchanged():
    """"orthogonal": ``R R^T = I`` on every recurrent layer; "normal" (the default) draws the
    same weights as before the option existed (the row-wise example model depends on it)."""
    q = QRNN(3, [5, 7], 2, levels=[4, 8], seed=1, recurrent_init="orthogonal")
    for layer in q.rnn:
        r = layer.rec.detach().double()
        assert torch.allclose(r @ r.T, torch.eye(len(r), dtype=torch.float64), atol=1e-6)
    torch.manual_seed(1)
    lin = nn.Linear(3, 5)
    lin.weight.data.normal_(0, 1.5 / 16 / 3 ** 0.5)
    rec = torch.zeros(5, 5).normal_(0, 1 / (5 * 4) ** 0.5)
    assert torch.equal(QRNN(3, 5, 2, levels=4, seed=1).rnn[0].rec.detach(), rec)


def test_validation_split_is_carved_from_the_training_split_only():
    from snnkit import datasets

    xtr, ytr, _, _ = datasets.digits()
    xf, yf, xv, yv = datasets.digits_validation()
    assert (len(xf), len(xv)) == (len(xtr) - datasets.VALIDATION_SIZE, datasets.VALIDATION_SIZE)

    def samples(x, y):
        return sorted(zip(map(bytes, x), y.tolist()))

    # the two parts are the training split, sample for sample (so nothing from the test split)
    assert samples(np.concatenate([xf, xv]), np.concatenate([yf, yv])) == samples(xtr, ytr)
    assert np.bincount(yv).min() >= 19  # stratified: about 20 of each class
    a = datasets.digits_validation()
    assert all(np.array_equal(u, v) for u, v in zip(a, (xf, yf, xv, yv)))


def test_train_qrnn_with_validation_never_sees_the_held_out_samples(monkeypatch):
    """``validation=True`` (how the S/PS defaults are chosen): both training phases get the
    1147 fitting samples, none of the 200 held out."""
    from snnkit import datasets

    seen = []
    real = datasets.fit_qrnn

    def spy(q, x, y, *args, **kw):
        seen.append(np.asarray(x))
        return real(q, x[:64], y[:64], 1, *args[1:], **kw)

    monkeypatch.setattr(datasets, "fit_qrnn", spy)
    datasets.train_qrnn("row", seed=3, epochs=1, qepochs=1, cache=False, validation=True)
    _, _, xv, _ = datasets.digits_validation()
    held = {bytes(r) for r in datasets.digit_sequences("row", xv)}
    assert len(seen) == 2
    for x in seen:
        assert len(x) == 1347 - datasets.VALIDATION_SIZE
        assert not held & {bytes(r) for r in x}


def test_bad_sequences_and_options():
    conv = build(_two_step())
    with pytest.raises(SimulationError, match="multiples of 1/4"):
        conv.encode(np.full((1, 2, 1), 0.3))
    with pytest.raises(SimulationError, match="expected \\[batch, T, 1\\]"):
        conv.encode(np.zeros((1, 2, 3)))
    with pytest.raises(NetworkError, match="bias: must be 'clock', 'input' or 'neuron'"):
        build(_two_step(), bias="x")
    with pytest.raises(NetworkError, match="state_bits: the network's sums need"):
        build(_two_step(), state_bits=4)
    with pytest.raises(NetworkError, match="input_code"):
        QRNN(2, 3, 2, input_code="gray")
    with pytest.raises(NetworkError, match="recurrent_init: must be one of"):
        QRNN(2, 3, 2, recurrent_init="identity")
    with pytest.raises(NetworkError, match="must be nn.Linear, nn.Conv1d or nn.Conv2d"):
        QRNN(2, 3, 2, features=[nn.ReLU()])
    with pytest.raises(NetworkError, match="calibration_data: expected \\[batch, T"):
        to_qrnn(_RowRNN(), np.zeros((4, 4)))


# --------------------------------------------------------------------------- RTL


def _rtl_qrnn():
    """A converted recurrent net in the RTL tests' format (6 fractional bits, 8-bit weights,
    16-bit states): 2 values x 3 bits, 3 hidden units x 2 levels, 2 outputs x 2 levels."""
    rng = np.random.default_rng(5)
    q = QRNN(2, 3, 2, levels=2, output_levels=2, input_levels=4, input_code="binary")
    w, rec = rng.normal(0, 0.2, (3, 2)), rng.normal(0, 0.6, (3, 3))
    rec[0, 0] = 1.5  # the largest weight of each layer sets th = 64: frac_bits 6
    _set(q.rnn[0], w, rng.normal(0.3, 0.5, 3), rec)
    r = rng.normal(0, 0.7, (2, 3))
    r[1, 2] = -1.5
    _set(q.readout[0], r, [0.5, 0.25])
    return q


@pytest.mark.parametrize("backend", ["verilator", "icarus"])
def test_converted_recurrent_net_rtl_equals_fixed_point(backend):
    from tests.test_hdl_nets import CONFIG

    q = _rtl_qrnn()
    conv = build(q)
    qn = conv.network.quantization
    assert (qn.frac_bits, qn.weight_bits, qn.state_bits) == (6, 8, 16)  # one RTL build
    x = np.random.default_rng(0).integers(0, 5, (3, 6, 2)) / 4
    ref = conv.run(x, "fixed")
    got = conv.run(x, backend, config=CONFIG)
    for name, s in ref.spikes.items():
        assert torch.equal(got.spikes[name].cpu(), s.cpu()), name
    levels = conv.levels_of(got)
    assert all(np.array_equal(g, r) for g, r in zip(levels, q.levels(x)))
    assert len({int(v) for v in np.concatenate([lv.ravel() for lv in levels])}) >= 2


# --------------------------------------------------------------------------- on the board

def test_row_wise_digits_model_on_the_emulated_board_equals_fixed_point():
    """The example row-wise model (cached; benchmarks/sequence_digits.py runs the whole test
    split) through snnkit.Device on a board built with the iCE40 target's sizes."""
    from snnkit import datasets, emulated_board
    from snnkit.compiler import BOARD_CONFIGS, HardwareConfig, board_config, board_fit, build_images

    q = datasets.train_qrnn("row")
    conv = convert(q, bias="input")
    net = conv.network
    assert net.n_inputs + net.n_neurons <= 256
    assert (len(net.populations), len(net.projections)) == (3, 4)
    assert board_fit(HardwareConfig.for_network(net))["ice40"] == ([], [])
    config = board_config(net, "ice40")  # the board is built with the iCE40 target's sizes
    assert (config.n_max, config.syn_max) == (BOARD_CONFIGS["ice40"].n_max,
                                              BOARD_CONFIGS["ice40"].syn_max)
    build_images(net, config)  # raises when the network does not fit
    _, _, x_te, y_te = datasets.digits()
    x, y = datasets.digit_sequences("row", x_te)[:48], y_te[:48]
    ref = conv.run(x, "fixed")
    with emulated_board.running(config) as (url, _):
        with snnkit.Device(url) as dev:
            dev.load(net)
            board = dev.run(conv.encode(x))
    for name, spikes in ref.spikes.items():  # every spike of every population, every step
        assert torch.equal(board.spikes[name].cpu(), spikes.cpu()), name
    levels = conv.levels_of(board)
    assert all(np.array_equal(g, r) for g, r in zip(levels, q.levels(x)))
    assert (conv.predict(result=board) == y).mean() >= 0.9
