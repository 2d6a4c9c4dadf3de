"""Files from someone else run no code: model files for `snnkit convert` are read without
unpickling (torch.export archives, TorchScript, state dicts with the user's class) unless the
user opts in with --trust-pickle; the .snn, .nir and input-file loaders never unpickle. Each
loader is fed a file carrying a pickle payload that would create a marker file if it ran."""

import io
import json
import pickle
import zipfile
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
import torch
from torch import nn

import snnkit
from snnkit import model_file
from snnkit.cli import main

from .conftest import make_net


class Payload:
    """Unpickling this object creates the file ``path``: proof that code ran."""

    def __init__(self, path):
        self.path = Path(path)

    def __reduce__(self):
        return (Path.touch, (self.path,))


def evil(marker) -> bytes:
    return pickle.dumps(Payload(marker))


def sequential():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                         nn.AvgPool2d(2), nn.Flatten(), nn.Linear(12, 5), nn.ReLU(),
                         nn.Dropout(), nn.Linear(5, 3)).eval()


def same_function(a: nn.Module, b: nn.Module) -> bool:
    x = torch.rand(7, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return torch.equal(a(x), b(x))


# --------------------------------------------------------------------------- model files


def test_export_archive_is_rebuilt_without_unpickling(tmp_path, monkeypatch):
    model = sequential()
    torch.nn.init.uniform_(model[1].running_mean)  # non-trivial buffers
    path = tmp_path / "m.pt2"
    torch.export.save(torch.export.export(model, (torch.zeros(2, 1, 4, 4),)), path)
    monkeypatch.setattr(pickle, "loads", None)  # no unpickling on this path at all
    monkeypatch.setattr(torch, "load", None)
    rebuilt = model_file.load_model(path)
    assert isinstance(rebuilt, nn.Sequential) and same_function(model, rebuilt)


def test_export_archive_with_a_pickled_tensor_is_refused_and_runs_nothing(tmp_path):
    """An archive whose weight says it is pickled (torch.export.load would unpickle it)."""
    path, bad = tmp_path / "m.pt2", tmp_path / "bad.pt2"
    torch.export.save(torch.export.export(sequential(), (torch.zeros(2, 1, 4, 4),)), path)
    marker = tmp_path / "ran"
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    cfg_name = next(n for n in members if n.endswith("model_weights_config.json"))
    cfg = json.loads(members[cfg_name])
    first = next(iter(cfg["config"].values()))
    first["use_pickle"] = True
    members[cfg_name] = json.dumps(cfg).encode()
    members[cfg_name.rsplit("/", 1)[0] + "/" + first["path_name"]] = evil(marker)
    with zipfile.ZipFile(bad, "w") as out:
        for n, d in members.items():
            out.writestr(n, d)
    with pytest.raises(snnkit.NetworkError, match="pickled"):
        model_file.load_model(bad)
    assert not marker.exists()


def test_torchscript_sequential_is_rebuilt(tmp_path):
    model = sequential()
    path = tmp_path / "m.ts"
    torch.jit.save(torch.jit.script(model), path)
    rebuilt = model_file.load_model(path)
    assert type(rebuilt[0]) is nn.Conv2d and same_function(model, rebuilt)
    traced = tmp_path / "traced.ts"
    torch.jit.save(torch.jit.trace(model, torch.zeros(1, 1, 4, 4)), traced)
    with pytest.raises(snnkit.NetworkError, match="torch.jit.script rather than trace"):
        model_file.load_model(traced)


def test_torchscript_file_carrying_a_pickle_payload_runs_nothing(tmp_path):
    """TorchScript's own unpickler builds only TorchScript types: a payload in either of the
    archive's pickles (protocol 2, the one it reads) is refused and never called."""
    marker = tmp_path / "ran"
    path, bad = tmp_path / "m.ts", tmp_path / "bad.ts"
    torch.jit.save(torch.jit.script(sequential()), path)
    with zipfile.ZipFile(path) as z:
        members = {n: (z.getinfo(n), z.read(n)) for n in z.namelist()}
    pickles = [n for n in members if n.endswith(("data.pkl", "constants.pkl"))]
    assert len(pickles) == 2
    for target in pickles:
        with zipfile.ZipFile(bad, "w") as out:
            for n, (info, data) in members.items():
                out.writestr(info, pickle.dumps(Payload(marker), protocol=2)
                             if n == target else data)
        with pytest.raises(snnkit.NetworkError, match="not a loadable TorchScript"):
            model_file.load_model(bad)
    assert not marker.exists()


def test_state_dict_with_the_users_class(tmp_path, monkeypatch):
    (tmp_path / "mymodel.py").write_text(
        "from torch import nn\n"
        "class Net(nn.Sequential):\n"
        "    def __init__(self, hidden=5):\n"
        "        super().__init__(nn.Flatten(), nn.Linear(16, hidden), nn.ReLU(),\n"
        "                         nn.Linear(hidden, 3))\n")
    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 7), nn.ReLU(), nn.Linear(7, 3))
    torch.save(model.state_dict(), tmp_path / "w.pt")
    got = model_file.load_model(tmp_path / "w.pt", f"{tmp_path / 'mymodel.py'}:Net",
                                {"hidden": 7})
    assert same_function(model, got)
    with pytest.raises(snnkit.NetworkError, match="--model-class"):
        model_file.load_model(tmp_path / "w.pt")  # a state dict alone: say what is missing
    monkeypatch.chdir(tmp_path)  # a module name for a file here: say to give its path
    with pytest.raises(snnkit.NetworkError, match="given by its path: mymodel.py:Net"):
        model_file.load_model(tmp_path / "w.pt", "mymodel:Net")


def test_pickled_model_needs_trust_and_its_payload_never_runs_without(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "m.pt"
    torch.save({"model": sequential(), "extra": Payload(marker)}, path)
    with pytest.raises(snnkit.NetworkError, match="--trust-pickle"):
        model_file.load_model(path)
    assert not marker.exists()
    torch.save(sequential(), tmp_path / "whole.pt")  # a file the user trusts
    assert same_function(sequential(), model_file.load_model(tmp_path / "whole.pt",
                                                             trust_pickle=True))
    weights = tmp_path / "w.pt"  # a "state dict" carrying a payload, with a class
    torch.save({"0.weight": Payload(marker)}, weights)
    with pytest.raises(snnkit.NetworkError, match="not a plain state dict"):
        model_file.load_model(weights, "torch.nn:Identity")
    assert not marker.exists()


def test_convert_command_refuses_a_pickle_and_says_what_to_do(tmp_path, capsys):
    marker = tmp_path / "ran"
    torch.save([Payload(marker)], tmp_path / "m.pt")
    np.savez(tmp_path / "calib.npz", x=np.zeros((4, 1, 4, 4)))
    assert main(["convert", str(tmp_path / "m.pt"), "--calib", str(tmp_path / "calib.npz"),
                 "-o", str(tmp_path / "net.snn")]) != 0
    err = capsys.readouterr().err
    assert "--trust-pickle" in err and "torch.export" in err
    assert not marker.exists() and not (tmp_path / "net.snn").exists()


# --------------------------------------------------------------------------- snnkit's own loaders


def test_snn_file_with_a_pickled_array_raises_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "net.snn"
    make_net(0).save(path)
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    weight = next(n for n in members if n.endswith(".weight.npy"))
    obj = io.BytesIO()
    np.save(obj, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    for name, data in ((weight, obj.getvalue()), (weight, evil(marker))):
        with zipfile.ZipFile(path, "w") as z:
            for n, d in members.items():
                z.writestr(n, data if n == name else d)
        with pytest.raises(snnkit.NetworkError, match=str(path)):
            snnkit.load(path)
    assert not marker.exists()


def test_nir_file_carrying_pickles_runs_nothing(tmp_path):
    """Pickle bytes as a node's metadata stay bytes (in a file snnkit exported, the edit
    breaks its digest: NetworkError; without the digest, as from another tool, the file
    loads); as a parameter they make the file malformed (NetworkError naming it)."""
    marker = tmp_path / "ran"
    path = tmp_path / "net.nir"
    nir.write(path, snnkit.to_nir(make_net(0, per_neuron=False)))
    with h5py.File(path, "a") as f:
        f["node/nodes/a/metadata/payload"] = np.void(evil(marker))
    with pytest.raises(snnkit.NetworkError, match="damaged"):
        snnkit.from_nir(path, dt=1e-3)
    with h5py.File(path, "a") as f:
        del f["node/metadata/snnkit_digest"]
    assert snnkit.from_nir(path, dt=1e-3).n_neurons == make_net(0).n_neurons
    with h5py.File(path, "a") as f:
        del f["node/nodes/a/tau_mem"]
        f["node/nodes/a/tau_mem"] = np.void(evil(marker))
    with pytest.raises(snnkit.NetworkError, match=str(path)):
        snnkit.from_nir(path, dt=1e-3)
    assert not marker.exists()


def test_input_files_with_pickles_are_refused_and_run_nothing(tmp_path, capsys):
    """simulate's and run's --input and convert's --calib: an object array (.npy, .npz) or a
    bare pickle is refused with a message naming the file (exit status 2, no traceback), and
    nothing runs (run refuses it before it opens the port)."""
    marker = tmp_path / "ran"
    net = make_net(0, per_neuron=False)
    net.save(tmp_path / "net.snn")
    obj = np.array([Payload(marker)], dtype=object)
    np.save(tmp_path / "in.npy", obj, allow_pickle=True)
    np.savez(tmp_path / "in.npz", inputs=obj)
    (tmp_path / "raw.npy").write_bytes(evil(marker))  # not even an .npy
    for name in ("in.npy", "in.npz", "raw.npy"):
        f = str(tmp_path / name)
        for argv in (["simulate", str(tmp_path / "net.snn"), "--input", f, "--out",
                      str(tmp_path / "out.npz")],
                     ["run", str(tmp_path / "net.snn"), "--port", "socket://127.0.0.1:1",
                      "--input", f, "--out", str(tmp_path / "out.npz")],
                     ["convert", "example:mlp", "--calib", f, "-o", str(tmp_path / "c.snn")]):
            assert main(argv) == 2, argv
            err = capsys.readouterr().err
            assert f in err and "Traceback" not in err, err
    assert not marker.exists()
    assert not (tmp_path / "out.npz").exists() and not (tmp_path / "c.snn").exists()
