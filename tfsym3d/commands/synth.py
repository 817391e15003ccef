"""`tfsym3d synth`: offline synthetic datasets with ground truth (faces by default, and
two object families), rendered by the project's own renderer.

    tfsym3d synth --out=DIR --num=N [--image_size=64] [--seed=0]
        [--style=faces|eggs|blobs|cars] [--asymmetric] [--nocentre]

--style=faces follows the paper's synthetic faces (a symmetric relief and albedo up to
small blemishes, face crops); --asymmetric adds strong asymmetries (hair over one side,
make-up on one cheek, a one-sided smile); --style=eggs gives the sets before 2026-12-02
bit for bit; blobs and cars are object families where every instance has its own shape,
in saturated colours, seen over a wider range of views. Layout (the authors' paired
layout): DIR/{train,val,test}/image/NAME_image.png, DIR/{train,val,test}/depth/
NAME_depth.png (16-bit, 1 = near, 0 = background), DIR/{train,val,test}/gt.csv (true
view, light, landmarks) and DIR/synth.json. Deterministic for the settings. See
tfsym3d.data.synth for the families, the views and the depth encoding.
"""

from absl import flags

from tfsym3d.data.synth import STYLES, generate
from tfsym3d.errors import UsageError


def define_flags(fv):
    flags.DEFINE_string("out", None, "Output dataset root.", flag_values=fv)
    flags.DEFINE_integer("num", 1000, "Number of images in all splits together.",
                         flag_values=fv)
    flags.DEFINE_integer("image_size", 64, "Output image side in pixels.", flag_values=fv)
    flags.DEFINE_integer("seed", 0, "Random seed (the dataset is a function of it).",
                         flag_values=fv)
    flags.DEFINE_integer("batch", 64, "Images rendered at once.", flag_values=fv)
    flags.DEFINE_enum("style", "faces", STYLES, "faces: symmetric face crops as the "
                      "paper's synthetic faces; eggs: the sets before 2026-12-02; blobs: "
                      "smooth objects of their own shapes in saturated colours on grey; "
                      "cars: car fronts in saturated paint, seen from above.",
                      flag_values=fv)
    flags.DEFINE_boolean("asymmetric", False, "Faces: add hair over one side, make-up on "
                         "one cheek and a one-sided smile.", flag_values=fv)
    flags.DEFINE_boolean("centre", True, "Centre each head in its image as a face crop "
                         "would; --nocentre gives the earlier sets, where turning about "
                         "depth 1.0 also moved the head sideways.", flag_values=fv)


def main(fv, args):
    if args:
        raise UsageError(f"unexpected arguments {args}")
    if not fv.out:
        raise UsageError("--out is required")
    if not (3 <= fv.num <= 10_000_000 and 16 <= fv.image_size <= 1024
            and 1 <= fv.batch <= 4096):
        raise UsageError("--num must be 3 to 10000000, --image_size 16 to 1024 and "
                         "--batch 1 to 4096")
    if fv.asymmetric and fv.style != "faces":
        raise UsageError("--asymmetric is for --style=faces (eggs always have their "
                         "asymmetric parts, blobs and cars a one-sided patch on 30%)")
    counts = generate(fv.out, fv.num, fv.image_size, fv.seed, fv.batch, fv.centre,
                      fv.style, fv.asymmetric)
    print(f"wrote {sum(counts.values())} images to {fv.out} "
          + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    return 0
