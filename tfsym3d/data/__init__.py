"""Data: tf.data pipelines, the synthetic dataset generator, dataset preparation.

Names are imported lazily, so that commands that do not need TensorFlow (`tfsym3d synth
--help`, the preparation scripts) do not load it."""

import importlib

_EXPORTS = {"SkipCounter": "folder", "image_dataset": "folder", "list_images": "folder",
            "paired_dataset": "folder", "split_dir": "folder"}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"tfsym3d.data.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'tfsym3d.data' has no attribute {name!r}")
