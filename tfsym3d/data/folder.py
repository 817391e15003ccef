"""tf.data pipelines for image folders and paired image+depth data (the authors' layout).

Image folders: DIR/{train,val,test}/**/*.{png,jpg,jpeg,bmp,gif,webp,tif,tiff}.
Paired data:   DIR/{train,val,test}/image/NAME_image.png with
               DIR/{train,val,test}/depth/NAME_depth.png (16-bit, 1 = near).

A split folder may instead hold TFRecord shards (`tfsym3d prepare-tfrecords`): the
records carry the files' bytes and go through the same decoding. Under a multi-worker
strategy each worker reads its own shards (AutoShardPolicy.FILE); folders of files are
sharded by element (DATA).

Images are read, cropped and resized by tfsym3d.io.images (the path every command
shares: Pillow decoding with EXIF orientation, the config's crop with the border
replicated, antialiased bilinear resizing) and, in training, flipped horizontally at
random. Depth PNGs are read by tfsym3d.io.depth and cropped and resized like their
images. A file (or record, or shard) that cannot be
decoded is skipped with one warning line naming it and counted (`SkipCounter`); it never
stops an epoch.
"""

import io
import logging
import threading

import numpy as np
import tensorflow as tf

from tfsym3d.data import tfrecords
from tfsym3d.data.layout import (  # noqa: F401  (listing helpers, used here and by callers)
    SPLITS,
    list_images,
    pair_stem,
    paired_files,
    split_dir,
    split_images,
)
from tfsym3d.io import images
from tfsym3d.io.depth import read_depth_png, unit_to_depth

log = logging.getLogger(__name__)


class SkipCounter:
    """Counts (and logs, once each) the files a pipeline had to skip."""

    def __init__(self):
        self._lock = threading.Lock()
        self.skipped = []

    def skip(self, path, reason):
        with self._lock:
            self.skipped.append(path)
        log.warning(f"skipping {path}: {reason}")

    def take(self):
        """Returns and clears the list of skipped files."""
        with self._lock:
            out, self.skipped = self.skipped, []
        return out


class DepthError(images.InputError):
    """A ground-truth depth map that cannot be used (its image is fine)."""


def pair_problem(err, image_path, depth_path):
    """(the file at fault, the reason in one line) of read_pair's exception."""
    path = depth_path if isinstance(err, DepthError) else image_path
    return path, (str(err) if isinstance(err, images.InputError)
                  else f"{type(err).__name__}: {err}")


def read_pair(image_source, depth_source, crop, min_depth, max_depth):
    """An image and its ground-truth depth, read and cropped alike (not yet resized):
    (image [h, w, 3] in [0, 1], depth [h, w] in camera units). The sources are paths or
    file objects; raises on failure: DepthError where the depth map is at fault (its
    size differs from the image's, checked before decoding, or it cannot be read)."""
    image = images.read_samples(image_source)
    try:
        p = read_depth_png(depth_source, image.shape[:2])
    except Exception as err:  # noqa: BLE001 - whatever Pillow raises for a bad file
        raise DepthError(str(err) if isinstance(err, images.InputError)
                         else f"{type(err).__name__}: {err}") from err
    box = images.crop_box(image.shape[0], image.shape[1], crop)
    depth = unit_to_depth(images.crop(p, box), min_depth, max_depth)
    return (np.ascontiguousarray(images.to_float(images.crop(image, box))),
            np.ascontiguousarray(depth, np.float32))


def _opened(name, blob):
    """What Pillow opens: the record's bytes, or the file `name` when there are none."""
    return io.BytesIO(blob) if blob else name.decode()


def _source(folder, paired, counter, training, seed, shuffle_buffer, repeat):
    """The items of a split: (name, bytes) per image, or (image name, bytes, depth name,
    bytes) per pair; bytes are empty for files on disk (decoding opens the name).

    Returns (dataset, items in one pass, auto-shard policy)."""
    import tensorflow as tf

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
    files = split_images(folder)
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
            return images.cropped(images.read_samples(_opened(name, blob)), crop), True
        except Exception as err:  # noqa: BLE001 - any unreadable file is skipped
            counter.skip(name.decode(), f"{type(err).__name__}: {err}")
            return np.zeros((1, 1, 3), np.float32), False

    def load(name, blob):
        im, ok = tf.numpy_function(decode, [name, blob], [tf.float32, tf.bool])
        im.set_shape([None, None, 3])
        ok.set_shape([])
        return images.resize(im, image_size), ok

    return _decoded_batches(ds, load, training, seed, random_flip, batch_size,
                            drop_remainder, None if repeat else count, folder, policy)


def paired_dataset(root, split, image_size=64, crop=None, batch_size=64, training=False,
                   seed=None, shuffle_buffer=4096, counter=None, min_depth=0.9,
                   max_depth=1.1, repeat=False, drop_remainder=None, random_flip=True):
    """Batches of (images [B, S, S, 3] in [0, 1], depth_gt [B, S, S] in camera units)
    from a paired split (files or TFRecord shards)."""
    folder = split_dir(root, split)
    counter = counter or SkipCounter()
    ds, count, policy = _source(folder, True, counter, training, seed, shuffle_buffer,
                                repeat)

    def decode(image_name, image_blob, depth_name, depth_blob):
        try:
            return (*read_pair(_opened(image_name, image_blob), _opened(depth_name, depth_blob),
                               crop, min_depth, max_depth), True)
        except Exception as err:  # noqa: BLE001 - any unreadable pair is skipped
            counter.skip(*pair_problem(err, image_name.decode(), depth_name.decode()))
            return np.zeros((1, 1, 3), np.float32), np.ones((1, 1), np.float32), False

    def load(*item):
        im, depth, ok = tf.numpy_function(decode, list(item),
                                          [tf.float32, tf.float32, tf.bool])
        im.set_shape([None, None, 3])
        depth.set_shape([None, None])
        ok.set_shape([])
        return (images.resize(im, image_size),
                images.resize(depth[..., None], image_size, None)[..., 0], ok)

    return _decoded_batches(ds, load, training, seed, random_flip, batch_size,
                            drop_remainder, None if repeat else count, folder, policy)


def _decoded_batches(ds, load, training, seed, random_flip, batch_size, drop_remainder,
                     count, where, shard_policy):
    """The items of _source decoded by `load` (in parallel), the failed ones dropped,
    flipped at random in training, batched (see _batched; drop_remainder None: in
    training only)."""
    ds = _decode_in_parallel(ds, load, training, seed)
    ds = ds.filter(_decoded).map(_drop_flag)
    if training and random_flip:
        ds = _random_flips(ds, seed)
    return _batched(ds, batch_size, training if drop_remainder is None else drop_remainder,
                    count, where, shard_policy)


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
