"""The view's own training signals (tfsym3d.views, issue 48): each formula against a hand
value or the renderer, and each option of the model wired so that it trains netV only."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfsym3d import views
from tfsym3d.config import load_config
from tfsym3d.model import Unsup3D, build, make_optimizer
from tfsym3d.renderer import Renderer

S = 32


def test_the_mirror_of_a_view_renders_the_mirrored_image():
    """flip(render(d, t, v)) == render(flip(d), flip(t), mirror(v)): what MIRROR claims,
    checked through the rasterizer rather than by its own algebra. (A smooth texture:
    the grid's triangle diagonals are not mirror-symmetric, so interpolation differs by
    ~1e-3 between the two.)"""
    r = Renderer(S, 10.0, 0.9, 1.1, 1.0)
    y, x = np.mgrid[0:S, 0:S] / (S - 1.0) * 2 - 1
    depth = (1.0 - 0.06 * np.exp(-((x - 0.3) ** 2 + y ** 2) / 0.2) + 0.02 * x)[None]
    depth = depth.astype(np.float32)
    texture = np.stack([0.5 + 0.4 * x, 0.5 + 0.4 * y, 0.5 + 0.3 * x * y], -1)[None]
    texture = texture.astype(np.float32)
    view = np.array([[0.15, 0.4, 0.2, 0.03, -0.02, 0.0]], np.float32)

    def error(mirror):
        plain, seen = r.render_view(texture, depth, view)
        other, seen_o = r.render_view(texture[:, :, ::-1], depth[:, :, ::-1].copy(),
                                      view * np.array(mirror, np.float32))
        both = (seen.numpy()[0] * seen_o.numpy()[0, :, ::-1]) > 0
        assert both.mean() > 0.5
        return np.abs(plain.numpy()[0] - other.numpy()[0, :, ::-1])[both].max()

    assert error(views.MIRROR) < 5e-3
    # Each sign matters: keeping any of yaw, roll or x translation is far off.
    for k in (1, 2, 3):
        wrong = list(views.MIRROR)
        wrong[k] = -wrong[k]
        assert error(wrong) > 0.02, k
    wrong = list(views.MIRROR)
    wrong[0] = -1.0  # pitch must be kept
    assert error(wrong) > 0.02


def test_flip_term_by_hand():
    cfg = load_config("tiny", {"lam_view_flip": 1.0})
    model = Unsup3D(cfg)
    r = math.radians(60.0)
    plain = tf.constant([[[0.1, 0.3, -0.2, 0.05, 0.02, 0.0]]])
    flip = tf.Variable([[[0.2, -0.1, 0.2, -0.05, 0.02, 0.0]]])
    # Mirror of the plain view: (0.1, -0.3, 0.2, -0.05, 0.02, 0); differences 0.1, 0.2, 0,
    # 0, 0 over ranges r, r, r, 0.1, 0.1 (z has range 0: left out): mean of five.
    want = (0.1 / r + 0.2 / r) / 5
    with tf.GradientTape() as tape:
        terms = model.view_terms({"view_hyps": plain, "view_hyps_of_flip": flip}, 0.5)
    assert float(terms["view_flip"]) == pytest.approx(want, rel=1e-5)
    assert float(terms["view_cycle"]) == 0.0 and float(terms["view_score"]) == 0.0
    assert tape.gradient(terms["view_flip"], flip) is not None


def test_mirrored_hypotheses_swap_bins():
    cfg = load_config("tiny", {"lam_view_flip": 1.0, "view_hypotheses": 3})
    model = Unsup3D(cfg)
    scale = model.view_scale
    raw = tf.constant(np.random.default_rng(1).uniform(-1, 1, (2, 18)), tf.float32)
    hyps = views.hypothesis_views(raw, scale, 3)
    # The exact mirror, bin k of the flipped image against bin 2 - k of the plain one.
    exact = views.mirror_view(hyps[:, ::-1])
    terms = model.view_terms({"view_hyps": hyps, "view_hyps_of_flip": exact}, 0.5)
    assert float(terms["view_flip"]) == pytest.approx(0.0, abs=1e-6)
    off = model.view_terms({"view_hyps": hyps, "view_hyps_of_flip": views.mirror_view(hyps)},
                           0.5)
    assert float(off["view_flip"]) > 0.01


def test_hypotheses_stay_in_their_yaw_bins():
    scale = views.view_scale(60.0, 0.1, 0.0)
    r = math.radians(60.0)
    raw = np.zeros((1, 18), np.float32)
    raw[0, 6 * 2 + 1] = 1.0  # bin 2's yaw at the top of its bin
    raw[0, 0] = 0.5  # bin 0's pitch: half the range, as the authors' view
    h = views.hypothesis_views(tf.constant(raw), scale, 3).numpy()[0]
    np.testing.assert_allclose(h[:, 1], [-2 * r / 3, 0.0, r], rtol=1e-6, atol=1e-7)
    assert h[0, 0] == pytest.approx(0.5 * r)
    assert views.yaw_bin(tf.constant([-r, -0.34 * r, 0.0, 0.34 * r, r]), r, 3).numpy() \
        .tolist() == [0, 0, 1, 2, 2]
    # One hypothesis is the authors' view exactly.
    one = views.hypothesis_views(tf.constant(raw[:, :6]), scale, 1).numpy()[0, 0]
    np.testing.assert_allclose(one, raw[0, :6] * scale)


def test_choose_hypothesis_follows_the_chance_of_the_best():
    scores = tf.constant([[0.3, 0.1, 0.5]] * 4000)
    best = views.choose_hypothesis(scores, 1.0).numpy()
    assert (best == 1).all()
    rand = views.choose_hypothesis(scores, 0.0).numpy()
    assert abs(np.mean(rand == 1) - 1 / 3) < 0.05 and set(rand.tolist()) == {0, 1, 2}


def test_background_like_has_the_rings_colour_and_noise():
    rng = np.random.default_rng(2)
    images = rng.normal(0.3, 0.01, (2, S, S, 3)).astype(np.float32)
    images[0, 4:-4, 4:-4] = 1.0  # the middle does not count
    images[1] += 0.2
    bg = views.background_like(tf.constant(images), ring=3).numpy()
    ring = np.ones((S, S), bool)
    ring[3:-3, 3:-3] = False
    for i in range(2):
        want_mean = images[i][ring].mean(0)
        np.testing.assert_allclose(bg[i].reshape(-1, 3).mean(0), want_mean, atol=2e-3)
        assert bg[i].std() == pytest.approx(images[i][ring].std(), rel=0.1)


def test_sampled_views_span_their_ranges():
    v = views.sample_views(20000, [25, 55, 10], 0.03, 0.0).numpy()
    np.testing.assert_allclose(np.degrees(np.abs(v[:, :3]).max(0)), [25, 55, 10], rtol=1e-2)
    assert np.abs(v[:, 3:5]).max() <= 0.03 and (v[:, 5] == 0).all()


def _faces(n=8):
    from tfsym3d.data.synth import render_batch, sample_params

    p = sample_params(np.random.default_rng(0), n, "blobs")
    return render_batch(p, np.arange(n), 64, seed=0, centre=False)[0]


@pytest.mark.slow
def test_each_view_signal_trains_netV_only():
    cfg = load_config("tiny", {"lam_view_flip": 0.05, "lam_view_cycle": 1.0,
                               "view_hypotheses": 3})
    model = build(Unsup3D(cfg))
    model.optimizer = make_optimizer(cfg)
    x = _faces(4)
    with tf.GradientTape(persistent=True) as tape:
        out = model.decompose(x, training=True)
        terms = model.compute_losses(out)
    assert out["view_cycle_pred"].shape[0] == 2  # view_cycle_fraction 0.5 of 4
    for name in ("view_flip", "view_cycle", "view_score"):
        value = float(terms[name])
        assert np.isfinite(value) and value > 0, name
        for net in (model.netD, model.netA, model.netL, model.netC, model.netV):
            grads = tape.gradient(terms[name], net.trainable_variables)
            reached = any(g is not None and float(tf.reduce_max(tf.abs(g))) > 0
                          for g in grads)
            assert reached == (net is model.netV), (name, net.name)


def test_inference_takes_the_best_scored_hypothesis():
    cfg = load_config("tiny", {"view_hypotheses": 4})
    model = build(Unsup3D(cfg))
    x = _faces(3)
    out = model.views_of(model.factors(x)["input_im"])
    best = np.argmin(out["view_scores"].numpy(), 1)
    want = out["view_hyps"].numpy()[np.arange(3), best]
    np.testing.assert_allclose(model(x)["view"].numpy(), want, atol=1e-6)
    assert model(x)["view"].shape == (3, 6)


def test_view_options_are_off_in_the_authors_presets_and_checked():
    for name in ("celeba", "synface", "cat", "syncar"):
        cfg = load_config(name)
        assert (cfg.lam_view_flip, cfg.lam_view_cycle, cfg.view_hypotheses) == (0.0, 0.0, 1)
    for bad in ({"view_cycle_fraction": 0.0}, {"view_cycle_range": [10, 20]},
                {"view_hypotheses": 0}, {"lam_view_cycle": -1.0}):
        with pytest.raises(ValueError):
            load_config("tiny", bad)


@pytest.mark.slow
def test_render_and_predict_back_teaches_the_turn():
    """netV trained on the cycle alone (renderings of the true canonical blobs from
    sampled views) predicts the yaw of new renderings: slope >= 0.5 (0.57 measured; an
    untrained netV: about 0)."""
    import keras

    from tfsym3d.data import synth
    from tfsym3d.layers import Encoder

    n = 32
    p = synth.sample_params(np.random.default_rng(0), n, "blobs")
    maps = [synth.canonical_maps(p, i, 64, np.random.default_rng([0, i])) for i in range(n)]
    depth = np.stack([m[0] for m in maps])
    canon = np.stack([np.where(m[2][..., None], m[1], 0.5) for m in maps]) * 2 - 1
    canon = canon.astype(np.float32)
    r = Renderer(64, 10.0, 0.9, 1.1, 1.0)
    scale = views.view_scale(60.0, 0.1, 0.0)
    keras.utils.set_random_seed(0)
    net = Encoder(6, 16, 64)
    opt = keras.optimizers.Adam(1e-3)

    def render(idx, target):
        d = r.warp_canon_depth(depth[idx], target)
        im = r.grid_sample(canon[idx], r.get_inv_warped_2d_grid(d, target))
        return views.composite(im, r.seen(d), views.background_like(canon[idx]))

    def slope():
        target = views.sample_views(n, [25, 55, 10], 0.03, 0.0, seed=7)
        pred = (net(render(np.arange(n), target)) * scale).numpy()[:, 1]
        t = target.numpy()[:, 1]
        t = t - t.mean()
        return float(np.sum(t * (pred - pred.mean())) / np.sum(t * t))

    assert abs(slope()) < 0.2
    rng = np.random.default_rng(1)
    for _ in range(150):
        target = views.sample_views(16, [25, 55, 10], 0.03, 0.0)
        idx = rng.choice(n, 16)
        with tf.GradientTape() as tape:
            loss = views.normalised_l1(net(render(idx, target)) * scale, target, scale)
        opt.apply(tape.gradient(loss, net.trainable_variables), net.trainable_variables)
    assert slope() >= 0.5


def test_the_ellipsoid_prior_by_hand():
    from tfsym3d import losses

    e = losses.ellipsoid_depth(5, 5, 0.9, 1.1).numpy()
    # Centre: 1.1 - 0.5 * 0.2; (x, y) = (0.5, 0) / 0.6: sqrt(1 - 0.694) = 0.553; corners
    # outside the ellipse: max_depth.
    assert e[2, 2] == pytest.approx(1.0)
    assert e[2, 3] == pytest.approx(1.1 - 0.1 * math.sqrt(1 - (0.5 / 0.6) ** 2), rel=1e-5)
    assert e[0, 0] == pytest.approx(1.1)
    flat = tf.fill([1, 5, 5], 1.1)
    # |1.1 - e| / 0.2 over the middle column only (2 border columns each side left out).
    want = np.mean(np.abs(1.1 - e[:, 2:3])) / 0.2
    assert float(losses.ellipsoid_prior(flat, 0.9, 1.1)) == pytest.approx(want, rel=1e-5)


def test_the_depth_prior_applies_for_its_steps_only():
    cfg = load_config("tiny", {"depth_prior_steps": 2, "lam_depth_prior": 3.0})
    model = build(Unsup3D(cfg))
    model.optimizer = make_optimizer(cfg)
    x = _faces(2)
    out = model.decompose(x, training=True)
    terms = model.compute_losses(out)
    prior = float(terms["depth_prior"])
    assert prior > 0
    model.optimizer.iterations.assign(2)
    later = model.compute_losses(out)
    assert float(terms["loss"]) - float(later["loss"]) == pytest.approx(3.0 * prior, rel=1e-4)


@pytest.mark.slow
def test_every_export_runs_a_model_with_every_view_option(tmp_path):
    """K hypotheses change netV's output size: the SavedModel, TFLite and ONNX still give
    one view [N, 6], the best-scored hypothesis', at the Keras model's values (the
    parity each card records)."""
    import json
    import os

    from tests.test_evaluate import run
    from tfsym3d.checkpoints import checkpoint_dir, config_path, make_checkpoint

    cfg = load_config("tiny", {"view_hypotheses": 3, "lam_view_flip": 0.05,
                               "lam_view_cycle": 1.0, "depth_prior_steps": 10})
    model = build(Unsup3D(cfg))
    run_dir = tmp_path / "run"
    os.makedirs(checkpoint_dir(run_dir))
    cfg.save(config_path(run_dir))
    make_checkpoint(model).save(os.path.join(checkpoint_dir(run_dir), "ckpt"))
    out = tmp_path / "export"
    assert run(["tfsym3d", "export", f"--checkpoint={run_dir}", f"--out={out}",
                "--formats=saved_model,tflite,onnx"]) == 0
    for card in ("saved_model/tfsym3d/model_card.json", "tflite/tfsym3d_fp32.card.json",
                 "onnx/tfsym3d.card.json"):
        c = json.loads((out / card).read_text())
        assert c["outputs"]["view"]["shape"] == "[N,6]"
        assert c["parity"]["max_abs_diff"]["view"] < 1e-4, (card, c["parity"])
        assert any("3 views, one per yaw bin" in n for n in c["notes"])
