"""The user's mistakes and their statuses (tfsym3d.errors), said in one line by the
dispatcher: a missing extra, a flag value out of range, a file that is not there."""

import os
import sys

import pytest

from tfsym3d import cli


def test_a_missing_extra_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    """Without OpenCV (the [reconstruct] extra) `prepare --detect=face` says which extra
    to install, in one line, status 1; the same for every optional module."""
    from PIL import Image

    from tfsym3d.errors import EXTRAS, missing_extra

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (40, 40)).save(photos / "a.png")
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 raises ModuleNotFoundError
    with pytest.raises(SystemExit) as exit_info:
        cli.run(["tfsym3d", "prepare", f"--images={photos}", f"--out={tmp_path / 'd'}",
                 "--detect=face"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 1 and len(err) == 1, err
    assert "needs the [reconstruct] extra (cv2 is not installed)" in err[0]
    assert "pip install 'tfsym3d[reconstruct]'" in err[0]
    for module, extra in EXTRAS.items():
        said = missing_extra(ModuleNotFoundError(f"No module named '{module}'",
                                                 name=f"{module}.sub"))
        assert f"[{extra}]" in said
    assert missing_extra(ModuleNotFoundError("x", name="numpy")) is None
    # setup.cfg declares each extra the mapping names
    cfg = open(os.path.join(os.path.dirname(__file__), "..", "setup.cfg")).read()
    for extra in set(EXTRAS.values()):
        assert f"\n{extra} =\n" in cfg


def test_each_kind_of_mistake_has_one_status_in_every_command(tmp_path, capsys):
    """A flag value out of its range is 2 (as absl gives a flag it cannot parse), a file
    that is not there is 1, in whichever command; each one line naming what is wrong.
    (A bad config key, 2 everywhere: test_config.py.)"""
    from tests.test_evaluate import run

    photos = tmp_path / "photos"
    photos.mkdir()
    missing = str(tmp_path / "nowhere")
    out = str(tmp_path / "out")
    out_of_range = {
        "synth": (["synth", f"--out={out}", "--num=1"], "--num"),
        "prepare": (["prepare", f"--images={photos}", f"--out={out}", "--size=5"], "--size"),
        "prepare --split": (["prepare", f"--images={photos}", f"--out={out}", "--split=1,1"],
                            "--split"),
        "train": (["train", "--config=tiny", f"--run_dir={out}", "--devices=0"], "--devices"),
        "export": (["export", f"--checkpoint={missing}", f"--out={out}", "--formats=gif"],
                   "format 'gif'"),
        "export --name": (["export", f"--checkpoint={missing}", f"--out={out}", "--name=../x"],
                          "--name"),
        "prepare-tfrecords": (["prepare-tfrecords", f"--data={photos}", f"--out={out}",
                               "--shards=0"], "--shards"),
    }
    not_there = {
        "reconstruct": ["reconstruct", f"--checkpoint={missing}", f"--out={out}", "a.png"],
        "evaluate": ["evaluate", f"--checkpoint={missing}", f"--data={photos}"],
        "export": ["export", f"--checkpoint={missing}", f"--out={out}"],
        "train": ["train", f"--init={missing}", f"--run_dir={out}"],
        "convert-official": ["convert-official", f"{missing}.pth", f"--out={out}"],
    }
    for name, (argv, named) in out_of_range.items():
        assert run(["tfsym3d", *argv]) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and named in err[0], (name, err)
    for name, argv in not_there.items():
        assert run(["tfsym3d", *argv]) == 1, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "nowhere" in err[0], (name, err)
    assert not os.path.exists(out)
