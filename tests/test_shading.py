"""renderer.shading.lambertian against hand-computed values."""

import math

import numpy as np
import tensorflow as tf

from tfsym3d.renderer import lambertian


def test_lambertian_is_ambient_plus_diffuse_times_the_clamped_cosine():
    # Normals of a 1 x 4 image: facing the light, 60 degrees off it, at a right angle,
    # and facing away.
    s = math.sin(math.radians(60))
    normal = np.array([[[0, 0, 1], [s, 0, 0.5], [1, 0, 0], [0, 0, -1]]], np.float32)[None]
    direction = np.array([[0, 0, 1]], np.float32)
    cos, shading = lambertian(normal, direction, np.float32([0.2]), np.float32([0.6]))
    np.testing.assert_allclose(cos.numpy()[0, 0], [1.0, 0.5, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(shading.numpy()[0, 0], [0.8, 0.5, 0.2, 0.2], atol=1e-6)


def test_lambertian_broadcasts_one_light_per_image():
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(2, 3, 5, 3))
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    direction = rng.normal(size=(2, 3))
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    ambient, diffuse = np.array([0.1, 0.3]), np.array([0.9, 0.5])
    cos, shading = lambertian(normal, direction, ambient, diffuse)
    assert cos.dtype == tf.float64 and shading.shape == (2, 3, 5)
    for b in range(2):
        want = np.maximum(normal[b] @ direction[b], 0.0)
        np.testing.assert_allclose(cos.numpy()[b], want, atol=1e-12)
        np.testing.assert_allclose(shading.numpy()[b], ambient[b] + diffuse[b] * want,
                                   atol=1e-12)
