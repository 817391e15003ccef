"""`tfsym3d prepare-tfrecords`: a dataset folder as sharded TFRecord files, for input that
scales to many workers.

    tfsym3d prepare-tfrecords --data=data/celeba --out=data/celeba_tfr --shards=64

Writes OUT/{train,val,test}/SPLIT-00000-of-000NN.tfrecord for each split DATA has (a
split with fewer files than --shards gets one shard per file) and copies gt.csv; set a
config's data_dir to OUT to train from them. --shards should be at least the number of
workers (a multiple of it balances them). See tfsym3d.data.tfrecords for the records.
"""

import os

from absl import flags

from tfsym3d.data.layout import SPLITS
from tfsym3d.data.tfrecords import shard_files, write_split
from tfsym3d.errors import UsageError, UserError


def define_flags(fv):
    flags.DEFINE_string("data", None, "Dataset root (train/val/test image folders, or the "
                        "paired image/ depth/ layout).", flag_values=fv)
    flags.DEFINE_string("out", None, "Folder to write the shards to (must not hold shards "
                        "yet).", flag_values=fv)
    flags.DEFINE_integer("shards", 16, "Shards per split (at least the number of workers).",
                         flag_values=fv)


def main(fv, args):
    if args or not fv.data or not fv.out:
        raise UsageError("give --data=DIR --out=DIR [--shards=N]")
    if fv.shards < 1:
        raise UsageError("--shards must be at least 1")
    splits = [s for s in SPLITS if os.path.isdir(os.path.join(fv.data, s))]
    if not splits:
        raise UserError(f"{fv.data}: no train/val/test folder")
    existing = [s for s in splits if shard_files(os.path.join(fv.out, s))]
    if existing:
        raise UserError(f"{os.path.join(fv.out, existing[0])} already holds shards; choose "
                        "another --out")
    for split in splits:
        count = write_split(fv.data, split, fv.out, fv.shards)
        print(f"{split}: {count} records in {len(shard_files(os.path.join(fv.out, split)))} "
              f"shard(s) in {os.path.join(fv.out, split)}")
    return 0
