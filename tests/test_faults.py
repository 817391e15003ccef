"""Faults: a file in the way stops a command before it writes; files that would decode to
gigabytes stay under 2 GiB; a really full disk (a tmpfs) leaves nothing half-written.
(Damaged checkpoints: test_checkpoints.py.)"""


import os
import sys

import pytest
import tensorflow as tf

from tests import hostile_files
from tfsym3d.checkpoints import load_model


@pytest.mark.slow
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


@pytest.mark.slow
def test_an_image_whose_files_fail_half_way_leaves_nothing_half_written(model_run, tmp_path,
                                                                        monkeypatch):
    """A full disk while writing one image's maps: that image's folder is absent (no
    partial folder either), the others and index.html are complete."""
    from PIL import Image

    from tfsym3d.reconstruct import outputs
    from tfsym3d.reconstruct.files import reconstruct_files

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (64, 64), (120, 90, 60)).save(photos / f"{name}.png")
    real = outputs.save_png

    def disk_full_on_b(path, image):
        if os.sep + ".b.partial-" in path and path.endswith("albedo.png"):
            raise OSError(28, "No space left on device")
        real(path, image)

    monkeypatch.setattr(outputs, "save_png", disk_full_on_b)
    out = tmp_path / "out"
    summary = reconstruct_files(load_model(model_run), [str(photos)], str(out), mesh=False,
                                gifs=False)
    assert summary["done"] == ["a"] and "no space left" in summary["failed"][0][1]
    assert sorted(os.listdir(out)) == ["a", "contact_sheet.png", "index.html",
                                       "shape_viewer.js"]
    assert "albedo.png" in os.listdir(out / "a")


# Peak memory of hostile files, each read by a `tfsym3d` process of its own.

BIN = os.path.join(os.path.dirname(sys.executable), "tfsym3d")
PEAK_LIMIT = 2 * 2 ** 30  # bytes
OFFICIAL = os.path.join(os.path.dirname(__file__), "fixtures", "official")


# Runs argv and prints its peak resident kilobytes. A process's peak counts what it had
# before exec, so a child forked straight from this test process (GBs after training)
# would report at least that: it is measured from this small launcher instead.
_LAUNCHER = ("import resource, subprocess, sys\n"
             "rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
             "sys.exit(rc)\n")


def _peak_run(argv, env=None):
    """(exit status, stderr, peak resident bytes) of one process."""
    import subprocess

    done = subprocess.run([sys.executable, "-c", _LAUNCHER, *argv], capture_output=True,
                          text=True, env=dict(os.environ, **(env or {})), timeout=600)
    return done.returncode, done.stderr, int(done.stdout.split()[-1]) * 1024


def _serving_bytes_run(exported, path):
    """_peak_run of a process feeding the file to the export's serving_bytes (exit
    status 1 with the graph's message when it refuses)."""
    code = ("import sys, tensorflow as tf\n"
            f"m = tf.saved_model.load({str(exported / 'saved_model' / 'tfsym3d' / '1')!r})\n"
            "try:\n"
            f"    m.signatures['serving_bytes'](image_bytes=tf.constant([open({str(path)!r}, "
            "'rb').read()]))\n"
            "except tf.errors.InvalidArgumentError as err:\n"
            "    sys.exit(err.message)\n")
    return _peak_run([sys.executable, "-c", code])


def _one_line_failure(rc, err, *named):
    lines = err.strip().splitlines()
    assert rc != 0 and "Traceback" not in err, err
    assert len(lines) <= 2, err
    for text in named:
        assert text in err, err
    return lines


@pytest.mark.slow
def test_small_files_that_decode_to_gigabytes_stay_under_2_gib(model_run, exported,
                                                               tmp_path):
    """A 0.5 MB 13000x13000 PNG through reconstruct; a 1.1 MB 20000x20000 PNG through the
    SavedModel's serving_bytes; a 3 MB zip-bomb .pth; a 0.5 kB .pth whose tensor is a
    stride-0 (2000, 1000000) view: each refused by name, the process under 2 GiB."""
    photos = tmp_path / "photos"
    photos.mkdir()
    hostile_files.big_png(photos / "big.png", 13000, 13000)
    rc, err, peak = _peak_run([BIN, "reconstruct", f"--checkpoint={model_run}",
                               f"--out={tmp_path / 'out'}", "--nomesh", "--nogifs",
                               str(photos)])
    _one_line_failure(rc, err, "big.png", "13000x13000 is 169,000,000 pixels, over the limit")
    assert peak < PEAK_LIMIT, peak

    huge = tmp_path / "huge.png"
    hostile_files.big_png(huge, 20000, 20000)
    rc, err, peak = _serving_bytes_run(exported, huge)
    assert rc == 1 and "more pixels than the limit" in err, err
    assert peak < PEAK_LIMIT, peak

    bomb = tmp_path / "bomb.pth"
    hostile_files.zip_bomb_pth(bomb, os.path.join(OFFICIAL, "trainer_zip.pth"), 3 * 10 ** 9)
    assert bomb.stat().st_size < 4 * 10 ** 6
    stride = tmp_path / "stride0.pth"
    hostile_files.stride_zero_pth(stride)
    for path, problem in ((bomb, "unpacks to 3,000,"), (stride, "would take 8,000,000,000")):
        rc, err, peak = _peak_run([BIN, "convert-official", str(path),
                                   f"--out={tmp_path / path.stem}"])
        _one_line_failure(rc, err, str(path), problem)
        assert peak < PEAK_LIMIT, (path, peak)
        assert not (tmp_path / path.stem).exists()


@pytest.mark.slow
def test_photos_frames_and_depth_maps_that_decode_big_stay_under_2_gib(model_run, exported,
                                                                      tmp_path):
    """Issue 49's image cases, each in a process of its own: a 49 Mpx phone photo turned
    by EXIF is reconstructed; a JPEG whose header claims 7000x7000 is corrupt; a GIF of
    2500 660x660 frames is refused by serving_bytes; a 13300x13300 depth map is named
    and skipped by evaluate. Each under 2 GiB."""
    from tfsym3d.data.synth import generate

    photos = tmp_path / "photos"
    photos.mkdir()
    hostile_files.big_png(photos / "phone.png", 8064, 6048, orientation=6)
    hostile_files.lying_jpeg(photos / "lie.jpg", 7000, 7000)
    rc, err, peak = _peak_run([BIN, "reconstruct", f"--checkpoint={model_run}",
                               f"--out={tmp_path / 'out'}", "--nomesh", "--nogifs",
                               str(photos)])
    assert rc == 1 and "Traceback" not in err, err
    assert f"{photos / 'lie.jpg'}: corrupt JPEG: its header declares 7000x7000" in err
    assert (tmp_path / "out" / "phone" / "albedo.png").is_file()
    assert peak < PEAK_LIMIT, peak

    gif = tmp_path / "frames.gif"
    hostile_files.many_frames_gif(gif, 2500, 660)
    rc, err, peak = _serving_bytes_run(exported, gif)
    assert rc == 1 and "frames counted together" in err, err
    assert peak < PEAK_LIMIT, peak

    generate(str(tmp_path / "data"), 20, image_size=64, seed=0)
    depth = sorted((tmp_path / "data" / "test" / "depth").iterdir())[0]
    hostile_files.big_png(depth, 13300, 13300, grey16=True)
    rc, err, peak = _peak_run([BIN, "evaluate", f"--checkpoint={model_run}",
                               f"--data={tmp_path / 'data'}"])
    assert "Traceback" not in err and f"skipping {depth}" in err, err
    assert "13300x13300 is 176,890,000 pixels, over the limit" in err
    assert peak < PEAK_LIMIT, peak


# A really full disk: a tmpfs of a few megabytes in a user and mount namespace.

def _on_small_disk(tmp_path, size, shell):
    """Runs `shell` (where {disk} is a fresh tmpfs of `size`) in a user and mount
    namespace; returns (exit status, stdout, stderr), the stdout ending with a listing
    'FILE <path under disk> <bytes>' of what the disk holds afterwards. Skips the test
    where mounting is not allowed."""
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        pytest.skip("no unshare command: a small tmpfs cannot be mounted here")
    disk = tmp_path / "disk"
    disk.mkdir()
    script = (f"mount -t tmpfs -o size={size} tmpfs {disk} || exit 99; "
              + shell.format(disk=disk) + f"; rc=$?; find {disk} -mindepth 1 -printf "
              "'FILE %P %s\\n'; exit $rc")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True,
                          text=True, timeout=900)
    if done.returncode == 99:
        pytest.skip(f"mounting a tmpfs is not allowed here (unshare -rm): "
                    f"{done.stderr.strip()[:200]}")
    return done.returncode, done.stdout, done.stderr


def _files(stdout):
    """{path: bytes} from _on_small_disk's listing."""
    rows = [line.split(" ")[1:] for line in stdout.splitlines() if line.startswith("FILE ")]
    return {path: int(size) for path, size in rows}


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """A 48-image synthetic face dataset (64 pixels)."""
    from tfsym3d.data.synth import generate

    root = tmp_path_factory.mktemp("faces") / "data"
    generate(str(root), 48, image_size=64, seed=0)
    return root


@pytest.mark.slow
def test_training_on_a_full_disk_says_so_and_resumes_cleanly_with_space(tmp_path, faces):
    """3 MB cannot hold a tiny.yaml checkpoint (35 MB with Adam's moments): one line
    naming the run directory, no traceback, the unfinished save removed; the same run with
    room then trains and leaves no *_temp folder."""
    train = (f"{BIN} train --config=tiny --set=data_dir={faces} --set=batch_size=8 "
             "--set=num_epochs=1 --progress=none --run_dir={disk}/run")
    rc, out, err = _on_small_disk(tmp_path, "3m", (
        f"{train}; echo FIRST=$? >&2; find {{disk}} -name '*_temp' -printf 'TEMP %P\\n'; "
        "mount -o remount,size=256m {disk}; "
        f"{train} 2>&1 >/dev/null | sed 's/^/RESUME /'"))
    first = err.split("FIRST=")[0]
    lines = _one_line_failure(1, first, f"{tmp_path / 'disk' / 'run'}: ")
    assert "FIRST=1" in err, err
    assert lines[-1].endswith("no space left on device while saving a checkpoint (the "
                              "unfinished one was removed; the last complete one is kept)")
    assert "TEMP " not in out, out  # removed at once, not only at the next start
    files = _files(out)
    assert "run/checkpoints/ckpt-1.index" in files, out
    assert not [p for p in files if p.endswith("_temp") or "_temp/" in p], out
    assert not [p for p, n in files.items() if n == 0], out


@pytest.mark.slow
def test_reconstructing_onto_a_full_disk_leaves_no_half_written_file(tmp_path, model_run):
    """400 kB holds two images' maps or so (~180 kB each): the images that did not fit
    are named, those that did are whole, no 0-byte file and no hidden partial folder is
    left."""
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        Image.new("RGB", (96, 80), (60 + 40 * i, 90, 70)).save(photos / f"p{i}.png")
    rc, out, err = _on_small_disk(tmp_path, "400k", (
        f"{BIN} reconstruct --checkpoint={model_run} --out={{disk}}/out --nomesh --nogifs "
        f"{photos}"))
    assert rc == 1 and "Traceback" not in err, err
    assert "no space left on device" in err, err
    files = _files(out)
    assert not [p for p, n in files.items() if n == 0], out
    assert not [p for p in files if ".partial" in p], out
    done = {p.split("/")[1] for p in files if p.count("/") == 2}
    assert done and len(done) < 4, out
    for name in done:
        assert f"out/{name}/params.json" in files, out
    for i in range(4):
        assert (f"p{i}" in done) != (f"out/p{i}: cannot write: no space left" in err), err


@pytest.mark.slow
def test_exporting_onto_a_full_disk_leaves_nothing(tmp_path, model_run):
    rc, out, err = _on_small_disk(tmp_path, "3m", (
        f"{BIN} export --checkpoint={model_run} --out={{disk}}/out "
        "--formats=saved_model,tflite"))
    _one_line_failure(rc, err, f"{tmp_path / 'disk' / 'out'}: no space left on device; "
                      "nothing was written")
    assert _files(out) == {}, out
