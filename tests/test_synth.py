"""The synthetic dataset writer: layout, formats and determinism (a small smoke test;
issue 4 adds the consistency checks of its ground truth)."""

import csv
import os

import numpy as np
from PIL import Image

from tfsym3d.data import paired_dataset
from tfsym3d.data.synth import LANDMARKS, generate


def test_writes_the_paired_layout_deterministically(tmp_path):
    counts = generate(str(tmp_path / "a"), 10, image_size=32, seed=3, batch=4)
    assert counts == {"train": 8, "val": 1, "test": 1}
    image = Image.open(tmp_path / "a" / "train" / "image" / "000000_image.png")
    depth = Image.open(tmp_path / "a" / "train" / "depth" / "000000_depth.png")
    assert image.size == (32, 32) and image.mode == "RGB"
    d = np.asarray(depth)
    assert d.dtype == np.uint16
    assert 0.1 < (d > 0).mean() < 0.95  # a face on a background
    with open(tmp_path / "a" / "train" / "gt.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and f"{next(iter(LANDMARKS))}_u" in rows[0]
    assert all(abs(float(r["yaw"])) <= 45 for r in rows)
    generate(str(tmp_path / "b"), 10, image_size=32, seed=3, batch=5)
    for sub in ("image/000004_image.png", "depth/000004_depth.png"):
        a = np.asarray(Image.open(tmp_path / "a" / "train" / sub))
        b = np.asarray(Image.open(tmp_path / "b" / "train" / sub))
        assert np.array_equal(a, b), sub
    images, depth_gt = next(iter(paired_dataset(str(tmp_path / "a"), "train",
                                                image_size=32, batch_size=8)))
    assert images.shape == (8, 32, 32, 3) and depth_gt.shape == (8, 32, 32)
    fg = depth_gt.numpy() < 1.1 - 1e-6
    assert fg.any() and np.all(depth_gt.numpy()[fg] > 0.85)
    assert os.path.isdir(tmp_path / "a" / "test" / "depth")
