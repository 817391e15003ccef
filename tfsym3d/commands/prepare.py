"""`tfsym3d prepare`: a folder of your photos, or a published dataset, as square crops in
train/val/test splits.

    tfsym3d prepare --images=DIR --out=DATA [--detect=face|cat|none] [--size=128]
                    [--split=0.9,0.05,0.05] [--seed=0]
    tfsym3d prepare --source=celeba --images=img_celeba --bbox=list_bbox_celeba_crop.txt --out=DATA
    tfsym3d prepare --source=cats --images=CAT_DATASET --out=DATA

Every photo under DIR (nested folders; any format tfsym3d.io.images reads) becomes one
or more square crops in DATA/{train,val,test}/: --detect=face frames each face OpenCV's
Haar cascade finds as the CelebA crops are framed (reconstruct --crop=face does the
same), cat uses OpenCV's cat-face cascade, none takes the centre square. A photo goes
to a split by a hash of its decoded pixels and the seed, so its crops never straddle
splits, the split is the same on every run, and a photo keeps its split when others are
added. Unreadable files, photos without a detection and duplicates are named one line
each and counted at the end (exit status 1 if any file could not be read). Running again
into DATA adds only the new photos (DATA/prepare.json records them; with other settings
it refuses). DATA/contact_sheet.png shows the first crops. See tfsym3d.data.prepare and,
for --source, tfsym3d.data.sources.
"""

from absl import flags

from tfsym3d.data import sources
from tfsym3d.data.prepare import Failures, check_size, prepare_folder
from tfsym3d.errors import UsageError


def define_flags(fv):
    flags.DEFINE_string("images", None, "Folder of photos (searched recursively).",
                        flag_values=fv)
    flags.DEFINE_string("out", None, "Dataset root to write (DATA/{train,val,test}).",
                        flag_values=fv)
    flags.DEFINE_enum("detect", "face", ["face", "cat", "none"], "Crop each detected human "
                      "face, cat face, or the centre square.", flag_values=fv)
    flags.DEFINE_integer("size", 128, "Side of the written crops in pixels.", flag_values=fv)
    flags.DEFINE_string("split", "0.9,0.05,0.05", "Train, val and test fractions.",
                        flag_values=fv)
    flags.DEFINE_integer("seed", 0, "Seed of the split.", flag_values=fv)
    flags.DEFINE_enum("source", "photos", ["photos", "celeba", "cats"], "photos: a folder "
                      "of your own (above); celeba or cats: the published datasets, cut as "
                      "their annotations say (tfsym3d.data.sources).", flag_values=fv)
    flags.DEFINE_string("bbox", None, "--source=celeba: the authors' crop box list "
                        "(list_bbox_celeba_crop.txt).", flag_values=fv)
    flags.DEFINE_float("scale", 1.2, "--source=cats: crop side over the landmarks' extent.",
                       flag_values=fv)


def main(fv, args):
    if args or not fv.images or not fv.out:
        raise UsageError("give --images=DIR --out=DATA")
    if fv.source == "photos":
        try:
            split = [float(v) for v in fv.split.split(",")]
        except ValueError:
            raise UsageError(f"--split must be three fractions adding up to 1; got "
                             f"{fv.split!r}") from None
        record = prepare_folder(fv.images, fv.out, fv.detect, fv.size, split, fv.seed)
        return 1 if record["last_run"]["unreadable"] else 0
    check_size(fv.size)
    fail = Failures()
    if fv.source == "celeba":
        if not fv.bbox:
            raise UsageError("--source=celeba needs --bbox=list_bbox_celeba_crop.txt")
        counts = sources.celeba(fv.images, fv.bbox, fv.out, fv.size, fail)
    else:
        counts = sources.cats(fv.images, fv.out, fv.size, fv.scale, fail)
    print(f"tfsym3d prepare: {fail.summary(counts, fv.out)}")
    return 1 if fail.count else 0
