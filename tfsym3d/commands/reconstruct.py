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
  shape.js                        the canonical depth and texture for index.html's viewer
DIR/contact_sheet.png (a row per image, the first SHEET_ROWS images) and DIR/index.html
(everything, with the phone demo's three.js viewer of each shape, shape_viewer.js; no
network needed, opens from disk).

A file that cannot be read, or where no face is found, gets one line on stderr naming it;
the others are still processed; the exit status is 1 if anything failed.
"""

import sys

from absl import flags

from tfsym3d.errors import UsageError
from tfsym3d.loader import load_model
from tfsym3d.reconstruct.files import reconstruct_files
from tfsym3d.reconstruct.inputs import FaceDetector


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
        raise UsageError("--checkpoint is required")
    if not args:
        raise UsageError("no INPUT files or folders given")
    model = load_model(fv.checkpoint)
    kind = "face" if fv.detect == "face" else fv.crop
    detector = FaceDetector(kind) if kind in ("face", "cat") else None
    summary = reconstruct_files(model, args, fv.out, detector=detector, crop=fv.crop,
                                texture=fv.texture, batch_size=fv.batch_size, mesh=fv.mesh,
                                gifs=fv.gifs)
    print(f"tfsym3d reconstruct: {len(summary['done'])} reconstructed into {fv.out}, "
          f"{summary['images_failed']} failed",
          file=sys.stderr if summary["failed"] else sys.stdout, flush=True)
    return 1 if summary["failed"] else 0
