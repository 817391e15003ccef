"""Crops cat faces from the Cat Head dataset's annotated photos, in the training layout.

    python scripts/prepare_cats.py --images=CAT_DATASET --out=data/cat [--size=128]

Every photo NAME.jpg under --images (recursively) with an annotation NAME.jpg.cat beside it
("9 x1 y1 ... x9 y9": left eye, right eye, mouth, then three points on each ear) becomes
a square crop centred on the bounding box of the nine points, --scale (default 1.2)
times its longer side, border replicated outside the photo, resized to size x size. The
split is a fixed function of the file name (about 80/10/10 train/val/test), so reruns
and added photos keep earlier assignments. Unreadable photos or annotations are reported
on one line each and skipped; the exit status is then 1.
"""

import argparse
import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from tfsym3d.data.prepare import Failures, save_crop, square_box  # noqa: E402
from tfsym3d.io import images  # noqa: E402


def read_cat_points(path):
    """A .cat annotation -> points [9, 2] (x, y); ValueError if malformed."""
    with open(path) as f:
        values = f.read().split()
    try:
        numbers = [float(v) for v in values]
    except ValueError as err:
        raise ValueError(f"not a list of numbers ({err})") from err
    if not numbers or int(numbers[0]) != 9 or len(numbers) < 19:
        raise ValueError("expected '9' followed by 9 x y pairs")
    return np.array(numbers[1:19]).reshape(9, 2)


def split_of(name):
    """'train' (80%), 'val' (10%) or 'test' (10%), a fixed function of the name."""
    bucket = int(hashlib.sha1(name.encode()).hexdigest(), 16) % 10
    return "test" if bucket == 0 else "val" if bucket == 1 else "train"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", required=True, help="Folder of photos and .cat files.")
    parser.add_argument("--out", required=True, help="Output dataset root.")
    parser.add_argument("--size", type=int, default=128, help="Output side in pixels.")
    parser.add_argument("--scale", type=float, default=1.2,
                        help="Crop side over the landmarks' extent.")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.images):
        print(f"prepare_cats: {args.images}: no such folder", file=sys.stderr)
        return 1
    fail = Failures("prepare_cats")
    photos = sorted(os.path.join(root, n) for root, _, names in os.walk(args.images)
                    for n in names if n.lower().endswith((".jpg", ".jpeg", ".png")))
    counts = {"train": 0, "val": 0, "test": 0}
    for path in photos:
        note = path + ".cat"
        if not os.path.isfile(note):
            continue  # photos without an annotation are not part of the dataset
        try:
            box = square_box(read_cat_points(note), args.scale)
        except (OSError, ValueError) as err:
            fail(note, err)
            continue
        try:
            crop = images.crop(images.read(path), box)
        except Exception as err:  # noqa: BLE001 - any unreadable photo is skipped
            fail(path, f"{type(err).__name__}: {err}")
            continue
        rel = os.path.relpath(path, args.images)
        name = os.path.splitext(rel.replace(os.sep, "_"))[0] + ".png"
        split = split_of(rel)
        save_crop(crop, os.path.join(args.out, split, name), args.size)
        counts[split] += 1
    if not sum(counts.values()) and not fail.count:
        print(f"prepare_cats: {args.images}: no photo with a .cat annotation",
              file=sys.stderr)
        return 1
    return fail.summary(counts, args.out)


if __name__ == "__main__":
    sys.exit(main())
