"""`tfsym3d reconstruct`: photos -> depth, normals, albedo, a textured mesh and animations.

    tfsym3d reconstruct --checkpoint=PATH [--out=recon] [--crop=config|none|face|cat]
                        [--texture=albedo|shaded] [--batch_size=32] [--mesh] [--gifs]
                        INPUT...

INPUT: image files and folders (searched recursively for png, jpg, jpeg, bmp, gif, webp,
tif, tiff); any size and aspect; EXIF orientation is honoured. Photos are read, cropped
and resized as every command reads them (tfsym3d.io.images). The crop: --crop=config
(the default) is the model's own, its config's `crop`, as training, evaluation and the
exported serving graph apply it (None: the centre square; an int: the centre square of
that side; [x0, y0, w, h]: that box); --crop=none the photo's centre square whatever
the config says; --crop=face (or --detect=face) the largest face found by OpenCV's
Haar cascade (shipped in the opencv-python-headless wheel), framed like the CelebA
crops: a square FACE_SCALE times the detector's box, its centre moved down by
FACE_SHIFT of the box (see tfsym3d.reconstruct.inputs.face_box); --crop=cat the largest
cat face (OpenCV's cat-face cascade, framed as `prepare --detect=cat` frames it). PATH
may be a model's name (celeba, cat, tiny-faces: tfsym3d.pretrained).

Per image, in DIR/NAME/ (NAME is the file's stem, made unique):
  input.png                       the crop the model saw
  canon_depth.png, recon_depth.png          colour-mapped (near = bright)
  canon_depth16.png, recon_depth16.png      16-bit, the synface convention: 1 = min_depth,
                                            0 = max_depth (and background)
  canon_depth.npy, recon_depth.npy          float32 depth in camera units
  canon_normal.png, recon_normal.png        normal maps: (-x, y, z) / 2 + 0.5 of the
                                            camera-space normals (facing the camera:
                                            (0.5, 0.5, 1), light blue)
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

import concurrent.futures
import os
import sys

import numpy as np
from absl import flags

from tfsym3d.cli import no_space
from tfsym3d.reconstruct.inference import Reconstructor
from tfsym3d.reconstruct.inputs import (
    FaceDetector,
    InputError,
    collect_inputs,
    prepare,
    unique_names,
)
from tfsym3d.reconstruct.outputs import (
    TOP_FILES,
    replace_file,
    save_png,
    taken,
    write_image_outputs,
    write_index,
)
from tfsym3d.reconstruct.pictures import sheet_row

SHEET_ROWS = 100


def define_flags(fv):
    flags.DEFINE_string("checkpoint", None, "Run directory, checkpoint prefix, .keras file "
                        "or the authors' .pth.", flag_values=fv)
    flags.DEFINE_string("out", "recon", "Output folder.", flag_values=fv)
    flags.DEFINE_enum("crop", "config", ["config", "none", "face", "cat"], "Crop: the "
                      "model's config's crop, the centre square, or the largest human or "
                      "cat face (OpenCV Haar cascades).", flag_values=fv)
    flags.DEFINE_enum("detect", "none", ["none", "face"], "--detect=face is --crop=face.",
                      flag_values=fv)
    flags.DEFINE_enum("texture", "albedo", ["albedo", "shaded"], "Mesh texture.",
                      flag_values=fv)
    flags.DEFINE_integer("batch_size", 32, "Images per inference batch.", flag_values=fv)
    flags.DEFINE_boolean("mesh", True, "Write OBJ and GLB meshes.", flag_values=fv)
    flags.DEFINE_boolean("gifs", True, "Write the rotating and relighting GIFs.",
                         flag_values=fv)


def main(fv, args):
    if not fv.checkpoint or not fv.out:
        print("tfsym3d reconstruct: --checkpoint is required", file=sys.stderr)
        return 2
    if not args:
        print("tfsym3d reconstruct: no INPUT files or folders given", file=sys.stderr)
        return 2
    try:
        from tfsym3d.loader import load_model

        model = load_model(fv.checkpoint, log=lambda line: print(
            f"tfsym3d reconstruct: {line}", file=sys.stderr))
        kind = "face" if fv.detect == "face" else fv.crop
        detector = FaceDetector(kind) if kind in ("face", "cat") else None
    except (ValueError, FileNotFoundError) as err:
        print(f"tfsym3d reconstruct: {err}", file=sys.stderr)
        return 1
    try:
        summary = run(model, args, fv.out, detector=detector, crop=fv.crop,
                      texture=fv.texture, batch_size=fv.batch_size, mesh=fv.mesh, gifs=fv.gifs)
    except (ValueError, OSError) as err:
        print(f"tfsym3d reconstruct: {err}", file=sys.stderr)
        return 1
    return 1 if summary["failed"] else 0


def run(model, inputs, out, detector=None, crop="config", texture="albedo", batch_size=32,
        mesh=True, gifs=True, log=None, engine=None):
    """Reconstructs every input into out (see the module docstring).

    detector: a FaceDetector (the crop is then the face it finds), or None; crop:
    'config' (the model config's crop) or 'none' (the centre square) without one.
    engine: a Reconstructor of this model to reuse (its graphs are traced once).

    Returns {"done": [names], "failed": [(path, reason)], "out": out}. Inference runs on
    the calling thread; files are written by a pool of writer threads meanwhile."""
    log = log or sys.stderr
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"{out}: is a file, not a folder to write into")
    failed = []

    def fail(path, reason):
        failed.append((path, reason))
        print(f"tfsym3d reconstruct: {path}: {reason}", file=log, flush=True)

    def cannot_write(path, err):
        fail(path, "cannot write: " + ("no space left on device" if no_space(err) else str(err)))

    files, problems = collect_inputs(inputs, exclude=out)
    for path, reason in problems:
        if reason.startswith("given more than once"):
            print(f"tfsym3d reconstruct: {path}: {reason}", file=log, flush=True)
        else:
            fail(path, reason)
    os.makedirs(out, exist_ok=True)
    names = dict(zip(files, unique_names(files, TOP_FILES, lambda n: taken(out, n)),
                     strict=True))
    for path, name in names.items():
        stem = os.path.splitext(os.path.basename(path))[0]
        if name != stem:
            why = (f"{os.path.join(out, stem)} is not reconstruct's own, left alone"
                   if stem and taken(out, stem) else "its name is taken")
            print(f"tfsym3d reconstruct: {path}: written to {os.path.join(out, name)} "
                  f"({why})", file=log, flush=True)
    cfg, s = model.cfg, model.cfg.image_size
    crop_spec = cfg.crop if crop == "config" else None
    engine = engine or Reconstructor(model)
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
                batch.append(prepare(path, s, detector, crop_spec))
                batch_names.append(names[path])
            except InputError as err:
                fail(path, str(err))
                continue
            if len(batch) == batch_size:
                flush()
        flush()
        for name, future in pending:
            try:
                future.result()
                done.append(name)
            except OSError as err:
                cannot_write(os.path.join(out, name), err)
    images_failed = len(failed)
    # Each keeps the previous file until the new one is whole; one failing (a full disk)
    # does not stop the other.
    if rows:
        sheet = np.concatenate([r for _, r in rows])
        try:
            replace_file(os.path.join(out, "contact_sheet.png"),
                         lambda path: save_png(path, sheet))
        except OSError as err:
            cannot_write(os.path.join(out, "contact_sheet.png"), err)
    try:
        write_index(out, done, mesh=mesh, gifs=gifs)
    except OSError as err:
        cannot_write(os.path.join(out, "index.html"), err)
    print(f"tfsym3d reconstruct: {len(done)} reconstructed into {out}, {images_failed} "
          "failed", file=log if failed else sys.stdout, flush=True)
    return {"done": done, "failed": failed, "out": out}
