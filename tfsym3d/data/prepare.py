"""Dataset preparation from a folder of one's own photos: what `tfsym3d prepare` does
(tfsym3d.commands.prepare; with --source=celeba|cats, tfsym3d.data.sources).

    record = prepare_folder("photos", "data", detect="face", size=128)

Every photo under the folder becomes one or more square crops in OUT/{train,val,test}/
(the command's docstring says how they are framed). A photo goes to a split by a hash of
its decoded pixels and the seed (split_of), so its crops never straddle splits and keep
their split when photos are added. Unreadable files, photos without a detection and
duplicates (the same decoded pixels as a photo already taken) are logged one line each
and counted. OUT/prepare.json records the settings, every photo taken (its pixel hash,
split and crops) and the counts; a later run into OUT adds only the new photos (with
other settings it refuses). OUT/contact_sheet.png shows the first crops.

Boxes are (x0, y0, w, h) in pixels of the photo, x right, y down; photos are read and
cropped by tfsym3d.io.images (parts of a box outside the photo replicate the border, as
the authors' CelebA crops).
"""

import hashlib
import json
import logging
import math
import os

import numpy as np
from PIL import Image

from tfsym3d.data.sources import SPLIT_NAMES, save_crop
from tfsym3d.errors import UsageError

log = logging.getLogger(__name__)

# The side of the written crops (pixels): the networks take 64 or 128; beyond 1024 a crop
# of a large photo costs gigabytes for nothing.
MIN_SIZE, MAX_SIZE = 16, 1024


def check_size(size):
    """errors.UsageError (one line) unless `size` is a crop side in MIN_SIZE..MAX_SIZE."""
    if not (isinstance(size, int) and MIN_SIZE <= size <= MAX_SIZE):
        raise UsageError(f"--size must be {MIN_SIZE} to {MAX_SIZE} pixels; got {size}")


def crop_stem(rel, where, count, written):
    """The stem of a photo's crops: its path in the folder with separators as "__", the
    extension added (then _2, _3...) where a crop of that name is already in `written`
    (split/name.png: photo.jpg and photo.png both in one split)."""
    stem, ext = os.path.splitext(rel)
    stem = stem.replace(os.sep, "__")

    def free(name):
        files = [f"{name}.png"] if count == 1 else [f"{name}_{k + 1}.png" for k in range(count)]
        return not any(f"{where}/{f}" in written for f in files)

    if free(stem):
        return stem
    name, n = f"{stem}_{ext.lstrip('.').lower() or 'photo'}", 1
    base = name
    while not free(name):
        n += 1
        name = f"{base}_{n}"
    return name


class Failures:
    """Counts per-file failures, logging one line for each: fail(path, reason)."""

    def __init__(self):
        self.count = 0

    def __call__(self, path, reason):
        self.count += 1
        log.warning(f"{path}: {reason}")

    def summary(self, counts, out):
        """The closing line: crops written per split ({split: count}) and failures."""
        return (f"wrote {sum(counts.values())} crops to {out} ("
                + ", ".join(f"{k}: {v}" for k, v in counts.items())
                + (f"), {self.count} failed" if self.count else ")"))


SHEET_CROPS = 64


def split_of(pixel_hash, seed, fractions):
    """The split ('train', 'val', 'test') of a photo: a uniform number from the hash of its
    pixels and the seed, cut at the cumulative fractions (train, val, test)."""
    digest = hashlib.sha256(f"{seed}:{pixel_hash}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2 ** 64
    edge = 0.0
    for name, fraction in zip(("train", "val", "test"), fractions, strict=True):
        edge += fraction
        if u < edge:
            return name
    return "test"


def pixel_hash(image):
    """sha256 of a read photo's 8-bit pixels and shape (duplicates: the same hash); the
    photo as read or read_samples reads it."""
    from tfsym3d.io.images import to_float, to_uint8

    pixels = image if image.dtype == np.uint8 else to_uint8(to_float(image))
    return hashlib.sha256(str(pixels.shape).encode() + pixels.tobytes()).hexdigest()


def crop_boxes(image, detector):
    """The square boxes to cut from a photo: each detection framed, or the centre
    square without a detector."""
    from tfsym3d.io.images import centre_box

    if detector is None:
        return [centre_box(*image.shape[:2])]
    return [detector.crop_box(box) for box in detector.all(image)]


def prepare_folder(images_dir, out, detect="none", size=128, split=(0.9, 0.05, 0.05),
                   seed=0):
    """Prepares a folder of photos (see above). Returns the record written to
    out/prepare.json. Raises ValueError (one line) for bad settings or a DATA prepared
    with other ones."""
    from tfsym3d.io import images as image_io
    from tfsym3d.reconstruct.inputs import FaceDetector, collect_inputs
    from tfsym3d.reconstruct.outputs import replace_file

    split = tuple(float(v) for v in split)
    if len(split) != 3 or not all(math.isfinite(v) and v >= 0 for v in split) \
            or abs(sum(split) - 1.0) > 1e-6:
        raise UsageError(f"--split must be three fractions adding up to 1; got {split}")
    if detect not in ("face", "cat", "none"):
        raise UsageError(f"--detect must be face, cat or none; got {detect!r}")
    check_size(size)
    if not os.path.isdir(images_dir):
        raise ValueError(f"{images_dir}: no such folder")
    settings = {"detect": detect, "size": int(size), "split": list(split), "seed": seed}
    record_path = os.path.join(out, "prepare.json")
    record = {"settings": settings, "photos": {}}
    if os.path.isfile(record_path):
        with open(record_path) as f:
            record = json.load(f)
        if record.get("settings") != settings:
            raise ValueError(f"{out} was prepared with {record.get('settings')}; give the "
                             "same settings to add photos, or another --out")
    detector = FaceDetector(detect) if detect != "none" else None
    photos = record["photos"]
    written = {c for p in photos.values() for c in p["crops"]}
    seen = {p["hash"]: rel for rel, p in photos.items()}
    # Its own crops are never taken back as photos when --out lies inside the folder.
    files, problems = collect_inputs([images_dir], exclude=out)
    fail = Failures()
    added = dict.fromkeys(SPLIT_NAMES.values(), 0)
    counts = {"photos": 0, "duplicates": 0, "no_detection": 0, "unreadable": 0}
    for path, reason in problems:
        fail(path, reason)
        counts["unreadable"] += 1
    for path in files:
        rel = os.path.relpath(path, images_dir)
        if rel in photos:
            continue  # taken on an earlier run
        try:
            image = image_io.read_samples(path)
        except image_io.InputError as err:
            fail(path, err)
            counts["unreadable"] += 1
            continue
        digest = pixel_hash(image)
        if digest in seen:
            fail(path, f"a duplicate of {seen[digest]} (the same pixels); skipped")
            counts["duplicates"] += 1
            continue
        boxes = crop_boxes(image, detector)
        if not boxes:
            fail(path, f"no {detect} found")
            counts["no_detection"] += 1
            continue
        where = split_of(digest, seed, split)
        name = crop_stem(rel, where, len(boxes), written)
        if name != os.path.splitext(rel)[0].replace(os.sep, "__"):
            log.warning(f"{path}: its crops are named {name}* (another photo's crops have "
                        "its name)")
        crops = []
        for k, box in enumerate(boxes):
            crop_name = f"{name}.png" if len(boxes) == 1 else f"{name}_{k + 1}.png"
            written.add(f"{where}/{crop_name}")
            save_crop(image_io.crop(image, box), os.path.join(out, where, crop_name), size)
            crops.append(f"{where}/{crop_name}")
        photos[rel] = {"hash": digest, "split": where, "crops": crops}
        seen[digest] = rel
        added[where] += len(crops)
        counts["photos"] += 1
    totals = dict.fromkeys(SPLIT_NAMES.values(), 0)
    for p in photos.values():
        totals[p["split"]] += len(p["crops"])
    record.update(settings=settings, photos=photos, crops=totals, last_run=counts)
    os.makedirs(out, exist_ok=True)

    def write(path):
        with open(path, "w") as f:
            json.dump(record, f, indent=1)

    replace_file(record_path, write)
    _contact_sheet(out, [c for p in photos.values() for c in p["crops"]][:SHEET_CROPS])
    log.info(f"{counts['photos']} new photo(s) -> "
             + ", ".join(f"{k}: +{v}" for k, v in added.items())
             + f" crops (in all: {', '.join(f'{k} {v}' for k, v in totals.items())}); "
             f"{counts['duplicates']} duplicate(s), {counts['no_detection']} without a "
             f"detection, {counts['unreadable']} unreadable")
    return record


def _contact_sheet(out, crops, columns=8):
    """out/contact_sheet.png: the crops (relative paths) in rows of `columns`."""
    if not crops:
        return
    tiles = [np.asarray(Image.open(os.path.join(out, c)).convert("RGB")) for c in crops]
    s = tiles[0].shape[0]
    rows = -(-len(tiles) // columns)
    sheet = np.full((rows * s, columns * s, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet[r * s:(r + 1) * s, c * s:(c + 1) * s] = tile
    Image.fromarray(sheet).save(os.path.join(out, "contact_sheet.png"))
