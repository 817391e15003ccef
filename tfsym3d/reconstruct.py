"""`tfsym3d reconstruct`: photos -> depth, normals, albedo, a textured mesh and animations.

    tfsym3d reconstruct --checkpoint=PATH --out=DIR [--detect=none|face]
                        [--texture=albedo|shaded] [--batch_size=32] [--mesh] [--gifs]
                        INPUT...

INPUT: image files and folders (searched recursively for png, jpg, jpeg, bmp, webp, tif,
tiff, gif); any size and aspect; EXIF orientation is honoured. Without detection the
photo's centre square is used; with --detect=face the largest face found by OpenCV's Haar
cascade (shipped in the opencv-python-headless wheel) is framed like the CelebA crops: a
square FACE_SCALE times the detector's box, its centre moved down by FACE_SHIFT of the box
(see face_box).

Per image, in DIR/NAME/ (NAME is the file's stem, made unique):
  input.png                       the crop the model saw
  canon_depth.png, recon_depth.png          colour-mapped (near = bright)
  canon_depth16.png, recon_depth16.png      16-bit, the synface convention: 1 = min_depth,
                                            0 = max_depth (and background)
  canon_depth.npy, recon_depth.npy          float32 depth in camera units
  canon_normal.png, recon_normal.png        (x, -y, -z) / 2 + 0.5
  albedo.png, shading.png, canon_image.png, recon_image.png
  conf_l1.png, conf_l1_flip.png   the L1 sigmas of the plain and flipped reconstruction,
                                  heat-mapped on a shared per-image scale (bright =
                                  uncertain: where the object is not symmetric)
  symmetry.png                    the canonical symmetry plane drawn on the input
  mesh.obj, mesh.mtl, texture.png, mesh.glb  the canonical shape (border trimmed),
                                  textured with the albedo (--texture=shaded: the shaded
                                  canonical image); x right, y up, facing +z
  rotate.gif                      yaw sweep: shaded texture and normals side by side
  relight.gif                     the light direction orbiting, seen from the input view
  params.json                     light (ambient, diffuse, direction) and view (degrees,
                                  camera units)
DIR/contact_sheet.png (a row per image, the first SHEET_ROWS images) and DIR/index.html
(everything, with a WebGL viewer of each GLB; no network needed).

A file that cannot be read, or where no face is found, gets one line on stderr naming it;
the others are still processed; the exit status is 1 if anything failed.
"""

import base64
import concurrent.futures
import json
import math
import os
import shutil
import sys

import numpy as np
from absl import flags

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif")
FACE_SCALE = 1.6  # crop side / detector box side (Haar boxes span brows to mouth)
FACE_SHIFT = 0.1  # crop centre moved down by this fraction of the box (to include the chin)
SHEET_ROWS = 100
GIF_FRAMES = 24
GIF_YAW_DEGREES = 50.0
GIF_SCALE = 2
RELIGHT_AMBIENT, RELIGHT_DIFFUSE, RELIGHT_RADIUS = 0.3, 0.8, 0.8
BORDER_TRIM = 2  # pixels trimmed from each side of the mesh (the fixed border columns)


def define_flags(fv):
    flags.DEFINE_string("checkpoint", None, "Run directory, checkpoint prefix or .keras file.",
                        flag_values=fv)
    flags.DEFINE_string("out", None, "Output folder.", flag_values=fv)
    flags.DEFINE_enum("detect", "none", ["none", "face"], "Crop: the centre square, or "
                      "the largest face (OpenCV Haar cascade).", flag_values=fv)
    flags.DEFINE_enum("texture", "albedo", ["albedo", "shaded"], "Mesh texture.",
                      flag_values=fv)
    flags.DEFINE_integer("batch_size", 32, "Images per inference batch.", flag_values=fv)
    flags.DEFINE_boolean("mesh", True, "Write OBJ and GLB meshes.", flag_values=fv)
    flags.DEFINE_boolean("gifs", True, "Write the rotating and relighting GIFs.",
                         flag_values=fv)


def main(fv, args):
    if not fv.checkpoint or not fv.out:
        print("tfsym3d reconstruct: --checkpoint and --out are required", file=sys.stderr)
        return 2
    if not args:
        print("tfsym3d reconstruct: no INPUT files or folders given", file=sys.stderr)
        return 2
    try:
        from tfsym3d.checkpoints import load_model

        model = load_model(fv.checkpoint)
        detector = FaceDetector() if fv.detect == "face" else None
    except (ValueError, FileNotFoundError, ImportError) as err:
        print(f"tfsym3d reconstruct: {err}", file=sys.stderr)
        return 1
    summary = run(model, args, fv.out, detector=detector, texture=fv.texture,
                  batch_size=fv.batch_size, mesh=fv.mesh, gifs=fv.gifs)
    return 1 if summary["failed"] else 0


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------
def collect_inputs(paths):
    """Files named directly, and image files under folders (recursive, sorted).

    Returns (files, missing): missing lists the paths that do not exist."""
    files, missing = [], []
    for path in paths:
        if os.path.isdir(path):
            found = []
            for root, dirs, names in os.walk(path):
                dirs.sort()
                found += [os.path.join(root, n) for n in sorted(names)
                          if n.lower().endswith(IMAGE_EXTS)]
            files += found
        elif os.path.exists(path):
            files.append(path)
        else:
            missing.append(path)
    return files, missing


def unique_names(files):
    """Output folder names: the files' stems, with _2, _3... added where a name is taken."""
    used, names = set(), []
    for path in files:
        stem = os.path.splitext(os.path.basename(path))[0] or "image"
        name, n = stem, 1
        while name in used:
            n += 1
            name = f"{stem}_{n}"
        used.add(name)
        names.append(name)
    return names


def face_box(box, scale=FACE_SCALE, shift=FACE_SHIFT):
    """Square crop (x0, y0, side, side) around a detector box (x, y, w, h): side = scale
    times the box's longer side, centred on the box centre moved down by shift * h."""
    x, y, w, h = (float(v) for v in box)
    side = scale * max(w, h)
    cx, cy = x + w / 2.0, y + h / 2.0 + shift * h
    return cx - side / 2.0, cy - side / 2.0, side, side


def centre_box(height, width):
    """The centred square (x0, y0, side, side) of an image."""
    side = min(height, width)
    return (width - side) // 2, (height - side) // 2, side, side


class FaceDetector:
    """The largest frontal face in a photo, by the Haar cascade that ships inside the
    opencv-python-headless wheel (no download)."""

    def __init__(self):
        try:
            import cv2
        except ImportError as err:
            raise ImportError("--detect=face needs OpenCV: pip install "
                              "'opencv-python-headless<5'") from err
        path = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise FileNotFoundError(f"{path}: OpenCV's face cascade could not be loaded")
        self.cv2 = cv2

    def __call__(self, rgb):
        """rgb uint8 [H, W, 3] -> the largest face (x, y, w, h) in pixels, or None."""
        grey = self.cv2.cvtColor(rgb, self.cv2.COLOR_RGB2GRAY)
        side = min(grey.shape)
        faces = self.cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5,
                                              minSize=(max(side // 10, 20),) * 2)
        if len(faces) == 0:
            return None
        return tuple(int(v) for v in max(faces, key=lambda f: f[2] * f[3]))


def prepare(path, image_size, detector=None):
    """Reads a photo and crops it for the model: float32 [S, S, 3] in [0, 1].

    Raises InputError with a one-line reason when the file cannot be used."""
    from PIL import Image

    from tfsym3d.data.prepare import crop_replicate, read_photo

    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise InputError("empty file")
    try:
        rgb = read_photo(path)
    except (OSError, ValueError, SyntaxError) as err:
        raise InputError(f"not a readable image ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else 'unknown'})") from err
    if rgb.shape[0] < 2 or rgb.shape[1] < 2:
        raise InputError(f"image too small ({rgb.shape[1]}x{rgb.shape[0]})")
    if detector is not None:
        found = detector(rgb)
        if found is None:
            raise InputError("no face found")
        box = face_box(found)
    else:
        box = centre_box(*rgb.shape[:2])
    crop = crop_replicate(rgb, box)
    crop = Image.fromarray(crop).resize((image_size, image_size), Image.BILINEAR)
    return np.asarray(crop, np.float32) / 255.0


class InputError(ValueError):
    """An input file that cannot be reconstructed (the message is the reason)."""


# --------------------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------------------
class Reconstructor:
    """Batched inference: images -> every map, parameter and animation frame, as numpy.

    Args:
      model: an Unsup3D.
      texture: 'albedo' or 'shaded' (which image textures the mesh).

    Call: images [B, S, S, 3] in [0, 1], animations (bool) -> dict of numpy arrays
    (see `maps`): depths in camera units, images in [0, 1], normals as unit vectors.
    """

    def __init__(self, model, texture="albedo"):
        import tensorflow as tf

        self.model, self.texture = model, texture
        self.renderer = model.renderer
        s = model.cfg.image_size
        spec = tf.TensorSpec([None, s, s, 3], tf.float32)
        self._maps = tf.function(self._maps_graph, input_signature=[spec])
        self._frames = tf.function(self._frames_graph)

    def __call__(self, images, animations=True):
        out = {k: v.numpy() for k, v in self._maps(np.asarray(images, np.float32)).items()}
        if animations:
            out.update({k: v.numpy() for k, v in self._frames(
                out["canon_depth"], out["canon_image"], out["canon_albedo"],
                out["canon_normal"], out["recon_depth"], out["view"],
                out["input"]).items()})
        return out

    def _maps_graph(self, images):
        import tensorflow as tf

        m = self.model
        full = m.decompose(images, training=False)
        b = tf.shape(images)[0]
        half = {k: v[:b] for k, v in full.items() if k not in ("depth_sm", "input_im")}
        if "conf_sigma_l1" in full:
            sigma = full["conf_sigma_l1"]
        else:
            sigma = tf.ones_like(images[..., :2])
        deg = 180.0 / math.pi
        view = half["view"]
        return {
            "input": images,
            "canon_depth": half["canon_depth"], "recon_depth": half["recon_depth"],
            "canon_normal": half["canon_normal"], "recon_normal": half["recon_normal"],
            "canon_albedo": half["canon_albedo"] / 2.0 + 0.5,
            "canon_shading": half["canon_shading"][..., 0],
            "canon_image": tf.clip_by_value(half["canon_im"] / 2.0 + 0.5, 0.0, 1.0),
            "recon_image": tf.clip_by_value(half["recon_im"] / 2.0 + 0.5, 0.0, 1.0),
            "recon_mask": half["recon_mask"],
            "conf_sigma_l1": sigma,
            "symmetry": tf.clip_by_value(m.symmetry_line(full) / 2.0 + 0.5, 0.0, 1.0),
            "light_ambient": half["canon_light_a"][:, 0],
            "light_diffuse": half["canon_light_b"][:, 0],
            "light_direction": half["canon_light_d"],
            "view_rotation_degrees": view[:, :3] * deg, "view_translation": view[:, 3:],
            "view": view,
        }

    def _frames_graph(self, canon_depth, canon_image, albedo, normal, recon_depth, view,
                      images):
        """Rotation frames [B, T, S, S, 3] (shaded, normals) and relighting frames.

        All B * T rotated views are rasterized in one call; the normals of a view are the
        canonical normals turned by its rotation, interpolated like the colours."""
        import tensorflow as tf

        from tfsym3d.renderer.camera import euler_rotation

        r = self.renderer
        b = tf.shape(canon_depth)[0]
        s = canon_depth.shape[1]
        t = np.arange(GIF_FRAMES, dtype=np.float32) / GIF_FRAMES
        yaws = np.radians(GIF_YAW_DEGREES) * np.sin(2 * np.pi * t)
        angles = np.stack([np.zeros_like(yaws), yaws, np.zeros_like(yaws)], 1)
        rot = euler_rotation(angles.astype(np.float32))                   # [T, 3, 3]
        turned = tf.einsum("tij,bhwj->bthwi", rot, normal)                  # [B, T, S, S, 3]
        texture = tf.concat([tf.repeat(canon_image[:, None], GIF_FRAMES, 1), turned], -1)
        views = tf.tile(np.concatenate([angles, np.zeros_like(angles)], 1).astype(np.float32),
                        [b, 1])
        rendered, seen = r.render_view(tf.reshape(texture, [-1, s, s, 6]),
                                       tf.repeat(canon_depth, GIF_FRAMES, 0), views,
                                       background=1.0)
        n = rendered[..., 3:]
        n = n / tf.maximum(tf.norm(n, axis=-1, keepdims=True), 1e-6)
        n = (n * [-1.0, 1.0, 1.0] / 2.0 + 0.5) * seen[..., None] + (1.0 - seen[..., None])
        shaded = tf.reshape(rendered[..., :3], [b, GIF_FRAMES, s, s, 3])
        normals = tf.reshape(n, [b, GIF_FRAMES, s, s, 3])
        # Relighting: the albedo shaded by an orbiting light, warped to the input view.
        grid = r.get_inv_warped_2d_grid(recon_depth, view)
        mask = tf.cast(recon_depth < r.background_depth, tf.float32)[:, None, ..., None]
        d = np.stack([RELIGHT_RADIUS * np.cos(2 * np.pi * t),
                      RELIGHT_RADIUS * np.sin(2 * np.pi * t), np.ones_like(t)], 1)
        d = (d / np.linalg.norm(d, axis=1, keepdims=True)).astype(np.float32)  # [T, 3]
        shade = RELIGHT_AMBIENT + RELIGHT_DIFFUSE * tf.maximum(
            tf.einsum("bhwc,tc->bthw", normal, d), 0.0)[..., None]
        canon = tf.clip_by_value(albedo[:, None] * shade, 0.0, 1.0)        # [B, T, S, S, 3]
        canon = tf.reshape(tf.transpose(canon, [0, 2, 3, 1, 4]), [b, s, s, GIF_FRAMES * 3])
        relit = tf.reshape(r.grid_sample(canon, grid), [b, s, s, GIF_FRAMES, 3])
        relit = tf.transpose(relit, [0, 3, 1, 2, 4])
        relit = relit * mask + images[:, None] * (1.0 - mask)
        return {"rotate_shaded": shaded, "rotate_normal": normals, "relight": relit}


def reconstruct_images(model, images, animations=True, texture="albedo"):
    """The Python API: decomposes images [B, S, S, 3] in [0, 1] into numpy maps.

    Returns the dict of `Reconstructor` (canon_depth, recon_depth [B,S,S] camera units;
    canon_normal, recon_normal [B,S,S,3]; canon_albedo, canon_image, recon_image
    [B,S,S,3] in [0,1]; canon_shading [B,S,S]; conf_sigma_l1 [B,S,S,2]; symmetry
    [B,S,S,3]; light_ambient, light_diffuse [B]; light_direction [B,3];
    view_rotation_degrees [B,3]; view_translation [B,3]; with animations also
    rotate_shaded, rotate_normal, relight [B,T,S,S,3] in [0,1]).
    """
    return Reconstructor(model, texture)(images, animations)


# --------------------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------------------
# Anchor colours of perceptual colour maps (magma: dark purple to pale yellow; heat:
# black, red, yellow, white).
MAGMA = np.array([[0, 0, 4], [59, 15, 112], [140, 41, 129], [222, 73, 104],
                  [254, 159, 109], [252, 253, 191]], np.float32) / 255.0
HEAT = np.array([[0, 0, 0], [180, 20, 10], [250, 120, 0], [255, 230, 60],
                 [255, 255, 255]], np.float32) / 255.0


def colormap(values, anchors=MAGMA):
    """values [...] in [0, 1] -> RGB [..., 3] in [0, 1], piecewise linear in anchors."""
    v = np.clip(np.nan_to_num(np.asarray(values, np.float32)), 0.0, 1.0) * (len(anchors) - 1)
    lo = np.minimum(np.floor(v).astype(int), len(anchors) - 2)
    frac = (v - lo)[..., None]
    return anchors[lo] * (1.0 - frac) + anchors[lo + 1] * frac


def depth_unit(depth, min_depth, max_depth):
    """Depth -> [0, 1], 1 at min_depth (near), 0 at max_depth and beyond."""
    return np.clip((max_depth - depth) / (max_depth - min_depth), 0.0, 1.0)


def depth_png16(depth, min_depth, max_depth):
    """Depth -> uint16 in the synface convention (65535 = min_depth, 0 = max_depth)."""
    return np.round(depth_unit(depth, min_depth, max_depth) * 65535).astype(np.uint16)


def normal_image(normal):
    """Unit normals (camera space: x right, y down, z forward; pointing away from the
    camera as the model's are) -> RGB in [0, 1] of the usual normal-map convention: the
    normal towards the viewer in x right, y up, z towards the viewer (a surface facing
    the camera is (0.5, 0.5, 1))."""
    return np.clip(normal * np.array([-1.0, 1.0, 1.0]) / 2.0 + 0.5, 0.0, 1.0)


def conf_images(sigma):
    """Sigmas [H, W, 2] -> two heat maps on a shared scale (bright = uncertain)."""
    lo, hi = float(sigma.min()), float(sigma.max())
    t = (sigma - lo) / max(hi - lo, 1e-8)
    return colormap(t[..., 0], HEAT), colormap(t[..., 1], HEAT)


def to_uint8(im):
    return (np.clip(im, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def sheet_row(maps, i, cfg):
    """The contact sheet's row for image i: [S, 8S, 3] uint8."""
    lo, hi = cfg.min_depth, cfg.max_depth
    tiles = [maps["input"][i], maps["recon_image"][i],
             colormap(depth_unit(maps["canon_depth"][i], lo, hi)),
             normal_image(maps["canon_normal"][i]), maps["canon_albedo"][i],
             np.repeat(np.clip(maps["canon_shading"][i], 0, 1)[..., None], 3, -1),
             conf_images(maps["conf_sigma_l1"][i])[1], maps["symmetry"][i]]
    return to_uint8(np.concatenate(tiles, 1))


SHEET_COLUMNS = ("input", "reconstruction", "canonical depth", "canonical normal",
                 "albedo", "shading", "confidence (flipped)", "symmetry plane")


# --------------------------------------------------------------------------------------
# Meshes
# --------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------
def save_png(path, image):
    from PIL import Image

    Image.fromarray(image if image.dtype in (np.uint8, np.uint16) else to_uint8(image)).save(
        path)


def save_gif(path, frames, duration_ms=80):
    """frames [T, H, W, 3] in [0, 1] -> an endlessly looping GIF, scaled GIF_SCALE x."""
    from PIL import Image

    # Fast octree quantisation: Pillow's default (median cut) on every frame costs ~10x.
    ims = [Image.fromarray(to_uint8(f)).resize(
        (f.shape[1] * GIF_SCALE, f.shape[0] * GIF_SCALE), Image.NEAREST).quantize(
        256, method=Image.Quantize.FASTOCTREE) for f in frames]
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=duration_ms, loop=0)


def write_image_outputs(folder, maps, i, cfg, renderer, texture="albedo", mesh=True,
                        gifs=True):
    """Writes every file of image i of a batch of maps into folder (see module doc)."""
    os.makedirs(folder, exist_ok=True)
    lo, hi = cfg.min_depth, cfg.max_depth
    j = os.path.join
    save_png(j(folder, "input.png"), maps["input"][i])
    for name in ("canon_depth", "recon_depth"):
        depth = maps[name][i]
        save_png(j(folder, f"{name}.png"), colormap(depth_unit(depth, lo, hi)))
        save_png(j(folder, f"{name}16.png"), depth_png16(depth, lo, hi))
        np.save(j(folder, f"{name}.npy"), depth.astype(np.float32))
    save_png(j(folder, "canon_normal.png"), normal_image(maps["canon_normal"][i]))
    save_png(j(folder, "recon_normal.png"), normal_image(maps["recon_normal"][i]))
    save_png(j(folder, "albedo.png"), maps["canon_albedo"][i])
    save_png(j(folder, "shading.png"), np.clip(maps["canon_shading"][i], 0, 1))
    save_png(j(folder, "canon_image.png"), maps["canon_image"][i])
    save_png(j(folder, "recon_image.png"), maps["recon_image"][i])
    plain, flipped = conf_images(maps["conf_sigma_l1"][i])
    save_png(j(folder, "conf_l1.png"), plain)
    save_png(j(folder, "conf_l1_flip.png"), flipped)
    save_png(j(folder, "symmetry.png"), maps["symmetry"][i])
    params = {
        "light": {"ambient": float(maps["light_ambient"][i]),
                  "diffuse": float(maps["light_diffuse"][i]),
                  "direction": [float(v) for v in maps["light_direction"][i]]},
        "view": {"rotation_degrees": dict(zip(("x_pitch", "y_yaw", "z_roll"),
                                              map(float, maps["view_rotation_degrees"][i]),
                                              strict=True)),
                 "translation": [float(v) for v in maps["view_translation"][i]]},
        "camera": {"fov_degrees": cfg.fov, "min_depth": lo, "max_depth": hi,
                   "rot_center_depth": cfg.rot_center_depth},
    }
    with open(j(folder, "params.json"), "w") as f:
        json.dump(params, f, indent=2)
    glb = None
    if mesh:
        tex = maps["canon_image"][i] if texture == "shaded" else maps["canon_albedo"][i]
        glb = write_mesh(folder, maps["canon_depth"][i], tex, renderer)
        with open(j(folder, "mesh.glb.js"), "w") as f:
            name = json.dumps(os.path.basename(folder))
            f.write(f"(window.TFSYM3D_MESHES = window.TFSYM3D_MESHES || {{}})[{name}] = "
                    f"\"{base64.b64encode(glb).decode()}\";\n")
    if gifs and "rotate_shaded" in maps:
        save_gif(j(folder, "rotate.gif"),
                 np.concatenate([maps["rotate_shaded"][i], maps["rotate_normal"][i]], 2))
        save_gif(j(folder, "relight.gif"), maps["relight"][i])


def run(model, inputs, out, detector=None, texture="albedo", batch_size=32, mesh=True,
        gifs=True, log=None, engine=None):
    """Reconstructs every input into out (see the module docstring).

    engine: a Reconstructor of this model to reuse (its graphs are traced once).

    Returns {"done": [names], "failed": [(path, reason)], "out": out}. Inference runs on
    the calling thread; files are written by a pool of writer threads meanwhile."""
    log = log or sys.stderr
    files, missing = collect_inputs(inputs)
    failed = [(p, "no such file or folder") for p in missing]
    for path, reason in failed:
        print(f"tfsym3d reconstruct: {path}: {reason}", file=log, flush=True)
    os.makedirs(out, exist_ok=True)
    names = dict(zip(files, unique_names(files), strict=True))
    cfg, s = model.cfg, model.cfg.image_size
    engine = engine or Reconstructor(model, texture)
    done, rows = [], []
    pending = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        batch, batch_names = [], []

        def flush():
            if not batch:
                return
            maps = engine(np.stack(batch), animations=gifs)
            for i, name in enumerate(batch_names):
                pending.append((name, pool.submit(
                    write_image_outputs, os.path.join(out, name), maps, i, cfg,
                    model.renderer, texture, mesh, gifs)))
                if len(rows) < SHEET_ROWS:
                    rows.append((name, sheet_row(maps, i, cfg)))
            batch.clear()
            batch_names.clear()

        for path in files:
            try:
                batch.append(prepare(path, s, detector))
                batch_names.append(names[path])
            except InputError as err:
                failed.append((path, str(err)))
                print(f"tfsym3d reconstruct: {path}: {err}", file=log, flush=True)
                continue
            if len(batch) == batch_size:
                flush()
        flush()
        for name, future in pending:
            try:
                future.result()
                done.append(name)
            except OSError as err:
                failed.append((os.path.join(out, name), f"cannot write: {err}"))
                print(f"tfsym3d reconstruct: {os.path.join(out, name)}: cannot write: {err}",
                      file=log, flush=True)
    if rows:
        save_png(os.path.join(out, "contact_sheet.png"), np.concatenate([r for _, r in rows]))
    write_index(out, done, mesh=mesh, gifs=gifs)
    print(f"tfsym3d reconstruct: {len(done)} reconstructed into {out}, {len(failed)} failed",
          file=log if failed else sys.stdout, flush=True)
    return {"done": done, "failed": failed, "out": out}


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
    """Writes out/index.html (and the viewer script beside it) showing every output."""
    import html

    here = os.path.dirname(os.path.abspath(__file__))
    shutil.copyfile(os.path.join(here, "viewer", "glb_viewer.js"),
                    os.path.join(out, "glb_viewer.js"))
    parts = ["<!doctype html><html><head><meta charset='utf-8'>",
             "<title>tfsym3d reconstructions</title><style>",
             "body{font-family:sans-serif;background:#222;color:#ddd;margin:1em}",
             "figure{display:inline-block;margin:4px;text-align:center;font-size:11px}",
             "img{width:128px;image-rendering:pixelated;display:block}",
             "img.gif{width:auto}canvas{background:#333;width:256px;height:256px}",
             "a{color:#9cf}section{border-top:1px solid #555;padding:6px 0}</style>",
             "<script src='glb_viewer.js'></script></head><body>",
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
            parts.append(f"<figure><canvas data-mesh='{q}' width='512' height='512'>"
                         "</canvas>drag to turn</figure>")
            parts.append(f"<script src='{q}/mesh.glb.js'></script>")
        links = ["params.json", "canon_depth.npy", "recon_depth.npy"]
        if mesh:
            links += ["mesh.obj", "mesh.glb"]
        parts.append("<p>" + " ".join(f"<a href='{q}/{f}'>{f}</a>" for f in links) + "</p>")
        parts.append("</section>")
    parts.append("<script>window.addEventListener('load', function () {"
                 " document.querySelectorAll('canvas[data-mesh]').forEach(function (c) {"
                 " TFSYM3D.view(c, window.TFSYM3D_MESHES[c.dataset.mesh]); }); });</script>")
    parts.append("</body></html>")
    with open(os.path.join(out, "index.html"), "w") as f:
        f.write("\n".join(parts))
