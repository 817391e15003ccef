"""TFRecord shards (tfsym3d.data.tfrecords): written from an image folder, counted, and a
damaged shard (cut short, or a flipped byte that fails its checksum) named and skipped
when a pipeline opens the folder, the whole shards still read."""

import os
import struct

import numpy as np
import pytest
from PIL import Image

from tfsym3d.data import folder, tfrecords


@pytest.fixture
def shards(tmp_path):
    """Six 8x8 photos in data/train, written as two shards into records/train."""
    photos = tmp_path / "data" / "train"
    photos.mkdir(parents=True)
    for k in range(6):
        Image.fromarray(np.full((8, 8, 3), 40 * k, np.uint8)).save(photos / f"p{k}.png")
    assert tfrecords.write_split(str(tmp_path / "data"), "train",
                                 str(tmp_path / "records"), 2) == 6
    return tfrecords.shard_files(str(tmp_path / "records" / "train"))


def test_count_walks_every_record(shards):
    assert [tfrecords.count_records(p) for p in shards] == [3, 3]
    # By hand: each record is a uint64 length, 4 bytes of its CRC, the data, 4 of CRC.
    raw = open(shards[0], "rb").read()
    position, count = 0, 0
    while position < len(raw):
        position += 16 + struct.unpack("<Q", raw[position:position + 8])[0]
        count += 1
    assert count == 3 and position == len(raw)


@pytest.mark.parametrize("damage,said", [("cut", "truncated"), ("flip", "checksum fails")])
def test_a_damaged_shard_is_named_and_skipped(shards, damage, said, logged):
    raw = bytearray(open(shards[1], "rb").read())
    if damage == "cut":
        raw = raw[:-100]
    else:  # a byte inside the second record's data: only its CRC can tell
        second = 16 + struct.unpack("<Q", raw[:8])[0]
        raw[second + 12 + 20] ^= 0x40
    with open(shards[1], "wb") as f:
        f.write(bytes(raw))
    with pytest.raises(ValueError, match=said) as err:
        tfrecords.count_records(shards[1])
    assert str(err.value).startswith(shards[1]) and "\n" not in str(err.value)

    counter = folder.SkipCounter()
    root = os.path.dirname(os.path.dirname(shards[1]))
    batches = folder.image_dataset(root, "train", image_size=8, batch_size=2,
                                   counter=counter, random_flip=False)
    assert sum(len(b) for b in batches) == 3  # the whole shard's records
    assert counter.take() == [shards[1]]
    assert said in logged()
