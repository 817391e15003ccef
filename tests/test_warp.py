"""Warps, normals and sampling against references built independently."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tests import reference as ref
from tfsym3d.renderer import Renderer, grid_faces, grid_sample

S = 64


@pytest.fixture(scope="module")
def renderer():
    return Renderer(image_size=S, fov=10.0, min_depth=0.9, max_depth=1.1,
                    rot_center_depth=1.0)


def random_view(rng, n):
    return np.concatenate([np.radians(rng.uniform(-60, 60, (n, 3))),
                           rng.uniform(-0.1, 0.1, (n, 2)), np.zeros((n, 1))], 1)


def test_grid_faces_are_the_authors_order():
    faces = grid_faces(3, 3)
    assert faces.shape == (8, 3)
    np.testing.assert_array_equal(faces[0], [0, 3, 1])  # top-left, bottom-left, top-right
    np.testing.assert_array_equal(faces[4], [1, 3, 4])  # top-right, bottom-left, bottom-right


def test_unprojection_round_trip(renderer):
    depth = ref.smooth_depth(np.random.default_rng(0), S)[None]
    grid = renderer.depth_to_3d_grid(depth.astype(np.float32)).numpy()[0]
    verts, _ = ref.grid_mesh(depth[0], ref.intrinsics(S, 10.0))
    np.testing.assert_allclose(grid.reshape(-1, 3), verts, rtol=1e-5, atol=1e-7)


def test_identity_view_keeps_the_canonical_depth_and_grid(renderer):
    depth = ref.smooth_depth(np.random.default_rng(1), S)[None].astype(np.float32)
    view = np.zeros((1, 6), np.float32)
    recon = renderer.warp_canon_depth(depth, view).numpy()
    np.testing.assert_allclose(recon, np.clip(depth, 0.8, 1.2), atol=1e-5)
    grid = renderer.get_inv_warped_2d_grid(recon, view).numpy()[0]
    lin = np.linspace(-1, 1, S)
    np.testing.assert_allclose(grid[..., 0], np.tile(lin, (S, 1)), atol=1e-5)
    np.testing.assert_allclose(grid[..., 1], np.tile(lin[:, None], (1, S)), atol=1e-5)


def test_warp_canon_depth_matches_reference_zbuffer(renderer):
    rng = np.random.default_rng(2)
    K = ref.intrinsics(S, 10.0)
    depth = np.stack([ref.smooth_depth(rng, S) for _ in range(2)])
    view = random_view(rng, 2)
    got = renderer.warp_canon_depth(depth.astype(np.float32), view.astype(np.float32))
    for i in range(2):
        verts, faces = ref.grid_mesh(depth[i], K)
        want, _ = ref.zbuffer(ref.view_transform(verts, view[i], 1.0), faces, K, S, S)
        want = np.clip(want, 0.8, 1.2)  # background (inf) -> max_depth + margin
        bad = np.abs(got.numpy()[i] - want) > 1e-3
        assert bad.mean() <= 0.003
        assert (want == 1.2).mean() > 0.02  # some background is in the comparison


def test_recon_by_sampling_equals_recon_by_mesh_rendering(renderer):
    """Two independent routes to the canonical image seen from a view: inverse-warp
    sampling (what training uses) and rasterizing the textured mesh (render_view)."""
    rng = np.random.default_rng(3)
    depth = ref.smooth_depth(rng, S, amplitude=0.03)[None].astype(np.float32)
    yy, xx = np.mgrid[0:S, 0:S] / (S - 1.0)
    image = np.stack([np.sin(3 * xx), np.cos(2 * yy), xx * yy], -1)[None].astype(np.float32)
    view = np.array([[0.2, -0.4, 0.1, 0.03, -0.02, 0.0]], np.float32)
    recon_depth = renderer.warp_canon_depth(depth, view)
    grid = renderer.get_inv_warped_2d_grid(recon_depth, view)
    sampled = grid_sample(image, grid).numpy()[0]
    rendered, mask = renderer.render_view(image, depth, view)
    inner = tf.nn.erosion2d(mask[..., None], tf.zeros([3, 3, 1]), [1, 1, 1, 1], "SAME",
                            "NHWC", [1, 1, 1, 1]).numpy()[0, ..., 0] > 0.5
    assert inner.mean() > 0.3
    err = np.abs(sampled - rendered.numpy()[0])[inner]
    assert err.max() < 0.02


def test_normals_of_a_tilted_plane(renderer):
    K = renderer.K
    a = 0.5  # the plane z = 1 + a * x
    u = np.arange(S)
    z_row = 1.0 / (1.0 - a * (u - K[0, 2]) / K[0, 0])
    depth = np.tile(z_row, (S, 1))[None].astype(np.float32)
    normal = renderer.get_normal_from_depth(depth).numpy()[0]
    want = np.array([-a, 0.0, 1.0]) / math.hypot(a, 1.0)
    inner = normal[1:-1, 1:-1]
    length = np.linalg.norm(inner, axis=-1, keepdims=True)
    np.testing.assert_allclose(length, 1.0, atol=1e-6)
    np.testing.assert_allclose(inner, np.broadcast_to(want, (S - 2, S - 2, 3)), atol=1e-4)
    # The authors divide by (norm + 1e-7), which at 64 px leaves the length a little
    # under 1 (see tests/test_evaluate.py for the hand-derived value); same direction.
    authors = renderer.get_normal_from_depth(depth, "authors").numpy()[0, 1:-1, 1:-1]
    short = np.linalg.norm(authors, axis=-1, keepdims=True)
    assert np.all((short > 0.99) & (short < 0.999))
    np.testing.assert_allclose(authors / short, inner, atol=1e-5)
    np.testing.assert_allclose(normal[0], np.broadcast_to([0, 0, 1], (S, 3)), atol=1e-6)


def test_grid_sample_matches_reference_and_is_zero_outside():
    rng = np.random.default_rng(4)
    image = rng.uniform(-1, 1, (2, 5, 7, 3)).astype(np.float32)
    grid = rng.uniform(-1.3, 1.3, (2, 4, 6, 2)).astype(np.float32)
    grid[0, 0, 0] = [-1, -1]
    grid[0, 0, 1] = [1, 1]
    grid[0, 0, 2] = [3, 0]
    grid[0, 0, 3] = [np.nan, 0]
    got = grid_sample(image, grid).numpy()
    for b in range(2):
        want = ref.bilinear_sample(image[b], np.nan_to_num(grid[b], nan=-5))
        np.testing.assert_allclose(got[b], want, atol=1e-5)
    np.testing.assert_allclose(got[0, 0, 0], image[0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(got[0, 0, 1], image[0, -1, -1], atol=1e-6)
    assert np.all(got[0, 0, 2:4] == 0)


def test_grid_sample_gradients_match_finite_differences():
    rng = np.random.default_rng(5)
    image = tf.constant(rng.uniform(-1, 1, (1, 6, 6, 2)), tf.float32)
    grid = tf.constant(rng.uniform(-0.9, 0.9, (1, 3, 3, 2)), tf.float32)
    weights = tf.constant(rng.uniform(size=(1, 3, 3, 2)), tf.float32)

    def loss(img, g):
        return tf.reduce_sum(grid_sample(img, g) * weights)

    with tf.GradientTape() as tape:
        tape.watch([image, grid])
        value = loss(image, grid)
    g_img, g_grid = tape.gradient(value, [image, grid])
    eps = 1e-3
    for idx in [(0, 1, 1, 0), (0, 2, 0, 1), (0, 0, 2, 0)]:
        d = np.zeros(grid.shape, np.float32)
        d[idx] = eps
        numeric = (loss(image, grid + d) - loss(image, grid - d)).numpy() / (2 * eps)
        assert g_grid.numpy()[idx] == pytest.approx(numeric, rel=1e-2, abs=1e-3)
    # Linear in the image: the gradient is the sum of the bilinear weights per pixel.
    d = np.zeros(image.shape, np.float32)
    d[0, 3, 3, 1] = 1.0
    numeric = (loss(image + d, grid) - loss(image, grid)).numpy()
    assert g_img.numpy()[0, 3, 3, 1] == pytest.approx(numeric, abs=1e-4)


def test_recon_depth_gradients_reach_canonical_depth_and_view(renderer):
    rng = np.random.default_rng(6)
    depth = tf.constant(ref.smooth_depth(rng, S)[None], tf.float32)
    view = tf.constant([[0.2, 0.3, -0.1, 0.02, 0.01, 0.0]], tf.float32)
    weights = tf.constant(rng.uniform(size=(1, S, S)), tf.float32)
    base = renderer.warp_canon_depth(depth, view).numpy()
    interior = (base > 0.85) & (base < 1.15)

    def loss(d, v, mask):
        return tf.reduce_sum(tf.where(mask, renderer.warp_canon_depth(d, v), 0.0) * weights)

    with tf.GradientTape() as tape:
        tape.watch([depth, view])
        value = loss(depth, view, interior)
    g_depth, g_view = tape.gradient(value, [depth, view])
    assert np.abs(g_depth.numpy()).sum() > 0
    for k in range(5):
        eps = 1e-3
        d = np.zeros((1, 6), np.float32)
        d[0, k] = eps
        plus = renderer.warp_canon_depth(depth, view + d).numpy()
        minus = renderer.warp_canon_depth(depth, view - d).numpy()
        # Compare on pixels away from occlusion edges: finite differences are smooth there.
        smooth = interior & (np.abs(plus - minus) < 50 * eps)
        numeric = (loss(depth, view + d, smooth) - loss(depth, view - d, smooth)).numpy()
        numeric /= 2 * eps
        with tf.GradientTape() as tape:
            tape.watch(view)
            value = loss(depth, view, smooth)
        analytic = tape.gradient(value, view).numpy()[0, k]
        assert analytic == pytest.approx(numeric, rel=0.05, abs=0.05)


@pytest.mark.parametrize("bad", [np.zeros((S, S)), np.zeros((1, S, S, 1))])
def test_depth_of_wrong_rank_is_a_value_error(renderer, bad):
    with pytest.raises(ValueError, match=r"depth must have shape \[B, H, W\]"):
        renderer.warp_canon_depth(bad, np.zeros((1, 6)))


def test_fused_renderer_matches_the_plain_one_in_values_and_gradients():
    """fused=True (XLA-compiled per-pixel arithmetic) is the same computation."""
    rng = np.random.default_rng(3)
    depth = tf.constant(ref.smooth_depth(rng, 32)[None].repeat(2, 0), tf.float32)
    view = tf.constant([[0.1, -0.3, 0.05, 0.02, -0.01, 0.0], [0.0, 0.4, 0.0, 0.0, 0.0, 0.0]])
    image = tf.constant(rng.uniform(size=(2, 32, 32, 3)), tf.float32)
    results = []
    for fused in (False, True):
        r = Renderer(32, fused=fused)
        with tf.GradientTape() as tape:
            tape.watch([depth, view, image])
            recon_depth = r.warp_canon_depth(depth, view)
            recon = r.grid_sample(image, r.get_inv_warped_2d_grid(recon_depth, view))
            normal = r.get_normal_from_depth(recon_depth)
            loss = tf.reduce_sum(recon ** 2) + tf.reduce_sum(normal[..., 2]) + tf.reduce_sum(
                recon_depth)
        results.append([recon_depth, recon, normal] + tape.gradient(loss, [depth, view, image]))
    for k, (plain, fused) in enumerate(zip(results[0], results[1], strict=True)):
        plain, fused = plain.numpy(), fused.numpy()
        if k < 3:  # values: float rounding only
            np.testing.assert_allclose(fused, plain, rtol=1e-4, atol=1e-4)
        else:  # gradients: ill-conditioned slivers amplify the rounding a little
            assert np.linalg.norm(fused - plain) <= 1e-3 * np.linalg.norm(plain)


def test_fuse_runs_the_plain_function_inside_an_xla_compilation():
    from tfsym3d.renderer.xla import fuse, in_xla_context

    seen = []

    def probe(x):
        seen.append(in_xla_context())
        return x * 2.0

    fused = fuse(probe)
    assert float(fused(tf.constant(1.0))) == 2.0  # compiled: traced inside XLA
    assert float(tf.function(lambda x: fused(x) + 1.0, jit_compile=True)(
        tf.constant(1.0))) == 3.0  # called inline by the outer compilation
    # From a plain graph, the compiled version is used (traced again: a new shape).
    assert tf.function(lambda x: fused(x) + 1.0)(tf.constant([2.0])).numpy()[0] == 5.0
    assert in_xla_context() is False
    assert seen == [True, True, True]


@pytest.mark.parametrize("supersample,offset", [(2, 0.0), (1, 0.5), (2, 0.5)])
def test_neural_renderer_sampling_matches_reference(supersample, offset):
    """warp_canon_depth with the authors' renderer behaviour (2x2 supersampling averaged
    down with empty = far, and/or the half-pixel offset) against a brute-force
    point-sampling z-buffer of the same definition."""
    from tfsym3d.renderer.warp import SUPERSAMPLE_FAR

    size = 20
    r = Renderer(image_size=size, rot_center_depth=1.0, depth_supersample=supersample,
                 pixel_offset=offset)
    rng = np.random.default_rng(7)
    K = ref.intrinsics(size, 10.0)
    depth = np.stack([ref.smooth_depth(rng, size) for _ in range(2)])
    view = random_view(rng, 2) * 0.5
    got = r.warp_canon_depth(depth.astype(np.float32), view.astype(np.float32)).numpy()
    for i in range(2):
        verts, faces = ref.grid_mesh(depth[i], K)
        want = ref.neural_renderer_depth(ref.view_transform(verts, view[i], 1.0), faces, K,
                                         size, supersample, offset, SUPERSAMPLE_FAR,
                                         (0.8, 1.2))
        bad = np.abs(got[i] - want) > 1e-4
        assert bad.mean() <= 0.005, (supersample, offset, bad.sum())
        assert (want == 1.2).mean() > 0.02  # the silhouette is in the comparison


def test_half_pixel_offset_loses_the_last_row_and_column():
    """At the identity view, sampling 0.5 px off the grid leaves the last row and column
    outside the mesh (background) and samples the rest between the vertices."""
    size = 16
    depth = (1.0 + 0.02 * np.sin(np.arange(size) / 3.0)[None, :] * np.ones((size, 1)))
    r = Renderer(image_size=size, rot_center_depth=1.0, pixel_offset=0.5)
    got = r.warp_canon_depth(depth[None].astype(np.float32), np.zeros((1, 6), np.float32))
    got = got.numpy()[0]
    np.testing.assert_allclose(got[-1], 1.2)
    np.testing.assert_allclose(got[:, -1], 1.2)
    inner = got[:-1, :-1]
    assert np.all(inner < 1.2)
    # Between columns j and j + 1 the surface lies between their depths.
    lo = np.minimum(depth[:-1, :-1], depth[:-1, 1:])
    hi = np.maximum(depth[:-1, :-1], depth[:-1, 1:])
    assert np.all((inner >= lo - 1e-6) & (inner <= hi + 1e-6))


@pytest.mark.parametrize("fused", [False, True])
def test_authors_normals_match_the_reference_formula(fused):
    r = Renderer(image_size=S, rot_center_depth=1.0, normalisation="authors", fused=fused)
    depth = ref.smooth_depth(np.random.default_rng(8), S)
    got = r.get_normal_from_depth(depth[None].astype(np.float32)).numpy()[0]
    want = ref.normals_authors(depth, ref.intrinsics(S, 10.0))
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert np.linalg.norm(want[1:-1, 1:-1], axis=-1).max() < 0.999  # short, not unit


def test_supersampled_recon_depth_has_finite_gradients():
    r = Renderer(image_size=S, rot_center_depth=1.0, depth_supersample=2, pixel_offset=0.5)
    depth = tf.constant(ref.smooth_depth(np.random.default_rng(9), S)[None], tf.float32)
    view = tf.constant([[0.1, 0.4, 0.0, 0.02, 0.0, 0.0]], tf.float32)
    with tf.GradientTape() as tape:
        tape.watch([depth, view])
        loss = tf.reduce_sum(r.warp_canon_depth(depth, view) ** 2)
    gd, gv = tape.gradient(loss, [depth, view])
    assert np.all(np.isfinite(gd.numpy())) and np.all(np.isfinite(gv.numpy()))
    assert np.abs(gd.numpy()).sum() > 0 and np.abs(gv.numpy()).sum() > 0
