"""Profile: where a training step's time goes, per op type and per op, and by piece.

Runs a config's training step (graph mode, as `tfsym3d train` runs it) on one batch of
synthetic faces, then:
  * TensorFlow's profiler over --steps steps: self-time per step of each op type and of
    the heaviest ops (summed over the CPU's threads, so the total is about the wall time
    times the cores; XLA-compiled pieces do not appear);
  * the pieces timed alternately in one process: the whole step, the networks' forward
    and backward, shading and re-rendering forward and backward, the rasterizer's
    visibility pass alone.

    python benchmarks/profile_step.py [--config=configs/tiny.yaml] [--batch=16] \
        [--steps=3] [--top=25] [--repeats=7]

Set TF_ENABLE_ONEDNN_OPTS=0 to see TensorFlow's Eigen kernels instead of oneDNN's.
"""

import argparse
import collections
import glob
import json
import os
import sys
import tempfile

import tfsym3d  # noqa: F401  (before TensorFlow: it sets TensorFlow's start-up options)

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import tensorflow as tf  # noqa: E402
from bench_train import networks_step  # noqa: E402
from benchlib import face_batch, interleaved_times, training_step  # noqa: E402

from tfsym3d import load_config  # noqa: E402
from tfsym3d.renderer.rasterize import rasterize  # noqa: E402


def op_stats(fn, steps, logdir):
    """Rows of TensorFlow's framework op statistics over `steps` calls of fn."""
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin

    tf.profiler.experimental.start(logdir)
    for _ in range(steps):
        fn()
    tf.profiler.experimental.stop()
    planes = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
    data, ok = plugin.xspace_to_tools_data(planes, "framework_op_stats", {})
    if not ok:
        raise RuntimeError("the profiler wrote no op statistics")
    table = json.loads(data)
    table = table[0] if isinstance(table, list) else table
    cols = [c["id"] for c in table["cols"]]
    return [dict(zip(cols, [c.get("v") if c else None for c in r["c"]], strict=True))
            for r in table["rows"]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/tiny.yaml")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    images, depth = face_batch(args.batch)
    x, depth = tf.constant(images), tf.constant(depth)
    model, step = training_step(load_config(args.config))

    def one_step():
        return float(step((x, depth))["loss"])

    for _ in range(2):
        one_step()
    with tempfile.TemporaryDirectory(prefix="profile-step-") as logdir:
        rows = op_stats(one_step, args.steps, logdir)

    per_step = 1e-3 / args.steps
    rows = [r for r in rows if r["type"] != "IDLE"]
    total = sum(r["total_self_time"] for r in rows) * per_step
    print(f"self-time per step, all threads: {total:.1f} ms (TF_ENABLE_ONEDNN_OPTS="
          f"{os.environ.get('TF_ENABLE_ONEDNN_OPTS')})")
    by_type = collections.Counter()
    for r in rows:
        by_type[r["type"]] += r["total_self_time"] * per_step
    print(f"\n{'op type':<34} {'ms/step':>8}")
    for name, ms in by_type.most_common(args.top):
        print(f"{name:<34} {ms:>8.1f}")
    print(f"\n{'ms/step':>8}  op")
    for r in sorted(rows, key=lambda r: -r["total_self_time"])[:args.top]:
        print(f"{r['total_self_time'] * per_step:>8.1f}  {r['operation'][:100]}")

    # The pieces, timed alternately.
    nets = [n for n in (model.netD, model.netA, model.netL, model.netV, model.netC) if n]
    networks = tf.function(networks_step(nets))
    out = model.decompose(x, training=True)
    canon_depth = tf.Variable(out["canon_depth"])
    albedo = tf.Variable(out["canon_albedo"])
    view = tf.Variable(out["view"])
    light = [out[k] for k in ("canon_light_a", "canon_light_b", "canon_light_d")]
    r = model.renderer
    verts = tf.reshape(r.get_warped_3d_grid(canon_depth, view), [2 * args.batch, -1, 3])

    @tf.function
    def renderer():
        with tf.GradientTape() as tape:
            shaded = model.shade(canon_depth, albedo, *light)
            rendered = model._render(canon_depth, shaded["canon_im"], view)
            loss = tf.reduce_mean(rendered["recon_render"]) + tf.reduce_mean(
                rendered["recon_depth"])
        return tape.gradient(loss, [canon_depth, albedo, view])

    @tf.function
    def visibility():
        return rasterize(tf.stop_gradient(verts), r.faces, r.K, (64, 64))["face_id"]

    pieces = {
        "training step": one_step,
        "networks forward+backward": lambda: [g.numpy() for g in networks(x)],
        "shading + re-rendering forward+backward": lambda: [g.numpy() for g in renderer()],
        f"rasterize {2 * args.batch} meshes (visibility, depth)": lambda: visibility().numpy(),
    }
    times = interleaved_times(list(pieces.values()), args.repeats)
    print(f"\n{'piece (median of alternating runs)':<48} {'ms':>8}")
    for name, t in zip(pieces, times, strict=True):
        print(f"{name:<48} {t * 1e3:>8.1f}")


if __name__ == "__main__":
    sys.exit(main())
