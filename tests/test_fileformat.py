"""The .snn file: exact round trips, atomic writes, and a clear error for every bad file."""

import json
import zipfile

import numpy as np
import pytest

import snnkit
from snnkit import NetworkError

from .conftest import make_net


def _same(a: snnkit.Network, b: snnkit.Network):
    ma, aa = a.to_manifest()
    mb, ab = b.to_manifest()
    assert ma == mb
    assert aa.keys() == ab.keys()
    for k in aa:
        assert aa[k].dtype == ab[k].dtype and np.array_equal(aa[k], ab[k]), k


def test_round_trip_is_exact(tmp_path):
    net = make_net(stdp=True, quant=snnkit.Quantization(weight_bits=10, frac_bits=7))
    net.projections[1].weight[0, 0] = np.nextafter(0.3, 1)  # full float64 precision survives
    net.save(tmp_path / "n.snn")
    back = snnkit.load(tmp_path / "n.snn")
    _same(net, back)
    # and it simulates identically
    x = snnkit.encoders.poisson(np.full((2, 12), 0.3), 30)
    r1, r2 = snnkit.simulate(net, x), snnkit.simulate(back, x)
    for k in r1.spikes:
        assert np.array_equal(r1.spikes[k], r2.spikes[k])


def test_delayed_reset_and_per_neuron_refractory_round_trip(tmp_path):
    net = make_net()
    net.populations[1].neuron.reset = "delayed"
    net.populations[2].neuron.refractory = np.array([0, 1, 2, 3, 1])
    net.save(tmp_path / "n.snn")
    with zipfile.ZipFile(tmp_path / "n.snn") as z:
        m = json.loads(z.read("manifest.json"))
    assert m["version"] == 2  # no new version: an older reader refuses these, naming them
    assert m["populations"][1]["params"]["reset"] == "delayed"
    assert m["populations"][2]["params"]["refractory"] == {"array": "populations.2.refractory"}
    back = snnkit.load(tmp_path / "n.snn")
    _same(net, back)
    assert back.populations[2].neuron.refractory.dtype == np.int64


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "n.snn"
    make_net().save(path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        make_net(seed=5).save(path)
    assert path.read_bytes() == before  # old file untouched
    assert [p.name for p in tmp_path.iterdir()] == ["n.snn"]  # no temporary left behind


def test_a_save_into_no_folder_names_the_path_given(tmp_path):
    (tmp_path / "afile").write_text("")
    (tmp_path / "afolder").mkdir()
    for path, err, said in ((tmp_path / "nodir" / "n.snn", FileNotFoundError, "no such folder"),
                            (tmp_path / "afile" / "n.snn", FileNotFoundError, "not a folder"),
                            (tmp_path / "afolder", IsADirectoryError, "is a folder")):
        with pytest.raises(err) as e:
            make_net().save(path)
        assert said in str(e.value) and e.value.filename == str(path if said == "is a folder"
                                                                 else path.parent)
        assert ".tmp" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "afolder"]
    assert not any((tmp_path / "afolder").iterdir())


def _rewrite(tmp_path, edit_manifest=None, drop=None, replace=None):
    """Save a valid network, then rewrite its archive with one thing broken."""
    src = tmp_path / "ok.snn"
    make_net().save(src)
    dst = tmp_path / "bad.snn"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            if item == drop:
                continue
            if item == "manifest.json" and edit_manifest:
                m = json.loads(data)
                edit_manifest(m)
                data = json.dumps(m)
            if replace and item in replace:
                data = replace[item]
            zout.writestr(item, data)
    return dst


def _npy(arr):
    import io

    b = io.BytesIO()
    np.save(b, arr)
    return b.getvalue()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(edit_manifest=lambda m: m["populations"][1].update(model="hodgkin_huxley")),
         r"populations\[1\] \(a\)\.model: unknown neuron model 'hodgkin_huxley'"),
        (dict(edit_manifest=lambda m: m["populations"][2].update(size=0)),
         r"populations\[2\] \(b\)\.size: must be a positive integer, got 0"),
        (dict(edit_manifest=lambda m: m["populations"][2].update(size=-4)),
         r"populations\[2\] \(b\)\.size: must be a positive integer, got -4"),
        (dict(edit_manifest=lambda m: m["projections"][1].update(target="ghost")),
         r"projections\[1\] \(a->ghost\)\.target: no population named 'ghost'"),
        (dict(edit_manifest=lambda m: m.update(version=3)),
         r"manifest\.version: file format version 3 is newer than this snnkit supports \(2\)"),
        (dict(edit_manifest=lambda m: m.update(format="something-else")),
         r"manifest\.format: expected 'snnkit-network'"),
        (dict(edit_manifest=lambda m: m["populations"][1]["params"].update(tau=3.0)),
         r"populations\[1\] \(a\)\.params: unknown parameter\(s\) \['tau'\]"),
        (dict(drop="arrays/projections.1.weight.npy"),
         r"projections\[1\] \(a->b\)\.weight: array 'arrays/projections\.1\.weight\.npy' "
         r"is missing"),
        (dict(replace={"arrays/projections.1.weight.npy": _npy(np.zeros((9, 5)))}),
         r"projections\[1\] \(a->b\)\.weight: shape \(9, 5\) does not match "
         r"\[target, source\] = \(5, 9\)"),
        (dict(replace={"arrays/projections.3.weight.npy": _npy(np.full((3, 5), np.nan))}),
         r"projections\[3\] \(b->c\)\.weight: contains NaN or inf"),
        (dict(replace={"arrays/populations.2.threshold.npy": _npy(np.ones(4))}),
         r"populations\[2\] \(b\)\.neuron\.threshold: per-neuron values must have shape \(5,\)"),
        (dict(replace={"manifest.json": b"{not json"}), r"manifest\.json is not valid JSON"),
        (dict(drop="manifest.json"), r"not a snnkit network file \(no manifest\.json\)"),
    ],
)
def test_bad_files_name_the_field(tmp_path, kwargs, message):
    path = _rewrite(tmp_path, **kwargs)
    with pytest.raises(NetworkError, match=message) as e:
        snnkit.load(path)
    assert str(path) in str(e.value)  # the message says which file


def test_truncated_and_non_archive_files(tmp_path):
    src = tmp_path / "ok.snn"
    make_net().save(src)
    data = src.read_bytes()
    trunc = tmp_path / "trunc.snn"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(NetworkError, match=r"trunc\.snn: not a snnkit network file, or truncated"):
        snnkit.load(trunc)
    text = tmp_path / "net.txt"
    text.write_text("hello")
    with pytest.raises(NetworkError, match=r"net\.txt: not a snnkit network file, or truncated"):
        snnkit.load(text)
    with pytest.raises(NetworkError, match=r": a folder, not a network file"):
        snnkit.load(tmp_path)
    with pytest.raises(NetworkError, match=r"missing\.snn: no such file"):
        snnkit.load(tmp_path / "missing.snn")


def test_cli_info_on_saved_network(tmp_path, capsys):
    from snnkit.cli import main

    make_net().save(tmp_path / "n.snn")
    assert main(["info", str(tmp_path / "n.snn")]) == 0
    out = capsys.readouterr().out
    assert "4 populations, 12 inputs, 17 neurons, 5 projections" in out
    assert "c->c" in out and "Weight memory" in out
    assert main(["info", str(tmp_path / "nope.snn")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_summary_counts_a_kernel_once():
    """The summary's weight memory counted a convolution's kernel once per synapse (1536 here)
    though the network stores it once (54 values)."""
    net = snnkit.Network()
    net.add_input("in", (2, 6, 6))
    net.add_population("c", (3, 6, 6))
    net.add_population("o", 4)
    net.connect_conv("in", "c", np.full((3, 2, 3, 3), 0.1), padding=1)
    net.connect("c", "o", np.full((4, 108), 0.1))
    out = net.summary()
    assert "Weight memory: 486 weights x 8 bits" in out
    assert "of which 54 in convolution kernels, shared by 1536 synapses" in out


def test_network_load_sits_beside_save(tmp_path):
    """`net.save(p)` then `snnkit.Network.load(p)` (as Result.save / Result.load) raised
    AttributeError: only the module function snnkit.load read it back."""
    net = make_net()
    net.save(tmp_path / "n.snn")
    back = snnkit.Network.load(tmp_path / "n.snn")
    assert back.to_manifest()[0] == snnkit.load(tmp_path / "n.snn").to_manifest()[0]
    assert [p.name for p in back.populations] == [p.name for p in net.populations]
