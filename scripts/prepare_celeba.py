"""Crops CelebA's in-the-wild photos to the authors' face boxes, in the training layout.

    python scripts/prepare_celeba.py --images=img_celeba --bbox=list_bbox_celeba_crop.txt \
        --out=data/celeba [--size=128]

--bbox has one line per photo: file name, split (0 train, 1 val, 2 test), x0, y0, w, h
(pixels; the box may reach outside the photo, which is then filled by replicating its
border). Writes OUT/{train,val,test}/NAME (PNG keeps the name's stem: NAME.png) at
size x size. A missing or unreadable photo, or a bad line, is reported on one line and
skipped; the others are still written and the exit status is 1.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfsym3d.data.prepare import SPLIT_NAMES, Failures, save_crop  # noqa: E402
from tfsym3d.io import images  # noqa: E402


def parse_bbox_line(line):
    """'name split x0 y0 w h' -> (name, split name, (x0, y0, w, h)); ValueError if bad."""
    parts = line.replace(",", " ").split()
    if len(parts) != 6:
        raise ValueError(f"expected 6 fields (name split x0 y0 w h), got {len(parts)}")
    name, split = parts[0], int(parts[1])
    if split not in SPLIT_NAMES:
        raise ValueError(f"split must be 0, 1 or 2, got {split}")
    box = tuple(float(v) for v in parts[2:])
    if box[2] <= 0 or box[3] <= 0:
        raise ValueError(f"box width and height must be positive, got {box[2:]}")
    return name, SPLIT_NAMES[split], box


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", required=True, help="Folder of the in-the-wild photos.")
    parser.add_argument("--bbox", required=True, help="The authors' crop box list.")
    parser.add_argument("--out", required=True, help="Output dataset root.")
    parser.add_argument("--size", type=int, default=128, help="Output side in pixels.")
    args = parser.parse_args(argv)
    fail = Failures("prepare_celeba")
    try:
        with open(args.bbox) as f:
            lines = f.read().splitlines()
    except OSError as err:
        print(f"prepare_celeba: {args.bbox}: {err.strerror}", file=sys.stderr)
        return 1
    counts = dict.fromkeys(SPLIT_NAMES.values(), 0)
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            name, split, box = parse_bbox_line(line)
        except ValueError as err:
            fail(f"{args.bbox}:{number}", err)
            continue
        path = os.path.join(args.images, name)
        try:
            crop = images.crop(images.read(path), box)
        except Exception as err:  # noqa: BLE001 - any unreadable photo is skipped
            fail(path, f"{type(err).__name__}: {err}")
            continue
        stem = os.path.splitext(name)[0]
        save_crop(crop, os.path.join(args.out, split, stem + ".png"), args.size)
        counts[split] += 1
    return fail.summary(counts, args.out)


if __name__ == "__main__":
    sys.exit(main())
