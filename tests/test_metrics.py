"""SIDE, MAD and the evaluation mask against hand-computed values."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfsym3d import metrics


def test_side_and_mad_hand_cases():
    rng = np.random.default_rng(1)
    gt = rng.uniform(0.9, 1.1, (1, 6, 6)).astype(np.float32)
    mask = np.ones((1, 6, 6), np.float32)
    assert metrics.side(gt, gt, mask).numpy()[0] == pytest.approx(0.0, abs=1e-6)
    assert metrics.side(gt * 1.05, gt, mask).numpy()[0] == pytest.approx(0.0, abs=1e-6)
    n = np.zeros((1, 6, 6, 3), np.float32)
    n[..., 2] = 1.0
    tilted = np.zeros_like(n)
    tilted[..., 0], tilted[..., 2] = math.sin(0.3), math.cos(0.3)
    assert metrics.mad(tilted, n, mask).numpy()[0] == pytest.approx(math.degrees(0.3),
                                                                      rel=1e-4)


def test_erosion_removes_the_border_and_the_neighbours_of_holes():
    big = np.ones((1, 6, 6), np.float32)
    got = metrics.erode(tf.constant(big)).numpy()[0]
    want = np.zeros((6, 6))
    want[1:5, 1:5] = 1.0
    assert np.array_equal(got, want)
    big[0, 2, 2] = 0.0
    got = metrics.erode(tf.constant(big)).numpy()[0]
    want[1:4, 1:4] = 0.0
    assert np.array_equal(got, want)
