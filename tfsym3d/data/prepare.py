"""Dataset preparation helpers shared by scripts/prepare_*.py: square boxes around
landmarks, the crops' files, the split layout and per-file failures.

Boxes are (x0, y0, w, h) in pixels of the photo, x right, y down; photos are read and
cropped by tfsym3d.io.images (parts of a box outside the photo replicate the border, as
the authors' CelebA crops).
"""

import os
import sys

import numpy as np
from PIL import Image

SPLIT_NAMES = {0: "train", 1: "val", 2: "test"}


def square_box(points, scale=1.0):
    """The square (x0, y0, side, side) centred on the bounding box of points [N, 2]
    (x, y), its side scale times the longer side of that box."""
    points = np.asarray(points, np.float64)
    lo, hi = points.min(0), points.max(0)
    side = scale * float((hi - lo).max())
    cx, cy = (lo + hi) / 2.0
    return cx - side / 2.0, cy - side / 2.0, side, side


def save_crop(crop, out_path, size):
    """Resizes a crop [h, w, 3] in [0, 1] to size x size (tfsym3d.io.images.resize, as
    every reader does) and writes it as an 8-bit PNG."""
    from tfsym3d.io.images import resize, to_uint8

    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    Image.fromarray(to_uint8(resize(crop, size).numpy())).save(out_path)


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
