"""Benchmark: does the method learn? Train configs/tiny.yaml on a synthetic face set for a
fixed time budget, evaluate on its held-out test split against the baselines, and repeat
for the variants asked for at the same budget.

    python benchmarks/bench_learning.py [--minutes=30] [--eval_every=15] [--num=5000] \
        [--style=faces|blobs|cars] \
        [--variants=full,authors_renderer,no_albedo_flip,no_depth_flip,no_light,no_conf] \
        [--out=runs/bench_learning] [--data=DIR] [--config=configs/tiny.yaml] \
        [--set=KEY=VALUE ...] [--max_steps=N] [--init=CHECKPOINT]

Bar (issue 43): by the end of the run SIDE <= 0.85x and MAD <= 0.92x the mean-depth
baseline's, and the albedo's chroma >= 0.7x the input's (on 64 training images, with
the re-rendering's L1 beside it; tfsym3d.metrics.colour_fidelity). Writes OUT/results.json,
OUT/results.md (the table), OUT/examples.png (input, recon depth, recon normal and
reconstruction of a few test images, from the first variant) and, with --eval_every,
the learning curve: every E minutes of training (evaluation time is not counted) the
model as it is then is scored on the test split (SIDE and MAD as ratios of the
mean-depth baseline's, coverage, pitch/yaw/roll slopes, images seen), into
results.json ("curve") and OUT/curve.png, both rewritten at every point so a run that
is stopped keeps its curve. The yaw slope is the predicted yaw regressed on the true one
over the test split (1 = calibrated views). Variants: full (the config as it is),
authors_renderer (config.AUTHORS_RENDERER: the authors' normals, 2x2 supersampled
recon depth, half-pixel offset) and the paper's Table 2 ablations. --config picks
another base config (e.g. configs/synface.yaml with --set=lam_perc=0 --set=crop=null on
a GPU). --data without a test split is synthesised into (tfsym3d synth's --style,
faces by default) when it is new or empty, and refused otherwise (a folder that another `tfsym3d
synth` is still writing). A variant whose run directory already holds a run of
--minutes is evaluated without retraining, and one of fewer minutes is trained on from
its last checkpoint up to --minutes in all, its curve continued (delete it to retrain).
--max_steps ends each variant after N steps whatever the time (for smoke tests).
--init starts each new variant from a checkpoint's weights (fine-tuning, issue 40).
"""

import argparse
import functools
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
    "authors_renderer": None,  # config.AUTHORS_RENDERER, filled in by overrides()
    "no_albedo_flip": {"flip_albedo": False},
    "no_depth_flip": {"flip_depth": False},
    "no_light": {"use_lighting": False},
    "no_conf": {"use_conf_map": False},
}


def overrides(name):
    """Config overrides of a variant."""
    if name == "authors_renderer":
        from tfsym3d.config import AUTHORS_RENDERER

        return dict(AUTHORS_RENDERER)
    return VARIANTS[name]


def budget(seconds, eval_every=None, on_eval=None, max_steps=None, done_minutes=0.0,
           done_steps=0):
    """A Keras callback that ends training once the run has `seconds` of training (time
    spent in on_eval is not counted; done_minutes and done_steps were trained before, by
    an earlier process) or max_steps steps in this process, and calls on_eval(model,
    minutes, steps) every eval_every seconds of training and once at the end. After
    training, .minutes and .steps are the run's totals."""
    import keras

    class Budget(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start, self.paused, self.new_steps = time.monotonic(), 0.0, 0
            self.evaluated_at = None
            self.next_eval = eval_every and (done_minutes * 60 // eval_every + 1) * eval_every

        @property
        def trained(self):
            """Seconds of training of the whole run so far."""
            return done_minutes * 60 + time.monotonic() - self.start - self.paused

        @property
        def steps(self):
            return done_steps + self.new_steps

        @property
        def minutes(self):
            return self.trained / 60.0

        def evaluate(self):
            self.evaluated_at = self.steps
            t0 = time.monotonic()
            on_eval(self.model, self.minutes, self.steps)
            self.paused += time.monotonic() - t0

        def on_train_batch_end(self, batch, logs=None):
            self.new_steps += 1
            if on_eval is not None and eval_every and self.trained >= self.next_eval:
                self.next_eval = (self.trained // eval_every + 1) * eval_every
                self.evaluate()
            if self.trained > seconds or (max_steps and self.new_steps >= max_steps):
                self.model.stop_training = True

        def on_train_end(self, logs=None):
            if on_eval is not None and self.evaluated_at != self.steps:
                self.evaluate()

    return Budget()


@functools.lru_cache(maxsize=4)
def train_images(data, num, size):
    """The first num training images of a paired or folder data set: [N, S, S, 3] (read
    once per run: every curve point measures the same images)."""
    from tfsym3d.data.folder import split_dir, split_images
    from tfsym3d.io.images import load

    files = split_images(split_dir(data, "train"))[:num]
    return np.stack([load(f, size) for f in files]).astype(np.float32)


def colour(model, data, num=64):
    """Colour fidelity (tfsym3d.metrics.colour_fidelity: albedo chroma / input chroma,
    the re-rendering's L1 on seen pixels) on the first num training images."""
    from tfsym3d.metrics import colour_fidelity

    images = train_images(data, num, model.cfg.image_size)
    out = model(images, training=False)
    return colour_fidelity({k: v.numpy() for k, v in out.items()}, images, model.renderer)


def curve_point(model, data, minutes, steps):
    """The model as it is now, scored on the test split (SIDE, MAD, views) and on 64
    training images (colour): one point of the curve."""
    from tfsym3d.evaluation import evaluate

    report = evaluate(model, model.cfg, data, "test")
    c = colour(model, data)
    s = report["summary"]
    point = {"minutes": round(minutes, 2), "steps": steps,
             "images": steps * model.cfg.batch_size,
             "side": s["model"]["side"], "mad": s["model"]["mad"],
             "side_ratio": s["model"]["side"] / s["baseline_avg"]["side"],
             "mad_ratio": s["model"]["mad"] / s["baseline_avg"]["mad"],
             "coverage": s["model"]["coverage"], "chroma_ratio": c["chroma_ratio"],
             "recon_l1": c["recon_l1"]}
    for angle in ("pitch", "yaw", "roll"):
        point[f"{angle}_slope"] = report.get("view", {}).get(angle, {}).get("slope",
                                                                             float("nan"))
    return point


def run_variant(name, data, out, minutes, extra=None, config=TINY, eval_every=None,
                on_point=None, max_steps=None, init=None):
    """Trains and evaluates one variant; returns (model, test report, info: the run's
    minutes of training, steps and curve). A run directory that holds a run of fewer
    minutes is trained on, from its last checkpoint, up to `minutes` in all (its curve
    goes on); one of as many or more is only evaluated. on_point(point) gets each curve
    point (see curve_point) as it is measured, with --eval_every. init: a checkpoint the
    run starts from (tfsym3d train --init)."""
    from tfsym3d.checkpoints import load_model
    from tfsym3d.config import load_config
    from tfsym3d.evaluation import evaluate
    from tfsym3d.train import train

    run_dir = os.path.join(out, name)
    done = os.path.join(run_dir, "done.json")
    info = {"minutes": 0.0, "steps": 0, "curve": []}
    if os.path.isfile(done):
        with open(done) as f:
            info = json.load(f)
    if info["minutes"] < minutes - 0.05:
        cfg = load_config(config,
                          dict(extra or {}, **overrides(name), data_dir=data, num_epochs=1000))
        curve = info["curve"]

        def on_eval(model, mins, steps):
            curve.append(curve_point(model, data, mins, steps))
            if on_point is not None:
                on_point(curve[-1])

        limit = budget(minutes * 60, eval_every and eval_every * 60,
                       on_eval if eval_every else None, max_steps, info["minutes"],
                       info["steps"])
        train(cfg, run_dir, verbose=2, callbacks=[limit], init=init)
        info = {"minutes": limit.minutes, "steps": limit.steps, "curve": curve}
        with open(done, "w") as f:
            json.dump(info, f)
    model = load_model(run_dir)
    report = evaluate(model, model.cfg, data, "test")
    return model, report, info


def plot_curves(curves, path):
    """curve.png: SIDE and MAD ratios (left) and the yaw slope (right) against minutes of
    training, one line per variant; dashed lines at the bar (ratio 1, slope 0.5)."""
    from PIL import Image, ImageDraw

    colours = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189),
               (255, 127, 14), (23, 190, 207)]
    w, h, pad = 420, 300, 46
    im = Image.new("RGB", (2 * w, h + 40), "white")
    d = ImageDraw.Draw(im)
    t_max = max([p["minutes"] for c in curves.values() for p in c] + [1.0])
    panels = [("SIDE (solid), MAD (dotted) / mean-depth baseline", ("side_ratio", "mad_ratio"),
               (0.0, 2.0), 1.0), ("yaw slope", ("yaw_slope",), (-0.2, 1.2), 0.5)]
    for k, (title, keys, (lo, hi), bar) in enumerate(panels):
        x0 = k * w + pad

        def xy(t, v, x0=x0, lo=lo, hi=hi):
            v = min(max(v, lo), hi)
            return (x0 + (w - 2 * pad + 20) * t / t_max,
                    h - pad + 20 - (h - 2 * pad) * (v - lo) / (hi - lo))

        d.text((x0, 6), title, fill="black")
        d.rectangle([xy(0, hi), xy(t_max, lo)], outline="black")
        for v in np.linspace(lo, hi, 5):
            d.text((x0 - 40, xy(0, v)[1] - 6), f"{v:.2f}", fill="black")
        for t in np.linspace(0, t_max, 5):
            d.text((xy(t, lo)[0] - 8, xy(t, lo)[1] + 4),
                   f"{t:.0f}" if t_max >= 10 else f"{t:.1f}", fill="black")
        d.text((x0 + w // 2 - 60, h + 8), "minutes of training", fill="black")
        for t in np.linspace(0, t_max, 60):  # the bar, dashed
            if int(t / t_max * 60) % 2 == 0:
                d.line([xy(t, bar), xy(min(t + t_max / 60, t_max), bar)], fill="gray")
        for c, (name, points) in enumerate(curves.items()):
            colour = colours[c % len(colours)]
            for j, key in enumerate(keys):
                pts = [xy(p["minutes"], p[key]) for p in points if np.isfinite(p[key])]
                if len(pts) > 1:
                    if j == 0:
                        d.line(pts, fill=colour, width=2)
                    else:
                        for a, b in zip(pts[:-1], pts[1:], strict=True):  # dotted
                            for f in np.linspace(0, 1, 12)[::2]:
                                d.line([(a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f),
                                        (a[0] + (b[0] - a[0]) * (f + 1 / 11),
                                         a[1] + (b[1] - a[1]) * (f + 1 / 11))],
                                       fill=colour, width=2)
                for q in pts:
                    d.ellipse([q[0] - 2, q[1] - 2, q[0] + 2, q[1] + 2], fill=colour)
            if k == 0:
                d.text((x0 + 8, 22 + 14 * c), name, fill=colour)
    im.save(path)


def examples_png(model, data, path, n=6):
    """Rows: input, recon depth, recon normal, reconstruction for n test images."""
    from PIL import Image

    from tfsym3d.data.folder import paired_files
    from tfsym3d.io.depth import depth_to_unit
    from tfsym3d.io.images import load
    from tfsym3d.reconstruct.pictures import normal_image

    files = [p for p, _ in paired_files(data, "test")[:n]]
    s = model.cfg.image_size
    x = np.stack([load(p, s) for p in files])
    out = model(x, training=False)
    depth = depth_to_unit(out["recon_depth"].numpy(), model.cfg.min_depth, model.cfg.max_depth)
    depth_im = np.repeat(depth[..., None], 3, -1)
    normal = normal_image(out["recon_normal"].numpy())
    rows = [np.concatenate(list(r), 1) for r in (x, depth_im, normal, out["recon_im"].numpy())]
    grid = (np.concatenate(rows, 0) * 255).astype(np.uint8)
    Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--eval_every", type=float, default=0.0,
                        help="Minutes of training between curve points (0: none).")
    parser.add_argument("--max_steps", type=int, default=None,
                        help="End each variant after this many steps (smoke tests).")
    parser.add_argument("--num", type=int, default=5000, help="Synthetic images (all splits).")
    parser.add_argument("--style", default="faces", help="tfsym3d synth's family for a new "
                        "--data (faces, blobs, cars).")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", default="runs/bench_learning")
    parser.add_argument("--data", default=None, help="Dataset root (default OUT/data).")
    parser.add_argument("--config", default=TINY, help="Base config of every variant.")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="Config override applied to every variant (repeatable).")
    parser.add_argument("--init", default=None, help="Start every variant from these "
                        "weights (a run directory, .keras or .pth: tfsym3d train --init).")
    args = parser.parse_args()
    import yaml

    from tfsym3d.cli import show_library_lines
    from tfsym3d.data.synth import generate

    show_library_lines("bench_learning")  # resumed runs, skipped files: as the commands show

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
        counts = generate(data, args.num, seed=0, style=args.style)
        print(f"synthesised {counts} in {time.monotonic() - start:.0f} s", flush=True)

    names = args.variants.split(",")
    for name in names:
        if name not in VARIANTS:
            sys.exit(f"bench_learning: unknown variant {name!r} (known: {', '.join(VARIANTS)})")
    os.makedirs(args.out, exist_ok=True)
    results, curves = {}, {}

    def save_curve():
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump({**results, "curve": curves}, f, indent=2)
        plot_curves(curves, os.path.join(args.out, "curve.png"))

    for name in names:
        def on_point(point, name=name):
            curves.setdefault(name, []).append(point)
            print(f"{name} at {point['minutes']:.1f} min ({point['images']} images): SIDE "
                  f"x{point['side_ratio']:.2f} MAD x{point['mad_ratio']:.2f} yaw slope "
                  f"{point['yaw_slope']:.2f} coverage {point['coverage']:.0%} chroma "
                  f"x{point['chroma_ratio']:.2f} recon L1 {point['recon_l1']:.4f}", flush=True)
            save_curve()

        model, report, info = run_variant(name, data, args.out, args.minutes, extra,
                                           args.config, args.eval_every or None, on_point,
                                           args.max_steps, args.init)
        if info.get("curve"):
            curves[name] = info["curve"]
        s = report["summary"]
        results[name] = {"side": s["model"]["side"], "side_std": s["model"]["side_std"],
                         "mad": s["model"]["mad"], "mad_std": s["model"]["mad_std"],
                         "mad_unit": s["model"]["mad_unit"],
                         "coverage": s["model"]["coverage"],
                         "train_minutes": info["minutes"], "steps": info["steps"],
                         "images": info["steps"] * model.cfg.batch_size,
                         **{k: v for k, v in colour(model, data).items()
                            if k in ("chroma_ratio", "recon_l1")}}
        results[name]["seconds_per_step"] = info["minutes"] * 60 / max(info["steps"], 1)
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
        if name == names[0]:
            examples_png(model, data, os.path.join(args.out, "examples.png"))
        print(f"{name}: SIDE {results[name]['side']:.3f} MAD {results[name]['mad']:.2f}",
              flush=True)

    lines = ["| model | SIDE (x1e-2) | MAD (deg) | MAD unit (deg) | coverage "
             "| yaw MAE, offset removed (deg) | yaw slope (corr) | landmark depth corr (of 8) "
             "| albedo chroma / input's | recon L1 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['side']:.3f} ± {r['side_std']:.3f} | "
                     f"{r['mad']:.2f} ± {r['mad_std']:.2f} | {r['mad_unit']:.2f} | "
                     f"{r['coverage']:.0%} | "
                     f"{r.get('yaw_mae_debiased', float('nan')):.1f} | "
                     f"{r.get('yaw_slope', float('nan')):.2f} "
                     f"({r.get('yaw_corr', float('nan')):.2f}) | "
                     f"{r.get('keypoint_corr', float('nan')):.2f} | "
                     f"{r.get('chroma_ratio', float('nan')):.2f} | "
                     f"{r.get('recon_l1', float('nan')):.4f} |")
    lines.append("")
    base, null = results["baseline_avg"], results["baseline_null"]
    # The better baseline for each metric (issue 48): a constant depth often beats the
    # mean depth on SIDE, so a ratio to the mean depth alone flatters the model.
    best_side, best_mad = min(base["side"], null["side"]), min(base["mad"], null["mad"])
    for name in names:  # the bars of issues 43 and 48, per variant
        r = results[name]
        side_ratio, mad_ratio = r["side"] / base["side"], r["mad"] / base["mad"]
        ok = side_ratio <= 0.85 and mad_ratio <= 0.92 and r["chroma_ratio"] >= 0.7
        lines.append(f"{name} / mean-depth baseline: SIDE x{side_ratio:.2f} (bar <= 0.85), "
                     f"MAD x{mad_ratio:.2f} (bar <= 0.92), albedo chroma / input's "
                     f"x{r['chroma_ratio']:.2f} (bar >= 0.7): {'met' if ok else 'NOT met'}")
        best = (r["side"] / best_side, r["mad"] / best_mad)
        lines.append(f"{name} / the better baseline per metric: SIDE x{best[0]:.2f}, MAD "
                     f"x{best[1]:.2f}, yaw slope {r.get('yaw_slope', float('nan')):.2f} "
                     "(issue 48's bar on objects: <= 0.85, <= 0.92, >= 0.5)")
        r["bar"] = {"side_ratio": side_ratio, "mad_ratio": mad_ratio, "met": ok,
                    "side_ratio_best": best[0], "mad_ratio_best": best[1]}
    for name in names:  # one line each, for scripts (gpu_learning.sh)
        r = results[name]
        rate = r["images"] / max(r["train_minutes"] * 60, 1e-9)
        lines.append(f"RESULT {name}: SIDE x{r['bar']['side_ratio']:.3f} MAD "
                     f"x{r['bar']['mad_ratio']:.3f} (better baseline x"
                     f"{r['bar']['side_ratio_best']:.3f} / x{r['bar']['mad_ratio_best']:.3f}) "
                     f"yaw slope "
                     f"{r.get('yaw_slope', float('nan')):.2f} chroma "
                     f"x{r['chroma_ratio']:.2f} recon L1 {r['recon_l1']:.4f} after "
                     f"{r['images']} images in "
                     f"{r['train_minutes']:.1f} min ({rate:.1f} images/s, compilation and "
                     "first steps included)")
    from bench_train import cpu_line

    lines.append(cpu_line())
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text + "\n")
    save_curve()


if __name__ == "__main__":
    main()
