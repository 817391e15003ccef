"""The training callbacks: TensorBoard image grids."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tfsym3d import Unsup3D, load_config
from tfsym3d.callbacks import ImageSummaries
from tfsym3d.model import build

SMALL = dict(nf_depth=16, zdim_depth=16, nf_light=8, nf_conf=16, zdim_conf=16, lam_perc=0)


def _images_in(log_dir):
    """{tag: [(step, height, width)]} of the image summaries under log_dir."""
    found = {}
    for root, _, files in os.walk(log_dir):
        for name in files:
            for event in tf.compat.v1.train.summary_iterator(os.path.join(root, name)):
                for value in event.summary.value:
                    tensor = tf.make_ndarray(value.tensor)  # [width, height, png...]
                    found.setdefault(value.tag, []).append(
                        (event.step, int(tensor[1]), int(tensor[0]), len(tensor) - 2))
    return found


@pytest.mark.slow
def test_image_summaries_write_every_grid_of_a_fixed_batch_each_epoch(tmp_path):
    model = build(Unsup3D(load_config(None, SMALL)))
    x = np.random.default_rng(0).uniform(size=(5, 64, 64, 3)).astype(np.float32)
    callback = ImageSummaries(model, tf.data.Dataset.from_tensor_slices(x).batch(5),
                              str(tmp_path), max_images=3)
    callback.on_epoch_end(0)
    callback.on_epoch_end(1)
    found = _images_in(tmp_path / "images")
    assert set(found) == {"input", "symmetry_line", "recon", "recon_flip", "canon_depth",
                          "canon_normal", "canon_albedo", "canon_im", "recon_depth",
                          "conf_l1", "conf_l1_flip", "conf_percl", "conf_percl_flip"}
    for tag, entries in found.items():
        assert [e[0] for e in entries] == [1, 2], tag  # one per epoch, numbered from 1
        size = 16 if "percl" in tag else 64
        assert all(e[1:] == (size, size, 3) for e in entries), (tag, entries)
    np.testing.assert_array_equal(callback.batch.numpy(), x[:3])
