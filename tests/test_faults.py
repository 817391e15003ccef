"""Faults: damaged checkpoints are named and walked past, leftovers of an interrupted
save are removed, a checkpoint that does not fit its config is said to."""


import os

import numpy as np
import pytest
import tensorflow as tf

from tfsym3d import load_config
from tfsym3d.checkpoints import CheckpointMismatch, load_model
from tfsym3d.train import train

SMALL = dict(nf_depth=16, zdim_depth=16, nf_light=8, nf_conf=16, zdim_conf=16, lam_perc=0,
             batch_size=4, log_freq=1, seed=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run directory after two epochs (ckpt-1 and ckpt-2), its data and ckpt-1's
    weights; trained once for the module."""
    x = np.random.default_rng(0).uniform(size=(8, 64, 64, 3)).astype(np.float32)
    run = tmp_path_factory.mktemp("trained") / "run"
    ds = tf.data.Dataset.from_tensor_slices(x).batch(4)
    model, _ = train(load_config(None, dict(SMALL, num_epochs=1)), str(run), train_ds=ds,
                     verbose=0)
    first = [v.numpy() for v in model.weights]
    train(load_config(None, dict(SMALL, num_epochs=2)), str(run), train_ds=ds, verbose=0)
    return run, ds, first


@pytest.fixture
def run(trained, tmp_path):
    """A copy of the trained run directory for one test to damage."""
    import shutil

    source, ds, first = trained
    shutil.copytree(source, tmp_path / "run")
    return tmp_path / "run", ds, first


def _data_file(run, n):
    return run / "checkpoints" / f"ckpt-{n}.data-00000-of-00001"


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "random", "index_cut"])
def test_a_damaged_newest_checkpoint_is_named_and_the_previous_one_used(run, capsys,
                                                                         damage):
    run, ds, first = run
    if damage == "index_cut":
        index = run / "checkpoints" / "ckpt-2.index"
        index.write_bytes(index.read_bytes()[:40])
    else:
        data = _data_file(run, 2)
        size = data.stat().st_size
        data.write_bytes(data.read_bytes()[:size // 2] if damage == "truncated"
                         else np.random.default_rng(1).bytes(size))
    capsys.readouterr()
    model = load_model(str(run))
    err = capsys.readouterr().err
    assert "skipping the damaged checkpoint" in err and "ckpt-2" in err
    assert "using the older checkpoint" in err and "ckpt-1" in err
    for a, b in zip(first, [v.numpy() for v in model.weights], strict=True):
        np.testing.assert_array_equal(a, b)
    # Training resumes from ckpt-1 and writes a good ckpt-2 over the damaged one.
    model, history = train(load_config(None, dict(SMALL, num_epochs=2)), str(run),
                           train_ds=ds, verbose=0)
    assert len(history.history["loss"]) == 1 and int(model.epoch) == 2
    capsys.readouterr()
    load_model(str(run))
    assert "skipping" not in capsys.readouterr().err


@pytest.mark.slow
def test_no_readable_checkpoint_is_one_line_naming_the_run(run, capsys):
    from tfsym3d import cli

    run, _, _ = run
    for n in (1, 2):
        _data_file(run, n).write_bytes(b"")
    with pytest.raises(ValueError, match="none of its 2 checkpoint"):
        load_model(str(run))
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        cli.run(["tfsym3d", "reconstruct", f"--checkpoint={run}", f"--out={run}/r", "x.png"])
    assert exit_info.value.code == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("tfsym3d reconstruct: ") and "none of its 2 checkpoint" in last


@pytest.mark.slow
def test_an_interrupted_save_is_cleaned_up(run, capsys):
    run, ds, _ = run
    temp = run / "checkpoints" / "ckpt-3_temp"
    temp.mkdir()
    (temp / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"half")
    train(load_config(None, dict(SMALL, num_epochs=3)), str(run), train_ds=ds, verbose=0)
    assert not temp.exists()
    assert "removed" in capsys.readouterr().err


@pytest.mark.slow
def test_a_checkpoint_that_does_not_fit_its_config_says_so(run):
    run, _, _ = run
    cfg = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(cfg.replace("nf_depth: 16", "nf_depth: 32"))
    with pytest.raises(CheckpointMismatch) as err:
        load_model(str(run))
    assert "ckpt-2: its weights do not fit the model of the config" in str(err.value)
    assert "\n" not in str(err.value)


def test_a_file_in_the_way_stops_export_and_reconstruct_before_writing(model_run, tmp_path,
                                                                        capsys):
    from tfsym3d import cli

    out = tmp_path / "exported"
    out.mkdir()
    (out / "tflite").write_text("not a folder")
    with pytest.raises(SystemExit) as exit_info:
        cli.run(["tfsym3d", "export", f"--checkpoint={model_run}", f"--out={out}",
                 "--formats=saved_model,tflite"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"tfsym3d export: {out / 'tflite'}: a file is in the way (the export "
                       f"writes {out / 'tflite' / 'tfsym3d_fp32.tflite'}); move it or choose "
                       "another --out")
    assert sorted(os.listdir(out)) == ["tflite"]  # the SavedModel was not written either

    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(SystemExit) as exit_info:
        cli.run(["tfsym3d", "reconstruct", f"--checkpoint={model_run}", f"--out={target}",
                 str(tmp_path)])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"tfsym3d reconstruct: {target}: is a file, not a folder to write into")


def test_a_missing_depth_file_is_skipped_and_named_not_fatal(tmp_path, capsys):
    from tfsym3d import cli
    from tfsym3d.data.synth import generate

    generate(str(tmp_path / "data"), 40, image_size=64, seed=0)
    depths = sorted((tmp_path / "data" / "test" / "depth").iterdir())
    depths[0].unlink()
    with pytest.raises(SystemExit) as exit_info:
        cli.run(["tfsym3d", "evaluate", f"--data={tmp_path / 'data'}",
                 f"--json={tmp_path / 'eval.json'}"])
    assert exit_info.value.code == 1  # something was skipped
    err = capsys.readouterr().err
    assert f"skipping {tmp_path / 'data' / 'test' / 'image'}" in err
    assert "no matching depth file" in err
    import json

    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["baseline_avg"]["n"] == len(depths) - 1


def test_photos_over_the_pixel_limit_are_refused_before_decoding(tmp_path, monkeypatch):
    """A small file declaring many pixels: refused by the file reader and in the serving
    graph from its header, before anything is decoded."""
    import io as bytes_io

    from PIL import Image

    from tfsym3d.io import images

    monkeypatch.setattr(images, "MAX_PIXELS", 100 * 100)
    for fmt in ("PNG", "JPEG", "BMP", "GIF"):
        buffer = bytes_io.BytesIO()
        Image.new("RGB", (120, 90)).save(buffer, fmt)
        path = tmp_path / f"big.{fmt.lower()}"
        path.write_bytes(buffer.getvalue())
        with pytest.raises(images.InputError, match="120x90 is 10,800 pixels, over the limit"):
            images.read(str(path))
        assert int(images.declared_pixels(tf.constant(buffer.getvalue()))) == 120 * 90, fmt
        with pytest.raises(tf.errors.InvalidArgumentError, match="more pixels than the limit"):
            tf.function(images.decode)(tf.constant(buffer.getvalue()))
    small = bytes_io.BytesIO()
    Image.new("RGB", (100, 100)).save(small, "PNG")
    assert images.decode(tf.constant(small.getvalue())).shape == (100, 100, 3)


def test_an_image_whose_files_fail_half_way_leaves_nothing_half_written(model_run, tmp_path,
                                                                        monkeypatch):
    """A full disk while writing one image's maps: that image's folder is absent (no
    partial folder either), the others and index.html are complete."""
    from PIL import Image

    from tfsym3d.checkpoints import load_model
    from tfsym3d.reconstruct import cli as reconstruct_cli
    from tfsym3d.reconstruct import outputs

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (64, 64), (120, 90, 60)).save(photos / f"{name}.png")
    real = outputs.save_png

    def disk_full_on_b(path, image):
        if os.sep + ".b.partial" + os.sep in path and path.endswith("albedo.png"):
            raise OSError(28, "No space left on device")
        real(path, image)

    monkeypatch.setattr(outputs, "save_png", disk_full_on_b)
    out = tmp_path / "out"
    summary = reconstruct_cli.run(load_model(model_run), [str(photos)], str(out), mesh=False,
                                  gifs=False)
    assert summary["done"] == ["a"] and "No space left" in summary["failed"][0][1]
    assert sorted(os.listdir(out)) == ["a", "contact_sheet.png", "glb_viewer.js",
                                       "index.html"]
    assert "albedo.png" in os.listdir(out / "a")
