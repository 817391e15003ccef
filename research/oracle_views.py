"""What the views are worth on a `tfsym3d synth` dataset: SIDE and MAD of the dataset's
own mean face shape seen from the true views, from views with the yaw scaled down, and
from no rotation at all, scored by the code `tfsym3d evaluate` uses.

    python research/oracle_views.py --data=DIR --num=N [--seed=0] [--split=test]
    python research/oracle_views.py --data=DIR --num=N --fit [--checkpoint=RUN_DIR]

`--num` and `--seed` must be the ones the dataset was synthesised with: the script draws
the same per-sample parameters again (and checks them against the split's gt.csv) to
rebuild each face's canonical depth. Rows:

- true shape, true view: the generator's own canonical depth through the model's warp
  (a consistency check, close to 0);
- mean shape, yaw x k: the canonical depth with every shape parameter at its dataset mean
  (no one-sided smile), seen from the true view with the yaw multiplied by k;
- mean shape, no rotation: the true translation only.

A model whose predicted views are shrunk toward frontal is bounded by the matching row
whatever its shape; this is how the learning benchmark's bar (SIDE <= 0.5x and MAD <=
0.75x the mean-depth baseline) reads in terms of the view.

With --fit it asks instead how well the truth explains the images: each face's own
canonical depth, albedo, light and view, shaded and re-rendered by the model's own
`Unsup3D.shade` and renderer at the images' size, against the images (mean absolute
error per pixel, images in [0, 1], over the rendered pixels on the head, where the
ground-truth depth is foreground, and off it). The truth's canonical albedo is skin
colour off the head, so only the head row is a bound on what the loss can reach. With
--checkpoint the trained model's own reconstruction (plain half) is scored alongside.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np

SHAPE_KEYS = {  # per synth style: the parameters of the canonical relief
    "eggs": ("head_w", "head_h", "head_z", "brow_h", "brow_y", "eye_d", "eye_x", "eye_y",
             "nose_h", "nose_len", "nose_w", "cheek_h", "mouth_d", "mouth_y", "chin_h"),
    "faces": ("head_w", "head_h", "head_y", "head_z", "brow_h", "brow_y", "eye_x", "eye_y",
              "socket_d", "nose_h", "nose_y", "nose_w", "cheek_h", "mouth_y", "lip_h",
              "chin_y", "chin_h"),
}


def dataset_params(data, num, seed):
    """The generator's per-sample parameters of a dataset, drawn again from (num, seed)
    and the style recorded in its synth.json."""
    from tfsym3d.data import synth

    settings = synth.read_settings(data)
    return synth.sample_params(np.random.default_rng(seed), num, settings["style"],
                               settings["asymmetric"])


def rows(data, num, seed=0, split="test", limit=None):
    """[(label, side x1e-2, mad degrees, coverage)] for the rows of the module docstring.

    Raises ValueError when the dataset's gt.csv does not match (num, seed)."""
    import tensorflow as tf

    from tfsym3d import metrics
    from tfsym3d.data import synth
    from tfsym3d.io.depth import read_depth_png, unit_to_depth
    from tfsym3d.renderer import Renderer

    params = dataset_params(data, num, seed)
    idx, shift = _checked_split(data, num, seed, split, limit, params)
    folder = os.path.join(data, split)
    gt, size = [], None
    for i in idx:
        path = os.path.join(folder, "depth", f"{i:06d}_depth.png")
        values = read_depth_png(path)
        gt.append(unit_to_depth(values, synth.MIN_DEPTH, synth.MAX_DEPTH))
        size = values.shape[0]
    gt = tf.constant(np.stack(gt), tf.float32)
    renderer = Renderer(size, synth.FOV, synth.MIN_DEPTH, synth.MAX_DEPTH,
                        synth.ROT_CENTER_DEPTH)

    mean = dict(params)
    for key in SHAPE_KEYS[params["style"]]:
        mean[key] = np.full(num, params[key].mean())
    mean["smile_h"] = np.zeros(num)  # eggs: no one-sided smile
    mean["asymmetric"] = False  # faces: likewise

    def canonical(p):
        out = []
        for i in idx:  # the sample's own random details, as synth draws them
            depth, _, mask = synth.canonical_maps(p, i, size, np.random.default_rng([seed, int(i)]))
            out.append(np.where(mask, depth, synth.RIM_DEPTH))  # off-head: rim level
        return tf.constant(np.stack(out), tf.float32)

    def views(yaw_scale=1.0, rotate=True):
        r = 1.0 if rotate else 0.0
        return tf.constant(np.stack([
            np.radians(params["pitch"][idx]) * r,
            np.radians(params["yaw"][idx]) * r * yaw_scale,
            np.radians(params["roll"][idx]) * r,
            shift[:, 0], shift[:, 1], np.zeros(len(idx))], 1), tf.float32)

    def score(label, canon, view):
        recon = renderer.warp_canon_depth(canon, view)
        e = metrics.depth_errors(recon, gt, renderer)  # unit-normal MAD, as the log's
        return (label, float(np.mean(e["side"])) * 100.0, float(np.mean(e["mad_unit"])),
                float(np.mean(e["coverage"])))

    true_shape, mean_shape = canonical(params), canonical(mean)
    out = [score("true shape, true view", true_shape, views())]
    for k in (1.0, 0.75, 0.5, 0.25, 0.0):
        out.append(score(f"mean shape, yaw x{k:g}", mean_shape, views(k)))
    out.append(score("mean shape, no rotation", mean_shape, views(rotate=False)))
    return out


def _checked_split(data, num, seed, split, limit, params):
    """(sample indices of the split, their head-centring translations [N, 2] from gt.csv).

    Raises ValueError when the split's gt.csv does not match (num, seed)."""
    from tfsym3d.data import synth
    from tfsym3d.evaluation import read_truth

    bounds = {name: (lo, hi) for name, lo, hi in synth.split_bounds(num)}
    if split not in bounds:
        raise ValueError(f"unknown split {split!r} (one of {', '.join(bounds)})")
    idx = np.arange(*bounds[split])[:limit]
    folder = os.path.join(data, split)
    truth = read_truth(os.path.join(folder, "gt.csv"))
    if not truth:
        raise ValueError(f"{folder}/gt.csv: missing or empty (not a tfsym3d synth dataset?)")
    for i in idx:
        row = truth.get(f"{i:06d}")
        if row is None or abs(row["yaw"] - params["yaw"][i]) > 1e-3:
            raise ValueError(f"{folder}/gt.csv: sample {i:06d} does not match --num={num} "
                             f"--seed={seed} (synthesised with other settings?)")
    shift = np.array([[truth[f"{i:06d}"][k] for k in ("tx", "ty")] for i in idx])
    return idx, shift


def image_fit(data, num, seed=0, split="test", limit=None, checkpoint=None):
    """[(label, head L1, off-head L1, share of head pixels rendered)] for --fit.

    Raises ValueError when the dataset's gt.csv does not match (num, seed)."""
    import tensorflow as tf

    from tfsym3d.config import Config
    from tfsym3d.data import synth
    from tfsym3d.io.depth import read_depth_png
    from tfsym3d.io.images import from_unit, read, to_unit
    from tfsym3d.model import Unsup3D

    params = dataset_params(data, num, seed)
    idx, shift = _checked_split(data, num, seed, split, limit, params)
    folder = os.path.join(data, split)
    images = np.stack([read(os.path.join(folder, "image", f"{i:06d}_image.png"))
                       for i in idx])
    head = np.stack([read_depth_png(os.path.join(folder, "depth", f"{i:06d}_depth.png")) > 0
                     for i in idx])
    size = images.shape[1]
    canon = [synth.canonical_maps(params, i, size, np.random.default_rng([seed, int(i)]))
             for i in idx]
    depth = tf.constant(np.stack([d for d, _, _ in canon]), tf.float32)
    albedo = tf.constant(from_unit(np.stack([a for _, a, _ in canon])), tf.float32)
    light_d = np.stack([params["light_dx"][idx], params["light_dy"][idx],
                        np.ones(len(idx))], 1)
    light_d /= np.linalg.norm(light_d, axis=1, keepdims=True)
    view = np.stack([np.radians(params["pitch"][idx]), np.radians(params["yaw"][idx]),
                     np.radians(params["roll"][idx]), shift[:, 0], shift[:, 1],
                     np.zeros(len(idx))], 1)
    model = Unsup3D(Config(image_size=size, fov=synth.FOV, min_depth=synth.MIN_DEPTH,
                           max_depth=synth.MAX_DEPTH, rot_center_depth=synth.ROT_CENTER_DEPTH))

    def column(value):
        return tf.constant(value[:, None], tf.float32)

    shaded = model.shade(depth, albedo, column(params["light_a"][idx]),
                         column(params["light_b"][idx]), tf.constant(light_d, tf.float32))
    # The re-rendering training uses (recon_im before masking, and its valid mask).
    rendered = model._render(depth, shaded["canon_im"], tf.constant(view, tf.float32))
    out = [_fit_row("true factors", to_unit(rendered["recon_render"].numpy()),
                    rendered["recon_seen"].numpy() > 0, images, head)]
    if checkpoint:
        from tfsym3d.checkpoints import load_model

        trained = load_model(checkpoint)
        if trained.cfg.image_size != size:
            raise ValueError(f"{checkpoint}: image_size {trained.cfg.image_size}, the data "
                             f"has {size}")
        recons, masks = [], []
        for lo in range(0, len(idx), 64):
            batch = images[lo:lo + 64]
            dec = trained.decompose(batch)
            b = len(batch)
            recons.append(to_unit(dec["recon_im"][:b].numpy()))
            masks.append(dec["recon_mask"][:b].numpy() > 0)
        out.append(_fit_row(f"trained model ({checkpoint})", np.concatenate(recons),
                            np.concatenate(masks), images, head))
    return out


def _fit_row(label, recon, valid, images, head):
    err = np.abs(recon - images).mean(-1)
    return (label, float(err[valid & head].mean()), float(err[valid & ~head].mean()),
            float((valid & head).sum() / max(head.sum(), 1)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="Dataset root written by tfsym3d synth.")
    parser.add_argument("--num", type=int, required=True, help="Its --num.")
    parser.add_argument("--seed", type=int, default=0, help="Its --seed.")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=None, help="First N images only.")
    parser.add_argument("--fit", action="store_true",
                        help="Score how well the true factors explain the images instead.")
    parser.add_argument("--checkpoint", default=None,
                        help="With --fit: also score this trained model's reconstruction.")
    args = parser.parse_args()
    if args.checkpoint and not args.fit:
        sys.exit("oracle_views: --checkpoint needs --fit")
    try:
        if args.fit:
            table = image_fit(args.data, args.num, args.seed, args.split, args.limit,
                              args.checkpoint)
        else:
            table = rows(args.data, args.num, args.seed, args.split, args.limit)
    except (OSError, ValueError) as err:
        sys.exit(f"oracle_views: {err}")
    if args.fit:
        print("| reconstruction from | L1 on the head | L1 off the head | head rendered |")
        print("|---|---|---|---|")
        for label, on, off, cover in table:
            print(f"| {label} | {on:.4f} | {off:.4f} | {cover:.1%} |")
        return
    print("| depth seen from | SIDE (x1e-2) | MAD (deg) | coverage |")
    print("|---|---|---|---|")
    for label, side, mad, cover in table:
        print(f"| {label} | {side:.3f} | {mad:.2f} | {cover:.1%} |")


if __name__ == "__main__":
    main()
