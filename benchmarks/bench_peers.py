"""Benchmark: the five networks' training step, tfsym3d against the authors' PyTorch ones.

Forward, backward and an Adam update of the five networks (depth, albedo, light, view,
confidence) on one batch of 64x64 images, the loss being the sum of their outputs'
means. tfsym3d runs in float32 and in each --precisions; the authors' networks run in
PyTorch float32. Widths: `paper` (the paper's: nf 64 / zdim 256, light and view nf 32,
confidence nf 64 / zdim 128) and `tiny` (configs/tiny.yaml's: 16 / 64, 16, 16 / 32);
both sides use the authors' layers and GroupNorm groups (no FiLM), so the parameter
counts are equal (checked). Each side runs in its own worker process with the same
number of threads (two frameworks' idle thread pools in one process slow each other);
the workers are timed in alternating rounds of --steps steps, so that slow phases of a
shared machine hit all alike. Prints the CPU's features, ms/step, images/s and the
ratios (medians over --repeats rounds).

    pip install -e .[convert]      # torch, CPU (never a runtime or test dependency)
    python benchmarks/bench_peers.py [--widths=paper,tiny] [--batch=16] [--repeats=8] \\
        [--precisions=mixed_bfloat16] [--threads=N] [--networks=unsup3d/networks.py]

--networks: the authors' unsup3d/networks.py (its Encoder, EDDeconv and ConfNet with
their signatures); by default the faithful definitions in make_official_fixtures.py.
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

WIDTHS = {
    "paper": {"nf_depth": 64, "zdim_depth": 256, "nf_light": 32, "nf_conf": 64,
              "zdim_conf": 128},
    "tiny": {"nf_depth": 16, "zdim_depth": 64, "nf_light": 16, "nf_conf": 16,
             "zdim_conf": 32},
}
IMAGE_SIZE = 64


def tf_worker(width, precision, batch, threads):
    """A callable running one training step of tfsym3d's five networks, and their
    parameter count."""
    import tfsym3d  # noqa: F401  (oneDNN on before TensorFlow starts)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    from tfsym3d import precision as mixed
    from tfsym3d.layers import ConfNet, EDDeconv, Encoder
    from tfsym3d.layers.blocks import GroupNorm

    w = WIDTHS[width]
    keras.utils.set_random_seed(0)
    with mixed.policy_scope(precision):
        nets = [EDDeconv(1, w["nf_depth"], w["zdim_depth"], IMAGE_SIZE, None),
                EDDeconv(3, w["nf_depth"], w["zdim_depth"], IMAGE_SIZE, "tanh"),
                Encoder(4, w["nf_light"], IMAGE_SIZE), Encoder(6, w["nf_light"], IMAGE_SIZE),
                ConfNet(w["nf_conf"], w["zdim_conf"], IMAGE_SIZE)]
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (batch, IMAGE_SIZE, IMAGE_SIZE,
                                                             3)).astype(np.float32))
    for net in nets:
        for layer in net._flatten_layers():
            if isinstance(layer, GroupNorm):
                layer.fused = True  # as Unsup3D sets it (the config's fuse_group_norm)
        net(x)
    weights = [v for net in nets for v in net.trainable_variables]
    optimizer = keras.optimizers.Adam(1e-4)
    optimizer.build(weights)

    @tf.function
    def step(images):
        with tf.GradientTape() as tape:
            outs = []
            for net in nets:
                out = net(images, training=True)
                outs += list(out) if isinstance(out, tuple) else [out]
            loss = tf.add_n([tf.reduce_mean(tf.cast(o, tf.float32)) for o in outs])
        optimizer.apply(tape.gradient(loss, weights), weights)
        return loss

    count = sum(int(np.prod(v.shape)) for v in weights)
    return lambda: float(step(x)), count


def _authors_module(path):
    """The Encoder / EDDeconv / ConfNet factories of the authors' networks.py at `path`,
    or of make_official_fixtures.py: (encoder(cout, nf), eddeconv(cout, nf, zdim, act),
    confnet(nf, zdim))."""
    from torch import nn

    if path is None:
        import make_official_fixtures as m

        return (lambda cout, nf: m.Encoder(cout, nf),
                lambda cout, nf, zdim, act: m.EDDeconv(cout, nf, zdim, act),
                lambda nf, zdim: m.ConfNet(nf, zdim))
    spec = importlib.util.spec_from_file_location("authors_networks", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return (lambda cout, nf: m.Encoder(3, cout, nf=nf),
            lambda cout, nf, zdim, act: m.EDDeconv(3, cout, zdim=zdim, nf=nf,
                                                   activation=nn.Tanh if act else None),
            lambda nf, zdim: m.ConfNet(3, 2, zdim=zdim, nf=nf))


def torch_worker(width, batch, threads, networks=None):
    """A callable running one training step of the authors' five networks in PyTorch
    float32, and their parameter count."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    encoder, eddeconv, confnet = _authors_module(networks)
    w = WIDTHS[width]
    nets = [eddeconv(1, w["nf_depth"], w["zdim_depth"], False),
            eddeconv(3, w["nf_depth"], w["zdim_depth"], True),
            encoder(4, w["nf_light"]), encoder(6, w["nf_light"]),
            confnet(w["nf_conf"], w["zdim_conf"])]
    params = [p for net in nets for p in net.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-4)
    x = torch.rand(batch, 3, IMAGE_SIZE, IMAGE_SIZE) * 2 - 1

    def step():
        optimizer.zero_grad()
        outs = []
        for net in nets:
            out = net(x)
            outs += list(out) if isinstance(out, tuple) else [out]
        loss = sum(o.mean() for o in outs)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step, sum(p.numel() for p in params)


def worker(args):
    """One side: build, report the parameter count, then for each 'steps N' line read,
    run N steps and print their mean time in seconds."""
    kind, width = args.worker.split(":")[:2]
    if kind == "torch":
        step, count = torch_worker(width, args.batch, args.threads, args.networks)
    else:
        step, count = tf_worker(width, kind, args.batch, args.threads)
    step()
    step()
    print(f"ready {count}", flush=True)
    for line in sys.stdin:
        n = int(line.split()[1])
        start = time.perf_counter()
        for _ in range(n):
            step()
        print(f"{(time.perf_counter() - start) / n:.6f}", flush=True)


def bench(args):
    import numpy as np
    from bench_train import cpu_line

    print(cpu_line() + f"; {args.threads} threads per worker")
    print(f"{'widths':<7} {'side':<28} {'params':>10} {'ms/step':>9} {'img/s':>8} "
          f"{'vs torch':>9} {'vs tf f32':>9}")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    for width in args.widths.split(","):
        sides = ["torch", "float32"] + args.precisions.split(",")
        workers, counts = {}, {}
        for side in sides:
            argv = [sys.executable, os.path.abspath(__file__), f"--worker={side}:{width}",
                    f"--batch={args.batch}", f"--threads={args.threads}"]
            if args.networks:
                argv.append(f"--networks={args.networks}")
            workers[side] = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, text=True)
            # One at a time: a worker building while another is timed would slow it.
            line = workers[side].stdout.readline().split()
            if not line or line[0] != "ready":
                raise RuntimeError(f"the {side} worker did not start (see its output above)")
            counts[side] = int(line[1])
        if len(set(counts.values())) != 1:
            raise RuntimeError(f"parameter counts differ: {counts}")
        times = {side: [] for side in sides}
        try:
            for _ in range(args.repeats):
                for side, w in workers.items():
                    time.sleep(0.5)  # the previous worker's idle threads stop spinning
                    w.stdin.write(f"steps {args.steps}\n")
                    w.stdin.flush()
                    times[side].append(float(w.stdout.readline()))
        finally:
            for w in workers.values():
                w.stdin.close()
                w.wait(timeout=120)
        t = {side: float(np.median(v)) for side, v in times.items()}
        for side in sides:
            name = "PyTorch float32 (authors')" if side == "torch" else f"tfsym3d {side}"
            print(f"{width:<7} {name:<28} {counts[side]:>10} {1e3 * t[side]:>9.1f} "
                  f"{args.batch / t[side]:>8.1f} {t['torch'] / t[side]:>8.2f}x "
                  f"{t['float32'] / t[side]:>8.2f}x", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widths", default="paper,tiny")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="steps per worker per round")
    parser.add_argument("--precisions", default="mixed_bfloat16",
                        help="tfsym3d's mixed precisions to time beside float32")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--networks", default=None,
                        help="the authors' unsup3d/networks.py (default: the faithful "
                        "definitions in tests/make_official_fixtures.py)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
    else:
        bench(args)


if __name__ == "__main__":
    main()
