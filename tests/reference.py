"""Independent numpy references used by the tests (float64, brute force, no TensorFlow).

Written from the definitions, not from the code under test: a per-triangle z-buffer that
tests every pixel centre of each triangle's bounding box with the textbook edge functions,
and a per-pixel bilinear sampler with PyTorch's align_corners=True / zeros semantics.
"""

import math

import numpy as np


def intrinsics(size, fov):
    c = (size - 1) / 2.0
    f = c / math.tan(math.radians(fov) / 2.0)
    return np.array([[f, 0, c], [0, f, c], [0, 0, 1]], np.float64)


def rotation(rx, ry, rz):
    cx, sx, cy, sy, cz, sz = (math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry),
                              math.cos(rz), math.sin(rz))
    m_x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    m_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    m_z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return m_z @ m_y @ m_x


def grid_mesh(depth, K):
    """Vertices [H*W, 3] of a depth map and faces [2(H-1)(W-1), 3] of its pixel grid."""
    h, w = depth.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    x = (u - K[0, 2]) / K[0, 0] * depth
    y = (v - K[1, 2]) / K[1, 1] * depth
    verts = np.stack([x, y, depth], -1).reshape(-1, 3)
    faces = []
    for i in range(h - 1):
        for j in range(w - 1):
            a, b, c, d = i * w + j, i * w + j + 1, (i + 1) * w + j, (i + 1) * w + j + 1
            faces.append((a, c, b))
            faces.append((b, c, d))
    return verts, np.array(faces, np.int64)


def view_transform(points, view, centre):
    rot = rotation(*view[:3])
    c = np.array([0.0, 0.0, centre])
    return (points - c) @ rot.T + c + np.asarray(view[3:6])


def project_triangle(tri, K, near):
    """A triangle [3, 3] projected: (u [3], v [3] in pixels, z [3], twice its signed
    area in square pixels), or None when it is not drawn (a vertex at z <= near or not
    finite, or an area below 1e-10)."""
    tri = np.asarray(tri, np.float64)
    z = tri[:, 2]
    if np.any(z <= near) or not np.all(np.isfinite(tri)):
        return None
    u = K[0, 0] * tri[:, 0] / z + K[0, 2]
    v = K[1, 1] * tri[:, 1] / z + K[1, 2]
    area = (u[1] - u[0]) * (v[2] - v[0]) - (u[2] - u[0]) * (v[1] - v[0])
    return None if abs(area) < 1e-10 else (u, v, z, area)


def zbuffer(verts, faces, K, height, width, near=1e-3):
    """Brute-force z-buffer of one mesh.

    Returns depth [H, W] (inf where empty) and face id [H, W] (-1 where empty).
    """
    depth = np.full((height, width), np.inf)
    face_id = np.full((height, width), -1, np.int64)
    for f, idx in enumerate(faces):
        projected = project_triangle(verts[idx], K, near)
        if projected is None:
            continue
        u, v, z, area = projected
        x0, x1 = max(math.ceil(u.min() - 1e-6), 0), min(math.floor(u.max() + 1e-6), width - 1)
        y0, y1 = max(math.ceil(v.min() - 1e-6), 0), min(math.floor(v.max() + 1e-6), height - 1)
        if x0 > x1 or y0 > y1:
            continue
        py, px = np.mgrid[y0:y1 + 1, x0:x1 + 1].astype(np.float64)
        # Edge function of the edge opposite each vertex, normalised by the area.
        lam = []
        for i in range(3):
            j, k = (i + 1) % 3, (i + 2) % 3
            lam.append(((u[j] - px) * (v[k] - py) - (u[k] - px) * (v[j] - py)) / area)
        lam = np.stack(lam)
        inside = np.all(lam >= -1e-7, axis=0)
        zpix = 1.0 / np.tensordot(1.0 / z, lam, axes=1)
        closer = inside & (zpix < depth[y0:y1 + 1, x0:x1 + 1])
        depth[y0:y1 + 1, x0:x1 + 1][closer] = zpix[closer]
        face_id[y0:y1 + 1, x0:x1 + 1][closer] = f
    return depth, face_id


def zbuffer_points(verts, faces, K, pu, pv, near=1e-3):
    """Brute-force depth of one mesh at arbitrary image points (u, v in pixels, any shape):
    every triangle is tested against every point. Returns depth of pu's shape, inf where
    no triangle covers the point."""
    pu, pv = np.asarray(pu, np.float64), np.asarray(pv, np.float64)
    depth = np.full(pu.shape, np.inf)
    for idx in faces:
        projected = project_triangle(verts[idx], K, near)
        if projected is None:
            continue
        u, v, z, area = projected
        near_box = ((pu >= u.min() - 1e-6) & (pu <= u.max() + 1e-6)
                    & (pv >= v.min() - 1e-6) & (pv <= v.max() + 1e-6))
        if not near_box.any():
            continue
        qu, qv = pu[near_box], pv[near_box]
        lam = np.stack([((u[(i + 1) % 3] - qu) * (v[(i + 2) % 3] - qv)
                         - (u[(i + 2) % 3] - qu) * (v[(i + 1) % 3] - qv)) / area
                        for i in range(3)])
        inside = np.all(lam >= -1e-7, axis=0)
        zq = 1.0 / np.tensordot(1.0 / z, lam, axes=1)
        cur = depth[near_box]
        cur = np.where(inside & (zq < cur), zq, cur)
        depth[near_box] = cur
    return depth


def neural_renderer_depth(verts, faces, K, size, supersample, offset, far, clamp):
    """The depth image that neural_renderer's render_depth gives (as the authors use it),
    written from its definition: output pixel (i, j) averages supersample^2 samples at
    u = j + offset + (k + 0.5) / supersample - 0.5 (v likewise with i); an empty sample
    counts as `far`; the mean is clipped to clamp = (lo, hi)."""
    s = supersample
    sub = (np.arange(s) + 0.5) / s - 0.5 + offset
    cols = (np.arange(size)[:, None] + sub[None, :]).reshape(-1)  # [S * s]
    pv, pu = np.meshgrid(cols, cols, indexing="ij")
    z = zbuffer_points(verts, faces, K, pu, pv)
    z = np.where(np.isfinite(z), z, far)
    z = z.reshape(size, s, size, s).mean(axis=(1, 3))
    return np.clip(z, *clamp)


def normals_authors(depth, K, eps=1e-7):
    """The authors' normals of a depth map: central-difference cross product divided by
    (norm + eps), border (0, 0, 1)."""
    verts, _ = grid_mesh(depth, K)
    g = verts.reshape(depth.shape + (3,))
    tu = g[1:-1, 2:] - g[1:-1, :-2]
    tv = g[2:, 1:-1] - g[:-2, 1:-1]
    n = np.cross(tu, tv)
    n = n / (np.linalg.norm(n, axis=-1, keepdims=True) + eps)
    out = np.zeros(depth.shape + (3,))
    out[..., 2] = 1.0
    out[1:-1, 1:-1] = n
    return out


def bilinear_sample(image, grid):
    """image [H, W, C], grid [Ho, Wo, 2] in [-1, 1] -> [Ho, Wo, C], zeros outside."""
    h, w, c = image.shape
    out = np.zeros(grid.shape[:2] + (c,))
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            x = (grid[i, j, 0] + 1) / 2 * (w - 1)
            y = (grid[i, j, 1] + 1) / 2 * (h - 1)
            xf, yf = math.floor(x), math.floor(y)
            for dy in (0, 1):
                for dx in (0, 1):
                    xx, yy = xf + dx, yf + dy
                    wgt = (1 - abs(x - xx)) * (1 - abs(y - yy))
                    if 0 <= xx < w and 0 <= yy < h:
                        out[i, j] += wgt * image[yy, xx]
    return out


def smooth_depth(rng, size, amplitude=0.05, terms=4):
    """A random smooth depth map around 1: a sum of low-frequency cosines."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1.0)
    d = np.ones((size, size))
    for k in range(terms):
        for m in range(terms):
            d += (amplitude / terms * rng.uniform(-1, 1)
                  * np.cos(math.pi * (k * xx + m * yy) + rng.uniform(0, 2 * math.pi)))
    return d
