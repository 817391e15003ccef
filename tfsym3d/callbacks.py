"""The Keras callbacks of `tfsym3d train`: the non-finite-loss guard, the checkpoint after
every epoch, TensorBoard scalars and image grids, and the count of skipped files.
(Imported when training starts: defining them imports Keras.)"""

import logging
import math
import os

import keras
import tensorflow as tf

log = logging.getLogger(__name__)


class NonFiniteGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and remembers where."""

    def __init__(self):
        super().__init__()
        self.bad = None
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        value = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(value) and self.bad is None:
            self.bad = (self.epoch, batch, value)
            self.model.stop_training = True


class EpochCheckpoint(keras.callbacks.Callback):
    """Keeps model.epoch in step with fit and saves a checkpoint after each good epoch."""

    def __init__(self, model, manager, guard):
        super().__init__()
        self.unsup3d, self.manager, self.guard = model, manager, guard

    def on_epoch_begin(self, epoch, logs=None):
        self.unsup3d.epoch.assign(epoch)

    def on_epoch_end(self, epoch, logs=None):
        if self.guard.bad is not None:
            return
        self.unsup3d.epoch.assign(epoch + 1)
        self.manager.save()


class TensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback, with the epoch scalars always written.

    With update_freq = N steps, Keras keeps tf.summary.record_if(step % N == 0) active for
    the whole of fit, so its epoch summaries were only written when an epoch happened to
    end on a multiple of N (seen with log_freq 500: the train and validation event files
    held no scalar at all)."""

    def _log_epoch_metrics(self, epoch, logs):
        with tf.summary.record_if(True):
            super()._log_epoch_metrics(epoch, logs)


class SkippedFiles(keras.callbacks.Callback):
    """Reports the files the pipeline skipped during each epoch."""

    def __init__(self, counter):
        super().__init__()
        self.counter = counter

    def on_epoch_end(self, epoch, logs=None):
        skipped = self.counter.take()
        if skipped:
            log.warning(f"epoch {epoch + 1}: skipped {len(skipped)} unreadable file(s)")


class ImageSummaries(keras.callbacks.Callback):
    """TensorBoard image grids of a fixed batch after every epoch: input, reconstruction,
    flipped reconstruction, canonical depth / normal / albedo / image, confidence."""

    def __init__(self, model, dataset, log_dir, max_images=8):
        super().__init__()
        self.unsup3d = model
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "images"))
        self.dataset, self.max_images = dataset, max_images
        self.batch = None

    def on_epoch_end(self, epoch, logs=None):
        if self.batch is None:
            data = next(iter(self.dataset))
            images = data[0] if isinstance(data, tuple) else data
            self.batch = images[:self.max_images]
        # TensorBoard's record_if(step % log_freq == 0) is active during fit: override it.
        with self.writer.as_default(step=epoch + 1), tf.summary.record_if(True):
            for name, grid in visual_grids(self.unsup3d, self.batch).items():
                tf.summary.image(name, grid, max_outputs=self.max_images)
        self.writer.flush()


def visual_grids(model, images):
    """Images in [0, 1] for TensorBoard: a dict name -> [B, H, W, 3] (the maps drawn as
    `tfsym3d reconstruct` draws them)."""
    from tfsym3d.io.images import to_unit
    from tfsym3d.reconstruct.pictures import depth_image, normal_image

    full = model.decompose(images, training=False)
    out = model.public_outputs(full)
    b = tf.shape(images)[0]
    cfg = model.cfg

    def depth(d):
        return depth_image(d.numpy(), cfg.min_depth, cfg.max_depth)

    grids = {
        "input": images, "symmetry_line": model.symmetry_line(full),
        "recon": out["recon_im"],
        "recon_flip": tf.clip_by_value(to_unit(full["recon_im"][b:]), 0.0, 1.0),
        "canon_depth": depth(out["canon_depth"]),
        "canon_normal": normal_image(out["canon_normal"].numpy()),
        "canon_albedo": out["canon_albedo"], "canon_im": out["canon_im"],
        "recon_depth": depth(out["recon_depth"]),
    }
    for key in ("conf_sigma_l1", "conf_sigma_percl"):
        if key in full:
            conf = 1.0 / (1.0 + full[key])
            for i, half in enumerate(("", "_flip")):
                grids[f"conf_{key[11:]}{half}"] = tf.tile(conf[..., i:i + 1], [1, 1, 1, 3])
    return grids
