"""Offline synthetic datasets with ground truth (faces by default, and two object
families), rendered by the project's own renderer: what `tfsym3d synth` writes
(tfsym3d.commands.synth).

    counts = generate("data/synface", num=1000, image_size=64, seed=0, style="faces")

style="faces" (the default) follows the paper's synthetic faces, which satisfy the
method's assumption: a face crop (the face fills the frame, the head is cut at the top)
with a symmetric relief of realistic proportions (brow ridge, eye sockets and eyeballs,
a nose rising from between the eyes to its tip, cheekbones, lips, chin) and a symmetric
albedo (skin, brows, eyes, nostrils, lips, a fringe and hair at both sides) up to a few
small blemishes; tests/test_synth.py proves that frontalising an image with its true
depth, light and view and scanning the yaw finds the true yaw. --asymmetric adds strong
asymmetries (hair over one side, make-up on one cheek, a one-sided smile in the relief),
as in the paper's separate asymmetry experiments. --style=eggs gives the earlier sets
(before 2026-12-02) bit for bit: egg-shaped heads with painted features, hair down one
side, one-sided smile and make-up.

--style=blobs and --style=cars stress what the faces do not (issue 43): every instance
has its own shape (no shared category shape), a saturated colour, a plain background
that fills most of the frame, a wider view range and another light range; see
_object_params. blobs: smooth rounded objects with mirrored bumps and spots on grey;
cars: car fronts (body, cabin, windscreen, lamps, grille, wheels) in saturated paint on
a tinted background, seen from above and lit from above.

Lambertian shading with random ambient, diffuse and direction, and a random view (for
faces yaw +-45 deg, pitch +-20, roll +-15), composited over a random background. Each
object is then centred in its image as in a face crop, to +-0.01 camera units (~4 px at
64 px): for faces a point on the symmetry axis midway between the eyes and the mouth and
halfway into the head, for the other styles the pixels the object covers. With
--nocentre (the sets before 2026-11-23) the view is translated by +-0.03 instead and the
head also moves with its turn. Rendered at twice the output size and averaged down for
anti-aliasing.

Layout (the authors' paired layout): DIR/{train,val,test}/image/NAME_image.png,
DIR/{train,val,test}/depth/NAME_depth.png (16-bit, 1 = near, 0 = background; depth =
((1 - p) * 2 - 1) rescaled to 0.9..1.1 as the canonical depth is),
DIR/{train,val,test}/gt.csv with the true view (degrees, camera units), light, and the 2D
position and depth of LANDMARKS as seen in the image, and DIR/synth.json with the
settings. Deterministic for the settings.
"""

import csv
import json
import os

import numpy as np

from tfsym3d.config import Config

STYLES = ("faces", "eggs", "blobs", "cars")
# The object families (not faces): each instance its own shape, saturated colours.
OBJECT_STYLES = ("blobs", "cars")
# The camera is the default model's (tfsym3d.config.Config): fov in degrees, the depth
# range and the point views turn about in camera units.
MIN_DEPTH, MAX_DEPTH = Config.min_depth, Config.max_depth
FOV, ROT_CENTER_DEPTH = Config.fov, Config.rot_center_depth
RIM_DEPTH = 1.06  # depth of the head's edge; the face rises towards the camera from it
LANDMARKS = {  # canonical (x, y) in [-1, 1], x right, y down
    "eye_outer_left": (-0.5, -0.12), "eye_inner_left": (-0.17, -0.12),
    "eye_inner_right": (0.17, -0.12), "eye_outer_right": (0.5, -0.12),
    "nose_tip": (0.0, 0.2), "mouth_left": (-0.22, 0.48), "mouth_right": (0.22, 0.48),
    "chin": (0.0, 0.8),
}
SPLITS = (("train", 0.8), ("val", 0.1), ("test", 0.1))
# Translations, camera units (the image's half-width at depth 1 is 0.0875): of the head's
# centre in a centred set (face crops, the default); of the whole view otherwise.
CENTRED_SHIFT, UNCENTRED_SHIFT = 0.01, 0.03


def sample_params(rng, n, style="faces", asymmetric=False):
    """Per-sample shape, albedo, light and view parameters: a dict of [n] arrays, and
    "style" (see STYLES) and "asymmetric" (faces only: one-sided hair, make-up and smile;
    eggs always have theirs)."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}; got {style!r}")
    if style == "eggs":  # always with its asymmetric parts
        return dict(_egg_params(rng, n), style="eggs", asymmetric=True)
    if style in OBJECT_STYLES:  # a few have one asymmetric patch, always
        return dict(_object_params(rng, n, style), style=style, asymmetric=False)
    return dict(_face_params(rng, n), style="faces", asymmetric=bool(asymmetric))


def _face_params(rng, n):
    u = rng.uniform
    return {
        # The head: an ellipsoid cap wider than the face, cut by the frame at the top.
        "head_w": u(0.78, 0.9, n), "head_h": u(1.0, 1.12, n), "head_y": u(-0.06, 0.02, n),
        "head_z": u(0.075, 0.095, n),
        "brow_h": u(0.006, 0.012, n), "brow_y": u(-0.42, -0.34, n),
        "eye_x": u(0.3, 0.36, n), "eye_y": u(-0.2, -0.14, n), "socket_d": u(0.012, 0.02, n),
        "nose_h": u(0.018, 0.028, n), "nose_y": u(0.12, 0.2, n), "nose_w": u(0.07, 0.1, n),
        "cheek_h": u(0.004, 0.01, n), "mouth_y": u(0.4, 0.48, n), "lip_h": u(0.003, 0.007, n),
        "chin_y": u(0.74, 0.82, n), "chin_h": u(0.006, 0.012, n),
        "skin": np.stack([u(0.55, 0.9, n), u(0.4, 0.7, n), u(0.3, 0.6, n)], 1),
        "hair": np.stack([u(0.05, 0.4, n)] * 3, 1) * u(0.7, 1.0, (n, 3)),
        "iris": np.stack([u(0.1, 0.4, n), u(0.1, 0.35, n), u(0.05, 0.3, n)], 1),
        "lips": np.stack([u(0.6, 0.8, n), u(0.2, 0.35, n), u(0.2, 0.35, n)], 1),
        "hair_line": u(-0.85, -0.65, n), "hair_curve": u(0.0, 0.3, n),
        "blemishes": rng.integers(0, 4, n),
        # The asymmetric option's parts (drawn always, so the symmetric and asymmetric
        # sets of a seed share everything else).
        "hair_side": rng.choice([-1.0, 1.0], n), "hair_cover": u(0.2, 0.6, n),
        "makeup": u(0.0, 1.0, n) < 0.4, "smile_h": u(0.005, 0.015, n),
        "light_a": u(0.3, 0.7, n), "light_b": u(0.3, 0.7, n),
        "light_dx": u(-0.8, 0.8, n), "light_dy": u(-0.8, 0.8, n),
        "yaw": u(-45, 45, n), "pitch": u(-20, 20, n), "roll": u(-15, 15, n),
        "shift_x": u(-1.0, 1.0, n), "shift_y": u(-1.0, 1.0, n),
        "bg": u(0.0, 1.0, (n, 2, 3)),
    }


def _egg_params(rng, n):
    """The eggs style's parameters (the sets before 2026-12-02, unchanged)."""
    u = rng.uniform
    return {
        "head_w": u(0.72, 0.86, n), "head_h": u(0.92, 1.02, n), "head_z": u(0.09, 0.13, n),
        "brow_h": u(0.008, 0.02, n), "brow_y": u(-0.32, -0.24, n),
        "eye_d": u(0.01, 0.022, n), "eye_x": u(0.3, 0.36, n), "eye_y": u(-0.14, -0.1, n),
        "nose_h": u(0.015, 0.03, n), "nose_len": u(0.12, 0.18, n), "nose_w": u(0.06, 0.09, n),
        "cheek_h": u(0.005, 0.015, n), "mouth_d": u(0.004, 0.01, n), "mouth_y": u(0.45, 0.5, n),
        "chin_h": u(0.008, 0.02, n),
        "smile_side": rng.choice([-1.0, 1.0], n), "smile_h": u(0.0, 0.015, n),
        "skin": np.stack([u(0.55, 0.9, n), u(0.4, 0.7, n), u(0.3, 0.6, n)], 1),
        "hair": np.stack([u(0.05, 0.4, n)] * 3, 1) * u(0.7, 1.0, (n, 3)),
        "hair_side": rng.choice([-1.0, 1.0], n), "hair_line": u(-0.75, -0.45, n),
        "hair_cover": u(0.0, 0.5, n), "makeup": u(0.0, 1.0, n) < 0.4,
        "light_a": u(0.3, 0.7, n), "light_b": u(0.3, 0.7, n),
        "light_dx": u(-0.8, 0.8, n), "light_dy": u(-0.8, 0.8, n),
        "yaw": u(-45, 45, n), "pitch": u(-20, 20, n), "roll": u(-15, 15, n),
        # Translation in [-1, 1], times CENTRED_SHIFT or UNCENTRED_SHIFT camera units.
        "shift_x": u(-1.0, 1.0, n), "shift_y": u(-1.0, 1.0, n),
        "bg": u(0.0, 1.0, (n, 2, 3)),
    }


def _canonical_grid(size):
    """Canonical (y, x) [size, size] each, in [-1, 1], x right, y down."""
    return np.mgrid[0:size, 0:size] / (size - 1.0) * 2.0 - 1.0


def _gauss(x, y, cx, cy, sx, sy):
    return np.exp(-((x - cx) ** 2) / (2 * sx ** 2) - ((y - cy) ** 2) / (2 * sy ** 2))


def canonical_maps(p, i, size, rng):
    """Canonical depth [size, size] (camera units, MAX_DEPTH off the head), albedo
    [size, size, 3] in [0, 1] and the head mask [size, size] of sample i. rng: the
    sample's own generator (its blemishes)."""
    maps = {"faces": _face_maps, "eggs": _egg_maps, "blobs": _blob_maps, "cars": _car_maps}
    return maps[p["style"]](p, i, size, rng)


def _face_maps(p, i, size, rng):
    """A face crop: symmetric relief and albedo (x right, y down, in [-1, 1]), plus small
    blemishes; with p["asymmetric"], hair over one side, make-up on one cheek and a
    one-sided smile."""
    y, x = _canonical_grid(size)
    g = _gauss
    e = (x / p["head_w"][i]) ** 2 + ((y - p["head_y"][i]) / p["head_h"][i]) ** 2
    mask = e < 1.0
    # Flatter than an ellipsoid at the front, falling off fast at the sides.
    h = p["head_z"][i] * np.clip(1.0 - e, 0.0, None) ** 0.4
    ey, ex, ny = p["eye_y"][i], p["eye_x"][i], p["nose_y"][i]
    for side in (-1, 1):
        h += p["brow_h"][i] * g(x, y, side * 0.3, p["brow_y"][i], 0.2, 0.06)
        h -= p["socket_d"][i] * g(x, y, side * ex, ey, 0.15, 0.1)
        h += 0.35 * p["socket_d"][i] * g(x, y, side * ex, ey, 0.07, 0.045)  # the eyeball
        h += p["cheek_h"][i] * g(x, y, side * 0.46, 0.1, 0.16, 0.13)
        h += 0.25 * p["nose_h"][i] * g(x, y, side * 0.1, ny + 0.01, 0.05, 0.045)  # alae
    # The nose: a ridge rising from between the eyes to the tip, wider at its base, and
    # falling steeply under the tip.
    t = np.clip((y - ey) / (ny - ey), 0.0, 1.0)
    bridge = np.exp(-np.clip(ey - 0.1 - y, 0.0, None) ** 2 / (2 * 0.05 ** 2))  # above
    under = np.exp(-np.clip(y - ny, 0.0, None) ** 2 / (2 * 0.035 ** 2))
    width = p["nose_w"][i] * (0.45 + 0.55 * t)
    ridge = np.exp(-x ** 2 / (2 * width ** 2))
    h += p["nose_h"][i] * (0.15 + 0.85 * t ** 1.5) * bridge * under * ridge
    h += 0.3 * p["nose_h"][i] * g(x, y, 0.0, ny, 0.05, 0.04)  # the tip
    my = p["mouth_y"][i]
    h += p["lip_h"][i] * g(x, y, 0.0, my - 0.045, 0.17, 0.035)  # upper lip
    h += p["lip_h"][i] * g(x, y, 0.0, my + 0.05, 0.14, 0.035)  # lower lip
    h -= 0.6 * p["lip_h"][i] * g(x, y, 0.0, my, 0.19, 0.012)  # the mouth's line
    h -= 0.5 * p["lip_h"][i] * g(x, y, 0.0, my + 0.15, 0.12, 0.03)  # under the lip
    h += p["chin_h"][i] * g(x, y, 0.0, p["chin_y"][i], 0.17, 0.1)
    side = p["hair_side"][i]
    if p["asymmetric"]:
        h += p["smile_h"][i] * g(x, y, side * 0.3, my - 0.05, 0.1, 0.08)
    depth = np.where(mask, RIM_DEPTH - h, MAX_DEPTH)

    albedo = np.ones((size, size, 3)) * p["skin"][i]
    albedo *= 1 + 0.08 * (g(x, y, -0.45, 0.15, 0.15, 0.12)
                          + g(x, y, 0.45, 0.15, 0.15, 0.12))[..., None] * [0.5, -0.5, -0.5]
    for sd in (-1, 1):
        brow = g(x, y, sd * 0.32, p["brow_y"][i] + 0.06 * (x * sd - 0.32) ** 2, 0.14, 0.025)
        albedo = albedo * (1 - 0.7 * brow[..., None]) + 0.7 * brow[..., None] * p["hair"][i]
        albedo *= 1 - 0.15 * g(x, y, sd * ex, ey, 0.14, 0.08)[..., None]  # shadowed sockets
        white = g(x, y, sd * ex, ey, 0.08, 0.028)[..., None]
        albedo = albedo * (1 - white) + white * 0.85
        iris = g(x, y, sd * ex, ey, 0.03, 0.03)[..., None]
        albedo = albedo * (1 - iris) + iris * p["iris"][i]
        pupil = g(x, y, sd * ex, ey, 0.012, 0.012)[..., None]
        albedo = albedo * (1 - pupil) + pupil * 0.05
        nostril = g(x, y, sd * 0.07, ny + 0.05, 0.025, 0.015)[..., None]
        albedo *= 1 - 0.6 * nostril
    lips = np.maximum(g(x, y, 0.0, my - 0.03, 0.15, 0.025), g(x, y, 0.0, my + 0.04, 0.13, 0.03))
    albedo = albedo * (1 - 0.8 * lips[..., None]) + 0.8 * lips[..., None] * p["lips"][i]
    albedo *= 1 - 0.5 * g(x, y, 0.0, my, 0.16, 0.008)[..., None]
    # Hair: a fringe curving down at the temples, and at both sides beyond the cheeks.
    hair = y < p["hair_line"][i] + p["hair_curve"][i] * x ** 2
    hair |= (np.abs(x) > 0.8) & (y < 0.2)
    if p["asymmetric"]:
        hair |= y < p["hair_line"][i] + p["hair_cover"][i] * np.clip(side * x, 0, None) * 1.5
        if p["makeup"][i]:
            blush = g(x, y, -side * 0.42, 0.15, 0.1, 0.07)[..., None]
            albedo = albedo * (1 - 0.5 * blush) + 0.5 * blush * np.array([0.9, 0.3, 0.5])
    albedo = np.where(hair[..., None], p["hair"][i], albedo)
    for _ in range(p["blemishes"][i]):  # small spots: the only asymmetry by default
        bx, by = rng.uniform(-0.5, 0.5), rng.uniform(-0.3, 0.7)
        albedo *= 1 - 0.4 * g(x, y, bx, by, 0.02, 0.02)[..., None]
    return depth.astype(np.float32), np.clip(albedo, 0, 1).astype(np.float32), mask


def _egg_maps(p, i, size, rng):
    """The eggs style (see _egg_params)."""
    y, x = _canonical_grid(size)
    e = (x / p["head_w"][i]) ** 2 + ((y - 0.02) / p["head_h"][i]) ** 2
    mask = e < 1.0
    h = p["head_z"][i] * np.sqrt(np.clip(1.0 - e, 0.0, None))
    h += p["brow_h"][i] * _gauss(x, y, 0.0, p["brow_y"][i], 0.45, 0.05)
    for side in (-1, 1):
        h -= p["eye_d"][i] * _gauss(x, y, side * p["eye_x"][i], p["eye_y"][i], 0.09, 0.06)
        h += p["cheek_h"][i] * _gauss(x, y, side * 0.38, 0.2, 0.12, 0.12)
    ny = 0.2 - p["nose_len"][i] / 2
    h += p["nose_h"][i] * _gauss(x, y, 0.0, ny, p["nose_w"][i], p["nose_len"][i])
    h += 0.5 * p["nose_h"][i] * _gauss(x, y, 0.0, 0.18, p["nose_w"][i], 0.05)
    h -= p["mouth_d"][i] * _gauss(x, y, 0.0, p["mouth_y"][i], 0.18, 0.03)
    h += p["chin_h"][i] * _gauss(x, y, 0.0, 0.75, 0.15, 0.1)
    h += p["smile_h"][i] * _gauss(x, y, p["smile_side"][i] * 0.3, 0.38, 0.1, 0.08)
    depth = np.where(mask, RIM_DEPTH - h, MAX_DEPTH)

    albedo = np.ones((size, size, 3)) * p["skin"][i]
    for side in (-1, 1):  # eyebrows, eyes
        albedo *= 1 - 0.5 * _gauss(x, y, side * 0.33, p["brow_y"][i], 0.12, 0.025)[..., None]
        eye = _gauss(x, y, side * p["eye_x"][i], p["eye_y"][i], 0.06, 0.025)[..., None]
        albedo = albedo * (1 - eye) + eye * np.array([0.95, 0.95, 0.95]) * 0.9
        pupil = _gauss(x, y, side * p["eye_x"][i], p["eye_y"][i], 0.025, 0.025)[..., None]
        albedo = albedo * (1 - pupil) + pupil * 0.1
    lips = _gauss(x, y, 0.0, p["mouth_y"][i], 0.15, 0.03)[..., None]
    albedo = albedo * (1 - 0.6 * lips) + 0.6 * lips * np.array([0.7, 0.25, 0.25])
    # Asymmetric parts: hair over one side, make-up on one cheek, blemishes.
    side = p["hair_side"][i]
    hair = (y < p["hair_line"][i] + p["hair_cover"][i] * np.clip(side * x, 0, None) * 1.5)
    hair |= (side * x > 0.62) & (y < 0.3)
    albedo = np.where(hair[..., None], p["hair"][i], albedo)
    if p["makeup"][i]:
        blush = _gauss(x, y, -side * 0.38, 0.22, 0.1, 0.07)[..., None]
        albedo = albedo * (1 - 0.5 * blush) + 0.5 * blush * np.array([0.9, 0.3, 0.5])
    for _ in range(rng.integers(0, 4)):
        bx, by = rng.uniform(-0.5, 0.5), rng.uniform(-0.4, 0.6)
        spot = _gauss(x, y, bx, by, 0.025, 0.025)[..., None]
        albedo *= 1 - 0.5 * spot
    return depth.astype(np.float32), np.clip(albedo, 0, 1).astype(np.float32), mask


def _hsv(h, s, v):
    """HSV in [0, 1] (arrays of one shape) -> RGB [..., 3] in [0, 1]."""
    k = (np.asarray(h)[..., None] * 6.0 + np.array([5.0, 3.0, 1.0])) % 6.0
    return np.asarray(v)[..., None] * (1.0 - np.asarray(s)[..., None]
                                       * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0))


def _object_params(rng, n, style):
    """The object families' parameters: a dict of [n] arrays.

    blobs: smooth rounded bodies (a superellipse footprint of random aspect and a
    random set of mirrored bumps and dents, so no two share a shape), one saturated
    colour with up to three mirrored pairs of spots of another, a one-sided patch on 30%
    of them; a plain grey background of random brightness; strong side light (ambient
    0.15-0.45, direction x, y within +-1.2), yaw +-55 deg, pitch +-25, roll +-10.

    cars: a car's front, wide and low (a rounded box, a cabin whose dark windscreen
    recedes towards the roof, headlights, a dark grille and wheels), saturated paint; a
    tinted two-tone background (lighter above); light from above (direction y in -1.0..0.1, ambient
    0.35-0.6), yaw +-55 deg, pitch -5..30 (seen from above), roll +-5."""
    u = rng.uniform
    common = {
        "hue": u(0.0, 1.0, n), "sat": u(0.6, 1.0, n), "val": u(0.5, 0.95, n),
        "hue2": u(0.25, 0.75, n), "sat2": u(0.4, 1.0, n), "val2": u(0.25, 1.0, n),
        "spots": rng.integers(0, 4, n), "patch": u(0.0, 1.0, n) < 0.3,
        "shift_x": u(-1.0, 1.0, n), "shift_y": u(-1.0, 1.0, n),
    }
    if style == "blobs":
        grey = u(0.15, 0.85, n)
        return dict(common, **{
            "body_w": u(0.45, 0.8, n), "body_h": u(0.45, 0.85, n), "body_y": u(-0.1, 0.1, n),
            "body_z": u(0.06, 0.11, n), "body_p": u(1.6, 3.0, n),
            # Four bump slots: a mirrored pair at +-x (one central bump when x < 0.1).
            "bump_on": u(0.0, 1.0, (n, 4)) < 0.7, "bump_x": u(0.0, 0.5, (n, 4)),
            "bump_y": u(-0.6, 0.6, (n, 4)), "bump_s": u(0.08, 0.25, (n, 4)),
            "bump_h": u(-0.03, 0.04, (n, 4)),
            "light_a": u(0.15, 0.45, n), "light_b": u(0.5, 0.9, n),
            "light_dx": u(-1.2, 1.2, n), "light_dy": u(-1.2, 1.2, n),
            "yaw": u(-55, 55, n), "pitch": u(-25, 25, n), "roll": u(-10, 10, n),
            "bg": np.repeat(np.repeat(grey[:, None, None], 2, 1), 3, 2),
        })
    tint = u(-1.0, 1.0, (n, 3))
    tint /= np.linalg.norm(tint, axis=1, keepdims=True)
    bg_top = u(0.45, 0.95, n)[:, None] * (1.0 + 0.2 * tint)
    bg_bottom = bg_top * u(0.4, 0.8, n)[:, None]
    return dict(common, **{
        "body_w": u(0.75, 0.92, n), "body_h": u(0.35, 0.55, n), "body_y": u(0.0, 0.2, n),
        "body_z": u(0.05, 0.08, n), "body_p": u(3.5, 6.0, n),
        "cabin_w": u(0.5, 0.75, n), "cabin_h": u(0.2, 0.32, n), "screen_d": u(0.02, 0.04, n),
        "lamp_x": u(0.55, 0.75, n), "lamp_s": u(0.06, 0.1, n), "grille_w": u(0.2, 0.4, n),
        "light_a": u(0.35, 0.6, n), "light_b": u(0.4, 0.8, n),
        "light_dx": u(-1.0, 1.0, n), "light_dy": u(-1.0, 0.1, n),
        "yaw": u(-55, 55, n), "pitch": u(-5, 30, n), "roll": u(-5, 5, n),
        "bg": np.clip(np.stack([bg_top, bg_bottom], 1), 0.0, 1.0),
    })


def _paint(p, i, x, y, rng):
    """The object families' albedo [S, S, 3]: the base colour, mirrored spots of the
    second colour and, for some, one patch on one side (drawn from rng)."""
    base = _hsv(p["hue"][i], p["sat"][i], p["val"][i])
    second = _hsv((p["hue"][i] + p["hue2"][i]) % 1.0, p["sat2"][i], p["val2"][i])
    albedo = np.ones(x.shape + (3,)) * base
    for _ in range(p["spots"][i]):
        sx, sy, r = rng.uniform(0.1, 0.5), rng.uniform(-0.5, 0.5), rng.uniform(0.05, 0.12)
        spot = ((np.abs(x) - sx) ** 2 + (y - sy) ** 2 < r ** 2)[..., None]
        albedo = np.where(spot, second, albedo)
    if p["patch"][i]:
        px, py, r = rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), rng.uniform(0.08, 0.18)
        patch = _gauss(x, y, px, py, r, r)[..., None]
        albedo = albedo * (1 - patch) + patch * _hsv(rng.uniform(), 0.8, 0.8)
    return albedo


def _blob_maps(p, i, size, rng):
    """The blobs style (see _object_params)."""
    y, x = _canonical_grid(size)
    yc = y - p["body_y"][i]
    e = (np.abs(x) / p["body_w"][i]) ** p["body_p"][i] \
        + (np.abs(yc) / p["body_h"][i]) ** p["body_p"][i]
    mask = e < 1.0
    # Rounded, but not so steep at the rim that turned views smear it into streaks.
    h = p["body_z"][i] * np.clip(1.0 - e, 0.0, None) ** 0.7
    inside = np.clip(1.0 - e, 0.0, 1.0) ** 0.25  # bumps fade out at the rim
    for k in np.flatnonzero(p["bump_on"][i]):
        bx, by, bs = p["bump_x"][i, k], p["bump_y"][i, k], p["bump_s"][i, k]
        bx, by = bx * p["body_w"][i], by * p["body_h"][i]
        pair = _gauss(np.abs(x), yc, bx, by, bs, bs) if bx >= 0.1 else \
            _gauss(x, yc, 0.0, by, bs, bs)
        h += p["bump_h"][i, k] * pair * inside
    return _object_maps(mask, h, _paint(p, i, x, yc, rng))


def _car_maps(p, i, size, rng):
    """The cars style (see _object_params)."""
    y, x = _canonical_grid(size)
    w, hh, yc = p["body_w"][i], p["body_h"][i], y - p["body_y"][i]
    e = (np.abs(x) / w) ** p["body_p"][i] + (np.abs(yc) / hh) ** p["body_p"][i]
    # The cabin on top: a narrower rounded box over the body's top edge.
    ch = p["cabin_h"][i]
    ec = (np.abs(x) / (w * p["cabin_w"][i])) ** 4 + (np.abs(yc + hh + 0.5 * ch) / ch) ** 4
    mask = (e < 1.0) | (ec < 1.0)
    h = p["body_z"][i] * np.clip(1.0 - e, 0.0, None) ** 0.5
    # The windscreen recedes towards the roof.
    t = np.clip((-hh - yc) / (1.5 * ch), 0.0, 1.0)
    cabin = p["body_z"][i] * 0.7 * np.clip(1.0 - ec, 0.0, None) ** 0.5 - p["screen_d"][i] * t
    h = np.where(ec < 1.0, np.maximum(h, cabin), h)
    lamp = _gauss(np.abs(x), yc, p["lamp_x"][i] * w, -0.2 * hh, p["lamp_s"][i],
                  p["lamp_s"][i] * 0.7)
    grille = (np.abs(x) < p["grille_w"][i]) & (np.abs(yc - 0.2 * hh) < 0.25 * hh)
    h += 0.012 * lamp - 0.008 * grille
    albedo = _paint(p, i, x, yc, rng)
    screen = ((ec < 0.5) & (yc < -hh))[..., None]
    albedo = np.where(screen, np.array([0.12, 0.14, 0.18]), albedo)
    albedo = albedo * (1 - lamp[..., None]) + lamp[..., None] * 0.95
    albedo = np.where(grille[..., None], 0.08, albedo)
    wheels = ((np.abs(x) > 0.62 * w) & (yc > 0.7 * hh))[..., None]
    albedo = np.where(wheels, 0.05, albedo)
    return _object_maps(mask, h, albedo)


def _object_maps(mask, h, albedo):
    """An object family's canonical maps (see canonical_maps) from its mask, its height
    h above RIM_DEPTH (camera units; kept inside the depth range) and its albedo."""
    depth = np.where(mask, np.clip(RIM_DEPTH - h, MIN_DEPTH + 0.005, None), MAX_DEPTH)
    return depth.astype(np.float32), np.clip(albedo, 0, 1).astype(np.float32), mask


def render_batch(p, idx, size, seed, centre=True):
    """Renders samples idx; sample i draws its random details from (seed, i) alone, so the
    result does not depend on the batching. centre: move each head so that the pixels
    it covers are centred on the image, up to its shift (as a face crop would).

    Returns images [n, S, S, 3] in [0, 1], depth [n, S, S] (camera units, inf on
    background), landmarks [n, L, 3] (u, v pixels, depth) and the views [n, 6] (radians,
    camera units; when centring, the translation that centres the head)."""
    from tfsym3d.renderer import Renderer, interpolate, project, rasterize, transform_points

    big = 2 * size
    r = Renderer(big, FOV, MIN_DEPTH, MAX_DEPTH, ROT_CENTER_DEPTH)
    rngs = [np.random.default_rng([seed, int(i)]) for i in idx]
    depths, albedos, masks = zip(*(canonical_maps(p, i, big, g)
                                   for i, g in zip(idx, rngs, strict=True)),
                                 strict=True)
    depth = np.stack(depths)
    albedo = np.stack(albedos)
    normal = r.get_normal_from_depth(depth).numpy()
    shade = shading(p, idx, normal)
    canon = np.clip(albedo * shade[..., None], 0, 1).astype(np.float32)
    scale = CENTRED_SHIFT if centre else UNCENTRED_SHIFT
    view = np.stack([np.radians(p["pitch"][idx]), np.radians(p["yaw"][idx]),
                     np.radians(p["roll"][idx]), scale * p["shift_x"][idx],
                     scale * p["shift_y"][idx], np.zeros(len(idx))], 1).astype(np.float32)
    faces_style = p["style"] == "faces"
    if faces_style and centre:
        view = _centre_faces(p, idx, depth, view, r)
    grid = r.get_warped_3d_grid(depth, view).numpy().reshape(len(idx), -1, 3)
    # Vertices off the head go behind the camera: the rasterizer drops their triangles.
    grid[~np.stack(masks).reshape(len(idx), -1)] = [0.0, 0.0, -1.0]
    rast = rasterize(grid, r.faces, r.K, (big, big), xla=True)
    if centre and not faces_style:
        view, grid, rast = _centre_heads(view, grid, rast, r)
    colour = interpolate(canon.reshape(len(idx), -1, 3), rast, r.faces).numpy()
    cover = (rast["face_id"].numpy() >= 0)
    zbig = rast["depth"].numpy()

    # Background: a random vertical gradient with noise.
    t = np.linspace(0, 1, big)[None, :, None, None]
    bg = p["bg"][idx, 0][:, None, None] * (1 - t) + p["bg"][idx, 1][:, None, None] * t
    bg = bg + np.stack([g.normal(0, 0.03, (big, big, 3)) for g in rngs])
    image = np.where(cover[..., None], colour, np.clip(bg, 0, 1))
    image = image.reshape(len(idx), size, 2, size, 2, 3).mean(axis=(2, 4))
    z4 = zbig.reshape(len(idx), size, 2, size, 2)
    depth_out = np.where(np.isfinite(z4).all(axis=(2, 4)), z4.mean(axis=(2, 4)), np.inf)

    # Landmarks: canonical point -> view -> image, at output resolution.
    pts = []
    for k, i in enumerate(idx):
        px = np.round((landmarks_canonical(p, i) + 1) / 2 * (big - 1)).astype(int)
        zc = depth[k, px[:, 1], px[:, 0]]
        xyz = np.stack([(px[:, 0] - r.K[0, 2]) / r.K[0, 0] * zc,
                        (px[:, 1] - r.K[1, 2]) / r.K[1, 1] * zc, zc], 1)
        pts.append(xyz)
    pts = transform_points(np.stack(pts).astype(np.float32), view, ROT_CENTER_DEPTH)
    uv = project(pts, r.K).numpy() / 2.0 - 0.25  # pixel centres of the 2x grid -> output
    landmarks = np.concatenate([uv, pts.numpy()[..., 2:]], -1)
    return image.astype(np.float32), depth_out.astype(np.float32), landmarks, view


def shading(p, idx, normal):
    """Lambertian shading of samples idx on their canonical normals [n, H, W, 3]:
    light_a + light_b * max(0, n . d), d the unit light direction: [n, H, W]."""
    from tfsym3d.renderer import lambertian

    d = np.stack([p["light_dx"][idx], p["light_dy"][idx], np.ones(len(idx))], 1)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return lambertian(np.asarray(normal, np.float64), d, p["light_a"][idx],
                      p["light_b"][idx])[1].numpy()


def landmarks_canonical(p, i):
    """The canonical (x, y) in [-1, 1] of LANDMARKS for sample i: [L, 2]."""
    if p["style"] != "faces":
        return np.array(list(LANDMARKS.values()))
    ex, ey, my = p["eye_x"][i], p["eye_y"][i], p["mouth_y"][i]
    return np.array([(-ex - 0.1, ey), (-ex + 0.1, ey), (ex - 0.1, ey), (ex + 0.1, ey),
                     (0.0, p["nose_y"][i]), (-0.17, my), (0.17, my), (0.0, p["chin_y"][i])])


def _centre_faces(p, idx, depth, view, r):
    """The view's translation that puts each face's centre at its view's (tx, ty) from
    the optical axis, as a face crop would: returns the views [n, 6]. The centre is the
    point on the symmetry axis midway between the eyes and the mouth, halfway between
    the head's rim and its surface (so a turned face stays in the frame)."""
    from tfsym3d.renderer import transform_points

    big = depth.shape[1]
    pts = []
    for k, i in enumerate(idx):
        cy = (p["eye_y"][i] + p["mouth_y"][i]) / 2
        row = int(round((cy + 1) / 2 * (big - 1)))
        col = (big - 1) / 2  # the symmetry axis, between two columns for an even size
        z = (RIM_DEPTH + depth[k, row, [int(np.floor(col)), int(np.ceil(col))]].mean()) / 2
        pts.append([(col - r.K[0, 2]) / r.K[0, 0] * z, (row - r.K[1, 2]) / r.K[1, 1] * z, z])
    rotation_only = view.copy()
    rotation_only[:, 3:] = 0.0
    turned = transform_points(np.array(pts, np.float32)[:, None], rotation_only,
                              ROT_CENTER_DEPTH).numpy()[:, 0]
    view = view.copy()
    view[:, 3:5] = view[:, 3:5] - turned[:, :2]
    return view


def _centre_heads(view, grid, rast, r):
    """Moves each rendered head so that the centre of the pixels it covers lies at its
    view's (tx, ty) from the image centre (camera units, at the head's mean depth).

    The rotation centre (depth 1.0) is not the head's, so a turn alone also shifts the
    head sideways, up to ~13 px at 64 px; crops of photos (CelebA, the authors'
    synthetic faces) keep the face in the middle. Returns the view, warped grid and
    rasterization after the move."""
    from tfsym3d.renderer import rasterize

    big = rast["face_id"].shape[1]
    cover = (rast["face_id"].numpy() >= 0).astype(np.float64)
    zbig = np.where(cover > 0, rast["depth"].numpy(), 0.0)
    seen = cover.sum(axis=(1, 2))
    count = np.maximum(seen, 1.0)
    rows, cols = np.arange(big)[None, :, None], np.arange(big)[None, None, :]
    centre = np.stack([((cover * cols).sum(axis=(1, 2)) / count - r.K[0, 2]) / r.K[0, 0],
                       ((cover * rows).sum(axis=(1, 2)) / count - r.K[1, 2]) / r.K[1, 1]],
                      1) * (zbig.sum(axis=(1, 2)) / count)[:, None]
    centre = np.where(seen[:, None] > 0, centre, view[:, 3:5])  # none seen: stays put
    shift = (centre - view[:, 3:5]).astype(np.float32)
    view, grid = view.copy(), grid.copy()
    view[:, 3:5] -= shift
    grid[..., :2] -= shift[:, None, :]
    return view, grid, rasterize(grid, r.faces, r.K, (big, big), xla=True)


def read_settings(root):
    """The settings a dataset was synthesised with (DIR/synth.json): a dict with num,
    image_size, seed, centre, style and asymmetric. Sets written before synth.json
    existed were eggs: {"style": "eggs", "asymmetric": True} alone."""
    path = os.path.join(root, "synth.json")
    if not os.path.isfile(path):
        return {"style": "eggs", "asymmetric": True}
    with open(path) as f:
        return json.load(f)


def split_bounds(num):
    """[(split, first, end)]: the sample indices [first, end) of each split of `num`
    (num >= 3: every split gets at least one sample)."""
    bounds, start = [], 0
    for i, (split, frac) in enumerate(SPLITS):
        later = len(SPLITS) - 1 - i  # splits still to fill, one sample each at least
        n = num - start if later == 0 else \
            min(max(1, int(round(num * frac))), num - start - later)
        bounds.append((split, start, start + n))
        start += n
    return bounds


def generate(out, num, image_size=64, seed=0, batch=64, centre=True, style="faces",
             asymmetric=False):
    """Writes the dataset; returns {split: count}. centre: see render_batch; style and
    asymmetric: see sample_params."""
    from PIL import Image

    from tfsym3d.io.depth import depth_png16
    from tfsym3d.io.images import to_uint8

    rng = np.random.default_rng(seed)
    params = sample_params(rng, num, style, asymmetric)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "synth.json"), "w") as f:
        json.dump({"num": num, "image_size": image_size, "seed": seed, "centre": centre,
                   "style": style, "asymmetric": params["asymmetric"]}, f)
    counts = {}
    for split, lo, hi in split_bounds(num):
        for sub in ("image", "depth"):
            os.makedirs(os.path.join(out, split, sub), exist_ok=True)
        rows = []
        for b0 in range(lo, hi, batch):
            idx = np.arange(b0, min(b0 + batch, hi))
            images, depth, landmarks, views = render_batch(params, idx, image_size, seed, centre)
            for k, i in enumerate(idx):
                name = f"{i:06d}"
                Image.fromarray(to_uint8(images[k])).save(
                    os.path.join(out, split, "image", f"{name}_image.png"))
                Image.fromarray(depth_png16(depth[k], MIN_DEPTH, MAX_DEPTH,
                                            np.isfinite(depth[k]))).save(
                    os.path.join(out, split, "depth", f"{name}_depth.png"))
                row = {"name": name, "pitch": params["pitch"][i], "yaw": params["yaw"][i],
                       "roll": params["roll"][i], "tx": float(views[k, 3]),
                       "ty": float(views[k, 4]), "tz": 0.0, "light_a": params["light_a"][i],
                       "light_b": params["light_b"][i], "light_dx": params["light_dx"][i],
                       "light_dy": params["light_dy"][i]}
                for j, lm_name in enumerate(LANDMARKS):
                    row[f"{lm_name}_u"], row[f"{lm_name}_v"], row[f"{lm_name}_z"] = \
                        landmarks[k, j]
                rows.append(row)
        with open(os.path.join(out, split, "gt.csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            for row in rows:
                writer.writerow({k: (f"{v:.6g}" if isinstance(v, float | np.floating) else v)
                                 for k, v in row.items()})
        counts[split] = hi - lo
    return counts

