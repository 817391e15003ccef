"""The canonical depth as a mesh: one vertex per pixel centre, two triangles per pixel
quad, the fixed border columns trimmed; written as OBJ (+ MTL and texture PNG) and
binary glTF (GLB) with trimesh. x right, y up, facing +z, camera units."""

import os

import numpy as np

from tfsym3d.io.images import to_uint8

BORDER_TRIM = 2  # pixels trimmed from each side of the mesh (the fixed border columns)


def camera_fields(renderer):
    """What mesh_arrays reads of the camera, as the phone page's mesh.js reads it from a
    model card's or reconstruct's shape.js: {"rot_center_depth", "intrinsics" (3x3)}."""
    return {"rot_center_depth": renderer.rot_center_depth,
            "intrinsics": np.asarray(renderer.K).tolist()}


def mesh_arrays(canon_depth, renderer, trim=BORDER_TRIM):
    """The canonical depth as a mesh: one vertex per pixel centre, two triangles per quad,
    `trim` pixels dropped on every side.

    Args:
      canon_depth: [H, W] camera units.
      renderer: the model's Renderer (for the camera).

    Returns:
      vertices [V, 3] (x right, y up, z towards the viewer, centred on the rotation
      centre; camera units), faces [F, 3] int (counter-clockwise seen from the front),
      uv [V, 2] (texel centres of the trimmed texture, v up),
      with V = (H - 2 trim)(W - 2 trim) and F = 2 (H - 2 trim - 1)(W - 2 trim - 1).
    """
    h, w = canon_depth.shape
    pts = renderer.depth_to_3d_grid(np.asarray(canon_depth, np.float32)[None]).numpy()[0]
    sl = slice(trim, h - trim), slice(trim, w - trim)
    pts = pts[sl[0], sl[1]]
    hh, ww = pts.shape[:2]
    vertices = pts.reshape(-1, 3) * np.array([1.0, -1.0, -1.0])
    vertices[:, 2] += renderer.rot_center_depth
    idx = np.arange(hh * ww).reshape(hh, ww)
    a, b = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()
    c, d = idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    # In the flipped (y up) frame the image's row order reverses, so (a, c, b) and
    # (b, c, d) run counter-clockwise seen from +z.
    faces = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])
    u = (np.arange(ww) + 0.5) / ww
    v = 1.0 - (np.arange(hh) + 0.5) / hh
    uv = np.stack(np.meshgrid(u, v), -1).reshape(-1, 2)
    return vertices.astype(np.float32), faces.astype(np.int64), uv.astype(np.float32)


def write_mesh(folder, canon_depth, texture, renderer, trim=BORDER_TRIM):
    """Writes mesh.obj, mesh.mtl, texture.png and mesh.glb. texture [H, W, 3] in [0, 1]
    (trimmed like the mesh)."""
    import trimesh
    from PIL import Image

    vertices, faces, uv = mesh_arrays(canon_depth, renderer, trim)
    h, w = canon_depth.shape
    image = Image.fromarray(to_uint8(texture[trim:h - trim, trim:w - trim]))
    material = trimesh.visual.material.SimpleMaterial(image=image, name="texture")
    visual = trimesh.visual.TextureVisuals(uv=uv, image=image, material=material)
    mesh = trimesh.Trimesh(vertices, faces, visual=visual, process=False)
    text, files = trimesh.exchange.obj.export_obj(
        mesh, include_normals=False, include_texture=True, return_texture=True,
        mtl_name="mesh.mtl", header="tfsym3d canonical shape")
    with open(os.path.join(folder, "mesh.obj"), "w") as f:
        f.write(text)
    # The texture is written as texture.png whatever trimesh calls it.
    pngs = [n for n in files if n.lower().endswith(".png")]
    for name, data in files.items():
        if name in pngs:
            name = "texture.png"
        elif name.endswith(".mtl"):
            for png in pngs:
                data = data.replace(png.encode(), b"texture.png")
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
    glb = trimesh.exchange.gltf.export_glb(trimesh.Scene(mesh))
    with open(os.path.join(folder, "mesh.glb"), "wb") as f:
        f.write(glb)
    return glb
