"""Lambertian shading: the one formula of the model, the synthetic generator and the
relighting animation.

    shading = ambient + diffuse * max(0, n . d)

with n the unit surface normal and d the unit light direction, both in camera space
(x right, y down, z forward; the normals point away from the camera, and a light
direction (x, y, 1) lights a surface facing the camera).
"""

import tensorflow as tf


def lambertian(normal, direction, ambient, diffuse):
    """Shades unit normals with a directional light.

    Args:
      normal: [..., H, W, 3] unit normals.
      direction: [..., 3] unit light directions (broadcast against normal's leading
        dimensions).
      ambient, diffuse: [...] light strengths (scalars broadcast too).

    Returns:
      (cos [..., H, W], max(0, n . d); shading [..., H, W]). float32 inputs give
      float32, float64 give float64.
    """
    normal = tf.convert_to_tensor(normal)
    dtype = normal.dtype
    direction = tf.cast(direction, dtype)
    cos = tf.maximum(tf.reduce_sum(normal * direction[..., None, None, :], axis=-1), 0.0)
    ambient = tf.cast(ambient, dtype)[..., None, None]
    diffuse = tf.cast(diffuse, dtype)[..., None, None]
    return cos, ambient + diffuse * cos
