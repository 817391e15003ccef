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

With --workers=N (local multi-worker comparison, configs/tiny.yaml, global batch 16):
images/s of a step for 1 process x N logical CPU devices (MirroredStrategy) against N
processes x 1 device (MultiWorkerMirroredStrategy on 127.0.0.1), in one run, read from
Keras' time of the last epoch; and the input pipeline alone, folder of files
against TFRecord shards, in images/s and as a ratio to the training step's.

    python scripts/bench_train.py --workers=2 [--steps=12]
"""

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

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


def _per_step_seconds(log):
    """Seconds per step of the last epoch, from Keras' epoch line ("12/12 - 9s - ...":
    the epoch's whole time over its steps; whole seconds, so use enough steps)."""
    found = re.findall(r"(\d+)/(\d+) - (\d+(?:\.\d+)?)(ms|s) - ", log)
    if not found:
        raise RuntimeError("no epoch time in the training output:\n" + log[-2000:])
    _, steps, value, unit = found[-1]
    return float(value) / (1000.0 if unit == "ms" else 1.0) / int(steps)


def _train_argv(run_dir, data, steps, extra=()):
    sets = ["batch_size=16", f"steps_per_epoch={steps}", "num_epochs=2", "val_steps=1",
            "load_gt_depth=true", f"data_dir={data}"]
    return ([sys.executable, "-m", "tfsym3d.cli", "train", "--config=configs/tiny.yaml",
             f"--run_dir={run_dir}", "--progress=epoch"] + [f"--set={s}" for s in sets]
            + list(extra))


def bench_workers(workers, steps):
    from tfsym3d.data import folder
    from tfsym3d.data.synth import generate

    root = tempfile.mkdtemp(prefix="bench-workers-")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    generate(os.path.join(root, "files"), 16 * steps + 40, image_size=64, seed=0)
    subprocess.run([sys.executable, "-m", "tfsym3d.cli", "prepare-tfrecords",
                    f"--data={root}/files", f"--out={root}/records",
                    f"--shards={2 * workers}"], check=True, env=env, capture_output=True)
    data = f"{root}/records"
    single = subprocess.run(_train_argv(f"{root}/one", data, steps, [f"--devices={workers}"]),
                            env=env, capture_output=True, text=True, timeout=1200)
    t_one = _per_step_seconds(single.stdout + single.stderr)
    ports = []
    for _ in range(workers):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    procs = []
    for i in range(workers):
        cluster = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                   "task": {"type": "worker", "index": i}}
        procs.append(subprocess.Popen(
            _train_argv(f"{root}/multi", data, steps), env=dict(env, TF_CONFIG=json.dumps(
                cluster)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=1200)[0] for p in procs]
    t_multi = _per_step_seconds(outs[0])
    print(f"{'setup':<34} {'step s':>8} {'img/s':>8}")
    print(f"{f'1 process x {workers} logical devices':<34} {t_one:>8.3f} {16 / t_one:>8.1f}")
    print(f"{f'{workers} processes x 1 device':<34} {t_multi:>8.3f} {16 / t_multi:>8.1f}")
    step_rate = 16 / min(t_one, t_multi)
    for name, where in (("folder of files", f"{root}/files"), ("TFRecord shards", data)):
        ds = folder.paired_dataset(where, "train", batch_size=16, training=True,
                                   repeat=True, seed=0)
        it = iter(ds)
        next(it)
        start = time.perf_counter()
        for _ in range(steps):
            next(it)
        rate = 16 * steps / (time.perf_counter() - start)
        print(f"input pipeline, {name:<18} {rate:>8.1f} img/s = {rate / step_rate:.1f}x the "
              "faster training step")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", default="16,64")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--modes", default="graph,xla",
                        help="graph (the training default) and/or xla (whole step compiled)")
    parser.add_argument("--perc_dtypes", default="float32,auto",
                        help="VGG16 arithmetic: float32, bfloat16 and/or auto")
    parser.add_argument("--workers", type=int, default=0,
                        help="compare N local worker processes with N logical devices")
    parser.add_argument("--steps", type=int, default=12, help="steps per epoch (--workers)")
    args = parser.parse_args()
    if args.workers:
        bench_workers(args.workers, args.steps)
        return
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
