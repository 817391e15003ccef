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
ties broken by the lower face id. Candidate pixels come from a `window` x `window` block
at the corner of each triangle's pixel bounding box; triangles whose box is larger get
more blocks, processed in fixed-size chunks by a while loop, so coverage is exact for
triangles of any size while every tensor keeps a static shape (XLA compiles it).

Conventions: camera space x right, y down, z forward; pixel (u, v) has its centre at
integer image coordinates (u, v); both windings are drawn. A pixel centre is inside a
triangle when its distance outside every edge is at most `EDGE_TOLERANCE` pixels, so
centres on shared edges and vertices are covered by both neighbours (the nearer one, or
the lower face id, wins). Triangles with a vertex at z <= `near`, a non-finite vertex or
a projected area below `MIN_AREA` square pixels are not drawn.
"""

import tensorflow as tf

from tfsym3d.renderer.camera import as_float, project

EDGE_TOLERANCE = 1e-3  # pixels
MIN_AREA = 1e-10  # square pixels (twice the signed area, as the edge functions use)
_EMPTY_KEY = tf.int64.max
_PARAMS = 12  # floats kept per triangle, see _triangle_setup


def rasterize(vertices, faces, K, image_shape, near=1e-3, window=2, chunk=None):
    """Rasterizes batched triangle meshes with a z-buffer.

    Args:
      vertices: float tensor of shape [B, V, 3], camera-space positions.
      faces: int tensor of shape [F, 3], vertex indices shared by every mesh of the batch.
      K: float tensor of shape [3, 3], camera intrinsics (see camera.intrinsics).
      image_shape: (H, W), python ints.
      near: triangles with any vertex at z <= near are dropped (camera units).
      window: side of the candidate block per triangle, in pixels (a speed knob; the
        result does not depend on it).
      chunk: number of extra blocks per loop iteration for triangles larger than one
        block (a speed/memory knob; default B * F // 4, at least 1024).

    Returns:
      A dict with
        depth: float32 [B, H, W], z of the nearest surface, +inf where empty;
        face_id: int32 [B, H, W], index into faces, -1 where empty;
        barycentric: float32 [B, H, W, 3], perspective-correct weights of the face's three
          vertices (they sum to 1), zeros where empty.
      depth and barycentric are differentiable with respect to vertices.
    """
    vertices, faces, K, (height, width) = _check_inputs(vertices, faces, K, image_shape)
    face_id = _visibility(tf.stop_gradient(vertices), faces, K, height, width, near,
                          window, chunk)
    depth, bary = _interpolate_depth(vertices, faces, face_id, K)
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


def _triangle_setup(vertices, faces, K, height, width, near):
    """Per-triangle constants for the inside test, depth and candidate blocks.

    Returns:
      params: float32 [B*F, 12]: u0, v0 (first vertex in pixels); a1, b1, a2, b2 (the
        gradients of barycentrics 1 and 2 in the image plane); t0, t1, t2 (edge tolerance
        in barycentric units); 1/z0, 1/z1, 1/z2.
      box: int32 [B*F, 4]: xmin, ymin, xmax, ymax of covered pixel centres (clipped to the
        image; xmax < xmin for triangles that are not drawn).
    """
    tri = tf.gather(vertices, faces, axis=1)  # [B, F, 3 vertices, 3 xyz]
    z = tri[..., 2]
    drawn = tf.reduce_all(z > near, axis=-1) & tf.reduce_all(
        tf.math.is_finite(tri), axis=[-2, -1])
    tri = tf.where(drawn[..., None, None], tri, tf.ones_like(tri))
    uv = project(tri, K)  # [B, F, 3, 2]
    q1 = uv[..., 1, :] - uv[..., 0, :]
    q2 = uv[..., 2, :] - uv[..., 0, :]
    area2 = q1[..., 0] * q2[..., 1] - q1[..., 1] * q2[..., 0]
    drawn &= tf.abs(area2) > MIN_AREA
    drawn &= tf.reduce_all(tf.math.is_finite(uv), axis=[-2, -1])
    inv_area = tf.where(drawn, 1.0 / tf.where(drawn, area2, 1.0), 0.0)
    # lambda1(q) = cross(q, q2) / area2, lambda2(q) = cross(q1, q) / area2, q = p - p0.
    a1, b1 = q2[..., 1] * inv_area, -q2[..., 0] * inv_area
    a2, b2 = -q1[..., 1] * inv_area, q1[..., 0] * inv_area
    g1 = tf.sqrt(a1 * a1 + b1 * b1)
    g2 = tf.sqrt(a2 * a2 + b2 * b2)
    g0 = tf.sqrt((a1 + a2) ** 2 + (b1 + b2) ** 2)
    inv_z = 1.0 / tf.where(drawn[..., None], z, 1.0)
    params = tf.stack([uv[..., 0, 0], uv[..., 0, 1], a1, b1, a2, b2,
                       EDGE_TOLERANCE * g0, EDGE_TOLERANCE * g1, EDGE_TOLERANCE * g2,
                       inv_z[..., 0], inv_z[..., 1], inv_z[..., 2]], axis=-1)
    params = tf.where(drawn[..., None], params, 0.0)

    lo = tf.reduce_min(uv, axis=-2) - EDGE_TOLERANCE
    hi = tf.reduce_max(uv, axis=-2) + EDGE_TOLERANCE
    limit = tf.constant([width, height], tf.float32)
    lo = tf.cast(tf.math.ceil(tf.clip_by_value(lo, -1.0, limit)), tf.int32)
    hi = tf.cast(tf.math.floor(tf.clip_by_value(hi, -1.0, limit)), tf.int32)
    lo = tf.maximum(lo, 0)
    hi = tf.minimum(hi, tf.constant([width - 1, height - 1], tf.int32))
    hi = tf.where(drawn[..., None], hi, lo - 1)
    box = tf.concat([lo, hi], axis=-1)
    return tf.reshape(params, [-1, _PARAMS]), tf.reshape(box, [-1, 4])


def _visibility(vertices, faces, K, height, width, near, window, chunk):
    """Face id of the nearest surface at every pixel centre: int32 [B, H, W], -1 empty."""
    batch = tf.shape(vertices)[0]
    num_faces = tf.shape(faces)[0]
    params, box = _triangle_setup(vertices, faces, K, height, width, near)
    num_tri = tf.shape(params)[0]
    num_pixels = batch * height * width

    extent = tf.maximum(box[:, 2:] - box[:, :2] + 1, 0)  # [T, 2] pixels
    blocks_xy = (extent + window - 1) // window
    blocks = blocks_xy[:, 0] * blocks_xy[:, 1]  # [T]

    offsets = tf.range(window * window, dtype=tf.int32)
    off_x, off_y = offsets % window, offsets // window  # [w*w]

    def keys_for(tri, block, used):
        """Per-pixel minimum key over the candidate pixels of block `block` of `tri`.

        tri, block: int32 [N], triangle (flat index into B*F) and block number (row-major
        over the triangle's bounding box); used: bool [N], False for padding items.
        """
        p = tf.gather(params, tri)
        b = tf.gather(box, tri)
        nbx = tf.gather(blocks_xy[:, 0], tri)
        bx, by = block % tf.maximum(nbx, 1), block // tf.maximum(nbx, 1)
        px = b[:, 0:1] + bx[:, None] * window + off_x  # [N, w*w]
        py = b[:, 1:2] + by[:, None] * window + off_y
        qx = tf.cast(px, tf.float32) - p[:, 0:1]
        qy = tf.cast(py, tf.float32) - p[:, 1:2]
        l1 = p[:, 2:3] * qx + p[:, 3:4] * qy
        l2 = p[:, 4:5] * qx + p[:, 5:6] * qy
        l0 = 1.0 - l1 - l2
        inv_z = l0 * p[:, 9:10] + l1 * p[:, 10:11] + l2 * p[:, 11:12]
        inside = ((l0 >= -p[:, 6:7]) & (l1 >= -p[:, 7:8]) & (l2 >= -p[:, 8:9])
                  & (px <= b[:, 2:3]) & (py <= b[:, 3:4]) & (inv_z > 0.0)
                  & used[:, None])
        depth = 1.0 / tf.where(inside, inv_z, 1.0)
        face = tf.cast(tri % num_faces, tf.int64)[:, None]
        key = tf.bitwise.left_shift(tf.cast(tf.bitcast(depth, tf.int32), tf.int64),
                                    tf.constant(32, tf.int64)) | face
        key = tf.where(inside, key, _EMPTY_KEY)
        pixel = (tri // num_faces)[:, None] * (height * width) + py * width + px
        pixel = tf.where(inside, pixel, num_pixels)
        return tf.math.unsorted_segment_min(
            tf.reshape(key, [-1]), tf.reshape(pixel, [-1]), num_pixels + 1)[:-1]

    all_tri = tf.range(num_tri, dtype=tf.int32)
    zbuf = keys_for(all_tri, tf.zeros_like(all_tri), tf.ones_like(all_tri, tf.bool))

    # Triangles larger than one block: their remaining blocks, chunk by chunk.
    extra = tf.maximum(blocks - 1, 0)
    ends = tf.cumsum(extra)
    total = ends[-1]
    if not chunk:
        static_tri = vertices.shape[0] * faces.shape[0] if vertices.shape[0] else None
        chunk = max(static_tri // 4, 1024) if static_tri else 4096
    chunk_size = int(chunk)

    starts = ends - extra
    tri_index = tf.range(num_tri, dtype=tf.int32)

    def body(start, zbuf):
        # Items start .. start + chunk_size - 1 of the concatenated extra-block ranges.
        # Mark where each range that meets the chunk begins in it, then spread every
        # mark forward to the next (a cumulative max done with cumsum and segments).
        # tf.searchsorted would do this, but XLA lowers it to a [chunk, T] comparison.
        meets = (extra > 0) & (starts < start + chunk_size) & (ends > start)
        slot = tf.where(meets, tf.maximum(starts - start, 0), chunk_size)
        mark = tf.math.unsorted_segment_max(tri_index, slot, chunk_size + 1)[:-1]
        is_mark = mark >= 0
        group = tf.cumsum(tf.cast(is_mark, tf.int32)) - 1
        group_tri = tf.math.unsorted_segment_max(
            mark, tf.where(is_mark, group, chunk_size), chunk_size + 1)
        item = start + tf.range(chunk_size, dtype=tf.int32)
        used = item < total
        tri = tf.where(used, tf.gather(group_tri, tf.maximum(group, 0)), 0)
        block = item - tf.gather(starts, tri) + 1
        return start + chunk_size, tf.minimum(zbuf, keys_for(tri, block, used))

    _, zbuf = tf.while_loop(lambda start, _: start < total, body,
                            (tf.constant(0, tf.int32), zbuf))
    face_id = tf.where(zbuf == _EMPTY_KEY, -1,
                       tf.cast(zbuf & tf.constant(0xFFFFFFFF, tf.int64), tf.int32))
    return tf.reshape(face_id, [batch, height, width])


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
