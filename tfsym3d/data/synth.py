"""`tfsym3d synth`: an offline synthetic face dataset with ground truth, rendered by the
project's own renderer.

    tfsym3d synth --out=DIR --num=N [--image_size=64] [--seed=0] [--nocentre]

Each sample is a procedural, roughly symmetric face-like height field (head, brow,
eye sockets, nose, cheeks, mouth, chin; per-sample parameters) with a small asymmetric
deformation (an expression on one side), an albedo with a symmetric base and asymmetric
parts (hair on one side, blemishes, make-up on one cheek), Lambertian shading with random
ambient, diffuse and direction, and a random view (yaw +-45 deg, pitch +-20, roll +-15),
composited over a random background. The head is then centred in its image as in a face
crop, to +-0.01 camera units (~4 px at 64 px); with --nocentre (the sets before
2026-11-23) the view is translated by +-0.03 instead and the head also moves with its
turn. Rendered at twice the output size and averaged down for anti-aliasing.

Layout (the authors' paired layout): DIR/{train,val,test}/image/NAME_image.png,
DIR/{train,val,test}/depth/NAME_depth.png (16-bit, 1 = near, 0 = background; depth =
((1 - p) * 2 - 1) rescaled to 0.9..1.1 as the canonical depth is), and
DIR/{train,val,test}/gt.csv with the true view (degrees, camera units), light, and the 2D
position and depth of LANDMARKS as seen in the image. Deterministic for a seed.
"""

import csv
import os
import sys

import numpy as np
from absl import flags

MIN_DEPTH, MAX_DEPTH = 0.9, 1.1
FOV, ROT_CENTER_DEPTH = 10.0, 1.0  # the camera (degrees) and the point views turn about
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


def define_flags(fv):
    flags.DEFINE_string("out", None, "Output dataset root.", flag_values=fv)
    flags.DEFINE_integer("num", 1000, "Number of images in all splits together.",
                         flag_values=fv)
    flags.DEFINE_integer("image_size", 64, "Output image side in pixels.", flag_values=fv)
    flags.DEFINE_integer("seed", 0, "Random seed (the dataset is a function of it).",
                         flag_values=fv)
    flags.DEFINE_integer("batch", 64, "Images rendered at once.", flag_values=fv)
    flags.DEFINE_boolean("centre", True, "Centre each head in its image as a face crop "
                         "would; --nocentre gives the earlier sets, where turning about "
                         "depth 1.0 also moved the head sideways.", flag_values=fv)


def main(fv, args):
    if not fv.out:
        print("tfsym3d synth: --out is required", file=sys.stderr)
        return 2
    if fv.num < 3 or fv.image_size < 16:
        print("tfsym3d synth: --num must be >= 3 and --image_size >= 16", file=sys.stderr)
        return 2
    counts = generate(fv.out, fv.num, fv.image_size, fv.seed, fv.batch, fv.centre)
    print(f"wrote {sum(counts.values())} images to {fv.out} "
          + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    return 0


def sample_params(rng, n):
    """Per-sample shape, albedo, light and view parameters (a dict of [n] arrays)."""
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


def _gauss(x, y, cx, cy, sx, sy):
    return np.exp(-((x - cx) ** 2) / (2 * sx ** 2) - ((y - cy) ** 2) / (2 * sy ** 2))


def canonical_maps(p, i, size, rng):
    """Canonical depth [size, size], albedo [size, size, 3] in [0, 1] and the head mask."""
    y, x = np.mgrid[0:size, 0:size] / (size - 1.0) * 2.0 - 1.0
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
    d = np.stack([p["light_dx"][idx], p["light_dy"][idx], np.ones(len(idx))], 1)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    shade = p["light_a"][idx, None, None] + p["light_b"][idx, None, None] * np.clip(
        np.einsum("bhwc,bc->bhw", normal, d), 0, None)
    canon = np.clip(albedo * shade[..., None], 0, 1).astype(np.float32)
    scale = CENTRED_SHIFT if centre else UNCENTRED_SHIFT
    view = np.stack([np.radians(p["pitch"][idx]), np.radians(p["yaw"][idx]),
                     np.radians(p["roll"][idx]), scale * p["shift_x"][idx],
                     scale * p["shift_y"][idx], np.zeros(len(idx))], 1).astype(np.float32)
    grid = r.get_warped_3d_grid(depth, view).numpy().reshape(len(idx), -1, 3)
    # Vertices off the head go behind the camera: the rasterizer drops their triangles.
    grid[~np.stack(masks).reshape(len(idx), -1)] = [0.0, 0.0, -1.0]
    rast = rasterize(grid, r.faces, r.K, (big, big), xla=True)
    if centre:
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
    lm = np.array(list(LANDMARKS.values()))
    px = np.round((lm + 1) / 2 * (big - 1)).astype(int)
    pts = []
    for k, _ in enumerate(idx):
        zc = depth[k, px[:, 1], px[:, 0]]
        xyz = np.stack([(px[:, 0] - r.K[0, 2]) / r.K[0, 0] * zc,
                        (px[:, 1] - r.K[1, 2]) / r.K[1, 1] * zc, zc], 1)
        pts.append(xyz)
    pts = transform_points(np.stack(pts).astype(np.float32), view, ROT_CENTER_DEPTH)
    uv = project(pts, r.K).numpy() / 2.0 - 0.25  # pixel centres of the 2x grid -> output
    landmarks = np.concatenate([uv, pts.numpy()[..., 2:]], -1)
    return image.astype(np.float32), depth_out.astype(np.float32), landmarks, view


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


def depth_to_png16(depth):
    """Camera-unit depth (inf = background) -> uint16 PNG values, 1 = near, 0 = far."""
    t = (2 * depth - MAX_DEPTH - MIN_DEPTH) / (MAX_DEPTH - MIN_DEPTH)
    p = np.where(np.isfinite(depth), 1.0 - (t + 1.0) / 2.0, 0.0)
    # Foreground must stay above 0 so that it differs from the background.
    p = np.where(np.isfinite(depth), np.clip(p, 1.0 / 65535, 1.0), 0.0)
    return np.round(p * 65535).astype(np.uint16)


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


def generate(out, num, image_size=64, seed=0, batch=64, centre=True):
    """Writes the dataset; returns {split: count}. centre: see render_batch."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    params = sample_params(rng, num)
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
                Image.fromarray((images[k] * 255 + 0.5).astype(np.uint8)).save(
                    os.path.join(out, split, "image", f"{name}_image.png"))
                Image.fromarray(depth_to_png16(depth[k])).save(
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

