"""The synthetic dataset writer: layout, formats and determinism (a small smoke test;
issue 4 adds the consistency checks of its ground truth)."""

import csv
import os
import sys

import numpy as np
import pytest
from PIL import Image

from tfsym3d.data import paired_dataset
from tfsym3d.data.synth import LANDMARKS, generate, split_bounds


def test_writes_the_paired_layout_deterministically(tmp_path):
    counts = generate(str(tmp_path / "a"), 10, image_size=32, seed=3, batch=4)
    assert counts == {"train": 8, "val": 1, "test": 1}
    image = Image.open(tmp_path / "a" / "train" / "image" / "000000_image.png")
    depth = Image.open(tmp_path / "a" / "train" / "depth" / "000000_depth.png")
    assert image.size == (32, 32) and image.mode == "RGB"
    d = np.asarray(depth)
    assert d.dtype == np.uint16
    assert 0.1 < (d > 0).mean() < 0.95  # a face on a background
    with open(tmp_path / "a" / "train" / "gt.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and f"{next(iter(LANDMARKS))}_u" in rows[0]
    assert all(abs(float(r["yaw"])) <= 45 for r in rows)
    generate(str(tmp_path / "b"), 10, image_size=32, seed=3, batch=5)
    for sub in ("image/000004_image.png", "depth/000004_depth.png"):
        a = np.asarray(Image.open(tmp_path / "a" / "train" / sub))
        b = np.asarray(Image.open(tmp_path / "b" / "train" / sub))
        assert np.array_equal(a, b), sub
    images, depth_gt = next(iter(paired_dataset(str(tmp_path / "a"), "train",
                                                image_size=32, batch_size=8)))
    assert images.shape == (8, 32, 32, 3) and depth_gt.shape == (8, 32, 32)
    fg = depth_gt.numpy() < 1.1 - 1e-6
    assert fg.any() and np.all(depth_gt.numpy()[fg] > 0.85)
    assert os.path.isdir(tmp_path / "a" / "test" / "depth")
    # Face crops: whatever the turn (up to 45 deg), the face stays in the middle: the
    # mean of the eye and mouth corners within 0.15 of the image of its centre (0.08 on
    # average; turning about depth 1.0 alone moves it up to 0.25, 0.14 on average).
    offsets = []
    for split in ("train", "val", "test"):
        with open(tmp_path / "a" / split / "gt.csv") as f:
            for row in csv.DictReader(f):
                names = ("eye_outer_left", "eye_outer_right", "mouth_left", "mouth_right")
                u = np.mean([float(row[f"{n}_u"]) for n in names])
                v = np.mean([float(row[f"{n}_v"]) for n in names])
                offsets.append(max(abs(u - 15.5), abs(v - 15.5)) / 32)
    assert max(offsets) < 0.15 and np.mean(offsets) < 0.08, offsets
    # The eggs: the head's pixels are centred to the +-0.01 jitter (~1 px here).
    generate(str(tmp_path / "eggs"), 10, image_size=32, seed=3, style="eggs")
    for split in ("train", "val", "test"):
        for path in sorted((tmp_path / "eggs" / split / "depth").iterdir()):
            rows_, cols = np.nonzero(np.asarray(Image.open(path)) > 0)
            offset = max(abs(cols.mean() - 15.5), abs(rows_.mean() - 15.5)) / 32
            assert offset < 0.09, (path.name, offset)


def test_every_split_gets_a_sample_down_to_the_smallest_set(tmp_path):
    """The CLI accepts --num >= 3; sets of 3-7 used to leave the test split empty and
    crash on its gt.csv."""
    for num in range(3, 40):
        bounds = split_bounds(num)
        assert [b[0] for b in bounds] == ["train", "val", "test"]
        assert bounds[0][1] == 0 and bounds[-1][2] == num
        assert all(end > first for _, first, end in bounds), (num, bounds)
        assert all(a[2] == b[1] for a, b in zip(bounds, bounds[1:], strict=False))
    assert split_bounds(3000) == [("train", 0, 2400), ("val", 2400, 2700),
                                  ("test", 2700, 3000)]
    counts = generate(str(tmp_path), 3, image_size=16, seed=0, batch=2)
    assert counts == {"train": 1, "val": 1, "test": 1}
    for split in counts:
        with open(tmp_path / split / "gt.csv") as f:
            assert len(list(csv.DictReader(f))) == 1


def _script(name):
    """The research probe research/NAME.py as a module."""
    import importlib

    return importlib.import_module(f"research.{name}")


def test_oracle_views_rebuilds_the_ground_truth_and_scores_frontal_views_worse(tmp_path):
    generate(str(tmp_path), 20, image_size=32, seed=5, batch=20)
    oracle = _script("oracle_views")
    table = {label: (side, mad, cover) for label, side, mad, cover in
             oracle.rows(str(tmp_path), 20, seed=5, split="train", limit=8)}
    # The generator's own canonical depth through the model's warp gives its depth PNGs
    # back (to the PNG's 16-bit steps and the 2x supersampling of the silhouette).
    side, mad, cover = table["true shape, true view"]
    assert side < 0.3 and mad < 4.0 and cover > 0.97
    # The mean shape is a worse fit than the true one, and worse again unrotated.
    assert table["mean shape, yaw x1"][0] > 2 * side
    assert table["mean shape, no rotation"][0] > table["mean shape, yaw x1"][0]
    assert table["mean shape, no rotation"][1] > table["mean shape, yaw x1"][1]
    with pytest.raises(ValueError, match="does not match"):
        oracle.rows(str(tmp_path), 20, seed=6, split="train", limit=8)


@pytest.mark.slow
def test_true_view_training_feeds_the_csv_views_to_the_renderer(tmp_path):
    import tensorflow as tf

    from tfsym3d.config import load_config

    generate(str(tmp_path), 20, image_size=64, seed=3, batch=20)
    script = _script("true_view_training")
    names, images, depth, views = script.load_split(str(tmp_path), "test")
    with open(tmp_path / "test" / "gt.csv") as f:
        rows = list(csv.DictReader(f))
    assert names == [r["name"] for r in rows] and images.shape == (2, 64, 64, 3)
    np.testing.assert_allclose(np.degrees(views[:, 1]), [float(r["yaw"]) for r in rows],
                               atol=1e-3)
    np.testing.assert_allclose(views[:, 3], [float(r["tx"]) for r in rows], atol=1e-6)
    # The model renders from the views it is given, for both halves (plain, flipped).
    model = script.true_view_model(load_config("configs/tiny.yaml"))
    model.true_view.assign(views)
    out = model.decompose(tf.constant(images))
    np.testing.assert_allclose(out["view"].numpy(), np.concatenate([views, views]))
    r = script.run(str(tmp_path), 10.0, str(tmp_path / "out"), max_steps=2,
                   log=lambda *_: None)
    assert r["steps"] == 2 and np.isfinite([r["side"], r["mad"], r["baseline_side"]]).all()
    assert (tmp_path / "out" / "examples.png").is_file()


@pytest.mark.slow
def test_oracle_fit_the_true_factors_explain_the_head(tmp_path):
    from tfsym3d.config import load_config
    from tfsym3d.model import Unsup3D, build

    generate(str(tmp_path), 20, image_size=64, seed=5, batch=20)
    oracle = _script("oracle_views")
    truth, = oracle.image_fit(str(tmp_path), 20, seed=5, split="train", limit=6)
    label, on_head, off_head, rendered = truth
    # The generator's own factors through the model's shading and renderer give the head
    # back up to the 2x supersampling at its edges; off the head the canonical albedo is
    # skin colour, not the backdrop.
    assert on_head < 0.02 and rendered > 0.99 and off_head > 5 * on_head
    # An untrained model, scored alongside, explains the head far worse.
    cfg = load_config("configs/tiny.yaml")
    path = str(tmp_path / "untrained.keras")
    build(Unsup3D(cfg)).save(path)
    rows = oracle.image_fit(str(tmp_path), 20, seed=5, split="train", limit=6,
                            checkpoint=path)
    assert [r[0] for r in rows] == ["true factors", f"trained model ({path})"]
    assert rows[1][1] > 3 * on_head


def test_bench_learning_will_not_synthesise_into_a_half_written_folder(tmp_path):
    import subprocess
    import sys

    (tmp_path / "data" / "train").mkdir(parents=True)  # a synth run still writing
    script = os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks",
                          "bench_learning.py")
    proc = subprocess.run([sys.executable, script, f"--data={tmp_path / 'data'}",
                           f"--out={tmp_path / 'out'}", "--minutes=0.1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert f"{tmp_path / 'data'}: no test split" in proc.stderr
    assert os.listdir(tmp_path / "data") == ["train"]


@pytest.mark.slow
def test_bench_learning_curve_continues_a_shorter_run(tmp_path):
    """--eval_every writes curve points (minutes, images, ratios, slopes, colour) to
    results.json and curve.png; a second call with more minutes trains on from the
    first's checkpoint and extends the same curve."""
    import json
    import subprocess
    import sys

    generate(str(tmp_path / "data"), 40, image_size=64, seed=1)
    script = os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks",
                          "bench_learning.py")
    cmd = [sys.executable, script, f"--data={tmp_path / 'data'}", f"--out={tmp_path / 'out'}",
           "--variants=full", "--eval_every=0.001"]
    for minutes in ("5", "10"):  # max_steps ends each call first
        proc = subprocess.run(cmd + [f"--minutes={minutes}", "--max_steps=1"],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert "resuming" in proc.stdout + proc.stderr
    with open(tmp_path / "out" / "results.json") as f:
        results = json.load(f)
    curve = results["curve"]["full"]
    assert [p["steps"] for p in curve] == [1, 2]
    assert [p["images"] for p in curve] == [16, 32]
    assert all(p["minutes"] <= q["minutes"] for p, q in zip(curve, curve[1:], strict=False))
    assert all(np.isfinite(p[k]) for p in curve for k in
               ("side_ratio", "mad_ratio", "coverage", "yaw_slope", "pitch_slope",
                "chroma_ratio", "recon_l1"))
    assert results["full"]["steps"] == 2 and "met" in results["full"]["bar"]
    assert 0 <= results["full"]["chroma_ratio"] and 0 < results["full"]["recon_l1"] < 1
    assert "RESULT full: SIDE x" in proc.stdout
    assert Image.open(tmp_path / "out" / "curve.png").size[0] > 400


@pytest.mark.slow
def test_gpu_learning_script_runs_one_step_on_the_cpu(tmp_path):
    """scripts/gpu_learning.sh at the paper's widths, one step of batch 8 (the GPU run's
    smoke test): it synthesises, trains, evaluates and prints its one line."""
    import subprocess

    root = os.path.dirname(os.path.dirname(__file__))
    env = dict(os.environ, PYTHON=sys.executable,
               TFSYM3D=os.path.join(os.path.dirname(sys.executable), "tfsym3d"))
    proc = subprocess.run(["bash", os.path.join(root, "scripts", "gpu_learning.sh"),
                           "--steps=1", "--num=30", "--set=batch_size=8",
                           f"--out={tmp_path / 'run'}"],
                          capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith("gpu_learning: SIDE x") and "yaw slope" in line, line
    assert "images/s" in line and "after 8 images" in line, line


def most_symmetric_yaw(style, n=30, seed=5, size=64, step=3.0):
    """For n generated images: the yaw (degrees) whose frontalisation, with the image's
    true canonical depth, light, pitch, roll and translation, is most mirror-symmetric;
    and the true yaws.

    Frontalising with a yaw: each canonical pixel's surface point (the true depth) is
    turned by the view and projected; where it is visible (its depth is the z-buffer's)
    the image is sampled there and divided by the true shading, giving an albedo
    estimate. The score is the mean |estimate - its mirror image| over head pixels (2
    px in from the head's edge) seen from both sides; a yaw that sees fewer than 30% of
    them scores infinity. Built from the renderer's warps and rasterizer; nothing of the
    model."""
    import tensorflow as tf

    from tfsym3d.data import synth
    from tfsym3d.renderer import Renderer, grid_sample, rasterize

    p = synth.sample_params(np.random.default_rng(seed), n, style)
    idx = np.arange(n)
    images, _, _, view = synth.render_batch(p, idx, size, seed)
    r = Renderer(size, synth.FOV, synth.MIN_DEPTH, synth.MAX_DEPTH, synth.ROT_CENTER_DEPTH,
                 fused=False)
    maps = [synth.canonical_maps(p, i, size, np.random.default_rng([seed, int(i)]))
            for i in idx]
    depth = np.stack([m[0] for m in maps])
    mask = np.stack([m[2] for m in maps])
    normal = r.get_normal_from_depth(depth).numpy()
    shade = synth.shading(p, idx, normal)  # the true light, as the images were shaded
    inner = tf.nn.erosion2d(mask[..., None].astype(np.float32), tf.zeros([5, 5, 1]),
                            [1, 1, 1, 1], "SAME", "NHWC", [1, 1, 1, 1]).numpy()[..., 0] > 0.5
    both = inner & inner[:, :, ::-1]
    yaws = np.arange(-60.0, 60.0 + 1e-6, step)
    scores = np.full((n, len(yaws)), np.inf)
    for k, yaw in enumerate(yaws):
        v = view.copy()
        v[:, 1] = np.radians(yaw)
        pts = r.get_warped_3d_grid(depth, v).numpy()
        drawn = pts.reshape(n, -1, 3).copy()
        drawn[~mask.reshape(n, -1)] = [0.0, 0.0, -1.0]  # only the head's triangles
        zbuf = rasterize(drawn, r.faces, r.K, (size, size))["depth"].numpy()
        grid = r.get_warped_2d_grid(depth, v)
        seen_z = grid_sample(np.where(np.isfinite(zbuf), zbuf, 10.0)[..., None], grid)
        visible = (np.abs(seen_z.numpy()[..., 0] - pts[..., 2]) < 2e-3) \
            & np.all(np.abs(grid.numpy()) <= 1.0, axis=-1)
        albedo = grid_sample(images, grid).numpy() / np.maximum(shade, 0.05)[..., None]
        ok = both & visible & visible[:, :, ::-1]
        diff = np.abs(albedo - albedo[:, :, ::-1]).mean(-1)
        count = ok.sum((1, 2))
        score = (diff * ok).sum((1, 2)) / np.maximum(count, 1)
        scores[:, k] = np.where(count >= 0.3 * both.sum((1, 2)), score, np.inf)
    return yaws[np.argmin(scores, 1)], p["yaw"]


@pytest.mark.slow
@pytest.mark.parametrize("style", ["faces", "eggs"])
def test_symmetry_identifies_the_yaw_on_faces_and_not_on_eggs(style):
    """The method's assumption, on the default data: the most symmetric frontalisation
    regresses on the true yaw with slope >= 0.8 and correlation >= 0.9. On the earlier
    eggs (hair down one side, painted features) it did not, and still does not: the
    check can fail."""
    best, true = most_symmetric_yaw(style)
    slope = np.polyfit(true, best, 1)[0]
    corr = np.corrcoef(true, best)[0, 1]
    meets = slope >= 0.8 and corr >= 0.9
    assert meets == (style == "faces"), (style, slope, corr)


@pytest.mark.parametrize("style", ["blobs", "cars"])
def test_object_families_have_own_shapes_saturated_colours_and_ground_truth(style, tmp_path):
    """issue 43's families: every instance its own shape (no shared category shape), a
    saturated colour, a plain background, their view ranges; deterministic however
    batched, and read back as paired data."""
    from tfsym3d.data import synth

    counts = generate(str(tmp_path / "a"), 12, image_size=32, seed=2, batch=5, style=style)
    generate(str(tmp_path / "b"), 12, image_size=32, seed=2, batch=12, style=style)
    assert counts == {"train": 10, "val": 1, "test": 1}
    assert synth.read_settings(str(tmp_path / "a"))["style"] == style
    for sub in ("image/000007_image.png", "depth/000007_depth.png"):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "a" / "train" / sub)),
                              np.asarray(Image.open(tmp_path / "b" / "train" / sub))), sub
    with open(tmp_path / "a" / "train" / "gt.csv") as f:
        rows = list(csv.DictReader(f))
    assert all(abs(float(r["yaw"])) <= 55 for r in rows)
    pitch = [float(r["pitch"]) for r in rows]
    low, high = (-25, 25) if style == "blobs" else (-5, 30)
    assert low <= min(pitch) and max(pitch) <= high, pitch
    # A plain background (per-pixel spread over R, G, B).
    background_chroma = []
    for k in range(10):
        image = np.asarray(Image.open(tmp_path / "a" / "train" / "image"
                                      / f"{k:06d}_image.png"), np.float64) / 255
        seen = np.asarray(Image.open(tmp_path / "a" / "train" / "depth"
                                     / f"{k:06d}_depth.png")) > 0
        assert 0.1 < seen.mean() < 0.8, (k, seen.mean())  # an object, not the frame
        background_chroma.append(np.median(image.std(axis=-1)[~seen]))
    if style == "blobs":  # grey, up to its pixel noise
        assert max(background_chroma) < 0.04, background_chroma
    # Own shapes: over 12 instances, the silhouettes' common part is a smaller share of
    # their union than the faces', and where all cover, the relief (its mean removed)
    # differs between instances by a larger share of its own variation (faces 0.81 and
    # 0.20; blobs 0.33 and 0.68; cars 0.54 and 0.38).
    def spread(style):
        p = synth.sample_params(np.random.default_rng(0), 12, style)
        maps = [synth.canonical_maps(p, i, 64, np.random.default_rng(i)) for i in range(12)]
        depth, masks = np.stack([m[0] for m in maps]), np.stack([m[2] for m in maps])
        common = masks.all(0)
        relief = depth[:, common] - depth[:, common].mean(1, keepdims=True)
        return (common.sum() / masks.any(0).sum(),
                relief.std(0).mean() / relief.std(1).mean(), maps)

    overlap, variety, maps = spread(style)
    face_overlap, face_variety, _ = spread("faces")
    assert overlap < 0.8 * face_overlap and variety > 1.5 * face_variety, \
        (overlap, face_overlap, variety, face_variety)
    # Saturated albedos: the median per-pixel spread over R, G, B on the object, at least
    # 0.14 for each (the faces' skin: 0.06-0.16, median 0.12).
    assert min(np.median(albedo[mask].std(-1)) for _, albedo, mask in maps) > 0.14
    for depth, _albedo, mask in maps:
        assert np.all(depth[mask] >= synth.MIN_DEPTH) and np.all(depth[mask] < synth.MAX_DEPTH)
        assert np.all(depth[~mask] == synth.MAX_DEPTH)
        assert np.array_equal(mask, mask[:, ::-1])  # mirror-symmetric silhouette
    with pytest.raises(ValueError, match="style"):
        synth.sample_params(np.random.default_rng(0), 2, "boats")


@pytest.mark.slow
def test_probe_colour_measures_the_model_and_the_albedo_autoencoder(tmp_path):
    """benchmarks/probe_colour.py, two steps each way: one line and one JSON point per
    measurement, the chroma ratio being the albedo's chroma over the input's."""
    import json
    import subprocess
    import sys

    generate(str(tmp_path / "data"), 24, image_size=64, seed=2, style="blobs")
    script = os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks",
                          "probe_colour.py")
    for mode in ("model", "albedo_ae"):
        out = tmp_path / f"{mode}.json"
        proc = subprocess.run([sys.executable, script, f"--data={tmp_path / 'data'}",
                               "--steps=2", "--every=1", f"--mode={mode}", f"--json={out}"],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.count("chroma x") == 2
        points = json.loads(out.read_text())["points"]
        assert [p["step"] for p in points] == [1, 2]
        for p in points:
            assert p["input_chroma"] > 0.02
            np.testing.assert_allclose(p["chroma_ratio"], p["albedo_chroma"] / p["input_chroma"])
            assert 0 < p["recon_l1"] < 1
