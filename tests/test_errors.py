"""The user's mistakes and their statuses (tfsym3d.errors): a missing extra named in one
line by the dispatcher. (The same bad key's status in every command: test_config.py.)"""

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
