"""Camera intrinsics and view transforms against hand-computed values."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tests import reference as ref
from tfsym3d.renderer import (
    euler_rotation,
    intrinsics,
    inverse_transform_points,
    project,
    split_view,
    transform_points,
)


def test_intrinsics_of_the_default_camera():
    K = intrinsics(64, 10.0)
    f = 31.5 / math.tan(math.radians(5.0))
    np.testing.assert_allclose(K, [[f, 0, 31.5], [0, f, 31.5], [0, 0, 1]], rtol=1e-6)
    assert f == pytest.approx(360.05, abs=0.01)


@pytest.mark.parametrize("axis, point, expected", [
    (0, [0, 1, 0], [0, 0, 1]),   # about x: y goes to z
    (1, [0, 0, 1], [1, 0, 0]),   # about y: z goes to x
    (2, [1, 0, 0], [0, 1, 0]),   # about z: x goes to y
])
def test_quarter_turns(axis, point, expected):
    angles = np.zeros(3, np.float32)
    angles[axis] = math.pi / 2
    rot = euler_rotation(angles[None]).numpy()[0]
    np.testing.assert_allclose(rot @ np.array(point, np.float32), expected, atol=1e-6)


def test_rotation_order_is_z_y_x():
    angles = np.array([0.3, -0.7, 1.1])
    rot = euler_rotation(angles[None].astype(np.float32)).numpy()[0]
    np.testing.assert_allclose(rot, ref.rotation(*angles), atol=1e-6)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-6)


def test_transform_rotates_about_the_centre_then_translates():
    view = np.array([[0.0, math.pi / 2, 0.0, 0.1, 0.2, 0.3]], np.float32)
    pts = np.array([[[0.0, 0.0, 1.0], [0.0, 0.0, 2.0]]], np.float32)
    out = transform_points(pts, view, rot_center_depth=1.0).numpy()[0]
    # (0,0,1) is the centre: only translated. (0,0,2) is 1 in front of it: yaw 90 degrees
    # sends +z to +x.
    np.testing.assert_allclose(out, [[0.1, 0.2, 1.3], [1.1, 0.2, 1.3]], atol=1e-6)
    back = inverse_transform_points(out[None], view, rot_center_depth=1.0).numpy()
    np.testing.assert_allclose(back, pts, atol=1e-6)


def test_short_views_mean_no_translation():
    rot6, t6 = split_view(np.array([[0.1, 0.2, 0.3, 0.0, 0.0, 0.0]], np.float32))
    rot3, t3 = split_view(np.array([[0.1, 0.2, 0.3]], np.float32))
    rot5, t5 = split_view(np.array([[0.1, 0.2, 0.3, 0.4, 0.5]], np.float32))
    np.testing.assert_allclose(rot3.numpy(), rot6.numpy())
    np.testing.assert_allclose(rot5.numpy(), rot6.numpy())
    np.testing.assert_allclose(t3.numpy(), [[0, 0, 0]])
    np.testing.assert_allclose(t5.numpy(), [[0.4, 0.5, 0]])
    with pytest.raises(ValueError, match="view must have shape"):
        split_view(np.zeros((1, 4), np.float32))


def test_project_puts_the_optical_axis_on_the_centre_pixel():
    K = intrinsics(64, 10.0)
    uv = project(tf.constant([[0.0, 0.0, 1.0], [0.1, -0.1, 2.0]]), K).numpy()
    np.testing.assert_allclose(uv[0], [31.5, 31.5])
    np.testing.assert_allclose(uv[1], [31.5 + K[0, 0] * 0.05, 31.5 - K[0, 0] * 0.05],
                               rtol=1e-6)
