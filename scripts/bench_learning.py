"""Benchmark: does the method learn? Train configs/tiny.yaml on a synthetic face set for a
fixed time budget, evaluate on its held-out test split against the baselines, and repeat
for the ablations of the paper's Table 2 at the same budget.

    python scripts/bench_learning.py [--minutes=30] [--num=5000] \
        [--variants=full,no_albedo_flip,no_depth_flip,no_light,no_conf] \
        [--out=runs/bench_learning] [--config=configs/tiny.yaml] [--set=KEY=VALUE ...]

Bar (issue 4): the full model's SIDE <= 0.5 x the mean-depth baseline's SIDE and its MAD
<= 0.75 x that baseline's MAD. Writes OUT/results.json, OUT/results.md (the table) and
OUT/examples.png (input, recon depth, recon normal and reconstruction of a few test
images, from the full model). The table's yaw slope is the predicted yaw regressed on the
true one over the test split (1 = calibrated views). --config picks another base config
(e.g. configs/synface.yaml with --set=lam_perc=0 --set=crop=null on a GPU). --data
without a test split is synthesised into when it is new or empty, and refused otherwise
(a folder that another `tfsym3d synth` is still writing). A variant
whose run directory already holds a finished run is evaluated without retraining (delete
it to retrain).
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "configs", "tiny.yaml")  # the default base config
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

VARIANTS = {  # name -> config overrides (the paper's Table 2 rows that apply to tiny)
    "full": {},
    "no_albedo_flip": {"flip_albedo": False},
    "no_depth_flip": {"flip_depth": False},
    "no_light": {"use_lighting": False},
    "no_conf": {"use_conf_map": False},
}


def time_limit(seconds):
    """A Keras callback that ends training once `seconds` have passed."""
    import keras

    class TimeLimit(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.monotonic()

        def on_train_batch_end(self, batch, logs=None):
            if time.monotonic() - self.start > seconds:
                self.model.stop_training = True

    return TimeLimit()


def run_variant(name, overrides, data, out, minutes, extra=None, config=TINY):
    from tfsym3d.checkpoints import load_model
    from tfsym3d.config import load_config
    from tfsym3d.evaluate_cli import evaluate
    from tfsym3d.train import train

    run_dir = os.path.join(out, name)
    done = os.path.join(run_dir, "done.json")
    if not os.path.isfile(done):
        cfg = load_config(config,
                          dict(extra or {}, **overrides, data_dir=data, num_epochs=1000))
        start = time.monotonic()
        _, history = train(cfg, run_dir, verbose=2, callbacks=[time_limit(minutes * 60)])
        with open(done, "w") as f:
            json.dump({"seconds": time.monotonic() - start,
                       "epochs": len(history.history["loss"]) if history else None}, f)
    with open(done) as f:
        info = json.load(f)
    model = load_model(run_dir)
    report = evaluate(model, model.cfg, data, "test")
    return model, report, info


def examples_png(model, data, path, n=6):
    """Rows: input, recon depth, recon normal, reconstruction for n test images."""
    import tensorflow as tf
    from PIL import Image

    from tfsym3d.data.folder import load_rgb, paired_files
    from tfsym3d.reconstruct import normal_image

    files = [p for p, _ in paired_files(data, "test")[:n]]
    s = model.cfg.image_size
    x = np.stack([tf.image.resize(load_rgb(p), [s, s]).numpy() for p in files])
    out = model(x, training=False)
    depth = out["recon_depth"].numpy()
    lo, hi = model.cfg.min_depth, model.cfg.max_depth
    depth_im = np.repeat(((hi - depth) / (hi - lo)).clip(0, 1)[..., None], 3, -1)
    normal = normal_image(out["recon_normal"].numpy())
    recon = out["recon_im"].numpy() / 2 + 0.5
    rows = [np.concatenate(list(r), 1) for r in (x, depth_im, normal, recon.clip(0, 1))]
    grid = (np.concatenate(rows, 0) * 255).astype(np.uint8)
    Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--num", type=int, default=5000, help="Synthetic images (all splits).")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", default="runs/bench_learning")
    parser.add_argument("--data", default=None, help="Dataset root (default OUT/data).")
    parser.add_argument("--config", default=TINY, help="Base config of every variant.")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="Config override applied to every variant (repeatable).")
    args = parser.parse_args()
    import yaml

    from tfsym3d.data.synth import generate

    extra = {}
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep:
            sys.exit(f"bench_learning: --set {item!r} must look like key=value")
        extra[key] = yaml.safe_load(text)
    data = args.data or os.path.join(args.out, "data")
    if not os.path.isdir(os.path.join(data, "test")):
        if os.path.isdir(data) and os.listdir(data):
            # Half-written by a `tfsym3d synth` still running, or not a dataset: writing
            # another set of other size into it would mix the two.
            sys.exit(f"bench_learning: {data}: no test split in a folder that is not empty "
                     "(give a finished tfsym3d synth dataset, or an empty or new folder)")
        start = time.monotonic()
        counts = generate(data, args.num, seed=0)
        print(f"synthesised {counts} in {time.monotonic() - start:.0f} s", flush=True)

    results = {}
    for name in args.variants.split(","):
        if name not in VARIANTS:
            sys.exit(f"bench_learning: unknown variant {name!r} (known: {', '.join(VARIANTS)})")
        model, report, info = run_variant(name, VARIANTS[name], data, args.out, args.minutes,
                                           extra, args.config)
        s = report["summary"]
        results[name] = {"side": s["model"]["side"], "side_std": s["model"]["side_std"],
                         "mad": s["model"]["mad"], "mad_std": s["model"]["mad_std"],
                         "mad_unit": s["model"]["mad_unit"],
                         "coverage": s["model"]["coverage"],
                         "train_seconds": info["seconds"], "epochs": info["epochs"]}
        if "view" in report:
            results[name]["yaw_mae_debiased"] = report["view"]["yaw"]["mae_debiased"]
            results[name]["yaw_slope"] = report["view"]["yaw"]["slope"]
            results[name]["yaw_corr"] = report["view"]["yaw"]["corr"]
        if "keypoints" in report:
            results[name]["keypoint_corr"] = report["keypoints"]["score"]
        results.setdefault("baseline_avg", {k: s["baseline_avg"][k] for k in
                                            ("side", "side_std", "mad", "mad_std",
                                             "mad_unit", "coverage")})
        results.setdefault("baseline_null", {k: s["baseline_null"][k] for k in
                                             ("side", "side_std", "mad", "mad_std",
                                              "mad_unit", "coverage")})
        if name == "full":
            examples_png(model, data, os.path.join(args.out, "examples.png"))
        print(f"{name}: SIDE {results[name]['side']:.3f} MAD {results[name]['mad']:.2f}",
              flush=True)

    lines = ["| model | SIDE (x1e-2) | MAD (deg) | MAD unit (deg) | coverage "
             "| yaw MAE, offset removed (deg) | yaw slope (corr) | landmark depth corr (of 8) |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['side']:.3f} ± {r['side_std']:.3f} | "
                     f"{r['mad']:.2f} ± {r['mad_std']:.2f} | {r['mad_unit']:.2f} | "
                     f"{r['coverage']:.0%} | "
                     f"{r.get('yaw_mae_debiased', float('nan')):.1f} | "
                     f"{r.get('yaw_slope', float('nan')):.2f} "
                     f"({r.get('yaw_corr', float('nan')):.2f}) | "
                     f"{r.get('keypoint_corr', float('nan')):.2f} |")
    if "full" in results:
        base = results["baseline_avg"]
        side_ratio = results["full"]["side"] / base["side"]
        mad_ratio = results["full"]["mad"] / base["mad"]
        ok = side_ratio <= 0.5 and mad_ratio <= 0.75
        lines.append("")
        lines.append(f"full / mean-depth baseline: SIDE {side_ratio:.2f} (bar 0.5), "
                     f"MAD {mad_ratio:.2f} (bar 0.75): {'met' if ok else 'NOT met'}")
        results["bar"] = {"side_ratio": side_ratio, "mad_ratio": mad_ratio, "met": ok}
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
