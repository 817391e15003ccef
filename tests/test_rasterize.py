"""The rasterizer against the brute-force numpy z-buffer in tests/reference.py."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tests import reference as ref
from tfsym3d.renderer import interpolate, rasterize

S = 64
K = ref.intrinsics(S, 10.0)


def compare(verts, faces, size=S, **kwargs):
    """Fraction of pixels whose coverage differs or whose depth differs by > 1e-3."""
    out = rasterize(tf.constant(verts[None], tf.float32), faces, K, (size, size), **kwargs)
    depth = out["depth"].numpy()[0]
    face = out["face_id"].numpy()[0]
    want, want_face = ref.zbuffer(verts, faces, K, size, size)
    assert np.all((face >= 0) == np.isfinite(depth))
    covered, want_covered = np.isfinite(depth), np.isfinite(want)
    both = covered & want_covered
    bad = (covered != want_covered)
    bad[both] |= np.abs(depth[both] - want[both]) > 1e-3
    return bad.mean(), covered, want_covered


def warped_mesh(rng, max_rot=60.0, max_trans=0.1):
    depth = ref.smooth_depth(rng, S)
    verts, faces = ref.grid_mesh(depth, K)
    view = np.concatenate([np.radians(rng.uniform(-max_rot, max_rot, 3)),
                           rng.uniform(-max_trans, max_trans, 3)])
    return ref.view_transform(verts, view, 1.0), faces


@pytest.mark.parametrize("seed", range(4))
def test_warped_grid_meshes_match_reference(seed):
    verts, faces = warped_mesh(np.random.default_rng(seed))
    bad, covered, _ = compare(verts, faces)
    assert covered.mean() > 0.1  # the mesh is in view: the test compares something
    assert bad <= 0.003


def test_identity_view_reproduces_canonical_depth_exactly():
    depth = ref.smooth_depth(np.random.default_rng(7), S)
    verts, faces = ref.grid_mesh(depth, K)
    out = rasterize(tf.constant(verts[None], tf.float32), faces, K, (S, S))
    got = out["depth"].numpy()[0]
    assert np.all(np.isfinite(got)), "holes in the identity view"
    np.testing.assert_allclose(got, depth, atol=1e-5)


def test_large_overlapping_triangles():
    rng = np.random.default_rng(3)
    tris = []
    for _ in range(6):
        centre = rng.uniform(-0.08, 0.08, 2)
        z = rng.uniform(0.8, 1.4, 3)
        pts = np.concatenate([centre + rng.uniform(-0.15, 0.15, (3, 2)), z[:, None]], 1)
        pts[:, :2] *= pts[:, 2:]  # stay in view whatever the depth
        tris.append(pts)
    verts = np.concatenate(tris)
    faces = np.arange(len(verts)).reshape(-1, 3)
    bad, covered, want = compare(verts, faces)
    assert want.mean() > 0.3  # big triangles: much of the image is covered
    assert bad <= 0.003
    # Huge triangles take the multi-block path: a tiny chunk forces many loop iterations.
    bad_chunked, _, _ = compare(verts, faces, window=1, chunk=7)
    assert bad_chunked <= 0.003


def test_degenerate_triangles_are_skipped_without_nan():
    good = np.array([[-0.05, -0.05, 1.0], [0.05, -0.05, 1.0], [0.0, 0.05, 1.0]])
    line = np.array([[-0.05, 0.0, 0.9], [0.0, 0.0, 0.9], [0.05, 0.0, 0.9]])  # collinear
    point = np.array([[0.0, 0.0, 0.8]] * 3)  # all three vertices equal
    verts = np.concatenate([good, line, point])
    faces = np.arange(9).reshape(3, 3)
    v = tf.constant(verts[None], tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(v)
        out = rasterize(v, faces, K, (S, S))
        loss = tf.reduce_sum(tf.where(out["face_id"] >= 0, out["depth"], 0.0))
    grad = tape.gradient(loss, v)
    assert np.all(np.isfinite(grad.numpy()))
    assert set(np.unique(out["face_id"].numpy())) == {-1, 0}
    bad, _, _ = compare(verts, faces)
    assert bad <= 0.003


def test_vertices_behind_camera_and_outside_image():
    rng = np.random.default_rng(5)
    verts, faces = warped_mesh(rng)
    verts = verts + np.array([0.12, -0.07, 0.0])  # partly outside the image
    verts[:50, 2] = -0.5  # some behind the camera
    verts[60:70, 2] = 0.0  # some on the camera plane
    v = tf.constant(verts[None], tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(v)
        out = rasterize(v, faces, K, (S, S))
        loss = tf.reduce_sum(tf.where(out["face_id"] >= 0, out["depth"], 0.0))
    assert np.all(np.isfinite(tape.gradient(loss, v).numpy()))
    bad, covered, _ = compare(verts, faces)
    assert 0.05 < covered.mean() < 0.95
    assert bad <= 0.003


def test_window_and_chunk_do_not_change_the_result():
    rng = np.random.default_rng(11)
    depth = 1.0 + 0.02 * rng.standard_normal((32, 32))  # rough: long thin triangles
    k32 = ref.intrinsics(32, 10.0)
    verts, faces = ref.grid_mesh(depth, k32)
    verts = ref.view_transform(verts, [0.9, -0.8, 0.4, 0.02, 0.0, 0.0], 1.0)
    v = tf.constant(verts[None], tf.float32)
    base = rasterize(v, faces, k32, (32, 32), window=4)
    for window, chunk in [(1, 16), (2, 100), (3, None)]:
        out = rasterize(v, faces, k32, (32, 32), window=window, chunk=chunk)
        np.testing.assert_array_equal(out["face_id"].numpy(), base["face_id"].numpy())


def test_barycentrics_are_perspective_correct():
    """Interpolating the vertex positions gives the 3D point seen at each pixel centre:
    it projects onto the pixel centre and its z is the depth."""
    verts, faces = warped_mesh(np.random.default_rng(2), max_rot=40)
    v = tf.constant(verts[None], tf.float32)
    out = rasterize(v, faces, K, (S, S))
    pts = interpolate(v, out, faces).numpy()[0]
    mask = out["face_id"].numpy()[0] >= 0
    assert mask.mean() > 0.3
    bary = out["barycentric"].numpy()[0]
    np.testing.assert_allclose(bary.sum(-1)[mask], 1.0, atol=1e-5)
    assert np.all(bary[~mask] == 0)
    np.testing.assert_allclose(pts[..., 2][mask], out["depth"].numpy()[0][mask], rtol=1e-5)
    u = K[0, 0] * pts[..., 0] / pts[..., 2] + K[0, 2]
    v_ = K[1, 1] * pts[..., 1] / pts[..., 2] + K[1, 2]
    vv, uu = np.mgrid[0:S, 0:S]
    np.testing.assert_allclose(u[mask], uu[mask], atol=2e-3)
    np.testing.assert_allclose(v_[mask], vv[mask], atol=2e-3)


def test_depth_gradient_matches_finite_differences():
    """d(sum of depth over the pixels a vertex's faces cover) / d(vertex), away from edges."""
    rng = np.random.default_rng(4)
    verts, faces = warped_mesh(rng, max_rot=30)
    v0 = tf.constant(verts[None], tf.float32)

    def depth_and_face(vv):
        out = rasterize(tf.constant(vv[None], tf.float32), faces, K, (S, S))
        return out["depth"].numpy()[0].astype(np.float64), out["face_id"].numpy()[0]

    _, face0 = depth_and_face(verts)
    visible = np.unique(face0[face0 >= 0])
    for f in rng.choice(visible, 5, replace=False):
        vid = faces[f][rng.integers(3)]
        touching = np.isin(face0, np.flatnonzero((faces == vid).any(axis=1)))
        for axis in range(3):
            eps = 1e-4
            step = np.zeros_like(verts)
            step[vid, axis] = eps
            d_plus, f_plus = depth_and_face(verts + step)
            d_minus, f_minus = depth_and_face(verts - step)
            # Pixels whose visible face does not change: depth is smooth there.
            pixels = touching & (f_plus == face0) & (f_minus == face0)
            assert pixels.sum() >= 1
            numeric = ((d_plus - d_minus)[pixels]).sum() / (2 * eps)
            with tf.GradientTape() as tape:
                tape.watch(v0)
                depth = rasterize(v0, faces, K, (S, S))["depth"]
                loss = tf.reduce_sum(tf.where(pixels[None], depth, 0.0))
            analytic = tape.gradient(loss, v0).numpy()[0, vid, axis]
            assert analytic == pytest.approx(numeric, rel=0.03, abs=0.01)
            if axis == 2:  # moving a vertex back moves its pixels back
                assert analytic > 0.1


def test_eager_graph_and_xla_agree():
    verts, faces = warped_mesh(np.random.default_rng(9))
    v = tf.constant(np.stack([verts, verts + [0.01, 0.0, 0.02]]), tf.float32)

    def run(x):
        out = rasterize(x, faces, K, (S, S))
        return out["depth"], out["face_id"], out["barycentric"]

    eager = run(v)
    graph = tf.function(run)(v)
    xla = tf.function(run, jit_compile=True)(v)
    for other in (graph, xla):
        np.testing.assert_allclose(other[0].numpy(), eager[0].numpy(), rtol=1e-6)
        # Where two faces meet at a pixel centre their depths tie to the last bit or two,
        # and operation fusion can change which one is nearer. Anywhere else: identical.
        differ = other[1].numpy() != eager[1].numpy()
        assert differ.mean() < 1e-3
        np.testing.assert_allclose(other[2].numpy()[~differ], eager[2].numpy()[~differ],
                                   atol=1e-5)


def test_batch_members_are_independent():
    a, faces = warped_mesh(np.random.default_rng(20))
    b, _ = warped_mesh(np.random.default_rng(21))
    both = rasterize(tf.constant(np.stack([a, b]), tf.float32), faces, K, (S, S))
    only_b = rasterize(tf.constant(b[None], tf.float32), faces, K, (S, S))
    np.testing.assert_array_equal(both["face_id"].numpy()[1], only_b["face_id"].numpy()[0])


@pytest.mark.parametrize("args, name", [
    ((np.zeros((4, 3)), np.zeros((1, 3), np.int32), K, (S, S)), "vertices"),
    ((np.zeros((1, 4, 2)), np.zeros((1, 3), np.int32), K, (S, S)), "vertices"),
    ((np.zeros((1, 4, 3)), np.zeros((3,), np.int32), K, (S, S)), "faces"),
    ((np.zeros((1, 4, 3)), np.zeros((1, 3), np.float32), K, (S, S)), "faces"),
    ((np.zeros((1, 4, 3)), np.zeros((1, 3), np.int32), np.eye(4), (S, S)), "K"),
    ((np.zeros((1, 4, 3)), np.zeros((1, 3), np.int32), K, (S,)), "image_shape"),
])
def test_wrong_shapes_raise_value_error_naming_the_argument(args, name):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        rasterize(*args)


def test_gradient_does_not_flow_through_empty_pixels():
    verts = np.array([[-0.02, -0.02, 1.0], [0.02, -0.02, 1.0], [0.0, 0.02, 1.0]])
    v = tf.constant(verts[None], tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(v)
        out = rasterize(v, np.array([[0, 1, 2]]), K, (S, S))
        loss = tf.reduce_sum(tf.where(tf.math.is_finite(out["depth"]), out["depth"], 0.0))
    grad = tape.gradient(loss, v).numpy()
    assert np.all(np.isfinite(grad))
    n = int(np.isfinite(out["depth"].numpy()).sum())
    assert n > 10
    # Moving the whole triangle back by dz moves every covered pixel back by dz.
    assert grad[0, :, 2].sum() == pytest.approx(n, rel=1e-4)
    assert math.isfinite(float(loss))
