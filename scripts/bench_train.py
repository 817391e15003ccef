"""Benchmark: images/s of a full training step, and the share spent outside the networks.

A full step (decomposition, renderer, losses with the perceptual term on an untrained
VGG16, backward, Adam update) of the full-size networks at 64x64, batch 16 and 64, in
graph mode (the training default: a plain tf.function) and with the whole step
compiled by XLA. Beside it, in the same run, the forward and
backward of the five networks alone on the same batch, timed alternately with the step
so that drifts of this machine's speed hit both; the share outside the networks is
1 - networks / step (medians). The VGG16 of the perceptual loss runs in each of
--perc_dtypes: float32 (the authors' arithmetic) and the config's auto (bfloat16 where
the hardware has it natively, else float32; the row says which it became).

    python scripts/bench_train.py [--batches=16,64] [--repeats=5] [--modes=graph,xla] \
        [--perc_dtypes=float32,auto]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from benchlib import interleaved_times  # noqa: E402

from tfsym3d import Unsup3D, load_config  # noqa: E402
from tfsym3d.model import build  # noqa: E402


def networks_step(nets):
    """Forward and backward of the networks alone on images x (the weights are closed
    over: Keras variables cannot be tf.function arguments; the images are an argument,
    so that XLA does not constant-fold the networks)."""
    weights = [w for n in nets for w in n.trainable_variables]

    def step(x):
        with tf.GradientTape() as tape:
            xx = x * 2.0 - 1.0
            outs = [n(xx, training=True) for n in nets]
            flat = [o for out in outs for o in (out if isinstance(out, tuple) else (out,))]
            loss = tf.add_n([tf.reduce_mean(o) for o in flat])
        return tape.gradient(loss, weights)

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", default="16,64")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--modes", default="graph,xla",
                        help="graph (the training default) and/or xla (whole step compiled)")
    parser.add_argument("--perc_dtypes", default="float32,auto",
                        help="VGG16 arithmetic: float32, bfloat16 and/or auto")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'batch':>5} {'mode':<6} {'VGG16':<16} {'step s':>8} {'img/s':>8} {'nets s':>8} "
          f"{'outside':>8}")
    for b in (int(v) for v in args.batches.split(",")):
        x = tf.constant(rng.uniform(size=(b, 64, 64, 3)).astype(np.float32))
        for mode, dtype in ((m, d) for m in args.modes.split(",")
                            for d in args.perc_dtypes.split(",")):
            jit = {"graph": False, "xla": True}[mode]
            cfg = load_config("configs/celeba.yaml",
                              {"vgg16_weights": "random", "perc_dtype": dtype})
            model = build(Unsup3D(cfg))
            model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=jit)
            vgg = model._perceptual().dtype
            vgg = vgg if vgg == dtype else f"{dtype}->{vgg}"
            model.optimizer.build(model.trainable_variables)
            step = tf.function(model.train_step, jit_compile=jit)
            nets = [model.netD, model.netA, model.netL, model.netV, model.netC]
            nstep = tf.function(networks_step(nets), jit_compile=jit)
            t_step, t_nets = interleaved_times(
                [lambda s=step, x=x: float(s(x)["loss"]),
                 lambda s=nstep, x=x: [g.numpy() for g in s(x)]], args.repeats)
            print(f"{b:>5} {mode:<6} {vgg:<16} {t_step:>8.3f} {b / t_step:>8.1f} "
                  f"{t_nets:>8.3f} {1 - t_nets / t_step:>8.1%}", flush=True)


if __name__ == "__main__":
    main()
