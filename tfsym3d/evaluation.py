"""Evaluation on paired data with ground truth: SIDE/MAD of a model and the paper's two
baselines, viewpoint and landmark accuracy, and the report's table, JSON and CSV (what
`tfsym3d evaluate` prints and writes; see tfsym3d/commands/evaluate.py for the meaning of
every column).
"""

import csv
import json
import logging
import os

import numpy as np

log = logging.getLogger(__name__)

METHODS = ("model", "baseline_null", "baseline_avg")
SCORES = ("side", "mad", "mad_unit", "coverage")  # per image; side x1e-2, mad in degrees
LOW_COVERAGE = 0.5


def evaluate(model, cfg, data, split="test", batch_size=64):
    """Evaluates a model (or None: baselines only) on a paired split.

    Returns a dict: "summary" {method: {"side", "side_std", "mad", "mad_std", "mad_unit",
    "mad_unit_std", "n", "coverage"}}, "rows" (per image and method: name, method, side,
    mad, mad_unit, coverage),
    optionally "view" and "keypoints" (see module docstring), and "skipped"
    [(file, reason)].
    """
    import tensorflow as tf

    from tfsym3d import metrics
    from tfsym3d.data.folder import pair_problem, pair_stem, paired_files, read_pair, split_dir
    from tfsym3d.io.images import resize
    from tfsym3d.renderer import Renderer

    folder = split_dir(data, split)
    skipped = []
    pairs = paired_files(data, split, skipped)  # an image without depth: skipped, named
    for path, reason in skipped:
        log.warning(f"skipping {path}: {reason}")
    truth = read_truth(os.path.join(folder, "gt.csv"))
    s = cfg.image_size
    renderer = model.renderer if model is not None else Renderer(
        s, cfg.fov, cfg.min_depth, cfg.max_depth, cfg.rot_center_depth)

    gt_range = cfg.resolved_gt_depth_range
    # Read everything first (the split is small); unreadable pairs are skipped, named.
    names, images, depths = [], [], []
    for image_path, depth_path in pairs:
        try:
            # The same reading, crop and resize as the training pipeline.
            im, d = read_pair(image_path, depth_path, cfg.crop, *gt_range)
            im, d = resize(im, s).numpy(), resize(d[..., None], s, None).numpy()[..., 0]
        except Exception as err:  # noqa: BLE001 - any decoding failure skips the file
            path, reason = pair_problem(err, image_path, depth_path)
            skipped.append((path, reason))
            log.warning(f"skipping {path}: {reason}")
            continue
        names.append(pair_stem(image_path))
        images.append(im)
        depths.append(d)
    if not names:
        raise ValueError(f"{folder}: no readable image/depth pair")
    images = np.stack(images).astype(np.float32)
    depth_gt = np.stack(depths).astype(np.float32)
    mean_gt = depth_gt.mean(axis=0)

    errors = tf.function(lambda pred, gt: metrics.depth_errors(pred, gt, renderer))
    predict = tf.function(lambda x: model(x, training=False)) if model is not None else None
    per = {m: {k: [] for k in SCORES} for m in METHODS}
    views, recon = [], []
    for lo in range(0, len(names), batch_size):
        gt = tf.constant(depth_gt[lo:lo + batch_size])
        preds = {"baseline_null": metrics.null_depth(tf.shape(gt), renderer),
                 "baseline_avg": tf.broadcast_to(tf.constant(mean_gt), tf.shape(gt))}
        if model is not None:
            out = predict(tf.constant(images[lo:lo + batch_size]))
            preds["model"] = out["recon_depth"]
            views.append(out["view"].numpy())
            recon.append(out["recon_depth"].numpy())
        for method, pred in preds.items():
            for name, value in errors(pred, gt).items():
                per[method][name] += list(value.numpy() * (100.0 if name == "side" else 1.0))

    summary, rows = {}, []
    for method in METHODS:
        if not per[method]["side"]:
            continue
        summary[method] = {}
        for name in ("side", "mad", "mad_unit"):
            stats = metrics.summarise(per[method][name])
            summary[method].update({name: stats["mean"], f"{name}_std": stats["std"],
                                    "n": stats["n"]})
        summary[method]["coverage"] = float(np.mean(per[method]["coverage"]))
        rows += [{"name": n, "method": method, **{k: per[method][k][i] for k in SCORES}}
                 for i, n in enumerate(names)]
    report = {"summary": summary, "rows": rows, "skipped": skipped, "split": folder}

    if model is not None and truth:
        missing = [n for n in names if n not in truth]
        if missing:
            log.warning(f"{len(missing)} image(s) not in gt.csv (e.g. {missing[0]}); "
                        "viewpoint and landmark scores skip them")
        keep = np.array([n in truth for n in names])
        if keep.any():
            view = np.concatenate(views)[keep]
            rows_gt = [truth[n] for n, k in zip(names, keep, strict=True) if k]
            pred_deg = np.degrees(view[:, :3])
            true_deg = np.array([[r["pitch"], r["yaw"], r["roll"]] for r in rows_gt])
            report["view"] = metrics.view_errors(pred_deg, true_deg)
            landmarks = sorted({k[:-2] for k in rows_gt[0] if k.endswith("_z")})
            if landmarks and cfg.crop is None:  # gt.csv positions are of the uncropped image
                uv = np.array([[[r[f"{m}_u"], r[f"{m}_v"]] for m in landmarks]
                               for r in rows_gt])
                uv = (uv + 0.5) * (s / _data_size(pairs[0][0])) - 0.5
                z_true = np.array([[r[f"{m}_z"] for m in landmarks] for r in rows_gt])
                z_pred = metrics.sample_points(np.concatenate(recon)[keep], uv)
                score, corr = metrics.keypoint_depth_correlation(z_pred, z_true)
                report["keypoints"] = {"score": score, "max": len(landmarks),
                                       "per_landmark": dict(zip(landmarks, corr.tolist(),
                                                                strict=True))}
    return report


def _data_size(path):
    from PIL import Image

    with Image.open(path) as im:
        return im.size[0]


def read_truth(path):
    """gt.csv -> {name: {column: float}} ({} when there is no file)."""
    if not os.path.isfile(path):
        return {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        out = {}
        for row in reader:
            name = row.pop("name")
            try:
                out[name] = {k: float(v) for k, v in row.items()}
            except (TypeError, ValueError) as err:
                raise ValueError(f"{path}: bad row for {name}: {err}") from err
        return out


def format_table(report):
    lines = [f"{report['split']}: {next(iter(report['summary'].values()))['n']} images"
             + (f", {len(report['skipped'])} skipped" if report["skipped"] else ""),
             f"{'method':<14} {'SIDE x1e-2':>16} {'MAD deg':>16} {'MAD unit':>16} "
             f"{'coverage':>9}"]
    for method, r in report["summary"].items():
        lines.append(f"{method:<14} {r['side']:>7.3f} +- {r['side_std']:<5.3f} "
                     f"{r['mad']:>7.2f} +- {r['mad_std']:<5.2f} "
                     f"{r['mad_unit']:>7.2f} +- {r['mad_unit_std']:<5.2f} {r['coverage']:>9.1%}")
    lines.append("MAD as the paper computes it (the authors' normals, ~6.5 deg between "
                 "identical maps); MAD unit with unit normals")
    model = report["summary"].get("model")
    if model is not None and model["coverage"] < LOW_COVERAGE:
        lines.append(f"WARNING: the model's valid depth covers {model['coverage']:.0%} of the "
                     "ground-truth faces on average; its SIDE/MAD come from the few pixels "
                     "left and are not comparable with the baselines'")
    if "view" in report:
        lines.append("viewpoint MAE deg (raw / mean offset removed, offset; slope of the "
                     "predicted angle on the true one, correlation):")
        for name, r in report["view"].items():
            lines.append(f"  {name:<6} {r['mae']:6.2f} / {r['mae_debiased']:6.2f} "
                         f"(offset {r['offset']:+.2f}; slope {r['slope']:.2f}, "
                         f"corr {r['corr']:.2f})")
    if "keypoints" in report:
        k = report["keypoints"]
        lines.append(f"landmark depth correlation: {k['score']:.3f} of {k['max']}")
    return "\n".join(lines)


def write_json(report, path):
    out = dict(report["summary"])
    for key in ("view", "keypoints"):
        if key in report:
            out[key] = report[key]
    out["skipped"] = [{"file": f, "reason": r} for f, r in report["skipped"]]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=2)


def write_csv(report, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["name", "method", *SCORES])
        writer.writeheader()
        for row in report["rows"]:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float | np.floating) else v)
                             for k, v in row.items()})
