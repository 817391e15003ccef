"""The data layout on disk: the splits of a dataset root, the image files of a split
folder and the image/depth pairs of a paired split (what tfsym3d.data.folder's
pipelines and tfsym3d.data.tfrecords's writer both list).

Image folders: DIR/{train,val,test}/**/*.{png,jpg,jpeg,bmp,gif,webp,tif,tiff}.
Paired data:   DIR/{train,val,test}/image/NAME_image.png with
               DIR/{train,val,test}/depth/NAME_depth.png.
"""

import os

from tfsym3d.io.images import IMAGE_EXTENSIONS

SPLITS = ("train", "val", "test")


def image_files(folder, exclude=None, onerror=None):
    """The image files under folder, recursively, sorted by path: the one order in which
    every command lists a folder (training, evaluation, prepare, reconstruct).

    exclude: a folder (its real path) not to enter; onerror: os.walk's, for a folder
    that cannot be read (default: ignored)."""
    files = []
    for root, dirs, names in os.walk(folder, onerror=onerror):
        if exclude:
            dirs[:] = [d for d in dirs if os.path.realpath(os.path.join(root, d)) != exclude]
        files += [os.path.join(root, n) for n in names if n.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(files)


def list_images(folder):
    """Sorted image files under folder, recursively (image_files). Raises ValueError
    naming the folder when it is missing or holds no image."""
    if not os.path.isdir(folder):
        raise ValueError(f"{folder}: no such folder")
    files = image_files(folder)
    if not files:
        raise ValueError(f"{folder}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return sorted(files)


def split_images(folder):
    """The image files of a split folder: those under folder/image when it is a paired
    split (image/ and depth/), else every image under folder (sorted; ValueError when
    there is none). A paired split read as images leaves its depth maps out."""
    paired = os.path.join(folder, "image")
    if os.path.isdir(paired) and os.path.isdir(os.path.join(folder, "depth")):
        return list_images(paired)
    return list_images(folder)


def split_dir(root, split):
    """The folder of a split: root/split if it exists, else root itself when root is
    already a split folder (has no train/val/test children). ValueError naming root when
    it does not exist or has no such split."""
    if not os.path.exists(root):
        raise ValueError(f"{root}: no such folder")
    candidate = os.path.join(root, split)
    if os.path.isdir(candidate):
        return candidate
    if os.path.isdir(root) and not any(os.path.isdir(os.path.join(root, s)) for s in SPLITS):
        return root
    raise ValueError(f"{root}: no '{split}' folder (expected {root}/{{train,val,test}})")


def paired_files(root, split, skipped=None):
    """[(image_path, depth_path)] of a paired split; ValueError if missing or empty.
    split "" takes root as the split folder. An image without its depth file is a
    ValueError, or with a list `skipped`, appended to it as (image path, reason)."""
    folder = split_dir(root, split) if split else root
    pairs = []
    for path in list_images(os.path.join(folder, "image")):
        depth = os.path.join(folder, "depth", f"{pair_stem(path)}_depth.png")
        if not os.path.isfile(depth):
            if skipped is None:
                raise ValueError(f"{path}: no matching depth file {depth}")
            skipped.append((path, f"no matching depth file {depth}"))
            continue
        pairs.append((path, depth))
    return pairs


def pair_stem(path):
    """NAME of a paired image file DIR/image/NAME_image.png (its file stem otherwise)."""
    name = os.path.basename(path)
    return name.rsplit("_image", 1)[0] if "_image" in name else os.path.splitext(name)[0]
