"""Helpers shared by the benchmarks/bench_*.py benchmarks."""

import time

import numpy as np


def median_time(fn, repeats, warmup=2):
    """Median wall time of fn() in seconds over `repeats` calls, after `warmup` calls
    (tracing and compilation happen there)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def interleaved_times(fns, repeats, warmup=2):
    """Median wall times of several functions called in turn, round after round, so
    that slow phases of a shared machine affect them alike: a list of seconds."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - start)
    return [float(np.median(ts)) for ts in times]


def face_batch(n, seed=0):
    """One batch of n synthetic faces (tfsym3d synth, 64x64, the train split's first n,
    unflipped): numpy images [n, 64, 64, 3] in [0, 1] and depth [n, 64, 64]."""
    import shutil
    import tempfile

    from tfsym3d.data import folder
    from tfsym3d.data.synth import generate

    root = tempfile.mkdtemp(prefix="bench-faces-")
    try:
        generate(root, n + 20, image_size=64, seed=seed)
        images, depth = next(iter(folder.paired_dataset(root, "train", batch_size=n,
                                                        random_flip=False)))
        return images.numpy(), depth.numpy()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def training_step(cfg):
    """An Unsup3D of cfg with seed-0 weights, compiled as `tfsym3d train` compiles it
    (Adam at cfg.lr, graph mode), and its train_step in a tf.function: (model, step)."""
    import keras
    import tensorflow as tf

    from tfsym3d import Unsup3D
    from tfsym3d.model import build, make_optimizer

    keras.utils.set_random_seed(0)
    model = build(Unsup3D(cfg))
    model.compile(optimizer=make_optimizer(cfg), jit_compile=False)
    model.optimizer.build(model.trainable_variables)
    return model, tf.function(model.train_step)
