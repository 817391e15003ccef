"""A dataset folder as sharded TFRecord files, for input that scales to many workers
(`tfsym3d prepare-tfrecords`, tfsym3d.commands.prepare_tfrecords), and their reading.

    write_split("data/celeba", "train", "data/celeba_tfr", shards=64)

Writes OUT/{train,val,test}/SPLIT-00000-of-000NN.tfrecord for each split DIR has (a split
with fewer files than --shards gets one shard per file), and copies gt.csv. Each record
is a tf.train.Example with "name" (the file name, or NAME of a paired NAME_image.png),
"image" (the file's bytes as they are: no re-encoding, so nothing is lost) and, for
paired data, "depth" (the depth PNG's bytes). Training reads such a folder like an image
folder (set data_dir to OUT): the records are decoded by the same code as files, and
with several workers each reads its own shards (tf.data's AutoShardPolicy.FILE), so
--shards should be at least the number of workers (a multiple of it balances them).

A shard whose last record is cut short (a copy that did not finish) or whose data fails
its checksum (a damaged disk or copy) is named, skipped and counted when a pipeline opens
the folder: every shard is read through once then.
"""

import os
import re
import shutil
import struct

from tfsym3d.data.layout import list_images, pair_stem, paired_files, split_dir

SUFFIX = ".tfrecord"


def shard_files(folder):
    """Sorted *.tfrecord files directly in folder ([] if none or no folder)."""
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(SUFFIX))


def count_records(path):
    """Records in a TFRecord file, each checked.

    Each record is a little-endian uint64 length, a 4-byte CRC of it, the data and a
    4-byte CRC of the data. Raises ValueError naming the file when a record runs past the
    end of the file (a truncated shard: the length headers walked first) or a checksum
    does not match (TensorFlow's reader, which checks both, read through once)."""
    count = _walk_lengths(path)
    import tensorflow as tf

    try:
        read = int(tf.data.TFRecordDataset(path).reduce(
            tf.constant(0, tf.int64), lambda n, _: n + 1))
    except tf.errors.DataLossError as err:
        at = re.search(r"corrupted record at (\d+)", err.message or "")
        where = f"at byte {at.group(1)}" if at else "somewhere"
        raise ValueError(f"{path}: damaged: a record's checksum fails {where}") from err
    if read != count:
        raise ValueError(f"{path}: damaged: {read} records readable of {count}")
    return count


def _walk_lengths(path):
    """Records in a TFRecord file by its length headers (payloads skipped); ValueError
    naming the file when one runs past its end."""
    size = os.path.getsize(path)
    position, count = 0, 0
    with open(path, "rb") as f:
        while position < size:
            head = f.read(12)
            if len(head) < 12:
                raise ValueError(f"{path}: truncated: {size - position} stray byte(s) at "
                                 f"byte {position}")
            length = struct.unpack("<Q", head[:8])[0]
            end = position + 12 + length + 4
            if end > size:
                raise ValueError(f"{path}: truncated: record {count + 1} needs {length} "
                                 f"bytes at byte {position}, the file has {size}")
            position = end
            f.seek(position)
            count += 1
    return count


def usable_shards(files, counter):
    """(the shards that are whole, their total record count); the others are skipped
    through counter (tfsym3d.data.folder.SkipCounter), each named once."""
    good, total = [], 0
    for path in files:
        try:
            n = count_records(path)
        except (OSError, ValueError) as err:
            counter.skip(path, str(err).removeprefix(f"{path}: "))
            continue
        good.append(path)
        total += n
    return good, total


def records_dataset(files, paired, training, seed, shuffle_buffer, repeat):
    """(name, image bytes[, depth bytes]) from TFRecord shards, in file order outside
    training; in training the shards and the records are shuffled (a buffer of
    shuffle_buffer; 1 keeps the order)."""
    import tensorflow as tf

    spec = {"name": tf.io.FixedLenFeature([], tf.string),
            "image": tf.io.FixedLenFeature([], tf.string)}
    if paired:
        spec["depth"] = tf.io.FixedLenFeature([], tf.string)

    def parse(record):
        example = tf.io.parse_single_example(record, spec)
        out = (example["name"], example["image"])
        return out + (example["depth"],) if paired else out

    ds = tf.data.Dataset.from_tensor_slices(files)
    if training and shuffle_buffer > 1:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 4),
                       block_length=1)
    if training and shuffle_buffer > 1:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.map(parse)


def _example(name, image_path, depth_path=None):
    import tensorflow as tf

    def feature(data):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))

    with open(image_path, "rb") as f:
        features = {"name": feature(name.encode()), "image": feature(f.read())}
    if depth_path is not None:
        with open(depth_path, "rb") as f:
            features["depth"] = feature(f.read())
    return tf.train.Example(features=tf.train.Features(feature=features))


def write_split(data, split, out, shards):
    """Writes one split's shards; returns the number of records written."""
    import tensorflow as tf

    folder = split_dir(data, split)
    paired = os.path.isdir(os.path.join(folder, "image")) and \
        os.path.isdir(os.path.join(folder, "depth"))
    if paired:
        items = [(pair_stem(i), i, d) for i, d in paired_files(data, split)]
    else:
        items = [(os.path.relpath(p, folder), p, None) for p in list_images(folder)]
    n = max(1, min(shards, len(items)))
    target = os.path.join(out, split)
    os.makedirs(target, exist_ok=True)
    writers = [tf.io.TFRecordWriter(os.path.join(target, f"{split}-{k:05d}-of-{n:05d}{SUFFIX}"))
               for k in range(n)]
    try:
        for k, (name, image, depth) in enumerate(items):  # round robin: shards stay even
            writers[k % n].write(_example(name, image, depth).SerializeToString())
    finally:
        for writer in writers:
            writer.close()
    truth = os.path.join(folder, "gt.csv")
    if os.path.isfile(truth):
        shutil.copyfile(truth, os.path.join(target, "gt.csv"))
    return len(items)
