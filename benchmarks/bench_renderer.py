"""Benchmark: the renderer's share of a training step, measured beside the networks.

One training step's renderer work for 2 x B images at 64x64 (plain and flipped halves):
warp the canonical depth (z-buffer of 2B meshes), build the inverse-warp grid, sample
the canonical image, forward and backward, with random smooth depth and random views in
the training ranges (rotations +-60 deg, xy translation +-0.1). Beside it, in the same
process and run: forward+backward of the authors' five networks at batch B, and the
rasterization of 2B meshes alone. Prints a table and the ratio renderer / networks.

    python benchmarks/bench_renderer.py [--batch=64] [--repeats=5] [--parts=renderer,tfg] \
        [--tfg_wheel=WHEEL]

Then the rasterizer against TensorFlow Graphics' C++ CPU kernel (rasterize_triangles),
built here from the tensorflow-graphics wheel's own kernel sources against the
installed TensorFlow with its compile and link flags (for this comparison only; never a
dependency of tfsym3d): the same 2B smooth meshes, and B/2 rough ones (3% per-pixel
depth noise, as an untrained model's depth can be), each kernel's rough / smooth time
per mesh beside it. The wheel is --tfg_wheel or downloaded by pip into --cache; the
comparison is skipped with a message where there is no wheel or no C++ compiler.

Peak memory is TensorFlow's allocator peak on the CPU (tf.config.experimental
.get_memory_info) during the renderer runs, and the process' peak resident set size.
"""

import argparse
import glob
import json
import os
import resource
import shutil
import subprocess
import sys
import zipfile

import tfsym3d  # noqa: F401  (before TensorFlow: it sets TensorFlow's start-up options)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from benchlib import interleaved_times, median_time  # noqa: E402

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


def tfg_kernel(cache, wheel=None):
    """TensorFlow Graphics' rasterize_triangles op, compiled from its wheel's sources:
    (op module, None) or (None, why it could not be built)."""
    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        return None, "no C++ compiler (g++) on this machine"
    os.makedirs(cache, exist_ok=True)
    if wheel is None:
        found = glob.glob(os.path.join(cache, "tensorflow_graphics-*.whl"))
        if not found:
            got = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                                  "tensorflow-graphics", "-d", cache, "-q"],
                                 capture_output=True, text=True)
            found = glob.glob(os.path.join(cache, "tensorflow_graphics-*.whl"))
            if not found:
                return None, "could not download tensorflow-graphics: " + got.stderr[-300:]
        wheel = found[0]
    library = os.path.join(cache, "rasterize_triangles.so")
    if not os.path.exists(library):
        src = os.path.join(cache, "src")
        names = ["rasterize_triangles_op.cc", "rasterize_triangles_impl.cc",
                 "rasterize_triangles_impl.h"]
        with zipfile.ZipFile(wheel) as z:
            for name in names:
                z.extract(f"tensorflow_graphics/rendering/kernels/{name}", src)
        kernels = os.path.join(src, "tensorflow_graphics", "rendering", "kernels")
        built = subprocess.run(
            [compiler, "-std=c++17", "-shared", "-fPIC", "-O2",
             os.path.join(kernels, names[0]), os.path.join(kernels, names[1]),
             "-o", library] + tf.sysconfig.get_compile_flags() + tf.sysconfig.get_link_flags(),
            capture_output=True, text=True)
        if built.returncode != 0:
            return None, "the kernel did not compile: " + built.stderr[-300:]
    return tf.load_op_library(library), None


def random_views(rng, n):
    """n random views [n, 6] (float32) in the training ranges: rotations +-60 deg, xy
    translation +-0.1, no z translation."""
    view = np.zeros((n, 6), np.float32)
    view[:, :3] = rng.uniform(-np.pi / 3, np.pi / 3, (n, 3))
    view[:, 3:5] = rng.uniform(-0.1, 0.1, (n, 2))
    return view


def warped_meshes(r, depth, rng):
    """Camera-space vertices [N, S*S, 3] of depth maps [N, S, S] seen from random views
    (random_views)."""
    n = depth.shape[0]
    grid = r.get_warped_3d_grid(tf.constant(depth), tf.constant(random_views(rng, n)))
    return tf.reshape(grid, [n, -1, 3])


def compare_with_tfg(r, b, repeats, cache, wheel):
    """Rows of the rasterizer against the C++ kernel (see the module docstring)."""
    op, why = tfg_kernel(cache, wheel)
    if op is None:
        print(f"(TensorFlow Graphics comparison skipped: {why})")
        return {}
    rng = np.random.default_rng(1)
    size = r.image_size
    faces = tf.constant(r.faces)
    cases = {"smooth": warped_meshes(r, smooth_depths(rng, 2 * b, size), rng)}
    rough = smooth_depths(rng, b // 2, size)
    rough += rng.normal(0.0, 0.03, rough.shape).astype(np.float32)
    cases["rough"] = warped_meshes(r, rough, rng)
    rows = {}
    K = r.K
    for name, verts in cases.items():
        n = int(verts.shape[0])
        x, y, z = tf.unstack(verts, axis=-1)
        # Clip space with the same pixel centres: tfg samples pixel j at NDC
        # (j + 0.5) * 2 / W - 1, ours at u = j.
        clip = tf.stack([2.0 * (K[0, 0] * x + (K[0, 2] + 0.5) * z) / size - z,
                         2.0 * (K[1, 1] * y + (K[1, 2] + 0.5) * z) / size - z,
                         0.5 * z * (z - 0.5), z], axis=-1)

        def theirs(clip=clip, n=n):
            return tf.stack([op.rasterize_triangles(
                clip[i], faces, image_width=size, image_height=size, num_layers=1,
                face_culling_mode=0)[1][0] for i in range(n)])

        def ours(verts=verts):
            return rasterize(verts, faces, K, (size, size), fused=r.fused)["face_id"]

        f_theirs, f_ours = tf.function(theirs), tf.function(ours)
        t_ours, t_theirs = interleaved_times(
            [lambda f=f_ours: f().numpy(), lambda f=f_theirs: f().numpy()], repeats)
        rows[f"rasterize {n} {name} meshes, ours"] = t_ours
        rows[f"rasterize {n} {name} meshes, TF Graphics C++"] = t_theirs
        rows[f"ratio ours / TF Graphics C++ ({name})"] = t_ours / t_theirs
    n_smooth, n_rough = 2 * b, b // 2
    for who in ("ours", "TF Graphics C++"):
        rows[f"ratio rough / smooth per mesh, {who}"] = (
            rows[f"rasterize {n_rough} rough meshes, {who}"] / n_rough
            / (rows[f"rasterize {n_smooth} smooth meshes, {who}"] / n_smooth))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the figures here")
    parser.add_argument("--tfg_wheel", default=None,
                        help="tensorflow-graphics wheel (default: pip download into --cache)")
    parser.add_argument("--cache", default=os.path.join("runs", "bench_renderer"),
                        help="where the C++ kernel is built")
    parser.add_argument("--parts", default="renderer,tfg",
                        help="renderer (beside the networks) and/or tfg (against the C++ kernel)")
    args = parser.parse_args()
    b, size = args.batch, 64
    rng = np.random.default_rng(0)
    r = Renderer(image_size=size)

    depth = tf.Variable(smooth_depths(rng, 2 * b, size))
    image = tf.Variable(rng.uniform(-1, 1, (2 * b, size, size, 3)).astype(np.float32))
    view = random_views(rng, b)
    view = tf.Variable(np.concatenate([view, view]))

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
    if "renderer" in args.parts.split(","):
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
    r.xla = False
    if "tfg" in args.parts.split(","):
        rows.update(compare_with_tfg(r, b, args.repeats, args.cache, args.tfg_wheel))
    width = max(len(k) for k in rows)
    for k, v in rows.items():
        unit = "" if ("ratio" in k or "MiB" in k) else " s"
        print(f"{k:<{width}}  {v:9.3f}{unit}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
