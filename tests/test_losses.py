"""Loss functions against values computed by hand (numpy, from the paper's formulas)."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfsym3d import losses


def test_photometric_loss_plain_l1_is_masked_mean():
    a = np.zeros((1, 2, 2, 3), np.float32)
    b = np.zeros_like(a)
    b[0, 0, 0] = [1.0, 2.0, 3.0]  # masked in
    b[0, 1, 1] = [9.0, 9.0, 9.0]  # masked out
    mask = np.array([[[1.0, 1.0], [1.0, 0.0]]], np.float32)
    got = losses.photometric_loss(a, b, mask).numpy()
    assert got == pytest.approx((1 + 2 + 3) / 9.0)


def test_photometric_loss_with_confidence_is_laplacian_nll():
    a = np.array([[[[0.5]]]], np.float32)
    b = np.array([[[[0.1]]]], np.float32)
    sigma = np.array([[[[0.2]]]], np.float32)
    got = losses.photometric_loss(a, b, None, sigma).numpy()
    want = 0.4 * math.sqrt(2) / (0.2 + 1e-7) + math.log(0.2 + 1e-7)
    assert got == pytest.approx(want, rel=1e-6)


def test_depth_smoothness_by_hand():
    d = np.array([[[1.0, 1.1], [0.9, 1.0]]], np.float32)
    got = losses.depth_smoothness(d, 0.9, 1.1).numpy()
    vertical = (abs(1.0 - 0.9) + abs(1.1 - 1.0)) / 2 / 0.2
    horizontal = (abs(1.0 - 1.1) + abs(0.9 - 1.0)) / 2 / 0.2
    assert got == pytest.approx(vertical + horizontal, rel=1e-5)


def test_second_order_depth_smoothness_is_zero_on_planes_and_sees_ripples():
    y, x = np.mgrid[0:6, 0:5].astype(np.float32)
    plane = (1.0 + 0.01 * x - 0.02 * y)[None]
    assert losses.depth_smoothness(plane, 0.9, 1.1, order=2).numpy() == pytest.approx(
        0.0, abs=1e-5)
    # Period-2 ripple along x of amplitude 0.01: every horizontal second difference is
    # +-0.04 and every vertical one 0.
    ripple = (1.0 + 0.01 * (-1.0) ** x + 0 * y)[None]
    got = losses.depth_smoothness(ripple, 0.9, 1.1, order=2).numpy()
    assert got == pytest.approx(0.04 / 0.2, rel=1e-5)


def test_perceptual_loss_gaussian_nll_with_pooled_mask():
    perc = losses.PerceptualLoss.__new__(losses.PerceptualLoss)
    perc.preprocess = "torch"
    # A stand-in feature extractor: 4x4 average pooling (features at S/4, 3 channels).
    inp = keras.Input((8, 8, 3))
    perc.features = keras.Model(inp, keras.layers.AveragePooling2D(4)(inp))
    rng = np.random.default_rng(0)
    im1 = rng.uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32)
    im2 = rng.uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32)
    mask = np.zeros((1, 8, 8), np.float32)
    mask[0, :4, :] = 1.0  # top two feature cells fully in, bottom two out
    mask[0, 4:, :2] = 1.0  # bottom-left cell half in
    sigma = np.full((1, 2, 2, 1), 0.5, np.float32)
    got = perc(im1, im2, mask, sigma).numpy()

    def feats(im):
        x = (im / 2 + 0.5 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
        return x.reshape(1, 2, 4, 2, 4, 3).mean(axis=(2, 4))

    sq = (feats(im1) - feats(im2)) ** 2
    nll = sq / (2 * 0.25 + 1e-7) + math.log(0.5 + 1e-7)
    weights = np.array([[1.0, 1.0], [0.5, 0.0]])[None, :, :, None] * np.ones((1, 1, 1, 3))
    want = (nll * weights).sum() / weights.sum()
    assert got == pytest.approx(want, rel=1e-5)


def test_missing_vgg_weights_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="lam_perc=0"):
        losses.PerceptualLoss(64, str(tmp_path / "absent.h5"))


def test_bfloat16_perceptual_loss_tracks_the_float32_one():
    """Same (random) VGG16 weights in both arithmetics: the loss agrees to 1% and its
    gradient with respect to the image points the same way; features come back float32."""
    f32 = losses.PerceptualLoss(32, "random", "torch", dtype="float32")
    bf16 = losses.PerceptualLoss(32, "random", "torch", dtype="bfloat16")
    assert bf16.features.layers[1].compute_dtype == "bfloat16"
    assert bf16.features.layers[1].kernel.dtype == "float32"
    bf16.features.set_weights(f32.features.get_weights())
    rng = np.random.default_rng(3)
    target = tf.constant(rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32))
    im = tf.Variable(rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32))
    mask = tf.constant((rng.uniform(size=(2, 32, 32)) > 0.3).astype(np.float32))
    sigma = tf.constant(rng.uniform(0.5, 2.0, (2, 8, 8, 1)).astype(np.float32))
    values, grads = [], []
    for perc in (f32, bf16):
        assert perc.feature_maps(target).dtype == tf.float32
        with tf.GradientTape() as tape:
            loss = perc(im, target, mask, sigma)
        values.append(float(loss))
        grads.append(tape.gradient(loss, im).numpy().ravel())
    assert values[1] == pytest.approx(values[0], rel=1e-2)
    cosine = grads[0] @ grads[1] / np.linalg.norm(grads[0]) / np.linalg.norm(grads[1])
    assert cosine > 0.97, cosine
    with pytest.raises(ValueError, match="dtype"):
        losses.PerceptualLoss(32, "random", dtype="half")
