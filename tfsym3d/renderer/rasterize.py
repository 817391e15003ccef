"""A z-buffer rasterizer for batched triangle meshes, in pure TensorFlow ops.

Two small ops in the spirit of nvdiffrast:

* `rasterize` decides visibility: for every pixel centre, the nearest triangle that
  covers it (face id), its perspective-correct depth and barycentric coordinates.
  Which triangle wins is discrete; the depth and barycentrics of the winner are then
  recomputed from its vertices with differentiable ops, so gradients flow to vertex
  positions everywhere except across visibility changes.
* `interpolate` turns per-vertex attributes into per-pixel values with those
  barycentrics.

Visibility is one pass over (triangle, candidate pixel) pairs. Each pair's key packs the
float32 bit pattern of its depth (positive floats sort like their bit patterns) above the
face id in an int64, and `unsorted_segment_min` per pixel keeps the nearest surface,
ties broken by the lower face id. Only triangles whose bounding box holds a pixel centre
take part (on a smooth 64x64 grid mesh more than half hold none). Candidate pixels come
from a `window` x `window` block (2x2 by default) at the corner of each triangle's box;
triangles whose box is larger go over their whole box again in blocks twice that side
(at least 4x4), in fixed-size chunks by a while loop, so coverage is exact for triangles
of any size. Under XLA (`xla=True`) every triangle takes part, so that every tensor
keeps a static shape.

Conventions: camera space x right, y down, z forward; pixel (u, v) has its centre at
integer image coordinates (u, v); both windings are drawn. A pixel centre is inside a
triangle when its distance outside every edge is at most `EDGE_TOLERANCE` pixels, so
centres on shared edges and vertices are covered by both neighbours (the nearer one, or
the lower face id, wins). Triangles with a vertex at z <= `near`, a non-finite vertex or
a projected area below `MIN_AREA` square pixels are not drawn.
"""

import tensorflow as tf

from tfsym3d.renderer.camera import as_float, project
from tfsym3d.renderer.xla import fuse, in_xla_context

EDGE_TOLERANCE = 1e-3  # pixels
MIN_AREA = 1e-10  # square pixels (twice the signed area, as the edge functions use)
_EMPTY_KEY = tf.int64.max
DEFAULT_CHUNK = 16384  # blocks per iteration of the loop over large triangles


def rasterize(vertices, faces, K, image_shape, near=1e-3, window=2, chunk=None, xla=False,
              fused=False):
    """Rasterizes batched triangle meshes with a z-buffer.

    Args:
      vertices: float tensor of shape [B, V, 3], camera-space positions.
      faces: int tensor of shape [F, 3], vertex indices shared by every mesh of the batch.
      K: float tensor of shape [3, 3], camera intrinsics (see camera.intrinsics).
      image_shape: (H, W), python ints.
      near: triangles with any vertex at z <= near are dropped (camera units).
      window: side of the first candidate block per triangle, in pixels; larger
        triangles then go over their box in blocks of max(2 * window, 4) (a speed knob;
        the result does not depend on it).
      chunk: number of blocks per loop iteration for triangles larger than the first
        block (a speed/memory knob; default DEFAULT_CHUNK).
      xla: run the visibility pass under XLA (same result; slower on CPU, see
        benchmarks/bench_renderer.py).
      fused: compile the differentiable depth and barycentric computation with XLA
        (same values up to float rounding; ~3x faster forward and backward on CPU).

    Returns:
      A dict with
        depth: float32 [B, H, W], z of the nearest surface, +inf where empty;
        face_id: int32 [B, H, W], index into faces, -1 where empty;
        barycentric: float32 [B, H, W, 3], perspective-correct weights of the face's three
          vertices (they sum to 1), zeros where empty.
      depth and barycentric are differentiable with respect to vertices.
    """
    vertices, faces, K, (height, width) = _check_inputs(vertices, faces, K, image_shape)
    visibility = _visibility_xla if xla else _visibility
    face_id = visibility(tf.stop_gradient(vertices), faces, K, height, width, near, window,
                         chunk)
    depth, bary = (_interpolate_depth_xla if fused else _interpolate_depth)(
        vertices, faces, face_id, K)
    return {"depth": depth, "face_id": face_id, "barycentric": bary}


def interpolate(attributes, rast, faces):
    """Interpolates per-vertex attributes at every pixel.

    Args:
      attributes: float tensor of shape [B, V, C].
      rast: the dict returned by `rasterize` (face_id [B, H, W], barycentric [B, H, W, 3]).
      faces: int tensor of shape [F, 3], the faces given to `rasterize`.

    Returns:
      Float tensor of shape [B, H, W, C]; zeros where no face is seen.
    """
    attributes = as_float(attributes)
    if attributes.shape.rank != 3:
        raise ValueError(f"attributes must have shape [B, V, C]; got {attributes.shape}")
    face_id = rast["face_id"]
    vidx = tf.gather(tf.cast(faces, tf.int32), tf.maximum(face_id, 0))  # [B, H, W, 3]
    tri_attr = tf.gather(attributes, vidx, axis=1, batch_dims=1)  # [B, H, W, 3, C]
    out = tf.reduce_sum(tri_attr * rast["barycentric"][..., None], axis=-2)
    return tf.where((face_id >= 0)[..., None], out, tf.zeros_like(out))


def _check_inputs(vertices, faces, K, image_shape):
    vertices = as_float(vertices)
    faces = tf.convert_to_tensor(faces)
    K = as_float(K)
    if vertices.shape.rank != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must have shape [B, V, 3]; got {vertices.shape}")
    if faces.shape.rank != 2 or faces.shape[-1] != 3:
        raise ValueError(f"faces must have shape [F, 3]; got {faces.shape}")
    if not faces.dtype.is_integer:
        raise ValueError(f"faces must be an integer tensor; got {faces.dtype.name}")
    if K.shape != (3, 3):
        raise ValueError(f"K must have shape [3, 3]; got {K.shape}")
    if len(image_shape) != 2 or min(int(s) for s in image_shape) < 1:
        raise ValueError(f"image_shape must be (H, W) with H, W >= 1; got {image_shape}")
    return vertices, tf.cast(faces, tf.int32), K, (int(image_shape[0]), int(image_shape[1]))


def _project_vertices(vertices, K, near):
    """Per-vertex values the triangles need: [B, V, 3] -> [B, V, 4], (u, v) in pixels,
    1/z, and ok: 1.0 where the vertex can be drawn (z > near, all finite), else 0.0
    (with u = v = 0 and 1/z = 1)."""
    x, y, z = tf.unstack(vertices, axis=-1)  # [B, V]
    ok = (z > near) & tf.math.is_finite(x) & tf.math.is_finite(y) & tf.math.is_finite(z)
    zs = tf.where(ok, z, 1.0)
    u = K[0, 0] * x / zs + K[0, 2]
    v = K[1, 1] * y / zs + K[1, 2]
    ok &= tf.math.is_finite(u) & tf.math.is_finite(v)
    return tf.stack([tf.where(ok, u, 0.0), tf.where(ok, v, 0.0), 1.0 / zs,
                     tf.cast(ok, tf.float32)], axis=-1)


_CORNER_NAMES = [f"{name}{k}" for k in range(3) for name in ("u", "v", "iz", "ok")]


def _corner_rows(per_vertex, faces, tri=None):
    """_project_vertices' values at the corners of triangles, one row per triangle:
    float32 [N, 12] (u0, v0, iz0, ok0, u1, ..., ok2), for every triangle of every mesh
    (tri None: N = B*F, mesh-major) or for the triangles tri (int32 [N], flat index
    into B*F)."""
    if tri is None:
        return tf.reshape(tf.gather(per_vertex, faces, axis=1), [-1, 12])
    num_faces = faces.shape[0] or tf.shape(faces)[0]
    index = ((tri // num_faces)[:, None] * tf.shape(per_vertex)[1]
             + tf.gather(faces, tri % num_faces))  # [N, 3]
    return tf.reshape(tf.gather(tf.reshape(per_vertex, [-1, 4]), index), [-1, 12])


def _corners(rows):
    """[N, 12] corner rows -> a dict u0, v0, iz0, ok0, ..., ok2 of [N] tensors."""
    return dict(zip(_CORNER_NAMES, tf.unstack(rows, axis=1), strict=True))


def _pixel_box(corners, height, width):
    """Twice the signed area, whether each triangle is drawn, and the box of pixel
    centres it may cover.

    Args:
      corners: the triangles' corner values (see _corners; u, v and ok are used), [N]
        each.

    Returns:
      area2 (float32 [N], pixels^2), drawn (bool [N]) and a dict x0, x1, y0, y1 (int32
      [N], the box clipped to the image; x1 < x0 for triangles that are not drawn).
    """
    c = corners
    area2 = ((c["u1"] - c["u0"]) * (c["v2"] - c["v0"])
             - (c["v1"] - c["v0"]) * (c["u2"] - c["u0"]))
    drawn = ((tf.minimum(tf.minimum(c["ok0"], c["ok1"]), c["ok2"]) > 0.5)
             & (tf.abs(area2) > MIN_AREA))
    box = {}
    for name, coord, size in (("x", "u", width), ("y", "v", height)):
        a, b, d = c[coord + "0"], c[coord + "1"], c[coord + "2"]
        lo, hi = _pixel_range(tf.minimum(tf.minimum(a, b), d),
                              tf.maximum(tf.maximum(a, b), d), size)
        box[name + "0"] = lo
        box[name + "1"] = tf.where(drawn, hi, lo - 1)
    return area2, drawn, box


def _pixel_range(lo, hi, size):
    """The first and last pixel centre (int32, clipped to 0..size-1) within a
    coordinate range [lo, hi] widened by EDGE_TOLERANCE; last < first when none."""
    lo = tf.clip_by_value(lo - EDGE_TOLERANCE, -1.0, size)
    hi = tf.clip_by_value(hi + EDGE_TOLERANCE, -1.0, size)
    return (tf.maximum(tf.cast(tf.math.ceil(lo), tf.int32), 0),
            tf.minimum(tf.cast(tf.math.floor(hi), tf.int32), size - 1))


def _triangle_setup(corners, height, width):
    """Per-triangle constants for the inside test, depth and candidate blocks.

    Args:
      corners: the triangles' corner values (see _corners), [N] each.
      height, width: image size.

    Returns:
      A dict of [N] tensors: u0, v0 (first vertex, pixels); a1, b1, a2, b2 (image
      gradients of barycentrics 1 and 2); t0, t1, t2 (edge tolerance in barycentric
      units); iz0, iz1, iz2 (1/z of the vertices); x0, y0, x1, y1 (int32 box of covered
      pixel centres, clipped to the image; x1 < x0 for triangles that are not drawn).
    """
    c = corners
    area2, drawn, box = _pixel_box(c, height, width)
    q1u, q1v = c["u1"] - c["u0"], c["v1"] - c["v0"]
    q2u, q2v = c["u2"] - c["u0"], c["v2"] - c["v0"]
    inv_area = tf.where(drawn, 1.0 / tf.where(drawn, area2, 1.0), 0.0)
    # lambda1(q) = cross(q, q2) / area2, lambda2(q) = cross(q1, q) / area2, q = p - p0.
    a1, b1 = q2v * inv_area, -q2u * inv_area
    a2, b2 = -q1v * inv_area, q1u * inv_area
    t = {
        "u0": c["u0"], "v0": c["v0"], "a1": a1, "b1": b1, "a2": a2, "b2": b2,
        "t0": EDGE_TOLERANCE * tf.sqrt((a1 + a2) ** 2 + (b1 + b2) ** 2),
        "t1": EDGE_TOLERANCE * tf.sqrt(a1 * a1 + b1 * b1),
        "t2": EDGE_TOLERANCE * tf.sqrt(a2 * a2 + b2 * b2),
        "iz0": c["iz0"], "iz1": c["iz1"], "iz2": c["iz2"],
    }
    t.update(box)
    return t


def _candidate_keys(corners, tri, block, used, window, num_faces, height, width,
                    num_pixels):
    """Z-buffer keys of one candidate block of each of N triangles.

    Args:
      corners: the triangles' corner values (see _corners), [N] each.
      tri: int32 [N], flat index into B*F; block: int32 [N], row-major block number in
        the triangle's box; used: bool [N], False for padding items (None: all used).
      window: block side in pixels; num_faces: F; height, width: the image's;
      num_pixels: B*H*W.

    Returns:
      key: int64 [N * window^2], the depth's float bits above the face id, _EMPTY_KEY
        where the candidate pixel is not covered; pixel: int32 [N * window^2], flat
        index into B*H*W, num_pixels where not covered; size_x, size_y: int32 [N], the
        width and height of the triangles' boxes in pixels (0 when not drawn).
    """
    p = _triangle_setup(corners, height, width)
    size_x = tf.maximum(p["x1"] - p["x0"] + 1, 0)
    size_y = tf.maximum(p["y1"] - p["y0"] + 1, 0)
    nbx = tf.maximum((size_x + window - 1) // window, 1)
    offsets = tf.range(window * window, dtype=tf.int32)
    off_x, off_y = offsets % window, offsets // window  # [w*w]
    col = lambda name: p[name][:, None]  # noqa: E731
    bx, by = block % nbx, block // nbx
    px = col("x0") + (bx * window)[:, None] + off_x  # [N, w*w]
    py = col("y0") + (by * window)[:, None] + off_y
    qx = tf.cast(px, tf.float32) - col("u0")
    qy = tf.cast(py, tf.float32) - col("v0")
    l1 = col("a1") * qx + col("b1") * qy
    l2 = col("a2") * qx + col("b2") * qy
    l0 = 1.0 - l1 - l2
    inv_z = l0 * col("iz0") + l1 * col("iz1") + l2 * col("iz2")
    inside = ((l0 >= -col("t0")) & (l1 >= -col("t1")) & (l2 >= -col("t2"))
              & (px <= col("x1")) & (py <= col("y1")) & (inv_z > 0.0))
    if used is not None:
        inside &= used[:, None]
    depth = 1.0 / tf.where(inside, inv_z, 1.0)
    face = tf.cast(tri % num_faces, tf.int64)[:, None]
    key = tf.bitwise.left_shift(tf.cast(tf.bitcast(depth, tf.int32), tf.int64),
                                tf.constant(32, tf.int64)) | face
    key = tf.where(inside, key, _EMPTY_KEY)
    pixel = (tri // num_faces)[:, None] * (height * width) + py * width + px
    pixel = tf.where(inside, pixel, num_pixels)
    return tf.reshape(key, [-1]), tf.reshape(pixel, [-1]), size_x, size_y


def _nearest(key, pixel, num_pixels):
    """The minimum key per pixel, int64 [num_pixels] (_EMPTY_KEY where none): the
    candidates' keys and pixels from _candidate_keys (pixel num_pixels: not covered)."""
    return tf.math.unsorted_segment_min(key, pixel, num_pixels + 1)[:-1]


def _visibility(vertices, faces, K, height, width, near, window, chunk):
    """Face id of the nearest surface at every pixel centre: int32 [B, H, W], -1 empty."""
    batch = tf.shape(vertices)[0]
    num_faces = faces.shape[0] or tf.shape(faces)[0]
    per_vertex = _project_vertices(vertices, K, near)
    num_pixels = batch * height * width
    rows = _corner_rows(per_vertex, faces)
    if in_xla_context():
        tri_index = tf.range(tf.shape(rows)[0], dtype=tf.int32)
    else:
        # Only the triangles whose box holds a pixel centre (about 40% of a smooth
        # 64x64 grid mesh's triangles: the rest fall between pixel centres). The test
        # is _pixel_box's without `drawn`: a few more pass, which _candidate_keys drops.
        uv = tf.reshape(rows, [-1, 3, 4])[:, :, :2]
        lo, hi = tf.reduce_min(uv, axis=1), tf.reduce_max(uv, axis=1)  # [T, 2]
        x0, x1 = _pixel_range(lo[:, 0], hi[:, 0], width)
        y0, y1 = _pixel_range(lo[:, 1], hi[:, 1], height)
        covers = (x1 >= x0) & (y1 >= y0)
        tri_index = tf.cast(tf.where(covers)[:, 0], tf.int32)
        rows = tf.gather(rows, tri_index)
    corners = _corners(rows)
    num_tri = tf.shape(tri_index)[0]
    key, pixel, size_x, size_y = _candidate_keys(
        corners, tri_index, tf.zeros_like(tri_index), None, window, num_faces, height,
        width, num_pixels)
    zbuf = _nearest(key, pixel, num_pixels)

    # Triangles whose box is larger than the first block: their whole box again, in
    # blocks of loop_window x loop_window pixels (the first block's pixels twice, which
    # the minimum does not mind), in chunks of chunk_size blocks. The triangles that have
    # any are first compacted to the front of a list, in order, so every chunk is served
    # by at most chunk_size consecutive list entries.
    loop_window = max(2 * window, 4)
    chunk_size = int(chunk or DEFAULT_CHUNK)
    big = (size_x > window) | (size_y > window)
    extra = tf.where(big, ((size_x + loop_window - 1) // loop_window)
                     * ((size_y + loop_window - 1) // loop_window), 0)
    has_extra = extra > 0
    slot = tf.where(has_extra, tf.cumsum(tf.cast(has_extra, tf.int32)) - 1, num_tri)
    position = tf.range(num_tri, dtype=tf.int32)
    listed = tf.math.unsorted_segment_max(position, slot, num_tri + 1)[:-1]  # -ve: none
    listed_extra = tf.where(listed >= 0, tf.gather(extra, tf.maximum(listed, 0)), 0)
    listed = tf.gather(tri_index, tf.maximum(listed, 0))  # flat index into B*F
    ends = tf.cumsum(listed_extra)
    total = tf.reduce_sum(listed_extra)
    pad = tf.fill([chunk_size], total + 1)
    ends_padded = tf.concat([ends, pad], 0)
    listed_padded = tf.concat([listed, tf.zeros([chunk_size], tf.int32)], 0)
    extra_padded = tf.concat([listed_extra, tf.ones([chunk_size], tf.int32)], 0)
    local = tf.range(chunk_size, dtype=tf.int32)

    def body(start, zbuf):
        # List entries first .. first + chunk_size - 1 cover items start .. start + chunk
        # - 1. Mark where each entry's range begins in the chunk, then spread every mark
        # forward to the next (a cumulative max done with cumsum and segments);
        # tf.searchsorted would do this, but XLA lowers it to a [chunk, T] comparison.
        first = tf.reduce_sum(tf.cast(ends <= start, tf.int32))
        # A gather, not tf.slice: XLA would make a data-dependent slice start a
        # compile-time constant and recompile for every new mesh.
        window_of = lambda t: tf.gather(t, first + local)  # noqa: E731
        entry_ends = window_of(ends_padded)
        entry_starts = entry_ends - window_of(extra_padded)
        slot = tf.where(entry_starts < start + chunk_size,
                        tf.maximum(entry_starts - start, 0), chunk_size)
        mark = tf.math.unsorted_segment_max(local, slot, chunk_size + 1)[:-1]
        is_mark = mark >= 0
        group = tf.cumsum(tf.cast(is_mark, tf.int32)) - 1
        group_entry = tf.math.unsorted_segment_max(
            mark, tf.where(is_mark, group, chunk_size), chunk_size + 1)
        entry = tf.gather(group_entry, tf.maximum(group, 0))
        item = start + local
        used = item < total
        entry = tf.where(used, entry, 0)
        tri = tf.gather(window_of(listed_padded), entry)
        block = item - tf.gather(entry_starts, entry)
        corners = _corners(_corner_rows(per_vertex, faces, tri))
        key, pixel, _, _ = _candidate_keys(corners, tri, block, used, loop_window,
                                           num_faces, height, width, num_pixels)
        return start + chunk_size, tf.minimum(zbuf, _nearest(key, pixel, num_pixels))

    _, zbuf = tf.while_loop(lambda start, _: start < total, body,
                            (tf.constant(0, tf.int32), zbuf))
    face_id = tf.where(zbuf == _EMPTY_KEY, -1,
                       tf.cast(zbuf & tf.constant(0xFFFFFFFF, tf.int64), tf.int32))
    return tf.reshape(face_id, [batch, height, width])


_visibility_xla = tf.function(_visibility, jit_compile=True, reduce_retracing=False)


def _interpolate_depth(vertices, faces, face_id, K):
    """Differentiable perspective-correct depth and barycentrics of the given faces.

    Args:
      vertices: [B, V, 3]; faces: [F, 3]; face_id: int32 [B, H, W] (-1 empty); K: [3, 3].

    Returns:
      depth [B, H, W] (+inf where empty) and barycentric [B, H, W, 3] (zeros where empty).
    """
    shape = tf.shape(face_id)
    empty = face_id < 0
    vidx = tf.gather(faces, tf.maximum(face_id, 0))  # [B, H, W, 3]
    tri = tf.gather(vertices, vidx, axis=1, batch_dims=1)  # [B, H, W, 3, 3]
    # A harmless stand-in triangle where the pixel is empty keeps every value finite, so
    # no NaN leaks into the gradients through tf.where.
    safe = tf.constant([[0.0, 0.0, 1.0], [1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    tri = tf.where(empty[..., None, None], safe, tri)
    uv = project(tri, K)
    ys, xs = tf.meshgrid(tf.range(shape[1]), tf.range(shape[2]), indexing="ij")
    pix = tf.cast(tf.stack([xs, ys], axis=-1), tf.float32)  # [H, W, 2]
    q = pix - uv[..., 0, :]
    q1 = uv[..., 1, :] - uv[..., 0, :]
    q2 = uv[..., 2, :] - uv[..., 0, :]
    if_empty = tf.ones_like(q[..., 0])
    area2 = q1[..., 0] * q2[..., 1] - q1[..., 1] * q2[..., 0]
    area2 = tf.where(empty, if_empty, area2)
    l1 = (q[..., 0] * q2[..., 1] - q[..., 1] * q2[..., 0]) / area2
    l2 = (q1[..., 0] * q[..., 1] - q1[..., 1] * q[..., 0]) / area2
    lam = tf.stack([1.0 - l1 - l2, l1, l2], axis=-1)
    w = lam / tri[..., 2]
    inv_z = tf.reduce_sum(w, axis=-1)
    inv_z = tf.where(empty, if_empty, inv_z)
    depth = tf.where(empty, tf.constant(float("inf")), 1.0 / inv_z)
    bary = tf.where(empty[..., None], 0.0, w / inv_z[..., None])
    return depth, bary


_interpolate_depth_xla = fuse(_interpolate_depth)
