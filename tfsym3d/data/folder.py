"""tf.data pipelines for image folders and paired image+depth data (the authors' layout).

Image folders: DIR/{train,val,test}/**/*.{png,jpg,jpeg,bmp,webp}.
Paired data:   DIR/{train,val,test}/image/NAME_image.png with
               DIR/{train,val,test}/depth/NAME_depth.png (16-bit, 1 = near).

A split folder may instead hold TFRecord shards (`tfsym3d prepare-tfrecords`): the
records carry the files' bytes and go through the same decoding. Under a multi-worker
strategy each worker reads its own shards (AutoShardPolicy.FILE); folders of files are
sharded by element (DATA).

Images are decoded with Pillow (any mode to RGB, 16-bit and palette images, EXIF
orientation honoured), optionally cropped, resized bilinearly to image_size and, in
training, flipped horizontally at random. A file (or record, or shard) that cannot be
decoded is skipped with one warning line naming it and counted (`SkipCounter`); it never
stops an epoch.
"""

import io
import os
import sys
import threading

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
SPLITS = ("train", "val", "test")


class SkipCounter:
    """Counts (and names, once each) the files a pipeline had to skip."""

    def __init__(self):
        self._lock = threading.Lock()
        self.skipped = []

    def skip(self, path, reason):
        with self._lock:
            self.skipped.append(path)
        print(f"warning: skipping {path}: {reason}", file=sys.stderr, flush=True)

    def take(self):
        """Returns and clears the list of skipped files."""
        with self._lock:
            out, self.skipped = self.skipped, []
        return out


def list_images(folder):
    """Sorted image files under folder, recursively. Raises ValueError naming the folder
    when it is missing or holds no image."""
    if not os.path.isdir(folder):
        raise ValueError(f"{folder}: no such folder")
    files = []
    for root, _, names in os.walk(folder):
        files += [os.path.join(root, n) for n in names if n.lower().endswith(IMAGE_EXTENSIONS)]
    if not files:
        raise ValueError(f"{folder}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return sorted(files)


def split_dir(root, split):
    """The folder of a split: root/split if it exists, else root itself when root is
    already a split folder (has no train/val/test children)."""
    candidate = os.path.join(root, split)
    if os.path.isdir(candidate):
        return candidate
    if os.path.isdir(root) and not any(os.path.isdir(os.path.join(root, s)) for s in SPLITS):
        return root
    raise ValueError(f"{root}: no '{split}' folder (expected {root}/{{train,val,test}})")


def load_rgb(path):
    """Reads an image file (a path or a file object) as float32 RGB in [0, 1], [H, W, 3].
    Raises on failure."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im, dtype=np.float32)
            arr = arr / (65535.0 if arr.max() > 255 else 255.0)
            return np.repeat(arr[..., None], 3, axis=2).clip(0, 1)
        im = im.convert("RGB")
        return np.asarray(im, dtype=np.float32) / 255.0


def load_depth_png(path):
    """Reads a synface-layout depth PNG (a path or a file object) as float32 in [0, 1],
    [H, W] (16-bit or 8-bit)."""
    with Image.open(path) as im:
        arr = np.asarray(im, dtype=np.float32)
        scale = 65535.0 if (im.mode.startswith("I") or arr.max() > 255) else 255.0
    if arr.ndim == 3:
        arr = arr[..., 0]
    return arr / scale


def crop_box(shape, crop):
    """(top, left, height, width) of a crop: None (whole image), an int (centre square)
    or [x0, y0, w, h]."""
    h, w = shape[:2]
    if crop is None:
        return 0, 0, h, w
    if isinstance(crop, int):
        side = min(crop, h, w)
        return (h - side) // 2, (w - side) // 2, side, side
    x0, y0, cw, ch = (int(c) for c in crop)
    return y0, x0, ch, cw


def _crop(arr, crop):
    top, left, ch, cw = crop_box(arr.shape, crop)
    arr = arr[top:top + ch, left:left + cw]
    if arr.size == 0:
        raise ValueError(f"crop {crop} leaves nothing of a {arr.shape} image")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _resize(im, size):
    """Bilinear resize of [h, w, C] (any h, w) to [size, size, C], in the graph."""
    return tf.image.resize(im, [size, size], method="bilinear")


def _opened(name, blob):
    """What Pillow opens: the record's bytes, or the file `name` when there are none."""
    return io.BytesIO(blob) if blob else name.decode()


def _source(folder, paired, counter, training, seed, shuffle_buffer, repeat):
    """The items of a split: (name, bytes) per image, or (image name, bytes, depth name,
    bytes) per pair; bytes are empty for files on disk (decoding opens the name).

    Returns (dataset, items in one pass, auto-shard policy)."""
    import tensorflow as tf

    from tfsym3d.data import tfrecords

    policy = tf.data.experimental.AutoShardPolicy
    shards = tfrecords.shard_files(folder)
    if shards:
        shards, count = tfrecords.usable_shards(shards, counter)
        if not shards:
            raise ValueError(f"{folder}: no readable TFRecord shard")
        ds = tfrecords.records_dataset(shards, paired, training, seed, shuffle_buffer, repeat)
        if paired:
            ds = ds.map(lambda name, image, depth: (name, image, name, depth))
        return ds, count, policy.FILE
    if paired:
        pairs = paired_files(folder, "")
        ds = _file_dataset([list(p) for p in pairs], training, seed, shuffle_buffer, repeat)
        return ds.map(lambda p: (p[0], "", p[1], "")), len(pairs), policy.DATA
    files = list_images(folder)
    ds = _file_dataset(files, training, seed, shuffle_buffer, repeat)
    return ds.map(lambda p: (p, "")), len(files), policy.DATA


def image_dataset(root, split, image_size=64, crop=None, batch_size=64, training=False,
                  seed=None, shuffle_buffer=4096, counter=None, repeat=False,
                  drop_remainder=None, random_flip=True):
    """Batches of images [B, S, S, 3] in [0, 1] from an image folder split (files or
    TFRecord shards)."""
    folder = split_dir(root, split)
    counter = counter or SkipCounter()
    ds, count, policy = _source(folder, False, counter, training, seed, shuffle_buffer,
                                repeat)

    def decode(name, blob):
        try:
            return _crop(load_rgb(_opened(name, blob)), crop), True
        except Exception as err:  # noqa: BLE001 - any unreadable file is skipped
            counter.skip(name.decode(), f"{type(err).__name__}: {err}")
            return np.zeros((1, 1, 3), np.float32), False

    def load(name, blob):
        im, ok = tf.numpy_function(decode, [name, blob], [tf.float32, tf.bool])
        im.set_shape([None, None, 3])
        ok.set_shape([])
        return _resize(im, image_size), ok

    ds = _decode_in_parallel(ds, load, training, seed)
    ds = ds.filter(_decoded).map(_drop_flag)
    if training and random_flip:
        ds = _random_flips(ds, seed)
    return _batched(ds, batch_size, training if drop_remainder is None else drop_remainder,
                    None if repeat else count, folder, policy)


def paired_files(root, split):
    """[(image_path, depth_path)] of a paired split; ValueError if missing or empty.
    split "" takes root as the split folder."""
    folder = split_dir(root, split) if split else root
    images = list_images(os.path.join(folder, "image"))
    pairs = []
    for path in images:
        depth = os.path.join(folder, "depth", f"{pair_stem(path)}_depth.png")
        if not os.path.isfile(depth):
            raise ValueError(f"{path}: no matching depth file {depth}")
        pairs.append((path, depth))
    return pairs


def pair_stem(path):
    """NAME of a paired image file DIR/image/NAME_image.png (its file stem otherwise)."""
    name = os.path.basename(path)
    return name.rsplit("_image", 1)[0] if "_image" in name else os.path.splitext(name)[0]


def paired_dataset(root, split, image_size=64, crop=None, batch_size=64, training=False,
                   seed=None, shuffle_buffer=4096, counter=None, min_depth=0.9,
                   max_depth=1.1, repeat=False, drop_remainder=None, random_flip=True):
    """Batches of (images [B, S, S, 3] in [0, 1], depth_gt [B, S, S] in camera units)
    from a paired split (files or TFRecord shards)."""
    from tfsym3d.metrics import depth_from_png

    folder = split_dir(root, split)
    counter = counter or SkipCounter()
    ds, count, policy = _source(folder, True, counter, training, seed, shuffle_buffer,
                                repeat)

    def decode(image_name, image_blob, depth_name, depth_blob):
        try:
            im = _crop(load_rgb(_opened(image_name, image_blob)), crop)
            depth = _crop(load_depth_png(_opened(depth_name, depth_blob)), crop)
            return im, depth_from_png(depth, min_depth, max_depth).astype(np.float32), True
        except Exception as err:  # noqa: BLE001
            counter.skip(image_name.decode(), f"{type(err).__name__}: {err}")
            return np.zeros((1, 1, 3), np.float32), np.ones((1, 1), np.float32), False

    def load(*item):
        im, depth, ok = tf.numpy_function(decode, list(item),
                                          [tf.float32, tf.float32, tf.bool])
        im.set_shape([None, None, 3])
        depth.set_shape([None, None])
        ok.set_shape([])
        return _resize(im, image_size), _resize(depth[..., None], image_size)[..., 0], ok

    ds = _decode_in_parallel(ds, load, training, seed)
    ds = ds.filter(_decoded).map(_drop_flag)
    if training and random_flip:
        ds = _random_flips(ds, seed)
    return _batched(ds, batch_size, training if drop_remainder is None else drop_remainder,
                    None if repeat else count, folder, policy)


def _batched(ds, batch_size, drop_remainder, count=None, where=None, shard_policy=None):
    """Batches, prefetches, sets the multi-worker shard policy and turns tf.data's
    autotuning off.

    count: the number of files of one pass (None when the files repeat). Dropping the last
    incomplete batch with fewer files than one batch would leave every epoch without a
    step, and a run would spin through its epochs writing checkpoints without learning:
    ValueError naming `where` (the folder) instead.

    Autotuning made fit lose 10-40 s at the start of most epochs on a 2-core CPU: Keras
    drops the finished epoch's iterator, and its destructor waits for the autotuner's
    thread (seen with py-spy in ~IteratorResource; 30-minute runs spent ~40% of their
    time there). Without it the AUTOTUNE parallelism is fixed at min(16, CPU cores),
    plenty for decoding small images.
    """
    if drop_remainder and count is not None and count < batch_size:
        raise ValueError(f"{where}: {count} images, fewer than batch_size {batch_size}; "
                         "training drops incomplete batches, so no step would run (lower "
                         "batch_size or add images)")
    options = tf.data.Options()
    options.autotune.enabled = False
    if shard_policy is not None:
        options.experimental_distribute.auto_shard_policy = shard_policy
    ds = ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
    return ds.with_options(options)


def _decode_in_parallel(ds, load, training, seed):
    """ds.map(load) in parallel. Outside training the elements keep the sorted file
    list's order (callers pair batches with per-file rows such as gt.csv); in training
    the order is only pinned when a seed asks for it."""
    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE,
                  deterministic=seed is not None or not training)


def _decoded(*item):
    """The last element of a decoded item says whether decoding worked."""
    return item[-1]


def _drop_flag(*item):
    return item[0] if len(item) == 2 else item[:-1]


def _file_dataset(files, training, seed, shuffle_buffer, repeat):
    ds = tf.data.Dataset.from_tensor_slices(files)
    if training:
        ds = ds.shuffle(min(shuffle_buffer, len(files)), seed=seed,
                        reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds


def _random_flips(ds, seed):
    """Flips each element (an image [H, W, C], or a tuple of it and depth [H, W])
    horizontally with p = 0.5.

    The coins come from a seeded random op in a sequential map: the same flips for a seed
    whatever the decoding parallelism (with the shuffle, each image meets new coins every
    epoch). They come from no dataset of their own, so a multi-worker pipeline still finds
    its files to shard (a zipped Dataset.random, or a scan, stops tf.data's
    AutoShardPolicy.FILE)."""

    def flip(*item):
        coin = tf.random.uniform([], maxval=2, dtype=tf.int64, seed=seed)
        do = tf.equal(coin, 0)
        if len(item) > 1:
            return tuple(tf.cond(do, lambda t=t: tf.reverse(t, [1]), lambda t=t: t)
                         for t in item)
        return tf.cond(do, lambda: tf.reverse(item[0], [1]), lambda: item[0])

    return ds.map(flip)
