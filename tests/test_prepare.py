"""`tfsym3d prepare --source=celeba|cats` on a few made-up photos: crop geometry with border
replication, split layout, and per-file failures that do not stop the others."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tfsym3d.data.sources import square_box
from tfsym3d.io.images import crop as crop_replicate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_crop_replicates_the_border_outside_the_photo():
    image = np.arange(12).reshape(3, 4, 1)  # value = 4 y + x
    got = crop_replicate(image, (-2, 1, 4, 3))[..., 0]
    want = np.array([[4, 4, 4, 5],
                     [8, 8, 8, 9],
                     [8, 8, 8, 9]])  # rows 1, 2, 2 (clamped); columns 0, 0, 0, 1
    np.testing.assert_array_equal(got, want)
    inside = crop_replicate(image, (1, 0, 2, 2))[..., 0]
    np.testing.assert_array_equal(inside, [[1, 2], [5, 6]])
    with pytest.raises(ValueError, match="empty crop box"):
        crop_replicate(image, (0, 0, 0, 3))


def test_square_box_is_centred_on_the_points():
    x0, y0, w, h = square_box([[10, 20], [30, 25], [20, 40]], scale=1.5)
    assert (w, h) == (30.0, 30.0)  # 1.5 x the longer side (20)
    assert (x0 + w / 2, y0 + h / 2) == (20.0, 30.0)


def _photo(path, h=60, w=80):
    rng = np.random.default_rng(len(str(path)))
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)


def _run(source, *args):
    """`tfsym3d prepare --source=SOURCE ARGS` in a process of its own."""
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), "tfsym3d"),
                           "prepare", f"--source={source}", *args],
                          capture_output=True, text=True, timeout=120, cwd=REPO)


def test_prepare_celeba(tmp_path):
    photos = tmp_path / "img_celeba"
    photos.mkdir()
    for name in ("000001.jpg", "000002.jpg", "000003.jpg"):
        _photo(photos / name)
    (photos / "000004.jpg").write_bytes(b"broken")
    (tmp_path / "bbox.txt").write_text(
        "000001.jpg 0 10 5 40 40\n"
        "000002.jpg 1 -20 -10 70 70\n"   # reaches outside the photo
        "000003.jpg 2 50 30 60 60\n"
        "000004.jpg 0 0 0 10 10\n"        # unreadable photo
        "000005.jpg 0 0 0 10\n")          # bad line
    out = tmp_path / "celeba"
    result = _run("celeba", f"--images={photos}", f"--bbox={tmp_path / 'bbox.txt'}",
                  f"--out={out}", "--size=32")
    assert result.returncode == 1
    assert "000004.jpg" in result.stderr and "bbox.txt:5" in result.stderr
    for split, name in (("train", "000001"), ("val", "000002"), ("test", "000003")):
        with Image.open(out / split / f"{name}.png") as im:
            assert im.size == (32, 32) and im.mode == "RGB"
    # The crop of 000001 is the photo's box resized as Pillow does (its 8-bit arithmetic
    # rounds differently from the float resize every reader uses: at most 1 apart).
    with Image.open(photos / "000001.jpg") as im:
        src = np.asarray(im.convert("RGB"))
    want = np.asarray(Image.fromarray(src[5:45, 10:50]).resize((32, 32), Image.BILINEAR))
    got = np.asarray(Image.open(out / "train" / "000001.png"))
    assert np.abs(got.astype(int) - want).max() <= 1


@pytest.mark.slow
def test_prepare_cats(tmp_path):
    photos = tmp_path / "CAT_00"
    photos.mkdir()
    points = "9 " + " ".join(f"{x} {y}" for x, y in
                             [(30, 30), (50, 30), (40, 45), (25, 15), (28, 5), (33, 15),
                              (47, 15), (52, 5), (55, 15)])
    for i in range(6):
        _photo(photos / f"cat{i}.jpg")
        (photos / f"cat{i}.jpg.cat").write_text(points)
    (photos / "cat6.jpg.cat").write_text("3 1 2")  # malformed, and no photo needed
    _photo(photos / "cat6.jpg")
    _photo(photos / "unannotated.jpg")
    out = tmp_path / "cat"
    result = _run("cats", f"--images={tmp_path}", f"--out={out}", "--size=24")
    assert result.returncode == 1 and "cat6.jpg.cat" in result.stderr
    written = sorted(p for split in ("train", "val", "test") if (out / split).is_dir()
                     for p in os.listdir(out / split))
    assert written == [f"CAT_00_cat{i}.png" for i in range(6)]
    # A rerun assigns every photo to the same split (a function of its name).
    _run("cats", f"--images={tmp_path}", f"--out={tmp_path / 'b'}", "--size=24")
    for split in os.listdir(out):
        assert sorted(os.listdir(tmp_path / "b" / split)) == sorted(os.listdir(out / split))


def _photos(folder, n, seed=0, start=0):
    """n distinct photos of random sizes under folder (some in a subfolder)."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(start, start + n):
        h, w = rng.integers(40, 90, 2)
        sub = folder / ("trip" if i % 3 == 0 else "")
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"p{i:03d}.{'png' if i % 2 else 'jpg'}"
        Image.fromarray(rng.integers(0, 255, (h, w, 3), np.uint8)).save(path)
        paths.append(path)
    return paths


def test_prepare_splits_by_photo_stably_and_adds_only_new_photos(tmp_path, capsys):
    import json

    from tfsym3d.data.prepare import prepare_folder

    photos, out = tmp_path / "photos", tmp_path / "data"
    _photos(photos, 30)
    first = prepare_folder(str(photos), str(out), "none", 32, (0.6, 0.2, 0.2), seed=3)
    assert first["last_run"]["photos"] == 30 and sum(first["crops"].values()) == 30
    for rel, photo in first["photos"].items():
        stem = os.path.splitext(rel)[0].replace(os.sep, "__")
        assert photo["crops"] == [f"{photo['split']}/{stem}.png"]
        assert Image.open(out / photo["crops"][0]).size == (32, 32)
    assert all(first["crops"][s] > 0 for s in ("train", "val", "test"))
    assert (out / "contact_sheet.png").exists()
    # Ten more photos: the first thirty keep their split and files; only the new are cut.
    _photos(photos, 10, seed=1, start=30)
    before = {c: os.path.getmtime(out / c) for p in first["photos"].values()
              for c in p["crops"]}
    second = prepare_folder(str(photos), str(out), "none", 32, (0.6, 0.2, 0.2), seed=3)
    assert second["last_run"]["photos"] == 10 and sum(second["crops"].values()) == 40
    for rel, photo in first["photos"].items():
        assert second["photos"][rel]["split"] == photo["split"]
    assert all(os.path.getmtime(out / c) == t for c, t in before.items())
    assert json.loads((out / "prepare.json").read_text())["crops"] == second["crops"]
    # The same photos and seed into a fresh folder: the same splits (by pixels, not order).
    third = prepare_folder(str(photos), str(tmp_path / "again"), "none", 32,
                           (0.6, 0.2, 0.2), seed=3)
    assert {k: v["split"] for k, v in third["photos"].items()} == \
        {k: v["split"] for k, v in second["photos"].items()}
    with pytest.raises(ValueError, match="was prepared with"):
        prepare_folder(str(photos), str(out), "none", 64, (0.6, 0.2, 0.2), seed=3)


def test_split_fractions_hold_over_many_photos():
    from tfsym3d.data.prepare import split_of

    splits = [split_of(f"{i:064x}", 0, (0.9, 0.05, 0.05)) for i in range(4000)]
    assert abs(splits.count("train") / 4000 - 0.9) < 0.02
    assert abs(splits.count("test") / 4000 - 0.05) < 0.015
    assert split_of("ab", 0, (0.9, 0.05, 0.05)) == split_of("ab", 0, (0.9, 0.05, 0.05))


def test_prepare_names_duplicates_unreadable_files_and_missing_detections(tmp_path,
                                                                          monkeypatch):
    from tfsym3d import cli
    from tfsym3d.reconstruct import inputs

    photos = tmp_path / "photos"
    a, b, c = _photos(photos, 3)
    Image.open(b).save(photos / "same_pixels_as_b.png")  # b is a PNG: the same pixels
    (photos / "notes.jpg").write_text("not a photo")
    shape = {p: np.asarray(Image.open(p)).shape for p in (a, b, c)}

    class FakeDetector:  # two faces in photo a, one in b, none in c
        kind = "face"

        def __init__(self, kind):
            pass

        def all(self, rgb):
            return {shape[a]: [(2, 2, 20, 20), (20, 10, 15, 15)],
                    shape[b]: [(5, 5, 20, 20)]}.get(rgb.shape, [])

        def crop_box(self, box):
            return inputs.face_box(box)

    monkeypatch.setattr(inputs, "FaceDetector", FakeDetector)
    with pytest.raises(SystemExit) as exit_info:
        cli.run(["tfsym3d", "prepare", f"--images={photos}", f"--out={tmp_path / 'data'}",
                 "--detect=face", "--size=32"])
    assert exit_info.value.code == 1  # the unreadable file
    import json

    record = json.loads((tmp_path / "data" / "prepare.json").read_text())
    assert record["last_run"] == {"photos": 2, "duplicates": 1, "no_detection": 1,
                                  "unreadable": 1}
    crops = record["photos"][os.path.join("trip", "p000.jpg")]["crops"]
    assert [c.split("/")[1] for c in crops] == ["trip__p000_1.png", "trip__p000_2.png"]
    assert len(record["photos"]["p001.png"]["crops"]) == 1
