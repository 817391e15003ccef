"""Depth maps as meshes: unprojection, warping between views, normals, sampling.

All functions are batched and pure; `Renderer` only holds the camera constants of an
experiment. Depth maps are float32 [B, H, W] in camera units (z, not distance), images
are NHWC float32, views are [B, 6] (radians, camera units; see camera.py).
"""

import numpy as np
import tensorflow as tf

from tfsym3d.renderer import camera
from tfsym3d.renderer.camera import as_float
from tfsym3d.renderer.rasterize import interpolate, rasterize
from tfsym3d.renderer.xla import fuse


def depth_to_3d_grid(depth, K):
    """Unprojects every pixel centre of a depth map.

    Args:
      depth: float tensor of shape [B, H, W], z in camera units.
      K: intrinsics of shape [3, 3].

    Returns:
      Float tensor of shape [B, H, W, 3], camera-space points (x, y, z).
    """
    depth = _check_depth(depth)
    K = as_float(K)
    h, w = tf.shape(depth)[1], tf.shape(depth)[2]
    v, u = tf.meshgrid(tf.range(h, dtype=tf.float32), tf.range(w, dtype=tf.float32),
                       indexing="ij")
    x = (u - K[0, 2]) / K[0, 0] * depth
    y = (v - K[1, 2]) / K[1, 1] * depth
    return tf.stack([x, y, depth], axis=-1)


def grid_3d_to_2d(points, K, height, width):
    """Projects camera-space points to normalised image coordinates.

    Args:
      points: float tensor of shape [..., 3], z > 0.
      K: intrinsics of shape [3, 3].
      height, width: image size in pixels.

    Returns:
      Float tensor of shape [..., 2]: (x, y), -1 and 1 at the centres of the first and
      last pixel (align_corners=True).
    """
    uv = camera.project(points, K)
    scale = tf.constant([width - 1, height - 1], tf.float32)
    return uv / scale * 2.0 - 1.0


def grid_faces(height, width):
    """Triangles of a pixel-grid mesh: two per quad of neighbouring pixel centres.

    Vertex index of pixel (row i, column j) is i * width + j. The first half of the faces
    are (top-left, bottom-left, top-right), the second half (top-right, bottom-left,
    bottom-right), as in the authors' code.

    Returns:
      int32 numpy array of shape [2 * (height - 1) * (width - 1), 3].
    """
    idx = np.arange(height * width, dtype=np.int32).reshape(height, width)
    tl, tr = idx[:-1, :-1], idx[:-1, 1:]
    bl, br = idx[1:, :-1], idx[1:, 1:]
    faces1 = np.stack([tl, bl, tr], axis=-1).reshape(-1, 3)
    faces2 = np.stack([tr, bl, br], axis=-1).reshape(-1, 3)
    return np.concatenate([faces1, faces2], axis=0)


# The authors' renderer's EPS: their normals are n / (|n| + NORMAL_EPS).
NORMAL_EPS = 1e-7
# Depth that neural_renderer gives an empty sub-sample before its anti-aliasing average:
# its far plane, the authors' renderer_max_depth (camera units).
SUPERSAMPLE_FAR = 10.0


def sampling_intrinsics(K, supersample=1, pixel_offset=0.0):
    """Intrinsics that make a rasterizer sample a depth map's image at sub-pixel points.

    Output pixel (row i, column j) of an S x S image is covered by s x s samples at
    u = j + pixel_offset + (k + 0.5) / s - 0.5, k = 0..s-1 (v likewise with i). A
    rasterizer that samples pixel centres at integers, given the returned K on an sS x sS
    image, samples exactly those points: u_s = s * (u - pixel_offset) + (s - 1) / 2.

    neural_renderer (the authors' renderer) samples at pixel_offset 0.5 (its pixel j sits
    at u = j + 0.5 of the K that the authors' warps use, where pixel j is u = j) and, with
    its default anti-aliasing, at supersample 2 (sub-samples at j + 0.25 and j + 0.75).

    Args:
      K: [3, 3] numpy intrinsics (camera.intrinsics).
      supersample: s, samples per pixel along each axis (>= 1).
      pixel_offset: where the samples are centred, in pixels right of and below the
        pixel's integer coordinate.

    Returns:
      [3, 3] float32 numpy intrinsics for an (sH, sW) image.
    """
    K = np.asarray(K, np.float64)
    s = int(supersample)
    out = K.copy()
    out[0, 0], out[1, 1] = s * K[0, 0], s * K[1, 1]
    out[0, 2] = s * (K[0, 2] - pixel_offset) + (s - 1) / 2.0
    out[1, 2] = s * (K[1, 2] - pixel_offset) + (s - 1) / 2.0
    return out.astype(np.float32)


def get_normal_from_depth(depth, K, normalisation="unit"):
    """Surface normals of a depth map.

    The cross product of central differences of the unprojected grid (horizontal x
    vertical), normalised; the one-pixel border gets (0, 0, 1). A fronto-parallel plane
    has normal (0, 0, 1), pointing away from the camera (the authors' convention).

    normalisation "unit": n * rsqrt(max(|n|^2, 1e-14)), unit vectors (|n|^2 is ~1e-9 on
    a 64 px face; adding 1e-14 instead of the max would shorten them by 5e-6, 0.26
    degrees between identical maps). rsqrt has an integer kernel in TFLite; a quantised
    DIV by a norm whose range starts at 0 fails at run time.
    normalisation "authors": n / (|n| + 1e-7), as the authors' renderer divides. The two
    are NOT the same: at 64 px and a 10-degree field of view the cross product of a
    surface at depth 1 has a norm of 4 / f^2 ~ 3.1e-5 (f ~ 360 px), so the authors'
    normals are ~0.3% short, and the dot product of two identical normals is ~0.9935:
    ~6.5 degrees apart.

    Args:
      depth: float tensor of shape [B, H, W].
      K: intrinsics of shape [3, 3].
      normalisation: "unit" or "authors".

    Returns:
      Float tensor of shape [B, H, W, 3]: unit vectors ("unit") or slightly shorter
      ("authors").
    """
    grid = depth_to_3d_grid(depth, K)
    tu = grid[:, 1:-1, 2:] - grid[:, 1:-1, :-2]
    tv = grid[:, 2:, 1:-1] - grid[:, :-2, 1:-1]
    # The cross product written out: tf.linalg.cross has no TFLite builtin.
    ux, uy, uz = tu[..., 0], tu[..., 1], tu[..., 2]
    vx, vy, vz = tv[..., 0], tv[..., 1], tv[..., 2]
    normal = tf.stack([uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx], axis=-1)
    normal = tf.pad(normal, [[0, 0], [1, 1], [1, 1], [0, 0]])
    border = tf.pad(tf.zeros_like(normal[..., :1][:, 1:-1, 1:-1]),
                    [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=1.0)
    normal = normal + border * tf.constant([0.0, 0.0, 1.0])
    squared = tf.reduce_sum(tf.square(normal), -1, keepdims=True)
    if normalisation == "authors":
        return normal / (tf.sqrt(squared) + NORMAL_EPS)
    if normalisation != "unit":
        raise ValueError(f"normalisation must be 'unit' or 'authors'; got {normalisation!r}")
    return normal * tf.math.rsqrt(tf.maximum(squared, 1e-14))


def grid_sample(image, grid):
    """Bilinear sampling with align_corners=True semantics and zeros outside.

    Matches torch.nn.functional.grid_sample(mode='bilinear', padding_mode='zeros',
    align_corners=True): grid x = -1 and 1 are the centres of the first and last column.
    Each of the four neighbours that lies outside the image contributes zero; non-finite
    grid coordinates give zeros. Differentiable with respect to image and grid.

    Args:
      image: float tensor of shape [B, H, W, C].
      grid: float tensor of shape [B, Ho, Wo, 2], (x, y) in [-1, 1].

    Returns:
      Float tensor of shape [B, Ho, Wo, C].
    """
    image = as_float(image)
    grid = as_float(grid)
    if image.shape.rank != 4:
        raise ValueError(f"image must have shape [B, H, W, C]; got {image.shape}")
    if grid.shape.rank != 4 or grid.shape[-1] != 2:
        raise ValueError(f"grid must have shape [B, Ho, Wo, 2]; got {grid.shape}")
    shape = tf.shape(image)
    b, h, w, c = shape[0], shape[1], shape[2], shape[3]
    finite = tf.reduce_all(tf.math.is_finite(grid), axis=-1)
    grid = tf.where(finite[..., None], grid, -2.0)  # far outside: every corner is zero
    grid = tf.clip_by_value(grid, -2.0, 2.0)
    x = (grid[..., 0] + 1.0) * 0.5 * tf.cast(w - 1, tf.float32)
    y = (grid[..., 1] + 1.0) * 0.5 * tf.cast(h - 1, tf.float32)
    x0f, y0f = tf.floor(x), tf.floor(y)
    wx1, wy1 = x - x0f, y - y0f
    wx0, wy0 = 1.0 - wx1, 1.0 - wy1
    x0, y0 = tf.cast(x0f, tf.int32), tf.cast(y0f, tf.int32)
    flat = tf.reshape(image, [b, h * w, c])
    out_shape = tf.concat([tf.shape(grid)[:3], [c]], axis=0)

    def corner(xi, yi, weight):
        inside = (xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1)
        idx = tf.clip_by_value(yi, 0, h - 1) * w + tf.clip_by_value(xi, 0, w - 1)
        vals = tf.gather(flat, tf.reshape(idx, [b, -1]), batch_dims=1)
        vals = tf.reshape(vals, out_shape)
        return vals * (weight * tf.cast(inside, tf.float32))[..., None]

    return (corner(x0, y0, wx0 * wy0) + corner(x0 + 1, y0, wx1 * wy0)
            + corner(x0, y0 + 1, wx0 * wy1) + corner(x0 + 1, y0 + 1, wx1 * wy1))


class Renderer:
    """The camera of an experiment and the warps the model needs.

    Args:
      image_size: S, square image side in pixels.
      fov: full field of view in degrees.
      min_depth, max_depth: range of canonical depth, camera units.
      rot_center_depth: depth of the point views rotate about (default: the middle of
        the depth range).
      xla: rasterize visibility with XLA (see rasterize); same results.
      fused: compile the differentiable per-pixel arithmetic (normals, bilinear
        sampling, the rasterizer's depth and barycentrics) with XLA; same values up to
        float rounding, about 2-3x faster forward and backward on CPU. Turn it off where
        XLA is not available (e.g. when exporting to TFLite or ONNX).
      normalisation: how get_normal_from_depth normalises by default: "unit" (exact unit
        normals) or "authors" (n / (|n| + 1e-7), as the authors' renderer does).
      depth_supersample, pixel_offset: where warp_canon_depth samples the mesh (see
        sampling_intrinsics). 1 and 0.0 sample each pixel once at its integer
        coordinate, the grid the warps use; 2 and 0.5 are neural_renderer's behaviour
        (the authors' models were trained through it).

    Example:
      >>> r = Renderer(image_size=64)
      >>> canon_depth = tf.ones([2, 64, 64])
      >>> view = tf.zeros([2, 6])
      >>> recon_depth = r.warp_canon_depth(canon_depth, view)   # [2, 64, 64]
    """

    def __init__(self, image_size=64, fov=10.0, min_depth=0.9, max_depth=1.1,
                 rot_center_depth=None, xla=False, fused=True, normalisation="unit",
                 depth_supersample=1, pixel_offset=0.0):
        self.image_size = int(image_size)
        self.fov = float(fov)
        self.min_depth = float(min_depth)
        self.max_depth = float(max_depth)
        if rot_center_depth is None:
            rot_center_depth = (self.min_depth + self.max_depth) / 2.0
        self.rot_center_depth = float(rot_center_depth)
        self.xla = bool(xla)
        self.fused = bool(fused)
        if normalisation not in ("unit", "authors"):
            raise ValueError(f"normalisation must be 'unit' or 'authors'; got {normalisation!r}")
        if int(depth_supersample) < 1:
            raise ValueError(f"depth_supersample must be >= 1; got {depth_supersample}")
        self.normalisation = normalisation
        self.depth_supersample = int(depth_supersample)
        self.pixel_offset = float(pixel_offset)
        self.K = intrinsics = camera.intrinsics(self.image_size, self.fov)
        self.inv_K = np.linalg.inv(intrinsics).astype(np.float32)
        self.faces = grid_faces(self.image_size, self.image_size)

    @property
    def margin(self):
        """Slack allowed around the depth range in recon_depth: half the range."""
        return (self.max_depth - self.min_depth) / 2.0

    @property
    def background_depth(self):
        """Depth given to pixels where no surface is seen: max_depth + margin."""
        return self.max_depth + self.margin

    def seen(self, depth):
        """1.0 where a depth map from warp_canon_depth sees the surface (below
        background_depth), else 0.0: [B, H, W] -> [B, H, W] float32."""
        return tf.cast(depth < self.background_depth, tf.float32)

    def get_config(self):
        return {"image_size": self.image_size, "fov": self.fov,
                "min_depth": self.min_depth, "max_depth": self.max_depth,
                "rot_center_depth": self.rot_center_depth, "xla": self.xla,
                "fused": self.fused, "normalisation": self.normalisation,
                "depth_supersample": self.depth_supersample,
                "pixel_offset": self.pixel_offset}

    def depth_to_3d_grid(self, depth):
        """[B, H, W] -> [B, H, W, 3] camera-space points."""
        return depth_to_3d_grid(depth, self.K)

    def get_warped_3d_grid(self, depth, view):
        """Unprojects depth and applies view: [B, H, W], [B, 6] -> [B, H, W, 3]."""
        grid = self.depth_to_3d_grid(depth)
        pts = camera.transform_points(tf.reshape(grid, [tf.shape(grid)[0], -1, 3]), view,
                                      self.rot_center_depth)
        return tf.reshape(pts, tf.shape(grid))

    def get_inv_warped_3d_grid(self, depth, view):
        """Unprojects depth and undoes view: [B, H, W], [B, 6] -> [B, H, W, 3]."""
        grid = self.depth_to_3d_grid(depth)
        pts = camera.inverse_transform_points(
            tf.reshape(grid, [tf.shape(grid)[0], -1, 3]), view, self.rot_center_depth)
        return tf.reshape(pts, tf.shape(grid))

    def get_warped_2d_grid(self, depth, view):
        """Where each pixel of the canonical depth lands in the view, normalised:
        [B, H, W], [B, 6] -> [B, H, W, 2] (x then y in [-1, 1])."""
        h, w = depth.shape[1], depth.shape[2]
        return grid_3d_to_2d(self.get_warped_3d_grid(depth, view), self.K, h, w)

    def get_inv_warped_2d_grid(self, depth, view):
        """Where each pixel of a depth map seen from `view` comes from in the canonical
        image, normalised: [B, H, W], [B, 6] -> [B, H, W, 2] (x then y in [-1, 1])."""
        h, w = depth.shape[1], depth.shape[2]
        return grid_3d_to_2d(self.get_inv_warped_3d_grid(depth, view), self.K, h, w)

    def warp_canon_depth(self, canon_depth, view):
        """Depth of the canonical depth mesh seen from view (the recon_depth).

        The mesh of canon_depth (two triangles per pixel quad) is transformed by view and
        z-buffered; the result is clamped to [min_depth - margin, max_depth + margin] and
        pixels where nothing is seen take max_depth + margin. Differentiable with respect
        to canon_depth and view through the depth of the visible triangle.

        With depth_supersample s > 1 each pixel is the mean of its s x s sub-samples (see
        sampling_intrinsics), an empty one counting as SUPERSAMPLE_FAR before the clamp:
        a pixel with any empty sub-sample ends up at max_depth + margin, as in the
        authors' code.

        Args:
          canon_depth: float tensor of shape [B, H, W].
          view: float tensor of shape [B, 6|5|3].

        Returns:
          Float tensor of shape [B, H, W].
        """
        canon_depth = _check_depth(canon_depth)
        h, w = canon_depth.shape[1], canon_depth.shape[2]
        grid = self.get_warped_3d_grid(canon_depth, view)
        verts = tf.reshape(grid, [tf.shape(grid)[0], -1, 3])
        s = self.depth_supersample
        K = self.K if (s, self.pixel_offset) == (1, 0.0) else \
            sampling_intrinsics(self.K, s, self.pixel_offset)
        depth = rasterize(verts, self._faces_for(h, w), K, (s * h, s * w), xla=self.xla,
                          fused=self.fused)["depth"]
        if s > 1:
            depth = tf.where(tf.math.is_finite(depth), depth, SUPERSAMPLE_FAR)
            depth = tf.nn.avg_pool2d(depth[..., None], s, s, "VALID")[..., 0]
        return tf.clip_by_value(depth, self.min_depth - self.margin, self.background_depth)

    def get_normal_from_depth(self, depth, normalisation=None):
        """[B, H, W] -> [B, H, W, 3] normals (see get_normal_from_depth); normalisation
        None: the renderer's."""
        fn = _get_normal_from_depth_xla if self.fused else get_normal_from_depth
        return fn(_check_depth(depth), self.K, normalisation or self.normalisation)

    def grid_sample(self, image, grid):
        """Bilinear sampling (see grid_sample): [B, H, W, C], [B, Ho, Wo, 2] ->
        [B, Ho, Wo, C]."""
        return (_grid_sample_xla if self.fused else grid_sample)(image, grid)

    def render_view(self, image, canon_depth, view, background=0.0):
        """Renders the canonical depth mesh textured with image from another view.

        Each vertex (a pixel centre of canon_depth) carries its pixel's colour; colours are
        interpolated perspective-correctly across the visible triangle.

        Args:
          image: float tensor of shape [B, H, W, C], the canonical texture.
          canon_depth: float tensor of shape [B, H, W].
          view: float tensor of shape [B, 6|5|3].
          background: value of pixels where no surface is seen.

        Returns:
          (rendered [B, H, W, C], mask [B, H, W] float32, 1 where a surface is seen).
        """
        canon_depth = _check_depth(canon_depth)
        image = as_float(image)
        h, w = canon_depth.shape[1], canon_depth.shape[2]
        faces = self._faces_for(h, w)
        grid = self.get_warped_3d_grid(canon_depth, view)
        b = tf.shape(grid)[0]
        rast = rasterize(tf.reshape(grid, [b, -1, 3]), faces, self.K, (h, w), xla=self.xla,
                         fused=self.fused)
        colours = tf.reshape(image, [b, h * w, tf.shape(image)[-1]])
        out = interpolate(colours, rast, faces)
        mask = rast["face_id"] >= 0
        out = tf.where(mask[..., None], out, tf.cast(background, tf.float32))
        return out, tf.cast(mask, tf.float32)

    def _faces_for(self, h, w):
        if (h, w) == (self.image_size, self.image_size):
            return self.faces
        return grid_faces(h, w)


def _check_depth(depth):
    depth = as_float(depth)
    if depth.shape.rank != 3:
        raise ValueError(f"depth must have shape [B, H, W]; got {depth.shape}")
    if depth.shape[1] is None or depth.shape[2] is None:
        raise ValueError(f"depth must have a static height and width; got {depth.shape}")
    return depth


_get_normal_from_depth_xla = fuse(get_normal_from_depth)
_grid_sample_xla = fuse(grid_sample)
