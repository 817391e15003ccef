"""Nothing of the user's is lost (issue 49): outputs land only inside --out, a command
replaces only what it wrote itself, colliding names get distinct ones, and inputs that
are not regular files or are the command's own outputs are never read."""

import json
import os
import threading

import numpy as np
import pytest
from PIL import Image

from tests.test_evaluate import run


def _photo(path, seed=0, size=(48, 40)):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), np.uint8)).save(path)


def _tree(root):
    """{relative path: bytes} of every file under root."""
    return {os.path.relpath(os.path.join(r, f), root): open(os.path.join(r, f), "rb").read()
            for r, _, fs in os.walk(root) for f in fs}


# --- export --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../../victim", "../victim", "/abs/victim", "a/b", "..",
                                  "."])
def test_export_refuses_a_name_that_leaves_out(model_run, tmp_path, capsys, name):
    victim = tmp_path / "victim" / "1"
    victim.mkdir(parents=True)
    (victim / "thesis.tex").write_text("years of work")
    out = tmp_path / "a" / "b" / "out"
    status = run(["tfsym3d", "export", f"--checkpoint={model_run}", f"--out={out}",
                  "--formats=tflite", f"--name={name}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status != 0 and len(err) == 1 and "--name" in err[0], err
    assert (victim / "thesis.tex").read_text() == "years of work"
    assert not out.exists()


def test_export_leaves_a_folder_it_did_not_write(model_run, tmp_path, capsys):
    out = tmp_path / "out"
    mine = out / "saved_model" / "tfsym3d" / "1"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("the user's")
    before = _tree(out)
    status = run(["tfsym3d", "export", f"--checkpoint={model_run}", f"--out={out}",
                  "--formats=saved_model"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status != 0 and len(err) == 1 and "not written by tfsym3d export" in err[0]
    assert str(mine) in err[0]
    assert _tree(out) == before and sorted(os.listdir(out)) == ["saved_model"]


def test_a_killed_exports_staging_folder_is_cleared_by_the_next(tmp_path, logged):
    from tfsym3d.export import writer

    dead = tmp_path / f"{writer.PARTIAL}999999999-abc"   # no such process
    live = tmp_path / f"{writer.PARTIAL}{os.getpid()}-def"  # an export still running
    other = tmp_path / ".partial"  # not a staging folder's name
    for d in (dead, live, other):
        (d / "tflite").mkdir(parents=True)
    writer._clear_stale_partials(str(tmp_path))
    said = logged().splitlines()
    assert not dead.exists() and live.exists() and other.exists()
    assert len(said) == 1 and str(dead) in said[0]


# --- reconstruct ---------------------------------------------------------------------

def _reconstruct(model_run, out, *inputs):
    return run(["tfsym3d", "reconstruct", f"--checkpoint={model_run}", f"--out={out}",
                "--gifs=false", "--mesh=false", *map(str, inputs)])


@pytest.mark.slow
def test_reconstruct_leaves_a_folder_of_the_users_and_names_the_clash(model_run, tmp_path,
                                                                     capsys):
    out = tmp_path / "out"
    (out / "holiday").mkdir(parents=True)
    (out / "holiday" / "diary.txt").write_text("the user's")
    _photo(tmp_path / "holiday.png")
    assert _reconstruct(model_run, out, tmp_path / "holiday.png") == 0
    err = capsys.readouterr().err
    assert os.listdir(out / "holiday") == ["diary.txt"]
    assert (out / "holiday" / "diary.txt").read_text() == "the user's"
    assert "holiday_2" in err and "left alone" in err
    assert (out / "holiday_2" / "params.json").is_file()
    # Again: the same name (its own folder is replaced), no third one.
    assert _reconstruct(model_run, out, tmp_path / "holiday.png") == 0
    assert sorted(d for d in os.listdir(out) if d.startswith("holiday")) == [
        "holiday", "holiday_2"]
    assert os.listdir(out / "holiday") == ["diary.txt"]
    # A folder of its own that the user added a file to is not its own any more.
    (out / "holiday_2" / "mine.txt").write_text("added")
    assert _reconstruct(model_run, out, tmp_path / "holiday.png") == 0
    assert (out / "holiday_2" / "mine.txt").read_text() == "added"
    assert (out / "holiday_3" / "params.json").is_file()


def test_reconstruct_names_duplicates_and_its_own_file_names_apart(model_run, tmp_path,
                                                                  capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for k, name in enumerate(("face.png", "index.html.png", "contact_sheet.png.png",
                              ".hidden.png")):
        _photo(photos / name, seed=k)
    out = tmp_path / "out"
    face = photos / "face.png"
    assert _reconstruct(model_run, out, face, face, photos / "index.html.png",
                        photos / "contact_sheet.png.png", photos / ".hidden.png") == 0
    err = capsys.readouterr().err
    assert "given more than once" in err
    names = sorted(os.listdir(out))
    assert names == ["contact_sheet.png", "contact_sheet.png_2", "face", "hidden",
                     "index.html", "index.html_2", "shape_viewer.js"], names
    assert os.path.isfile(out / "index.html") and os.path.isfile(out / "contact_sheet.png")
    assert not [n for n in names if "partial" in n]


@pytest.mark.slow
def test_reconstruct_skips_a_fifo_and_never_reads_its_own_outputs(model_run, tmp_path,
                                                                 capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "a.png")
    os.mkfifo(photos / "cam.png")
    out = photos / "reconstructed"  # --out inside the folder of photos
    done = []
    worker = threading.Thread(target=lambda: done.append(_reconstruct(model_run, out,
                                                                      photos)))
    worker.start()
    worker.join(120)
    assert not worker.is_alive(), "reconstruct hung on a FIFO"
    err = capsys.readouterr().err
    assert done == [1] and "cam.png: not a regular file" in err
    assert _reconstruct(model_run, out, photos) == 1  # the FIFO again; nothing else new
    assert sorted(d for d in os.listdir(out) if os.path.isdir(out / d)) == ["a"]


# --- prepare -------------------------------------------------------------------------

def test_prepare_keeps_every_crop_and_never_takes_its_own_back(tmp_path, logged):
    from tfsym3d.data.prepare import prepare_folder

    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "photo.jpg", seed=1)
    _photo(photos / "photo.png", seed=2)
    for k in range(4):
        _photo(photos / f"p{k}.png", seed=10 + k)
    out = photos / "data"  # --out inside --images
    split = (1.0, 0.0, 0.0)  # all in train: the two photos' crops would clash there
    first = prepare_folder(str(photos), str(out), "none", 32, split)
    crops = [c for p in first["photos"].values() for c in p["crops"]]
    assert len(crops) == 6 == len(set(crops))
    assert all((out / c).is_file() for c in crops)
    assert "its crops are named" in logged()
    second = prepare_folder(str(photos), str(out), "none", 32, split)
    assert second["last_run"]["photos"] == 0 and len(second["photos"]) == 6


@pytest.mark.parametrize("args, says", [
    (["--size=0"], "--size"), (["--size=-1"], "--size"), (["--size=8000"], "--size"),
    (["--split=nan,nan,nan"], "--split")])
def test_prepare_refuses_bad_numbers_before_writing(tmp_path, capsys, args, says):
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "a.png")
    out = tmp_path / "data"
    status = run(["tfsym3d", "prepare", f"--images={photos}", f"--out={out}",
                  "--detect=none", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert status != 0 and len(err) == 1 and says in err[0], err
    assert not out.exists()


def test_prepare_names_a_folder_it_cannot_read(tmp_path, capsys):
    from tfsym3d.data.prepare import prepare_folder

    if os.geteuid() == 0:
        pytest.skip("root reads every folder")
    photos = tmp_path / "photos"
    (photos / "locked").mkdir(parents=True)
    _photo(photos / "a.png")
    os.chmod(photos / "locked", 0)
    try:
        record = prepare_folder(str(photos), str(tmp_path / "data"), "none", 32)
    finally:
        os.chmod(photos / "locked", 0o755)
    assert record["last_run"]["unreadable"] == 1
    assert "locked: cannot read this folder" in capsys.readouterr().err


def test_the_written_records_are_json(tmp_path):
    # prepare.json stays a readable record after the naming changes.
    from tfsym3d.data.prepare import prepare_folder

    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "a.png")
    prepare_folder(str(photos), str(tmp_path / "data"), "none", 32)
    assert json.loads((tmp_path / "data" / "prepare.json").read_text())["crops"]


# --- limits at the doors -------------------------------------------------------------

def test_a_second_training_on_one_run_directory_is_refused(tmp_path, capsys):
    from tfsym3d.train import lock_run

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    held = lock_run(str(run_dir))  # as a training in another process holds it
    try:
        status = run(["tfsym3d", "train", "--config=tiny", f"--run_dir={run_dir}",
                      f"--set=data_dir={tmp_path}", "--progress=none"])
    finally:
        held.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert status != 0 and f"process {os.getpid()}" in err[-1], err
    assert "already being trained" in err[-1]
    assert os.listdir(run_dir) == [".train.lock"]  # nothing else written
    lock_run(str(run_dir)).close()  # free again once the holder closes


@pytest.mark.parametrize("text, says", [
    ("a: &a [1, 1]\n" + "".join(f"b{i}: &b{i} [*{'a' if i == 0 else f'b{i - 1}'}, "
                                f"*{'a' if i == 0 else f'b{i - 1}'}]\n" for i in range(200)),
     "aliases"),
    ("x: " + "[" * 500 + "]" * 500 + "\n", "nested deeper"),
    ("# " + "x" * (2 << 20) + "\n", "not a config file"),
])
def test_config_files_are_limited_before_they_are_built(tmp_path, capsys, text, says):
    import time

    path = tmp_path / "config.yaml"
    path.write_text(text)
    start = time.monotonic()
    status = run(["tfsym3d", "train", f"--config={path}", f"--run_dir={tmp_path / 'r'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status != 0 and len(err) == 1 and says in err[0] and str(path) in err[0], err
    assert time.monotonic() - start < 20


def test_a_keras_file_whose_config_inflates_is_refused_unread(tmp_path):
    import zipfile

    from tfsym3d.loader import load_model

    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", " " * (8 << 20))  # 8 MB of spaces: a few kB zipped
    assert path.stat().st_size < 100_000
    with pytest.raises(ValueError, match="inflates to"):
        load_model(str(path))


@pytest.mark.parametrize("flag", ["--batch=0", "--batch=-1", "--num=-5", "--image_size=0"])
def test_synth_refuses_bad_numbers_before_writing(tmp_path, capsys, flag):
    out = tmp_path / "data"
    assert run(["tfsym3d", "synth", f"--out={out}", "--num=10", flag]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not out.exists()


def test_pth_files_that_would_take_gigabytes_are_refused_small(tmp_path, capsys):
    """A few hundred bytes declaring wide networks, a list nested 100k deep, one list
    shared 2^40 times: each one line naming the file, nothing built or walked."""
    from tests import hostile_files
    from tfsym3d.layers.networks import EDDeconv, Encoder
    from tfsym3d.official import torch_layout

    key = {layer.name: k for k, layer, _ in torch_layout(EDDeconv(1, 16, 16, 64))}
    conv1 = next(k for k, layer, _ in torch_layout(Encoder(4, 16, 64)) if layer.name == "conv1")
    wide = {net: {key["enc_conv1"]: (256, 3, 4, 4), key["enc_conv_z"]: (256, 2048, 4, 4)}
            for net in ("netD", "netA")}
    wide.update({net: {conv1: (32, 3, 4, 4)} for net in ("netL", "netV")})
    cases = {"wide.pth": (lambda p: hostile_files.declared_pth(p, wide), "nf_depth 256"),
             "deep.pth": (hostile_files.nested_pth, "nested over"),
             "shared.pth": (hostile_files.shared_pth, "values")}
    for name, (write, says) in cases.items():
        path = tmp_path / name
        write(str(path))
        assert path.stat().st_size < 250_000
        assert run(["tfsym3d", "convert-official", str(path),
                    f"--out={tmp_path / 'out'}"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(path) in err[0] and says in err[0], err
    assert not (tmp_path / "out").exists()
