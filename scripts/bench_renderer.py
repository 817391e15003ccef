"""Benchmark: the renderer's share of a training step, measured beside the networks.

One training step's renderer work for 2 x B images at 64x64 (plain and flipped halves):
warp the canonical depth (z-buffer of 2B meshes), build the inverse-warp grid, sample
the canonical image, forward and backward, with random smooth depth and random views in
the training ranges (rotations +-60 deg, xy translation +-0.1). Beside it, in the same
process and run: forward+backward of the authors' five networks at batch B, and the
rasterization of 2B meshes alone. Prints a table and the ratio renderer / networks.

    python scripts/bench_renderer.py [--batch=64] [--repeats=5]

Peak memory is TensorFlow's allocator peak on the CPU (tf.config.experimental
.get_memory_info) during the renderer runs, and the process' peak resident set size.
"""

import argparse
import json
import os
import resource

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from benchlib import median_time  # noqa: E402

from tfsym3d.layers import ConfNet, EDDeconv, Encoder  # noqa: E402
from tfsym3d.renderer import Renderer, grid_sample, rasterize  # noqa: E402


def smooth_depths(rng, n, size):
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1.0)
    out = np.ones((n, size, size), np.float32)
    for i in range(n):
        a = rng.uniform(-1, 1, (4, 4))
        ph = rng.uniform(0, 2 * np.pi, (4, 4))
        out[i] += 0.05 / 4 * sum(a[k, m] * np.cos(np.pi * (k * xx + m * yy) + ph[k, m])
                                 for k in range(4) for m in range(4))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    b, size = args.batch, 64
    rng = np.random.default_rng(0)
    r = Renderer(image_size=size)

    depth = tf.Variable(smooth_depths(rng, 2 * b, size))
    image = tf.Variable(rng.uniform(-1, 1, (2 * b, size, size, 3)).astype(np.float32))
    view = np.zeros((b, 6))
    view[:, :3] = rng.uniform(-np.pi / 3, np.pi / 3, (b, 3))
    view[:, 3:5] = rng.uniform(-0.1, 0.1, (b, 2))
    view = tf.Variable(np.concatenate([view, view]).astype(np.float32))

    def renderer_step():
        with tf.GradientTape() as tape:
            recon_depth = r.warp_canon_depth(depth, view)
            grid = r.get_inv_warped_2d_grid(recon_depth, view)
            recon_im = grid_sample(image, grid)
            loss = tf.reduce_mean(recon_im) + tf.reduce_mean(recon_depth)
        return tape.gradient(loss, [depth, image, view])

    verts = tf.reshape(r.get_warped_3d_grid(depth, view), [2 * b, -1, 3])
    faces = tf.constant(r.faces)

    def raster_only():
        return rasterize(verts, faces, r.K, (size, size), xla=r.xla)["depth"]

    nets = [EDDeconv(1, final_activation=None), EDDeconv(3), Encoder(4), Encoder(6),
            ConfNet()]
    x = tf.constant(rng.uniform(-1, 1, (b, size, size, 3)).astype(np.float32))
    for net in nets:
        net(x)
    weights = [w for net in nets for w in net.trainable_variables]

    def networks_step():
        with tf.GradientTape() as tape:
            outs = [net(x, training=True) for net in nets]
            flat = [o for out in outs for o in (out if isinstance(out, tuple) else (out,))]
            loss = tf.add_n([tf.reduce_mean(o) for o in flat])
        return tape.gradient(loss, weights)

    rows = {}
    # graph: plain tf.function (the training default). graph+xla-vis: jit_renderer, the
    # rasterizer's visibility pass compiled by XLA inside a plain tf.function. xla: the
    # whole step compiled.
    for mode, jit in (("graph", False), ("graph+xla-vis", False), ("xla", True)):
        r.xla = mode == "graph+xla-vis"
        tf.config.experimental.reset_memory_stats("CPU:0")
        step = tf.function(renderer_step, jit_compile=jit)
        rows[f"renderer fwd+bwd ({mode})"] = median_time(
            lambda s=step: [g.numpy() for g in s()], args.repeats)
        peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
        rows[f"renderer peak MiB ({mode})"] = peak / 2**20
        rast = tf.function(raster_only, jit_compile=jit)
        rows[f"rasterize {2 * b} meshes ({mode})"] = median_time(
            lambda s=rast: s().numpy(), args.repeats)
        if mode == "graph+xla-vis":
            continue  # the networks do not use the rasterizer
        nstep = tf.function(networks_step, jit_compile=jit)
        rows[f"5 networks fwd+bwd b={b} ({mode})"] = median_time(
            lambda s=nstep: [g.numpy() for g in s()], args.repeats)
    rows["process peak RSS MiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    nets = rows[f"5 networks fwd+bwd b={b} (graph)"]
    for mode in ("graph", "graph+xla-vis", "xla"):
        rows[f"ratio renderer ({mode}) / networks (graph)"] = (
            rows[f"renderer fwd+bwd ({mode})"] / nets)
    rows["ratio renderer (xla) / networks (xla)"] = (
        rows["renderer fwd+bwd (xla)"] / rows[f"5 networks fwd+bwd b={b} (xla)"])
    width = max(len(k) for k in rows)
    for k, v in rows.items():
        unit = "" if ("ratio" in k or "MiB" in k) else " s"
        print(f"{k:<{width}}  {v:9.3f}{unit}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
