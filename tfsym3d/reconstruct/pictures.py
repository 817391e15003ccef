"""Maps as pictures: colour maps for depth, the normal-map convention, confidence heat
maps and the contact sheet's row. numpy in, numpy RGB in [0, 1] out."""

import numpy as np

from tfsym3d.io.depth import depth_to_unit
from tfsym3d.io.images import to_uint8

# Anchor colours of perceptual colour maps (magma: dark purple to pale yellow; heat:
# black, red, yellow, white).
MAGMA = np.array([[0, 0, 4], [59, 15, 112], [140, 41, 129], [222, 73, 104],
                  [254, 159, 109], [252, 253, 191]], np.float32) / 255.0
HEAT = np.array([[0, 0, 0], [180, 20, 10], [250, 120, 0], [255, 230, 60],
                 [255, 255, 255]], np.float32) / 255.0
SHEET_COLUMNS = ("input", "reconstruction", "canonical depth", "canonical normal",
                 "albedo", "shading", "confidence (flipped)", "symmetry plane")


def colormap(values, anchors=MAGMA):
    """values [...] in [0, 1] -> RGB [..., 3] in [0, 1], piecewise linear in anchors."""
    v = np.clip(np.nan_to_num(np.asarray(values, np.float32)), 0.0, 1.0) * (len(anchors) - 1)
    lo = np.minimum(np.floor(v).astype(int), len(anchors) - 2)
    frac = (v - lo)[..., None]
    return anchors[lo] * (1.0 - frac) + anchors[lo + 1] * frac


def depth_image(depth, min_depth, max_depth):
    """Depth [...] in camera units -> RGB [..., 3]: magma, near = bright."""
    return colormap(depth_to_unit(depth, min_depth, max_depth))


def normal_image(normal):
    """Unit normals [..., 3] (camera space: x right, y down, z forward; pointing away
    from the camera as the model's are) -> RGB in [0, 1] of the usual normal-map
    convention: the normal towards the viewer in x right, y up, z towards the viewer (a
    surface facing the camera is (0.5, 0.5, 1)). A zero vector (nothing seen) -> white."""
    normal = np.asarray(normal, np.float32)
    rgb = np.clip(normal * np.array([-1.0, 1.0, 1.0]) / 2.0 + 0.5, 0.0, 1.0)
    empty = ~np.any(normal != 0, axis=-1, keepdims=True)
    return np.where(empty, 1.0, rgb)


def conf_images(sigma):
    """Sigmas [H, W, 2] -> two heat maps on a shared scale (bright = uncertain)."""
    lo, hi = float(sigma.min()), float(sigma.max())
    t = (sigma - lo) / max(hi - lo, 1e-8)
    return colormap(t[..., 0], HEAT), colormap(t[..., 1], HEAT)


def sheet_row(maps, i, cfg):
    """The contact sheet's row for image i of a Reconstructor's maps: [S, 8S, 3] uint8
    (the columns are SHEET_COLUMNS)."""
    tiles = [maps["input"][i], maps["recon_im"][i],
             depth_image(maps["canon_depth"][i], cfg.min_depth, cfg.max_depth),
             normal_image(maps["canon_normal"][i]), maps["canon_albedo"][i],
             np.repeat(np.clip(maps["canon_shading"][i], 0, 1), 3, -1),
             conf_images(maps["conf_sigma_l1"][i])[1], maps["symmetry"][i]]
    return to_uint8(np.concatenate(tiles, 1))
