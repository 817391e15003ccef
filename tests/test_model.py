"""The model: outputs, the one-half and two-half passes, gradients, replicas."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tfsym3d import Unsup3D, load_config
from tfsym3d.config import AUTHORS_RENDERER

TINY = dict(nf_depth=16, zdim_depth=32, nf_light=8, nf_conf=16, zdim_conf=32, lam_perc=0,
            batch_size=4)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_call_returns_the_contract_dict():
    model = Unsup3D(load_config(None, TINY))
    out = model(tf.random.uniform([2, 64, 64, 3]))
    shapes = {k: tuple(v.shape) for k, v in out.items()}
    assert shapes == {
        "canon_depth": (2, 64, 64), "canon_albedo": (2, 64, 64, 3),
        "canon_normal": (2, 64, 64, 3), "canon_shading": (2, 64, 64, 1),
        "canon_im": (2, 64, 64, 3), "canon_light_a": (2, 1), "canon_light_b": (2, 1),
        "canon_light_d": (2, 3), "view": (2, 6), "conf_sigma_l1": (2, 64, 64, 2),
        "conf_sigma_percl": (2, 16, 16, 2), "recon_depth": (2, 64, 64),
        "recon_normal": (2, 64, 64, 3), "recon_im": (2, 64, 64, 3)}
    depth = out["canon_depth"].numpy()
    assert depth.min() >= 0.9 - 1e-6 and depth.max() <= 1.1 + 1e-6
    np.testing.assert_allclose(depth[:, :, :2], 0.7 * 1.1 + 0.3 * 0.9, rtol=1e-6)
    assert np.abs(np.linalg.norm(out["canon_light_d"], axis=1) - 1).max() < 1e-5
    assert np.abs(out["view"].numpy()[:, :3]).max() <= np.pi / 3 + 1e-6


def test_the_one_half_forward_gives_the_plain_half_of_the_decomposition():
    """model(x) renders only the plain half; its outputs are the first half of the
    two-half training pass, which renders the flipped half too."""
    model = Unsup3D(load_config(None, TINY))
    x = tf.random.uniform([2, 64, 64, 3], seed=2)
    one = model(x)
    both = model.public_outputs(model.decompose(x))
    assert one.keys() == both.keys()
    for k in one:
        np.testing.assert_allclose(one[k], both[k], atol=1e-6, err_msg=k)
    assert "recon_mask" not in model.forward(x)


def test_flipped_half_is_the_mirror_and_ablations_switch_it_off():
    x = tf.random.uniform([2, 64, 64, 3], seed=1)
    full = Unsup3D(load_config(None, TINY)).decompose(x)
    np.testing.assert_allclose(full["canon_depth"][2:], full["canon_depth"][:2, :, ::-1])
    np.testing.assert_allclose(full["canon_albedo"][2:], full["canon_albedo"][:2, :, ::-1])
    abl = Unsup3D(load_config(None, dict(TINY, flip_depth=False, flip_albedo=False,
                                         use_lighting=False))).decompose(x)
    np.testing.assert_allclose(abl["canon_depth"][2:], abl["canon_depth"][:2])
    np.testing.assert_allclose(abl["canon_shading"], 1.0)


@pytest.mark.slow
@pytest.mark.parametrize("renderer", [{}, AUTHORS_RENDERER])
def test_gradients_reach_all_five_networks(renderer):
    model = Unsup3D(load_config(None, dict(TINY, **renderer)))
    assert model.renderer.depth_supersample == renderer.get("depth_supersample", 1)
    x = tf.random.uniform([2, 64, 64, 3], seed=2)
    with tf.GradientTape() as tape:
        loss = model.compute_losses(model.decompose(x, training=True))["loss"]
    grads = tape.gradient(loss, model.trainable_variables)
    by_net = {}
    for var, g in zip(model.trainable_variables, grads, strict=True):
        net = next(p for p in var.path.split("/") if p.startswith("net"))
        by_net[net] = by_net.get(net, 0.0) + (0.0 if g is None else float(tf.norm(g)))
    assert set(by_net) == {"netD", "netA", "netL", "netV", "netC"}
    assert all(v > 0 for v in by_net.values()), by_net


def test_flip_weight_is_one_before_the_start_epoch():
    model = Unsup3D(load_config(None, dict(TINY, lam_flip_start_epoch=2)))
    out = model.decompose(tf.random.uniform([2, 64, 64, 3], seed=3))
    terms = model.compute_losses(out)
    assert float(terms["loss"]) == pytest.approx(float(terms["l1"] + terms["l1_flip"]))
    model.epoch.assign(2)
    terms = model.compute_losses(out)
    assert float(terms["loss"]) == pytest.approx(float(terms["l1"] + 0.5 * terms["l1_flip"]))


def test_perceptual_terms_reuse_the_input_features_without_changing_the_loss():
    cfg = load_config(None, dict(TINY, lam_perc=1, vgg16_weights="random"))
    model = Unsup3D(cfg)
    out = model.decompose(tf.random.uniform([2, 64, 64, 3], seed=4))
    terms = model.compute_losses(out)
    perc = model._perceptual()
    sigma = out["conf_sigma_percl"]
    plain = perc(out["recon_im"][:2], out["input_im"], out["recon_mask"][:2], sigma[..., :1])
    flip = perc(out["recon_im"][2:], out["input_im"], out["recon_mask"][2:], sigma[..., 1:])
    assert float(terms["perc"]) == pytest.approx(float(plain), rel=1e-5)
    assert float(terms["perc_flip"]) == pytest.approx(float(flip), rel=1e-5)
    assert float(terms["perc"]) != pytest.approx(float(terms["perc_flip"]))


def test_symmetry_line_marks_the_middle_columns_in_the_front_view():
    model = Unsup3D(load_config(None, TINY))
    out = model.decompose(tf.random.uniform([1, 64, 64, 3], seed=5))
    out["view"] = tf.zeros_like(out["view"])  # frontal: the axis stays in the middle
    out["recon_depth"] = out["canon_depth"]
    out["recon_seen"] = tf.ones_like(out["recon_seen"])
    drawn = model.symmetry_line(out).numpy()[0]
    x = out["input_im"].numpy()[0] / 2 + 0.5  # the input in [0, 1]
    np.testing.assert_allclose(drawn[:, 31:33], 0.5 * np.array([0, 1, 0]) + 0.5 * x[:, 31:33],
                               atol=1e-5)
    np.testing.assert_allclose(drawn[:, :30], x[:, :30], atol=1e-6)


@pytest.mark.slow
def test_onednn_and_eigen_give_the_same_training_step(tmp_path):
    """tfsym3d turns oneDNN's CPU kernels on (TF_ENABLE_ONEDNN_OPTS=1, read once when
    TensorFlow starts) where TensorFlow would use Eigen's: the same step in two
    processes, one with each, must give the same loss terms and gradients (issue 32: the
    learning runs stay comparable with the learning log)."""
    script = textwrap.dedent("""
        import sys
        import numpy as np, keras, tensorflow as tf
        from tfsym3d import Unsup3D, load_config
        from tfsym3d.model import build
        cfg = load_config("configs/tiny.yaml", {"use_conf_map": True})
        keras.utils.set_random_seed(0)
        m = build(Unsup3D(cfg))
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[0:64, 0:64] / 63.0
        x = np.stack([0.5 + 0.3 * np.sin(6 * xx + c) * np.cos(4 * yy) for c in range(3)], -1)
        x = (x[None] * rng.uniform(0.7, 1.0, (4, 1, 1, 3))).astype(np.float32)
        with tf.GradientTape() as tape:
            terms = m.compute_losses(m.decompose(tf.constant(x), training=True))
        grads = tape.gradient(terms["loss"], m.trainable_variables)
        np.savez(sys.argv[1], **{k: v.numpy() for k, v in terms.items()},
                 **{f"g{i}": g.numpy() for i, g in enumerate(grads) if g is not None})
    """)
    out = {}
    for flag in ("0", "1"):
        path = str(tmp_path / f"step{flag}.npz")
        env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=flag)
        result = subprocess.run([sys.executable, "-c", script, path], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-4000:]
        out[flag] = dict(np.load(path))
    eigen, onednn = out["0"], out["1"]
    assert set(eigen) == set(onednn)
    for name in ("loss", "l1", "l1_flip", "depth_sm"):
        assert onednn[name] == pytest.approx(eigen[name], rel=1e-5), name
    grads = sorted(k for k in eigen if k.startswith("g"))
    assert len(grads) > 40
    # Measured on a 2-core AVX2 CPU: the whole gradient 3.6e-4 of its norm apart, the
    # worst tensor 2.5e-3 (Eigen against itself with 1 and 2 threads: 1.4e-5, so
    # oneDNN's kernels round differently, not only in another order). A different
    # computation (a wrong padding, a missing term) is off by 1e-1 or more.
    rel = {k: np.linalg.norm(eigen[k] - onednn[k]) / (np.linalg.norm(eigen[k]) + 1e-12)
           for k in grads}
    flat_a = np.concatenate([eigen[k].ravel() for k in grads])
    flat_b = np.concatenate([onednn[k].ravel() for k in grads])
    assert np.linalg.norm(flat_a - flat_b) < 2e-3 * np.linalg.norm(flat_a)
    assert max(rel.values()) < 1e-2, rel
