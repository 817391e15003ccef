"""The canonical depth as a mesh (tfsym3d.reconstruct.mesh): vertex positions against the
camera's back-projection computed by hand, faces towards the viewer, and the written
OBJ and GLB read back by trimesh holding the same shape and texture."""

import numpy as np
import pytest

from tfsym3d.reconstruct import mesh
from tfsym3d.renderer import Renderer

S = 64  # configs/tiny.yaml
TRIM = mesh.BORDER_TRIM


def test_mesh_layout_matches_the_camera_and_faces_the_viewer():
    r = Renderer(S)
    depth = np.full([S, S], 1.05, np.float32)
    depth[10, 20] = 0.95
    v, f, uv = mesh.mesh_arrays(depth, r)
    n = S - 2 * TRIM
    assert v.shape == (n * n, 3) and f.shape == (2 * (n - 1) ** 2, 3) and uv.shape == (n * n, 2)
    # Pixel (row 10, col 20) -> vertex (10 - TRIM) * n + (20 - TRIM): x right, y up,
    # z towards the viewer about the rotation centre.
    fx, c = r.K[0, 0], r.K[0, 2]
    k = (10 - TRIM) * n + (20 - TRIM)
    assert v[k] == pytest.approx([(20 - c) / fx * 0.95, -(10 - c) / fx * 0.95, 1.0 - 0.95],
                                 abs=1e-6)
    assert uv[k] == pytest.approx([(20 - TRIM + 0.5) / n, 1 - (10 - TRIM + 0.5) / n])
    # A flat depth: every triangle's normal points at the viewer (+z).
    flat, faces, _ = mesh.mesh_arrays(np.ones([S, S], np.float32), r)
    a, b, cc = flat[faces[:, 0]], flat[faces[:, 1]], flat[faces[:, 2]]
    normals = np.cross(b - a, cc - a)
    assert (normals[:, 2] > 0).all()


def test_written_files_hold_the_arrays_and_the_texture(tmp_path):
    trimesh = pytest.importorskip("trimesh")
    r = Renderer(S)
    yy, xx = np.mgrid[:S, :S]
    depth = (1.0 + 0.05 * np.cos(xx / 9.0) * np.sin(yy / 7.0)).astype(np.float32)
    texture = np.zeros([S, S, 3], np.float32)
    texture[..., 0] = xx / (S - 1)  # red grows to the right, green downwards
    texture[..., 1] = yy / (S - 1)
    mesh.write_mesh(str(tmp_path), depth, texture, r)
    v, f, _ = mesh.mesh_arrays(depth, r)
    n = S - 2 * TRIM
    obj = trimesh.load(tmp_path / "mesh.obj", process=False)
    np.testing.assert_allclose(obj.vertices, v, atol=1e-6)
    np.testing.assert_array_equal(obj.faces, f)
    png = np.asarray(obj.visual.material.image.convert("RGB"), np.float32) / 255
    assert png.shape == (n, n, 3)
    np.testing.assert_allclose(png, texture[TRIM:S - TRIM, TRIM:S - TRIM], atol=1 / 255)
    (glb,) = trimesh.load(tmp_path / "mesh.glb", process=False).geometry.values()
    np.testing.assert_allclose(glb.vertices, v, atol=1e-6)
    np.testing.assert_array_equal(glb.faces, f)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mesh.glb", "mesh.mtl", "mesh.obj",
                                                         "texture.png"]
