"""The two published datasets as training folders: CelebA cropped to the authors' face
boxes, and the Cat Head dataset cropped around its annotated faces
(`tfsym3d prepare --source=celeba|cats`; nothing is downloaded).

    tfsym3d prepare --source=celeba --images=img_celeba --bbox=list_bbox_celeba_crop.txt \
        --out=data/celeba [--size=128]
    tfsym3d prepare --source=cats --images=CAT_DATASET --out=data/cat [--size=128] [--scale=1.2]

celeba: --bbox has one line per photo: file name, split (0 train, 1 val, 2 test), x0, y0,
w, h (pixels; the box may reach outside the photo, which is then filled by replicating
its border). Writes OUT/{train,val,test}/STEM.png at size x size.

cats: every photo NAME.jpg under --images (recursively) with an annotation NAME.jpg.cat
beside it ("9 x1 y1 ... x9 y9": left eye, right eye, mouth, then three points on each ear)
becomes a square crop centred on the bounding box of the nine points, --scale times its
longer side, border replicated, resized to size x size. The split is a fixed function of
the file name (about 80/10/10), so reruns and added photos keep earlier assignments.

A missing or unreadable photo, annotation or bad line is reported on one line and
skipped; the others are still written and the exit status is 1.
"""

import hashlib
import os

import numpy as np
from PIL import Image

from tfsym3d.errors import UserError
from tfsym3d.io import images

SPLIT_NAMES = {0: "train", 1: "val", 2: "test"}  # the authors' split numbers


def square_box(points, scale=1.0):
    """The square (x0, y0, side, side) centred on the bounding box of points [N, 2]
    (x, y), its side scale times the longer side of that box."""
    points = np.asarray(points, np.float64)
    lo, hi = points.min(0), points.max(0)
    side = scale * float((hi - lo).max())
    cx, cy = (lo + hi) / 2.0
    return cx - side / 2.0, cy - side / 2.0, side, side


def save_crop(crop, out_path, size):
    """Resizes a crop [h, w, 3] (in [0, 1], or samples as read_samples reads them) to
    size x size (tfsym3d.io.images.resize, as every reader does) and writes it as an
    8-bit PNG."""
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    Image.fromarray(images.to_uint8(images.resize(crop, size).numpy())).save(out_path)


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


def cat_split(name):
    """'train' (80%), 'val' (10%) or 'test' (10%), a fixed function of the name."""
    bucket = int(hashlib.sha1(name.encode()).hexdigest(), 16) % 10
    return "test" if bucket == 0 else "val" if bucket == 1 else "train"


def celeba(photos, bbox, out, size, fail):
    """Writes the CelebA crops; returns {split: crops written}. fail(path, reason) is
    told of each file or line skipped."""
    try:
        with open(bbox) as f:
            lines = f.read().splitlines()
    except OSError as err:
        raise UserError(f"{bbox}: {err.strerror}") from None
    counts = dict.fromkeys(SPLIT_NAMES.values(), 0)
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            name, split, box = parse_bbox_line(line)
        except ValueError as err:
            fail(f"{bbox}:{number}", err)
            continue
        path = os.path.join(photos, name)
        try:
            crop = images.crop(images.read_samples(path), box)
        except Exception as err:  # noqa: BLE001 - any unreadable photo is skipped
            fail(path, f"{type(err).__name__}: {err}")
            continue
        stem = os.path.splitext(name)[0]
        save_crop(crop, os.path.join(out, split, stem + ".png"), size)
        counts[split] += 1
    return counts


def cats(photos, out, size, scale, fail):
    """Writes the cat-face crops; returns {split: crops written}. fail(path, reason) is
    told of each file skipped; UserError when no photo has an annotation."""
    if not os.path.isdir(photos):
        raise UserError(f"{photos}: no such folder")
    found = sorted(os.path.join(root, n) for root, _, names in os.walk(photos)
                   for n in names if n.lower().endswith((".jpg", ".jpeg", ".png")))
    counts = {"train": 0, "val": 0, "test": 0}
    failed = 0
    for path in found:
        note = path + ".cat"
        if not os.path.isfile(note):
            continue  # photos without an annotation are not part of the dataset
        try:
            box = square_box(read_cat_points(note), scale)
        except (OSError, ValueError) as err:
            fail(note, err)
            failed += 1
            continue
        try:
            crop = images.crop(images.read_samples(path), box)
        except Exception as err:  # noqa: BLE001 - any unreadable photo is skipped
            fail(path, f"{type(err).__name__}: {err}")
            failed += 1
            continue
        rel = os.path.relpath(path, photos)
        name = os.path.splitext(rel.replace(os.sep, "_"))[0] + ".png"
        split = cat_split(rel)
        save_crop(crop, os.path.join(out, split, name), size)
        counts[split] += 1
    if not sum(counts.values()) and not failed:
        raise UserError(f"{photos}: no photo with a .cat annotation")
    return counts
