"""Trains configs/tiny.yaml on a `tfsym3d synth` dataset with the TRUE views fed in place
of netV's output, then scores the depth on the test split seen from the true views.

    python research/true_view_training.py --data=DIR [--minutes=12] [--out=runs/true_view]

What the depth and albedo networks reach in the time budget when the view is given: if
this passes the learning benchmark's bar and the full model does not, the view is what
the full model fails to learn. Differences from `tfsym3d train`: no horizontal-flip
augmentation (a flipped image would need the mirrored view), images held in memory and
shuffled with --seed, no validation or checkpoints; OUT gets the final weights and
examples.png (rows: input, canonical albedo, canonical image, reconstruction).
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np


def load_split(data, split, min_depth=0.9, max_depth=1.1):
    """(names, images [N,S,S,3] in [0,1], depth [N,S,S] camera units, views [N,6] radians
    and camera units) of a synth split, in gt.csv order."""
    from tfsym3d.evaluation import read_truth
    from tfsym3d.io.depth import read_depth_png, unit_to_depth
    from tfsym3d.io.images import read

    folder = os.path.join(data, split)
    truth = read_truth(os.path.join(folder, "gt.csv"))
    if not truth:
        raise ValueError(f"{folder}/gt.csv: missing or empty (not a tfsym3d synth dataset?)")
    names = list(truth)
    images, depth = [], []
    for name in names:
        images.append(read(os.path.join(folder, "image", f"{name}_image.png")))
        values = read_depth_png(os.path.join(folder, "depth", f"{name}_depth.png"))
        depth.append(unit_to_depth(values, min_depth, max_depth))
    views = np.array([[np.radians(truth[n]["pitch"]), np.radians(truth[n]["yaw"]),
                       np.radians(truth[n]["roll"]), truth[n]["tx"], truth[n]["ty"],
                       truth[n]["tz"]] for n in names], np.float32)
    return names, np.stack(images), np.stack(depth).astype(np.float32), views


def true_view_model(cfg):
    """An Unsup3D whose view is whatever `model.true_view` holds ([B, 6]), not netV's."""
    import tensorflow as tf

    from tfsym3d.model import Unsup3D, build

    class TrueViewUnsup3D(Unsup3D):
        def factors(self, images, training=False):
            out = super().factors(images, training)
            out["view"] = tf.reshape(tf.identity(self.true_view), [-1, 6])
            return out

    model = TrueViewUnsup3D(cfg)
    model.true_view = tf.Variable(tf.zeros([1, 6]), shape=tf.TensorShape(None),
                                  trainable=False)
    build(model)
    return model


def run(data, minutes, out, seed=0, max_steps=None, log=print):
    """Trains, scores and writes OUT; returns {"side", "side_std", "mad", "mad_std",
    "baseline_side", "baseline_mad", "epochs", "steps"} (SIDE x1e-2, MAD degrees)."""
    import keras
    import tensorflow as tf
    from PIL import Image

    from tfsym3d import metrics
    from tfsym3d.config import load_config
    from tfsym3d.io.images import to_unit

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cfg = load_config(os.path.join(root, "configs", "tiny.yaml"), {"data_dir": data})
    _, images, depth, views = load_split(data, "train", cfg.min_depth, cfg.max_depth)
    _, test_images, test_depth, test_views = load_split(data, "test", cfg.min_depth,
                                                        cfg.max_depth)
    keras.utils.set_random_seed(seed)
    model = true_view_model(cfg)
    optimizer = keras.optimizers.Adam(cfg.lr, beta_1=cfg.beta1, beta_2=cfg.beta2,
                                      epsilon=1e-8)
    model.compile(optimizer=optimizer, jit_compile=False)
    optimizer.build(model.trainable_variables)
    step = tf.function(lambda x, d: model.train_step((x, d)))

    b = cfg.batch_size
    if len(images) < b:
        raise ValueError(f"{data}/train: {len(images)} images, fewer than one batch ({b})")
    rng = np.random.default_rng(seed)
    start, epochs, steps = time.monotonic(), 0, 0

    def done():
        return (time.monotonic() - start > minutes * 60
                or (max_steps is not None and steps >= max_steps))

    while not done():
        for tracker in model.metrics:
            tracker.reset_state()
        order = rng.permutation(len(images))
        for k in range(0, len(order) - b + 1, b):
            i = order[k:k + b]
            model.true_view.assign(views[i])
            logs = step(tf.constant(images[i]), tf.constant(depth[i]))
            steps += 1
            if done():
                break
        epochs += 1
        log(f"epoch {epochs} ({(time.monotonic() - start) / 60:.1f} min, {steps} steps): "
            + ", ".join(f"{k} {float(logs[k]):.3f}" for k in ("l1", "side", "mad")))

    side, mad, pictures = [], [], None
    for k in range(0, len(test_images), b):
        model.true_view.assign(test_views[k:k + b])
        o = model.decompose(tf.constant(test_images[k:k + b]))
        n = len(test_images[k:k + b])
        e = metrics.depth_errors(o["recon_depth"][:n], tf.constant(test_depth[k:k + b]),
                                 model.renderer)
        side += list(e["side"].numpy() * 100.0)
        mad += list(e["mad_unit"].numpy())  # the learning log's figures are unit-normal MADs
        if pictures is None:
            shown = min(n, 8)
            pictures = np.concatenate([
                np.concatenate(list(np.clip(to_unit(np.asarray(o[key][:shown])), 0, 1)), 1)
                for key in ("input_im", "canon_albedo", "canon_im", "recon_im")], 0)
    mean_gt = tf.constant(np.broadcast_to(test_depth.mean(0), test_depth.shape).copy())
    base = metrics.depth_errors(mean_gt, tf.constant(test_depth), model.renderer)
    base_side, base_mad = base["side"], base["mad_unit"]
    os.makedirs(out, exist_ok=True)
    model.save_weights(os.path.join(out, "true_view.weights.h5"))
    Image.fromarray((pictures * 255 + 0.5).astype(np.uint8)).save(
        os.path.join(out, "examples.png"))
    return {"side": float(np.mean(side)), "side_std": float(np.std(side)),
            "mad": float(np.mean(mad)), "mad_std": float(np.std(mad)),
            "baseline_side": float(np.mean(base_side)) * 100.0,
            "baseline_mad": float(np.mean(base_mad)), "epochs": epochs, "steps": steps}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="Dataset root written by tfsym3d synth.")
    parser.add_argument("--minutes", type=float, default=12.0)
    parser.add_argument("--out", default="runs/true_view")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        r = run(args.data, args.minutes, args.out, args.seed)
    except (OSError, ValueError) as err:
        sys.exit(f"true_view_training: {err}")
    print(f"test, true views fed in ({r['epochs']} epochs): SIDE {r['side']:.3f} ± "
          f"{r['side_std']:.3f}, MAD {r['mad']:.2f} ± {r['mad_std']:.2f}; mean-depth "
          f"baseline {r['baseline_side']:.3f} / {r['baseline_mad']:.2f}: "
          f"{r['side'] / r['baseline_side']:.2f}x / {r['mad'] / r['baseline_mad']:.2f}x")


if __name__ == "__main__":
    main()
