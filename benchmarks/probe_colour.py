"""Probe: does training keep the input's colour? A short run of a config on a data set,
with the albedo's chroma (as a ratio of the input's) and the re-rendering's L1 error
measured on a fixed set of training images every few steps (issue 43's measurement).

    python benchmarks/probe_colour.py --data=DIR [--steps=800] [--every=100] [--num=2400]
        [--config=configs/tiny.yaml] [--set=KEY=VALUE ...] [--mode=model|albedo_ae]
        [--fixed] [--seed=0] [--json=OUT.json]

--mode=model trains the whole model (the config as `tfsym3d train` would, on DIR's first
--num training images, shuffled, random flips off, batch from the config);
--mode=albedo_ae trains the albedo network alone as a plain autoencoder (its output
against the input, L1): whether the network can carry colour at all, without the
renderer, the light or the view. --fixed trains on one batch only (the measured images
are then that batch). Prints one line per measurement; --json writes them all.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
from bench_learning import train_images  # noqa: E402

import tfsym3d  # noqa: E402,F401  (oneDNN on before TensorFlow starts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--num", type=int, default=2400)
    parser.add_argument("--config", default=os.path.join(ROOT, "configs", "tiny.yaml"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--mode", choices=("model", "albedo_ae"), default="model")
    parser.add_argument("--fixed", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    import keras
    import tensorflow as tf
    import yaml

    from tfsym3d.config import load_config
    from tfsym3d.io.images import from_unit, to_unit
    from tfsym3d.metrics import chroma, colour_fidelity
    from tfsym3d.model import Unsup3D, build, make_optimizer

    extra = {}
    for item in args.set:
        key, _, text = item.partition("=")
        extra[key] = yaml.safe_load(text)
    cfg = load_config(args.config, extra)
    images = train_images(args.data, args.num, cfg.image_size)
    b = cfg.batch_size
    probe = images[:b] if args.fixed else images[:64]
    keras.utils.set_random_seed(args.seed)
    model = build(Unsup3D(cfg))
    optimizer = make_optimizer(cfg)
    if args.mode == "model":
        model.compile(optimizer=optimizer, jit_compile=False)
        optimizer.build(model.trainable_variables)
        step = tf.function(model.train_step)
    else:
        net = model.netA
        optimizer.build(net.trainable_variables)

        @tf.function
        def step(x):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.abs(net(from_unit(x), training=True) - from_unit(x)))
            optimizer.apply(tape.gradient(loss, net.trainable_variables),
                            net.trainable_variables)
            return {"loss": loss}

    def measure():
        if args.mode == "model":
            return colour_fidelity(model(probe, training=False), probe, model.renderer)
        albedo = to_unit(model.netA(from_unit(probe), training=False)).numpy()
        return {"albedo_chroma": chroma(albedo), "input_chroma": chroma(probe),
                "chroma_ratio": chroma(albedo) / chroma(probe),
                "recon_l1": float(np.mean(np.abs(albedo - probe)))}

    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(images))
    points, pos, start = [], 0, time.monotonic()
    for i in range(1, args.steps + 1):
        if args.fixed:
            batch = probe
        else:
            if pos + b > len(order):
                order, pos = rng.permutation(len(images)), 0
            batch = images[order[pos:pos + b]]
            pos += b
        logs = step(tf.constant(batch))
        if i % args.every == 0 or i == args.steps:
            m = dict(measure(), step=i, loss=float(logs["loss"]),
                     seconds=round(time.monotonic() - start, 1))
            points.append(m)
            print(f"step {i}: chroma x{m['chroma_ratio']:.2f} (albedo {m['albedo_chroma']:.4f}"
                  f" / input {m['input_chroma']:.4f}), recon L1 {m['recon_l1']:.4f}, loss "
                  f"{m['loss']:.4f}, {m['seconds']:.0f} s", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "points": points}, f, indent=1)


if __name__ == "__main__":
    main()
