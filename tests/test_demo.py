"""`snnkit demo --quick` end to end: it must run and reach the accuracies it prints, and
reproduce the figures the README quotes (benchmarks/demo_summary.json)."""

import json

from snnkit.cli import main

from .test_docs import readme_figures


def test_demo_quick_reaches_its_targets(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    s = json.loads((tmp_path / "summary.json").read_text())
    rows = {r["path"].split(",")[0]: r for r in s["conversion"]["rows"]}
    ann = rows["ANN (torch"]["accuracy"]
    fixed = rows["SNN fixed simulator"]["accuracy"]
    flt = rows["SNN float simulator"]["accuracy"]
    assert ann >= 0.97
    assert fixed >= 0.97 and ann - fixed <= 0.005  # targets on the whole test split, T = 16
    assert abs(flt - fixed) <= 0.005
    # the emulated board computes exactly what the fixed-point simulator computes
    c = s["conversion"]
    assert c["fpga_equals_fixed"] == c["fpga_samples"] > 0
    assert f"{100 * fixed:.2f}%" in out  # the table shows what was measured
    # the README's figures: quick mode computes the ANN and T = 16 simulator rows on the
    # same 450 test images as the full run behind benchmarks/demo_summary.json
    fig = readme_figures()
    quoted = {r["path"]: r for r in json.loads(fig.SUMMARY.read_text())["conversion"]["rows"]}
    compared = [p for p, r in rows.items() if quoted.get(r["path"], {}).get("samples")
                == r["samples"]]
    assert len(compared) == 3
    for p in compared:
        assert fig.cells(rows[p]) == fig.cells(quoted[rows[p]["path"]]), p
    # on-chip STDP ends with exactly the simulator's weights; learning really learned
    learn = s["learning"]
    assert learn["board_weights_equal"] and learn["board_spikes_equal"]
    assert learn["synapses_changed"] > 0
    # quick mode, fixed point (12-bit weights), 2 epochs over 200 digits, seeds 0 / 1 / 2:
    # 80.5 / 82.5 / 83.0% (profile vote), 68.0 / 75.5 / 80.5% (mean vote); broken rules
    # 24.5-38% / 9-21.5% (tests/test_unsupervised.py checks that learning imprinted digits)
    assert learn["weight_bits"] == 12
    assert learn["accuracy"] >= 0.77 and learn["accuracy_mean_vote"] >= 0.62
    assert f"accuracy {100 * learn['accuracy']:.2f}%" in out
    # training by surrogate gradients on the board's integers: the fixed-point simulator
    # reproduces training's own evaluation and the board the simulator, sample for sample
    train = s["training"]
    rows = {r["path"]: r["accuracy"] for r in train["rows"]}
    assert rows["scratch, T=8, fixed-point simulator"] >= 0.93  # quick: 8 epochs
    assert rows["fine-tuned, T=4, fixed-point simulator"] >= 0.94  # quick: 6 epochs
    assert rows["fine-tuned, T=4, fixed-point simulator"] > \
        rows["converted alone, T=4, fixed-point simulator"]
    for name, same in train["same"].items():
        assert same["fixed_equals_training"] == 450, name
        assert same["fpga_equals_fixed"] == train["fpga_samples"], name
    assert f"{100 * rows['scratch, T=8, fixed-point simulator']:.2f}%" in out
    # the row-wise sequence model: the converted recurrent SNN equals the QRNN layer by layer
    # on every test sample (float and fixed point), the board the fixed-point simulator spike
    # for spike; off the board, quick mode computes the README's sequence rows
    seq = s["sequences"]
    rows = {r["path"]: r for r in seq["rows"]}
    assert seq["float_equals_qrnn"] == seq["fixed_equals_qrnn"] == seq["samples"] == 450
    assert seq["fpga_equals_fixed"] == seq["fpga_predictions_equal_fixed"] == \
        seq["fpga_samples"] == 60
    for path in ("QRNN (torch, integer levels)", "SNN float simulator", "SNN fixed simulator",
                 "emulated FPGA over UART"):
        assert rows[path]["accuracy"] >= 0.9, path
    assert rows["SNN fixed simulator"]["accuracy"] == rows["QRNN (torch, integer levels)"][
        "accuracy"]
    assert seq["steps_per_element"] == 1 and seq["fits_ice40"]
    assert f"{100 * rows['SNN fixed simulator']['accuracy']:.2f}%" in out
    quoted = {r["path"]: r for r in json.loads(fig.SUMMARY.read_text())["sequences"]["rows"]}
    for path in ("QRNN (torch, integer levels)", "SNN float simulator", "SNN fixed simulator"):
        assert fig.cells(rows[path]) == fig.cells(quoted[path]), path
    for png in ("accuracy_vs_T.png", "raster.png", "membrane.png", "weights_learned.png",
                "training_scratch.png", "training_finetune.png", "sequence_raster.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_quiet_demo_part_shows_no_progress_bars(tmp_path, capsys):
    """`snnkit demo --quiet` reaches every part: the training part's epochs, upload and run
    printed their bars regardless."""
    from snnkit import demo

    assert demo.run(tmp_path, quick=True, progress=False, parts=("training",)) == 0
    err = capsys.readouterr().err
    assert "sample/s" not in err and "epoch" not in err and "upload" not in err, err[-300:]


def test_a_demo_that_fails_before_writing_leaves_no_folder(tmp_path, capsys, monkeypatch):
    """A failed demo (in the tour: a missing module) left an empty demo_out/ behind; a
    folder that was there before stays."""
    from snnkit import demo

    def missing(*a, **k):
        raise ModuleNotFoundError("No module named 'sklearn'")

    monkeypatch.setattr(demo, "part_conversion", missing)
    assert main(["demo", "--quick", "--quiet", "--out", str(tmp_path / "d")]) == 1
    assert "No module named 'sklearn'" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
    (tmp_path / "e").mkdir()
    assert main(["demo", "--quick", "--quiet", "--out", str(tmp_path / "e")]) == 1
    assert (tmp_path / "e").is_dir()
