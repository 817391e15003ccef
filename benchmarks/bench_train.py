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

    python benchmarks/bench_train.py [--batches=16,64] [--repeats=5] [--modes=graph,xla] \
        [--perc_dtypes=float32,auto]

With --workers=N (local multi-worker comparison, configs/tiny.yaml, global batch 16):
images/s of a step for 1 process x N logical CPU devices (MirroredStrategy) against N
processes x 1 device (MultiWorkerMirroredStrategy on 127.0.0.1), in one run, read from
Keras' time of the last epoch; and the input pipeline alone, folder of files
against TFRecord shards, in images/s and as a ratio to the training step's.

    python benchmarks/bench_train.py --workers=2 [--steps=12]

With --precisions (issue 42): the full training step of each --config (renderer and
losses included) in float32 and in mixed precision, in one process, the two models
timed in alternating rounds on the same batch of synthetic faces from the same initial
weights. Prints the CPU's features, seconds per step (medians), images/s, the speed-up
and both first-step losses.

    python benchmarks/bench_train.py --precisions=float32,mixed_bfloat16 \
        --config=configs/tiny.yaml --config=configs/synface.yaml --set=lam_perc=0 \
        [--batch=16] [--repeats=10]

With --config (an A/B of this checkout against the code of an earlier commit, issue 32):
the training step of that config at --batch, timed alternately in two worker processes
on the same batch of synthetic faces and the same initial weights: "before" runs the
tfsym3d package of commit --before (extracted with git archive) with TensorFlow's own
CPU defaults, "after" runs this checkout. Two processes, because part of the change is
process-wide (oneDNN's kernels are chosen when TensorFlow starts); alternating three
steps at a time makes slow phases of a shared machine hit both alike. Prints seconds
per step (medians), images/s, the ratio and both first-step losses (equal to float
rounding).

    python benchmarks/bench_train.py --config=configs/tiny.yaml [--batch=16] [--repeats=10] \
        [--before=c221cc4] [--set=lam_perc=0 ...]
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import tfsym3d  # noqa: F401  (before TensorFlow: it sets TensorFlow's start-up options)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from benchlib import face_batch, interleaved_times, training_step  # noqa: E402

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


# The commit before issue 32's speed-ups: the "before" side of --config.
BEFORE = "c221cc4"


def _worker(args):
    """One side of --config: build, then for each "steps N" line read, run N training
    steps and print their mean time."""
    _, step = training_step(load_config(args.config, args.set))
    data = np.load(args.worker)
    batch = (tf.constant(data["images"]), tf.constant(data["depth"]))
    first = float(step(batch)["loss"])
    float(step(batch)["loss"])
    print(f"ready {first:.9g}", flush=True)
    for line in sys.stdin:
        if not line.startswith("steps "):
            break
        n = int(line.split()[1])
        start = time.perf_counter()
        for _ in range(n):
            float(step(batch)["loss"])
        print(f"{(time.perf_counter() - start) / n:.6f}", flush=True)


def bench_before_after(args):
    """The --config A/B (see the module docstring)."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    root = tempfile.mkdtemp(prefix="bench-ab-")
    try:
        images, depth = face_batch(args.batch)
        np.savez(os.path.join(root, "batch.npz"), images=images, depth=depth)
        before = os.path.join(root, "before")
        os.makedirs(before)
        archive = subprocess.run(["git", "-C", repo, "archive", args.before, "tfsym3d"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", before], input=archive, check=True)
        env = {k: v for k, v in os.environ.items()
               if k not in ("TF_ENABLE_ONEDNN_OPTS", "PYTHONPATH")}
        env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
        argv = [sys.executable, os.path.abspath(__file__), f"--worker={root}/batch.npz",
                f"--config={os.path.abspath(args.config)}"] + [f"--set={kv}" for kv in args.set]
        workers = {
            "before": subprocess.Popen(argv, env=dict(env, PYTHONPATH=before), cwd=root,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       text=True),
            "after": subprocess.Popen(argv, env=env, cwd=root, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True),
        }
        losses = {}
        for name, w in workers.items():
            line = w.stdout.readline().split()
            if not line or line[0] != "ready":
                raise RuntimeError(f"the {name} worker did not start (see its output above)")
            losses[name] = float(line[1])
        times = {name: [] for name in workers}
        for _ in range(args.repeats):
            for name, w in workers.items():
                # A pause first (TensorFlow's idle threads spin for a while after a
                # step, which would slow the other process), then 3 steps in a row (the
                # first after a pause pays for waking the threads).
                time.sleep(0.5)
                w.stdin.write("steps 3\n")
                w.stdin.flush()
                times[name].append(float(w.stdout.readline()))
        for w in workers.values():
            w.stdin.close()
            w.wait(timeout=60)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    t = {name: float(np.median(v)) for name, v in times.items()}
    label = " ".join([os.path.basename(args.config)] + args.set)
    print(f"{'config':<28} {'before s':>9} {'after s':>9} {'img/s before':>12} "
          f"{'img/s after':>12} {'speed-up':>8}  first-step loss before / after")
    print(f"{label:<28} {t['before']:>9.3f} {t['after']:>9.3f} "
          f"{args.batch / t['before']:>12.1f} {args.batch / t['after']:>12.1f} "
          f"{t['before'] / t['after']:>7.2f}x  {losses['before']:.6f} / {losses['after']:.6f}")


def bench_precisions(args):
    """The --precisions comparison (see the module docstring)."""
    from tfsym3d.precision import resolve

    print(cpu_line())
    images, depth = face_batch(args.batch)
    batch = (tf.constant(images), tf.constant(depth))
    names = args.precisions.split(",")
    print(f"{'config':<34} {'precision':<16} {'step s':>8} {'img/s':>8} {'speed-up':>9} "
          f"{'first loss':>11}")
    for config in args.config or ["configs/tiny.yaml"]:
        steps, first = [], []
        for name in names:
            _, step = training_step(load_config(config, args.set + [f"precision={name}"]))
            first.append(float(step(batch)["loss"]))
            steps.append(step)
        times = interleaved_times([lambda s=s: float(s(batch)["loss"]) for s in steps],
                                  args.repeats)
        label = " ".join([os.path.basename(config)] + args.set)
        for name, t, loss in zip(names, times, first, strict=True):
            shown = name if resolve(name) == name else f"{name}->{resolve(name)}"
            print(f"{label:<34} {shown:<16} {t:>8.3f} {args.batch / t:>8.1f} "
                  f"{times[0] / t:>8.2f}x {loss:>11.6f}", flush=True)


def cpu_line():
    """The CPU's model name, its vector/matrix features and whether oneDNN is on."""
    from tfsym3d.precision import cpu_features

    flags = cpu_features()
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f
                          if line.startswith("model name")), model)
    except OSError:
        pass
    onednn = {"0": "off", "1": "on"}.get(os.environ.get("TF_ENABLE_ONEDNN_OPTS", ""),
                                         "TensorFlow's default")
    return (f"CPU: {model}, {os.cpu_count()} cores; features: "
            f"{' '.join(f for f in wanted if f in flags) or 'none of ' + ' '.join(wanted)}; "
            f"oneDNN: {onednn}; TensorFlow {tf.__version__}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", default="16,64")
    parser.add_argument("--repeats", type=int, default=None, help="default 5 (10 with --config)")
    parser.add_argument("--modes", default="graph,xla",
                        help="graph (the training default) and/or xla (whole step compiled)")
    parser.add_argument("--perc_dtypes", default="float32,auto",
                        help="VGG16 arithmetic: float32, bfloat16 and/or auto")
    parser.add_argument("--workers", type=int, default=0,
                        help="compare N local worker processes with N logical devices")
    parser.add_argument("--steps", type=int, default=12, help="steps per epoch (--workers)")
    parser.add_argument("--config", action="append", default=[],
                        help="A/B of this config's step: commit --before against this "
                        "checkout (or, with --precisions, the configs to time)")
    parser.add_argument("--precisions", default=None,
                        help="comma-separated precisions to time against each other")
    parser.add_argument("--batch", type=int, default=16, help="batch size (--config)")
    parser.add_argument("--before", default=BEFORE, help="the earlier commit (--config)")
    parser.add_argument("--set", action="append", default=[],
                        help="config override KEY=VALUE (--config; repeatable)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return
    if args.precisions:
        args.repeats = args.repeats or 10
        bench_precisions(args)
        return
    if args.config:
        if len(args.config) > 1:
            parser.error("the --before A/B takes one --config")
        args.config = args.config[0]
        args.repeats = args.repeats or 10
        bench_before_after(args)
        return
    if args.workers:
        bench_workers(args.workers, args.steps)
        return
    args.repeats = args.repeats or 5
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
