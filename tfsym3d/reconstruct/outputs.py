"""The files `tfsym3d reconstruct` writes: every map of one image into its folder
(see tfsym3d.commands.reconstruct for the list), looping GIFs, and the index.html page."""

import base64
import html
import json
import math
import os
import shutil
import tempfile

import numpy as np

from tfsym3d.io.depth import depth_png16
from tfsym3d.io.images import to_uint8
from tfsym3d.reconstruct.mesh import camera_fields, write_mesh
from tfsym3d.reconstruct.pictures import conf_images, depth_image, normal_image

GIF_SCALE = 2
# Written into every image folder: a folder holding it is reconstruct's own, which a
# later run may replace; any other folder is left alone.
MARKER = ".tfsym3d-reconstruct"
# The files reconstruct writes into out/ itself (no image folder may take these names).
TOP_FILES = ("index.html", "contact_sheet.png", "shape_viewer.js",
             "glb_viewer.js")  # glb_viewer.js: the viewer of versions before 2026-12-06
# The files of an image folder (a folder from before the marker is reconstruct's own
# when it holds params.json and nothing but these).
IMAGE_FILES = frozenset((
    "input.png", "canon_depth.png", "recon_depth.png", "canon_depth16.png",
    "recon_depth16.png", "canon_depth.npy", "recon_depth.npy", "canon_normal.png",
    "recon_normal.png", "albedo.png", "shading.png", "canon_image.png", "recon_image.png",
    "conf_l1.png", "conf_l1_flip.png", "symmetry.png", "params.json", "mesh.obj",
    "mesh.mtl", "texture.png", "mesh.glb", "shape.js", "rotate.gif", "relight.gif",
    "mesh.glb.js",  # the viewer's data before 2026-12-06
    MARKER))


def save_png(path, image):
    """Writes [H, W, 3] in [0, 1] (or uint8 / uint16 as they are) as a PNG."""
    from PIL import Image

    Image.fromarray(image if image.dtype in (np.uint8, np.uint16) else to_uint8(image)).save(
        path, format="PNG")


def save_gif(path, frames, duration_ms=80):
    """frames [T, H, W, 3] in [0, 1] -> an endlessly looping GIF, scaled GIF_SCALE x."""
    from PIL import Image

    # Fast octree quantisation: Pillow's default (median cut) on every frame costs ~10x.
    ims = [Image.fromarray(to_uint8(f)).resize(
        (f.shape[1] * GIF_SCALE, f.shape[0] * GIF_SCALE), Image.NEAREST).quantize(
        256, method=Image.Quantize.FASTOCTREE) for f in frames]
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=duration_ms, loop=0)


def params(maps, i, cfg):
    """params.json of image i: light, view (degrees, camera units) and camera."""
    view = maps["view"][i]
    return {
        "light": {"ambient": float(maps["canon_light_a"][i, 0]),
                  "diffuse": float(maps["canon_light_b"][i, 0]),
                  "direction": [float(v) for v in maps["canon_light_d"][i]]},
        "view": {"rotation_degrees": dict(zip(("x_pitch", "y_yaw", "z_roll"),
                                              (math.degrees(float(v)) for v in view[:3]),
                                              strict=True)),
                 "translation": [float(v) for v in view[3:]]},
        "camera": {"fov_degrees": cfg.fov, "min_depth": cfg.min_depth,
                   "max_depth": cfg.max_depth, "rot_center_depth": cfg.rot_center_depth},
    }


def replace_file(path, write):
    """write(temporary path) then the file moved to path: a write that fails half-way (a
    full disk) leaves what was at path before, and no partial file."""
    partial = os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.partial")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def own_folder(folder):
    """True where folder is an image folder reconstruct wrote: nothing in it but
    IMAGE_FILES, with its MARKER (or, from before the marker, params.json). The only
    kind a run replaces: a file the user put there makes the folder the user's."""
    try:
        entries = set(os.listdir(folder))
    except OSError:
        return False
    return entries <= IMAGE_FILES and bool(entries & {MARKER, "params.json"})


def taken(out, name):
    """True where out/name exists and is not reconstruct's own image folder."""
    path = os.path.join(out, name)
    return os.path.lexists(path) and not (os.path.isdir(path) and not os.path.islink(path)
                                          and own_folder(path))


def write_image_outputs(folder, maps, i, cfg, renderer, texture="albedo", mesh=True,
                        gifs=True):
    """Writes every file of image i of a Reconstructor's maps into folder: into a hidden
    sibling folder first, moved into place once all are written (a write that fails
    leaves the previous folder, or none, and raises the OSError). A folder already
    there is replaced only when it is reconstruct's own (own_folder); otherwise
    FileExistsError, and nothing of it is touched."""
    folder = os.path.normpath(folder)
    name = os.path.basename(folder)
    partial = tempfile.mkdtemp(prefix=f".{name}.partial-", dir=os.path.dirname(folder))
    try:
        _write_files(partial, name, maps, i, cfg, renderer, texture, mesh, gifs)
        with open(os.path.join(partial, MARKER), "w") as f:
            f.write("written by tfsym3d reconstruct; a later run may replace this folder\n")
        if os.path.lexists(folder):
            if taken(os.path.dirname(folder), name):
                raise FileExistsError(f"{folder}: not written by tfsym3d reconstruct; "
                                      "left alone")
            shutil.rmtree(folder)
        os.replace(partial, folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _write_files(folder, name, maps, i, cfg, renderer, texture, mesh, gifs):
    lo, hi = cfg.min_depth, cfg.max_depth
    j = os.path.join
    save_png(j(folder, "input.png"), maps["input"][i])
    for key in ("canon_depth", "recon_depth"):  # not `name`: the mesh script needs it
        depth = maps[key][i]
        save_png(j(folder, f"{key}.png"), depth_image(depth, lo, hi))
        save_png(j(folder, f"{key}16.png"), depth_png16(depth, lo, hi))
        np.save(j(folder, f"{key}.npy"), depth.astype(np.float32))
    save_png(j(folder, "canon_normal.png"), normal_image(maps["canon_normal"][i]))
    save_png(j(folder, "recon_normal.png"), normal_image(maps["recon_normal"][i]))
    save_png(j(folder, "albedo.png"), maps["canon_albedo"][i])
    save_png(j(folder, "shading.png"), np.clip(maps["canon_shading"][i][..., 0], 0, 1))
    save_png(j(folder, "canon_image.png"), maps["canon_im"][i])
    save_png(j(folder, "recon_image.png"), maps["recon_im"][i])
    plain, flipped = conf_images(maps["conf_sigma_l1"][i])
    save_png(j(folder, "conf_l1.png"), plain)
    save_png(j(folder, "conf_l1_flip.png"), flipped)
    save_png(j(folder, "symmetry.png"), maps["symmetry"][i])
    with open(j(folder, "params.json"), "w") as f:
        json.dump(params(maps, i, cfg), f, indent=2)
    if mesh:
        tex = maps["canon_im"][i] if texture == "shaded" else maps["canon_albedo"][i]
        write_mesh(folder, maps["canon_depth"][i], tex, renderer)
        write_shape_script(folder, name, maps["canon_depth"][i], tex, renderer)
    if gifs and "rotate_shaded" in maps:
        normals = normal_image(maps["rotate_normal"][i])
        save_gif(j(folder, "rotate.gif"),
                 np.concatenate([maps["rotate_shaded"][i], normals], 2))
        save_gif(j(folder, "relight.gif"), maps["relight"][i])


def write_shape_script(folder, name, canon_depth, texture, renderer):
    """folder/shape.js: what index.html's viewer (the phone page's, shape_viewer.js) needs
    to build and show the canonical shape, as window.TFSYM3D_SHAPES[name] (a page opened
    from disk can fetch no file, so the data comes as a script).

    Args:
      canon_depth: [S, S] camera units (float32 little-endian in the file, base64).
      texture: [S, S, 3] in [0, 1] (uint8 in the file, base64); the viewer trims it as
        the mesh (mesh.BORDER_TRIM).
      renderer: the model's Renderer (mesh.camera_fields: what the viewer's mesh
        builder reads of the camera, as from a model card).
    """
    shape = {"size": int(canon_depth.shape[0]), "camera": camera_fields(renderer),
             "depth": base64.b64encode(canon_depth.astype("<f4").tobytes()).decode(),
             "texture": base64.b64encode(to_uint8(texture).tobytes()).decode()}
    with open(os.path.join(folder, "shape.js"), "w") as f:
        f.write(f"(window.TFSYM3D_SHAPES = window.TFSYM3D_SHAPES || {{}})"
                f"[{json.dumps(name)}] = {json.dumps(shape)};\n")


# --------------------------------------------------------------------------------------
# index.html
# --------------------------------------------------------------------------------------
MAP_FILES = (("input.png", "input"), ("recon_image.png", "reconstruction"),
             ("canon_depth.png", "canonical depth"), ("recon_depth.png", "depth (input view)"),
             ("canon_normal.png", "canonical normal"), ("recon_normal.png",
                                                        "normal (input view)"),
             ("albedo.png", "albedo"), ("shading.png", "shading"),
             ("canon_image.png", "canonical image"), ("conf_l1.png", "confidence"),
             ("conf_l1_flip.png", "confidence (flipped)"), ("symmetry.png", "symmetry plane"))


def write_index(out, names, mesh=True, gifs=True):
    """Writes out/index.html (and the viewer script beside it) showing every output; the
    canonical shapes in the phone page's three.js viewer (bundled as shape_viewer.js by
    mobile_demo/build_viewer.sh), each from its folder's shape.js."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    shutil.copyfile(os.path.join(package, "viewer", "shape_viewer.js"),
                    os.path.join(out, "shape_viewer.js"))
    parts = ["<!doctype html><html><head><meta charset='utf-8'>",
             "<title>tfsym3d reconstructions</title><style>",
             "body{font-family:sans-serif;background:#222;color:#ddd;margin:1em}",
             "figure{display:inline-block;margin:4px;text-align:center;font-size:11px}",
             "img{width:128px;image-rendering:pixelated;display:block}",
             "img.gif{width:auto}.shape{width:256px;height:256px}",
             ".shape canvas{width:100%;height:100%;display:block}",
             "a{color:#9cf}section{border-top:1px solid #555;padding:6px 0}</style>",
             "<script src='shape_viewer.js'></script></head><body>",
             f"<h1>tfsym3d: {len(names)} reconstructions</h1>",
             "<p><img src='contact_sheet.png' style='width:auto'></p>"
             if names else "<p>Nothing was reconstructed.</p>"]
    for name in names:
        q = html.escape(name, quote=True)
        parts.append(f"<section><h2>{html.escape(name)}</h2>")
        for file, label in MAP_FILES:
            parts.append(f"<figure><img src='{q}/{file}'>{label}</figure>")
        if gifs:
            for file, label in (("rotate.gif", "rotation"), ("relight.gif", "relighting")):
                parts.append(f"<figure><img class='gif' src='{q}/{file}'>{label}</figure>")
        if mesh:
            parts.append(f"<figure><div class='shape' data-shape='{q}'></div>"
                         "drag to turn</figure>")
            parts.append(f"<script src='{q}/shape.js'></script>")
        links = ["params.json", "canon_depth.npy", "recon_depth.npy"]
        if mesh:
            links += ["mesh.obj", "mesh.glb"]
        parts.append("<p>" + " ".join(f"<a href='{q}/{f}'>{f}</a>" for f in links) + "</p>")
        parts.append("</section>")
    parts.append("</body></html>")
    def write(path):
        with open(path, "w") as f:
            f.write("\n".join(parts))

    replace_file(os.path.join(out, "index.html"), write)
