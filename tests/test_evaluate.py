"""Evaluation: viewpoint and landmark metrics against hand-computed cases, the baselines
and the `tfsym3d evaluate` command's outputs on a small synthetic split."""

import csv
import json
import math
import os

import numpy as np
import pytest
from PIL import Image

from tfsym3d import cli, metrics
from tfsym3d.data.synth import LANDMARKS, generate


def run(argv):
    """Runs the command line in this process; returns its exit status."""
    with pytest.raises(SystemExit) as exit_info:
        cli.run(argv)
    return exit_info.value.code


def test_view_errors_raw_and_with_the_offset_removed():
    true = np.array([[0.0, 10.0, 0.0], [10.0, -20.0, 5.0], [-5.0, 30.0, -5.0]])
    pred = true + np.array([[3.0, 1.0, 0.0], [3.0, -1.0, 0.0], [3.0, 0.0, 0.0]])
    got = metrics.view_errors(pred, true)
    assert got["pitch"]["mae"] == pytest.approx(3.0)
    assert got["pitch"]["offset"] == pytest.approx(3.0)
    assert got["pitch"]["mae_debiased"] == pytest.approx(0.0, abs=1e-12)
    assert got["yaw"]["mae"] == pytest.approx(2.0 / 3.0)
    assert got["roll"]["mae"] == 0.0
    # Differences wrap around: 179 vs -179 is 2 degrees apart.
    wrapped = metrics.view_errors([[179.0, 0, 0]], [[-179.0, 0, 0]])
    assert wrapped["pitch"]["mae"] == pytest.approx(2.0)


def test_view_calibration_slope_and_correlation():
    true = np.array([[10.0, -30.0, 5.0], [0.0, 0.0, 5.0], [-10.0, 30.0, 5.0]])
    # Yaw turned a quarter as far with an offset; pitch mirrored; roll constant.
    pred = np.stack([-true[:, 0], 0.25 * true[:, 1] + 5.0, [1.0, 2.0, 3.0]], 1)
    got = metrics.view_errors(pred, true)
    assert got["yaw"]["slope"] == pytest.approx(0.25)
    assert got["yaw"]["corr"] == pytest.approx(1.0)
    assert got["pitch"]["slope"] == pytest.approx(-1.0)
    assert got["pitch"]["corr"] == pytest.approx(-1.0)
    assert np.isnan(got["roll"]["slope"]) and np.isnan(got["roll"]["corr"])
    # Against numpy's least-squares line and correlation on noisy data.
    rng = np.random.default_rng(1)
    true = rng.uniform(-45, 45, (50, 3))
    pred = 0.4 * true + rng.normal(0, 5, (50, 3))
    got = metrics.view_errors(pred, true)
    for k, name in enumerate(("pitch", "yaw", "roll")):
        assert got[name]["slope"] == pytest.approx(np.polyfit(true[:, k], pred[:, k], 1)[0])
        assert got[name]["corr"] == pytest.approx(np.corrcoef(true[:, k], pred[:, k])[0, 1])
    one = metrics.view_errors([[1.0, 2.0, 3.0]], [[0.0, 0.0, 0.0]])
    assert np.isnan(one["yaw"]["slope"])


def test_keypoint_depth_correlation():
    rng = np.random.default_rng(0)
    true = rng.normal(size=(20, 5))
    score, corr = metrics.keypoint_depth_correlation(3.0 * true + 7.0, true)
    assert score == pytest.approx(5.0)  # perfect: the number of landmarks
    anti, _ = metrics.keypoint_depth_correlation(-true, true)
    assert anti == pytest.approx(-5.0)
    # A hand case for one landmark: pred (1, 2, 3) vs true (1, 3, 2) -> r = 0.5.
    score, corr = metrics.keypoint_depth_correlation([[1.0], [2.0], [3.0]],
                                                     [[1.0], [3.0], [2.0]])
    assert score == pytest.approx(0.5)
    flat, _ = metrics.keypoint_depth_correlation(np.ones((4, 1)), rng.normal(size=(4, 1)))
    assert flat == 0.0


def test_sample_points_is_bilinear():
    depth = np.arange(12, dtype=np.float64).reshape(1, 3, 4)  # value = 4 v + u
    uv = np.array([[[0.0, 0.0], [1.5, 0.5], [3.0, 2.0], [2.25, 1.75]]])
    np.testing.assert_allclose(metrics.sample_points(depth, uv),
                               [[0.0, 3.5, 11.0, 9.25]])


def test_null_baseline_side_is_the_spread_of_log_depth():
    """SIDE of a constant prediction = std of log ground-truth depth over the mask."""
    from tfsym3d.renderer import Renderer

    r = Renderer(16)
    rng = np.random.default_rng(1)
    gt = np.full((1, 16, 16), r.max_depth, np.float32)  # background at the maximum
    gt[0, 3:13, 3:13] = rng.uniform(0.92, 1.05, (10, 10))
    pred = metrics.null_depth([1, 16, 16], r)
    side = metrics.depth_errors(pred, gt, r)["side"]
    inner = np.log(gt[0, 4:12, 4:12].astype(np.float64))  # the eroded foreground
    assert side.numpy()[0] == pytest.approx(inner.std(), rel=1e-4)


def test_coverage_counts_the_face_the_prediction_keeps():
    """Hand-computed: a 10x10 face at rows/columns 3-12 (4-11 after erosion); a
    prediction valid left of column 8 (columns 1-6 after its own erosion, 4-6 of them
    in the eroded face) keeps 3 of the face's 8 columns. The table warns about such a
    model."""
    from tfsym3d.evaluation import format_table
    from tfsym3d.renderer import Renderer

    r = Renderer(16)
    gt = np.full((2, 16, 16), r.max_depth, np.float32)
    gt[:, 3:13, 3:13] = 1.0
    pred = np.full((2, 16, 16), 1.0, np.float32)
    pred[0, :, 8:] = r.max_depth + 2 * r.margin  # invalid right of column 8
    cover = metrics.coverage(gt, pred, r).numpy()
    np.testing.assert_allclose(cover, [3 / 8, 1.0])
    row = {"side": 1.0, "side_std": 0.0, "mad": 1.0, "mad_std": 0.0, "mad_unit": 1.0,
           "mad_unit_std": 0.0, "n": 2}
    report = {"split": "s", "skipped": [],
              "summary": {"model": dict(row, coverage=0.3),
                          "baseline_null": dict(row, coverage=1.0)}}
    assert "WARNING" in format_table(report)
    report["summary"]["model"]["coverage"] = 0.9
    assert "WARNING" not in format_table(report)


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate(str(root), 30, image_size=32, seed=4, batch=16)
    return root


def test_cli_reports_baselines_without_a_checkpoint(split, tmp_path, capsys):
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    status = run(["tfsym3d", "evaluate", f"--data={split}", f"--json={out_json}",
                  f"--csv={out_csv}", "--batch_size=2"])
    assert status == 0
    printed = capsys.readouterr().out
    assert "baseline_null" in printed and "baseline_avg" in printed
    report = json.loads(out_json.read_text())
    n_test = len(os.listdir(split / "test" / "image"))
    assert set(report) >= {"baseline_null", "baseline_avg"} and "model" not in report
    for method in ("baseline_null", "baseline_avg"):
        assert set(report[method]) == {"side", "side_std", "mad", "mad_std", "mad_unit",
                                       "mad_unit_std", "n", "coverage"}
        assert report[method]["n"] == n_test
        assert report[method]["coverage"] == 1.0  # constant depths are valid everywhere
        assert all(math.isfinite(v) for v in report[method].values())
    # The mean depth is a better guess than a plane (the paper's ordering).
    assert report["baseline_avg"]["mad"] < report["baseline_null"]["mad"]
    with open(out_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * n_test
    side_null = [float(r["side"]) for r in rows if r["method"] == "baseline_null"]
    assert np.mean(side_null) == pytest.approx(report["baseline_null"]["side"], rel=1e-4)


@pytest.mark.slow
def test_cli_with_a_checkpoint_adds_the_model_and_view_scores(split, tmp_path, model_run):
    run_dir = model_run  # configs/tiny.yaml, 64x64: the 32x32 data is resized

    # A broken image: skipped with its name, the rest evaluated, non-zero exit.
    broken = split / "test" / "image" / "zzz_image.png"
    broken.write_bytes(b"not a png")
    Image.fromarray(np.zeros((32, 32), np.uint16)).save(
        split / "test" / "depth" / "zzz_depth.png")
    try:
        out_json = tmp_path / "r.json"
        status = run(["tfsym3d", "evaluate", f"--checkpoint={run_dir}", f"--data={split}",
                      f"--json={out_json}"])
    finally:
        broken.unlink()
        (split / "test" / "depth" / "zzz_depth.png").unlink()
    assert status == 1
    report = json.loads(out_json.read_text())
    assert report["model"]["n"] == report["baseline_null"]["n"] > 0
    assert [s["file"] for s in report["skipped"]] == [str(broken)]
    assert set(report["view"]) == {"pitch", "yaw", "roll"}
    assert report["keypoints"]["max"] == len(LANDMARKS)
    assert -len(LANDMARKS) <= report["keypoints"]["score"] <= len(LANDMARKS)


@pytest.mark.slow
def test_cli_takes_a_keras_file_as_the_checkpoint(split, tmp_path, model_run):
    from tfsym3d import load_model

    path = tmp_path / "model.keras"
    load_model(model_run).save(str(path))
    scores = []
    for checkpoint in (model_run, path):
        out_json = tmp_path / "r.json"
        assert run(["tfsym3d", "evaluate", f"--checkpoint={checkpoint}", f"--data={split}",
                    f"--json={out_json}"]) == 0
        scores.append(json.loads(out_json.read_text())["model"])
    assert scores[0]["n"] == scores[1]["n"] > 0
    assert scores[1]["side"] == pytest.approx(scores[0]["side"], rel=1e-5)
    assert scores[1]["mad"] == pytest.approx(scores[0]["mad"], rel=1e-5)


def test_cli_errors_name_the_problem(tmp_path, capsys):
    assert run(["tfsym3d", "evaluate", f"--data={tmp_path / 'nowhere'}"]) == 1
    assert "nowhere" in capsys.readouterr().err
    assert run(["tfsym3d", "evaluate"]) == 2


def test_gt_depth_range_keeps_the_ground_truth_when_the_model_range_changes(split):
    """The depth PNGs are decoded with gt_depth_range when it is set, so a model with
    another depth prior is scored against the same ground truth; without it the
    authors' convention (the model's own range) re-scales the ground truth."""
    from tfsym3d.config import load_config
    from tfsym3d.evaluation import evaluate

    def avg_side(**overrides):
        cfg = load_config(None, dict(image_size=64, **overrides))
        return evaluate(None, cfg, str(split), "test")["summary"]["baseline_avg"]["side"]

    reference = avg_side()  # min_depth 0.9, max_depth 1.1: the generator's range
    assert avg_side(min_depth=0.8, gt_depth_range=[0.9, 1.1]) == pytest.approx(reference,
                                                                              rel=1e-5)
    assert avg_side(min_depth=0.8) > 1.2 * reference  # 1.5x the relief, re-scaled
    with pytest.raises(ValueError, match="gt_depth_range"):
        load_config(None, dict(gt_depth_range=[1.1, 0.9]))


def _plane_case(tilt_degrees):
    """A 64x64 frontal plane at depth 1 inside a background at the far end (the ground
    truth) and a plane Z = 1 + tan(tilt) X over the whole image (the prediction), with
    the camera of the authors' configs (10-degree field of view)."""
    from tfsym3d.renderer import Renderer

    s = 64
    r = Renderer(s, 10.0, 0.9, 1.1, 1.0)
    gt = np.full((1, s, s), 1.1, np.float32)
    gt[0, 8:56, 8:56] = 1.0
    f = (s - 1) / 2 / math.tan(math.radians(5.0))
    u = np.arange(s) - (s - 1) / 2
    pred = 1.0 / (1.0 - math.tan(math.radians(tilt_degrees)) * u / f)  # on the plane
    pred = np.broadcast_to(pred[None, None, :], (1, s, s)).astype(np.float32)
    return r, pred, gt, f


def test_mad_of_identical_depths_has_the_authors_offset_and_unit_mad_none():
    """Hand-derived: at depth z the central differences of the unprojected grid are
    (2z/f, 0, 0) and (0, 2z/f, 0), so the cross product has length c = 4 z^2 / f^2 with
    f = (S - 1) / 2 / tan(fov / 2) (~3.1e-5 at 64 px, 10 degrees). The authors' normal
    n / (|n| + 1e-7) has length c / (c + 1e-7); two identical ones have that squared as
    their dot product."""
    r, _, gt, f = _plane_case(0.0)
    c = 4.0 / f ** 2
    assert c == pytest.approx(3.086e-5, rel=1e-3)
    offset = math.degrees(math.acos((c / (c + 1e-7)) ** 2))
    assert offset == pytest.approx(6.5, abs=0.05)
    errors = metrics.depth_errors(gt, gt, r)
    assert errors["mad"].numpy()[0] == pytest.approx(offset, rel=2e-3)
    assert errors["mad_unit"].numpy()[0] == pytest.approx(0.0, abs=0.05)  # float32 acos
    assert errors["side"].numpy()[0] == pytest.approx(0.0, abs=1e-6)


def test_mad_of_a_tilted_plane_both_ways():
    """Unit normals: the tilt itself (the grid lies on the plane, so the cross product of
    its differences is the plane's normal). The authors' normals: a float64 numpy
    reference of their formula over the eroded foreground."""
    tilt = 20.0
    r, pred, gt, f = _plane_case(tilt)
    errors = metrics.depth_errors(pred, gt, r)
    assert errors["mad_unit"].numpy()[0] == pytest.approx(tilt, abs=0.02)

    def authors_normals(depth):
        s = depth.shape[-1]
        v, u = np.meshgrid(np.arange(s) - (s - 1) / 2, np.arange(s) - (s - 1) / 2,
                           indexing="ij")
        z = depth.astype(np.float64)
        grid = np.stack([u * z / f, v * z / f, z], -1)
        tu = grid[1:-1, 2:] - grid[1:-1, :-2]
        tv = grid[2:, 1:-1] - grid[:-2, 1:-1]
        n = np.cross(tu, tv)
        return n / (np.linalg.norm(n, axis=-1, keepdims=True) + 1e-7)  # [S-2, S-2, 3]

    dot = np.sum(authors_normals(pred[0]) * authors_normals(gt[0]), -1)
    angles = np.degrees(np.arccos(np.clip(dot, -1, 1)))
    # Foreground 8..55 eroded by one pixel: 9..54, i.e. 8..53 in the interior's indices.
    want = angles[8:54, 8:54].mean()
    assert errors["mad"].numpy()[0] == pytest.approx(want, rel=1e-3)
    assert errors["mad"].numpy()[0] > tilt + 0.5  # the short normals add to the angle


def test_chroma_and_colour_fidelity_by_hand():
    from tfsym3d.metrics import chroma, colour_fidelity
    from tfsym3d.renderer import Renderer

    grey = np.full((1, 4, 4, 3), 0.3)
    red = np.zeros((1, 4, 4, 3))
    red[..., 0] = 0.9  # std of (0.9, 0, 0) = 0.9 * sqrt(2) / 3
    assert chroma(grey) == 0.0
    np.testing.assert_allclose(chroma(red), 0.9 * np.sqrt(2) / 3, rtol=1e-12)
    half = red.copy()
    half[:, :, :2] = 0.3  # half the pixels grey
    np.testing.assert_allclose(chroma(half), 0.45 * np.sqrt(2) / 3, rtol=1e-12)
    r = Renderer(4)
    depth = np.full((1, 4, 4), r.background_depth, np.float32)
    depth[:, :2] = 1.0  # the top two rows seen
    recon = np.zeros((1, 4, 4, 3))
    recon[:, :2] = 0.5
    out = {"canon_albedo": grey, "recon_im": recon, "recon_depth": depth}
    f = colour_fidelity(out, red, r)
    assert f["albedo_chroma"] == 0.0 and f["chroma_ratio"] == 0.0
    # Seen pixels only: |0.5 - 0.9| and |0.5 - 0| twice, over 3 channels.
    np.testing.assert_allclose(f["recon_l1"], (0.4 + 0.5 + 0.5) / 3, rtol=1e-12)
    f = colour_fidelity(dict(out, canon_albedo=half), red, r)
    np.testing.assert_allclose(f["chroma_ratio"], 0.5, rtol=1e-12)
