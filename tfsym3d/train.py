"""Training a run: `train(cfg, run_dir)` fits (or resumes) a model with Keras `fit`,
writing checkpoints, TensorBoard logs and the config into the run directory
(`tfsym3d train` is tfsym3d.commands.train; its docstring says what a run holds).
Only the chief of a multi-worker job writes the run directory; a run directory is locked
while it trains; a non-finite loss stops the run (NonFiniteLoss) and leaves the last good
checkpoint as it was.
"""

import fcntl
import logging
import os
import shutil
import tempfile
import warnings

log = logging.getLogger(__name__)


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the run stopped without saving that epoch."""


def make_datasets(cfg, counter=None):
    """(train, val or None) tf.data datasets of a config's data_dir."""
    from tfsym3d.data import folder

    if not cfg.data_dir:
        raise ValueError("data_dir is not set: --set=data_dir=DIR (DIR/train, DIR/val)")
    common = dict(image_size=cfg.image_size, crop=cfg.crop, batch_size=cfg.batch_size,
                  seed=cfg.seed, shuffle_buffer=cfg.shuffle_buffer, counter=counter,
                  random_flip=cfg.random_flip)
    if cfg.load_gt_depth:
        make = folder.paired_dataset
        near, far = cfg.resolved_gt_depth_range
        common.update(min_depth=near, max_depth=far)
    else:
        make = folder.image_dataset
    train_ds = make(cfg.data_dir, "train", training=True,
                    repeat=cfg.steps_per_epoch is not None, **common)
    try:
        val_ds = make(cfg.data_dir, "val", training=False, **common)
    except ValueError:
        val_ds = None
    return train_ds, val_ds


def train(cfg, run_dir, strategy=None, train_ds=None, val_ds=None, verbose="auto",
          callbacks=(), init=None):
    """Trains (or resumes) a run. Returns (model, history).

    Args:
      cfg: a Config.
      run_dir: the run directory (created if needed).
      strategy: a tf.distribute strategy (default: the current one).
      train_ds, val_ds: datasets to use instead of cfg.data_dir's (tests).
      verbose: Keras fit verbosity.
      callbacks: extra Keras callbacks (e.g. a time limit), run after the built-in ones.
      init: a checkpoint of any kind (tfsym3d.loader.load_model) whose weights a new run starts
        from (fresh optimizer and epochs); ignored when run_dir has checkpoints.
    """
    import tensorflow as tf

    from tfsym3d import checkpoints, distribute

    strategy = strategy or tf.distribute.get_strategy()
    # Only the chief writes the run directory; other workers of a multi-worker job save
    # their (identical) checkpoints to a temporary folder, removed at the end, as the
    # Keras multi-worker guide does: saving may need every worker to take part.
    chief = distribute.is_chief(strategy)
    write_dir = checkpoints.checkpoint_dir(run_dir) if chief else \
        tempfile.mkdtemp(prefix="tfsym3d-worker-")
    lock = None
    if chief:
        os.makedirs(run_dir, exist_ok=True)
        lock = lock_run(run_dir)
    try:
        return _fit(cfg, run_dir, strategy, chief, write_dir, train_ds, val_ds, verbose, init,
                    callbacks)
    finally:
        if lock is not None:
            lock.close()  # releases the lock
        if not chief:
            shutil.rmtree(write_dir, ignore_errors=True)


LOCK_FILE = ".train.lock"


def lock_run(run_dir):
    """Locks run_dir for this process's training (an exclusive flock on
    run_dir/.train.lock, released when the returned file is closed or the process ends,
    however it ends). Raises ValueError naming the process that holds it."""
    f = open(os.path.join(run_dir, LOCK_FILE), "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise ValueError(f"{run_dir}: already being trained by {holder}; wait for it or "
                         "choose another --run_dir") from None
    f.seek(0)
    f.truncate()
    f.write(f"process {os.getpid()}\n")
    f.flush()
    return f


def _fit(cfg, run_dir, strategy, chief, write_dir, train_ds, val_ds, verbose, init,
         callbacks):
    import keras
    import tensorflow as tf

    from tfsym3d import checkpoints
    from tfsym3d.callbacks import (
        EpochCheckpoint,
        ImageSummaries,
        NonFiniteGuard,
        SkippedFiles,
        TensorBoard,
    )
    from tfsym3d.data import SkipCounter
    from tfsym3d.loader import load_model
    from tfsym3d.model import Unsup3D, build, make_optimizer

    if cfg.seed is not None:
        keras.utils.set_random_seed(cfg.seed)
    counter = SkipCounter()
    if train_ds is None:
        train_ds, val_ds = make_datasets(cfg, counter)

    with strategy.scope():
        model = build(Unsup3D(cfg))
        optimizer = make_optimizer(cfg)
        model.compile(optimizer=optimizer, jit_compile=False)
        optimizer.build(model.trainable_variables)
        ckpt = checkpoints.make_checkpoint(model, optimizer)
        # Every worker resumes from the chief's checkpoints (shared storage); the chief
        # also records the newest complete one in its state file.
        if chief:
            for path in checkpoints.remove_partial_saves(write_dir):
                log.warning(f"removed {path}, left by a save that did not finish")
            checkpoints.repair_state(write_dir)
        manager = tf.train.CheckpointManager(ckpt, write_dir,
                                             max_to_keep=cfg.keep_num_checkpoint)
        initial_epoch = 0
        # The newest checkpoint that reads whole (damaged ones are named and skipped).
        latest = checkpoints.restore(ckpt, checkpoints.checkpoint_dir(run_dir),
                                     partial=False)
        if latest and init:
            log.warning(f"resuming {run_dir}; --init {init} is ignored (the run has "
                        "checkpoints)")
        elif init:
            missing = checkpoints.copy_weights(model, load_model(init), init)
            note = (f"; {len(missing)} weight(s) it does not have keep their initial "
                    f"values ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})"
                    if missing else "")
            log.info(f"starting {run_dir} from the weights of {init} (fresh optimizer, "
                     f"epoch 0){note}")
        if latest:
            initial_epoch = int(model.epoch.numpy())
            log.info(f"resuming {run_dir} from {os.path.basename(latest)}: "
                     f"{initial_epoch} epoch(s) done, optimizer step "
                     f"{int(optimizer.iterations.numpy())}")
    if cfg.lam_perc > 0:
        model._perceptual()  # fail now, with instructions, if VGG16 weights are missing
    if chief:
        cfg.save(checkpoints.config_path(run_dir))
    if initial_epoch >= cfg.num_epochs:
        log.warning(f"{run_dir}: all {cfg.num_epochs} epochs are done already")
        return model, None

    guard = NonFiniteGuard()
    log_dir = os.path.join(run_dir, "logs")
    summaries = [TensorBoard(log_dir, update_freq=max(cfg.log_freq, 1)),
                 ImageSummaries(model, val_ds if val_ds is not None else train_ds, log_dir)
                 ] if chief else []
    callbacks = [guard, EpochCheckpoint(model, manager, guard), *summaries,
                 SkippedFiles(counter), *callbacks]
    with warnings.catch_warnings():
        # Skipped files make the epoch length unknown to Keras; running out is expected.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        history = model.fit(train_ds, epochs=cfg.num_epochs, initial_epoch=initial_epoch,
                            steps_per_epoch=cfg.steps_per_epoch, validation_data=val_ds,
                            validation_steps=cfg.val_steps, callbacks=callbacks,
                            verbose=verbose, shuffle=False)
    if guard.bad is not None:
        epoch, step, value = guard.bad
        last = manager.latest_checkpoint or "none (no epoch had finished)"
        raise NonFiniteLoss(f"loss became {value} at epoch {epoch + 1}, step {step + 1}; "
                            f"stopped without saving. Last good checkpoint: {last}")
    return model, history
