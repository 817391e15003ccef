"""Dataset preparation helpers shared by scripts/prepare_*.py: face crops that may reach
outside the photo, and the split layout.

Boxes are (x0, y0, w, h) in pixels of the photo, x right, y down; parts of a box outside
the photo are filled by replicating the border pixels (as the authors' CelebA crops).
"""

import os
import sys

import numpy as np
from PIL import Image, ImageOps

SPLIT_NAMES = {0: "train", 1: "val", 2: "test"}


def crop_replicate(image, box):
    """Crops image [H, W, C] (uint8 or float) to box (x0, y0, w, h) with integer
    pixels; outside the photo the border is replicated. Returns [h, w, C]."""
    x0, y0, w, h = (int(round(float(v))) for v in box)
    if w <= 0 or h <= 0:
        raise ValueError(f"empty box {box}")
    height, width = image.shape[:2]
    ys = np.clip(np.arange(y0, y0 + h), 0, height - 1)
    xs = np.clip(np.arange(x0, x0 + w), 0, width - 1)
    return image[ys[:, None], xs[None, :]]


def square_box(points, scale=1.0):
    """The square (x0, y0, side, side) centred on the bounding box of points [N, 2]
    (x, y), its side scale times the longer side of that box."""
    points = np.asarray(points, np.float64)
    lo, hi = points.min(0), points.max(0)
    side = scale * float((hi - lo).max())
    cx, cy = (lo + hi) / 2.0
    return cx - side / 2.0, cy - side / 2.0, side, side


def read_photo(path):
    """A photo as uint8 RGB [H, W, 3], EXIF orientation applied. Raises on failure."""
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def save_crop(crop, out_path, size):
    """Resizes a crop [h, w, 3] to size x size (bilinear) and writes it."""
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    Image.fromarray(crop).resize((size, size), Image.BILINEAR).save(out_path)


class Failures:
    """Collects per-file failures: one line on stderr each, a count at the end."""

    def __init__(self, tool):
        self.tool = tool
        self.count = 0

    def __call__(self, path, reason):
        self.count += 1
        print(f"{self.tool}: {path}: {reason}", file=sys.stderr, flush=True)

    def summary(self, counts, out):
        """Prints the closing line (crops per split, failures); returns the exit status:
        1 if any file failed."""
        print(f"{self.tool}: wrote {sum(counts.values())} crops to {out} ("
              + ", ".join(f"{k}: {v}" for k, v in counts.items())
              + (f"), {self.count} failed" if self.count else ")"))
        return 1 if self.count else 0
