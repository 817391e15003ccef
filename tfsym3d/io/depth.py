"""Depth maps as images: the synface convention of the authors' data.

A depth PNG stores p in [0, 1] (16-bit: p * 65535): 1 at min_depth (near), 0 at
max_depth and beyond (and on the background of ground-truth maps). All depths are in
camera units.
"""

import numpy as np

from tfsym3d.io import images


def depth_to_unit(depth, min_depth, max_depth):
    """Depth [...] -> p in [0, 1], 1 at min_depth (near), 0 at max_depth and beyond."""
    # Through t in [-1, 1] (the networks' range), as the datasets were written.
    t = (2 * depth - max_depth - min_depth) / (max_depth - min_depth)
    return np.clip(1.0 - (t + 1.0) / 2.0, 0.0, 1.0)


def unit_to_depth(p, min_depth, max_depth):
    """p in [0, 1] (1 = near) -> depth in camera units; the inverse of depth_to_unit on
    [min_depth, max_depth]. Works on numpy arrays and tensors."""
    return max_depth - p * (max_depth - min_depth)


def depth_png16(depth, min_depth, max_depth, foreground=None):
    """Depth [H, W] -> uint16 PNG values (65535 = min_depth, 0 = max_depth).

    foreground: optional bool mask [H, W]; outside it the value is 0, inside it at least
    1, so that a far foreground pixel still differs from the background."""
    depth = np.asarray(depth)
    p = depth_to_unit(np.where(np.isfinite(depth), depth, max_depth), min_depth, max_depth)
    values = np.round(p * 65535)
    if foreground is not None:
        values = np.where(foreground, np.maximum(values, 1), 0)
    return values.astype(np.uint16)


def read_depth_png(path, shape=None):
    """Reads a depth PNG (a path or a file object, 16-bit or 8-bit) as p in [0, 1]:
    float32 [H, W]. Raises on failure: InputError, before decoding, over the pixel limit
    or when `shape` (H, W: its image's) is given and the header says another size."""
    with images.open_image(path) as im:
        w, h = im.size
        images.check_pixels(w, h, "depth map ")
        if shape is not None and (h, w) != tuple(shape):
            raise images.InputError(f"depth map {w}x{h} does not match its image "
                                    f"{shape[1]}x{shape[0]}")
        arr = np.asarray(im, dtype=np.float32)
        scale = 65535.0 if (im.mode.startswith("I") or arr.max() > 255) else 255.0
    if arr.ndim == 3:
        arr = arr[..., 0]
    return arr / scale
