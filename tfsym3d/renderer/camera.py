"""Pinhole camera and rigid view transforms.

Conventions (shared with the authors' code):
camera space is x right, y down, z forward; the centre of pixel (u, v) sits at integer
image coordinates, u in [0, W-1] and v in [0, H-1]. A view is a vector of 6 numbers
(rx, ry, rz in radians, tx, ty, tz in camera units); 5 numbers mean tz = 0 and 3 numbers
mean no translation. The rotation R = Rz @ Ry @ Rx acts about the point
(0, 0, rot_center_depth); the translation is applied after it.
"""

import math

import numpy as np
import tensorflow as tf


def intrinsics(image_size, fov):
    """Camera intrinsics of a square image.

    Args:
      image_size: S, the image width and height in pixels.
      fov: the full field of view in degrees.

    Returns:
      K, a float32 numpy array of shape [3, 3]:
      [[f, 0, c], [0, f, c], [0, 0, 1]], f = (S - 1) / 2 / tan(fov / 2), c = (S - 1) / 2.
    """
    c = (image_size - 1) / 2.0
    f = c / math.tan(math.radians(fov) / 2.0)
    return np.array([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]], dtype=np.float32)


def euler_rotation(angles):
    """Rotation matrices R = Rz @ Ry @ Rx from Euler angles.

    Args:
      angles: float tensor of shape [..., 3], (rx, ry, rz) in radians.

    Returns:
      Float tensor of shape [..., 3, 3].
    """
    angles = as_float(angles)
    _check_last_dim(angles, 3, "angles")
    rx, ry, rz = tf.unstack(angles, axis=-1)
    cx, sx = tf.cos(rx), tf.sin(rx)
    cy, sy = tf.cos(ry), tf.sin(ry)
    cz, sz = tf.cos(rz), tf.sin(rz)
    zero, one = tf.zeros_like(rx), tf.ones_like(rx)

    def mat(rows):
        return tf.stack([tf.stack(r, axis=-1) for r in rows], axis=-2)

    m_x = mat([[one, zero, zero], [zero, cx, -sx], [zero, sx, cx]])
    m_y = mat([[cy, zero, sy], [zero, one, zero], [-sy, zero, cy]])
    m_z = mat([[cz, -sz, zero], [sz, cz, zero], [zero, zero, one]])
    return tf.matmul(m_z, tf.matmul(m_y, m_x))


def split_view(view):
    """Rotation and translation of a batch of views.

    Args:
      view: float tensor of shape [B, 6], [B, 5] or [B, 3] (see the module docstring).

    Returns:
      (R, T): R of shape [B, 3, 3], T of shape [B, 3].
    """
    view = as_float(view)
    if view.shape.rank != 2 or view.shape[-1] not in (3, 5, 6):
        raise ValueError(f"view must have shape [B, 6], [B, 5] or [B, 3]; got {view.shape}")
    n = view.shape[-1]
    rot = euler_rotation(view[:, :3])
    if n == 6:
        trans = view[:, 3:6]
    elif n == 5:
        trans = tf.concat([view[:, 3:5], tf.zeros_like(view[:, :1])], axis=-1)
    else:
        trans = tf.zeros_like(view)
    return rot, trans


def transform_points(points, view, rot_center_depth):
    """Applies the view to points: rotate about (0, 0, rot_center_depth), then translate.

    Args:
      points: float tensor of shape [B, N, 3], camera space.
      view: float tensor of shape [B, 6|5|3].
      rot_center_depth: depth of the centre of rotation, in camera units.

    Returns:
      Float tensor of shape [B, N, 3].
    """
    points = _check_points(points)
    rot, trans = split_view(view)
    centre = tf.constant([0.0, 0.0, rot_center_depth], tf.float32)
    points = tf.matmul(points - centre, rot, transpose_b=True) + centre
    return points + trans[:, None, :]


def inverse_transform_points(points, view, rot_center_depth):
    """Undoes `transform_points`: translate back, then rotate by R^T about the centre.

    Args:
      points: float tensor of shape [B, N, 3], camera space.
      view: float tensor of shape [B, 6|5|3].
      rot_center_depth: depth of the centre of rotation, in camera units.

    Returns:
      Float tensor of shape [B, N, 3].
    """
    points = _check_points(points)
    rot, trans = split_view(view)
    centre = tf.constant([0.0, 0.0, rot_center_depth], tf.float32)
    points = points - trans[:, None, :] - centre
    return tf.matmul(points, rot) + centre


def project(points, K):
    """Perspective projection to pixel coordinates.

    Args:
      points: float tensor of shape [..., 3], camera space, z > 0.
      K: intrinsics of shape [3, 3].

    Returns:
      Float tensor of shape [..., 2]: (u, v) in pixels (pixel centres at integers).
    """
    K = as_float(K)
    x, y, z = tf.unstack(points, axis=-1)
    u = K[0, 0] * x / z + K[0, 2]
    v = K[1, 1] * y / z + K[1, 2]
    return tf.stack([u, v], axis=-1)


def as_float(x):
    """Any array-like as a float32 tensor (float64 numpy input is cast, not refused)."""
    x = tf.convert_to_tensor(x)
    return x if x.dtype == tf.float32 else tf.cast(x, tf.float32)


def _check_points(points):
    points = as_float(points)
    if points.shape.rank != 3 or points.shape[-1] != 3:
        raise ValueError(f"points must have shape [B, N, 3]; got {points.shape}")
    return points


def _check_last_dim(t, n, name):
    if t.shape.rank is None or t.shape.rank < 1 or t.shape[-1] != n:
        raise ValueError(f"{name} must have shape [..., {n}]; got {t.shape}")
