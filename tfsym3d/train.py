"""Train a model: `tfsym3d train --config=FILE [--set=key=value ...] [--run_dir=DIR]
[--devices=N] [--init=CHECKPOINT]`.

--init starts a new run from the weights of a run directory, a `.keras` file or the
authors' `.pth` (converted on the fly), with a fresh optimizer and epoch counter; without
--config it trains with the checkpoint's own config. A run directory that already has
checkpoints resumes them and ignores --init.

Keras `fit` with a progress bar, validation every epoch, TensorBoard scalars and image
grids in RUN_DIR/logs, and a checkpoint (model + optimizer + epoch) after every epoch in
RUN_DIR/checkpoints. Calling it again on the same run directory, also after the process
was killed, resumes after the last completed epoch. With --devices=N > 1 the global
batch is split over N replicas by MirroredStrategy; a machine without N GPUs splits its
CPU into N logical devices. With a TF_CONFIG naming several workers, the same command on
every worker trains with MultiWorkerMirroredStrategy (see tfsym3d.distribute); only the
chief writes the run directory. A non-finite loss stops the run with an error and leaves
the last good checkpoint as it was.
"""

import os
import shutil
import sys
import tempfile
import warnings

from absl import flags


class NonFiniteLoss(RuntimeError):
    pass


def define_flags(fv):
    flags.DEFINE_string("config", None, "A preset (celeba, synface, cat, syncar, tiny) or "
                        "a YAML config file.", flag_values=fv)
    flags.DEFINE_multi_string("set", [], "Config override key=value; repeatable.",
                              flag_values=fv)
    flags.DEFINE_string("init", None, "Start from these weights (a run directory, .keras "
                        "file or the authors' .pth) with a fresh optimizer; without "
                        "--config, with the checkpoint's own config.", flag_values=fv)
    flags.DEFINE_string("run_dir", None, "Run directory (default: the config's run_dir, "
                        "else runs/<config name>).",
                        flag_values=fv)
    flags.DEFINE_integer("devices", 1, "Local replicas; >1 uses MirroredStrategy.",
                         flag_values=fv)
    flags.DEFINE_enum("strategy", "auto", ["auto", "default", "mirrored", "multi_worker"],
                      "Distribution: auto is multi_worker when TF_CONFIG names more than "
                      "one worker, mirrored with --devices>1, else default.", flag_values=fv)
    flags.DEFINE_float("worker_timeout", 300.0, "Seconds to wait for the other workers of "
                       "TF_CONFIG (and for any all-reduce) before stopping with an error.",
                       flag_values=fv)
    flags.DEFINE_enum("progress", "auto", ["auto", "bar", "epoch", "none"],
                      "Progress display: a bar per step, a line per epoch, or none.",
                      flag_values=fv)


def main(fv, args):
    if args:
        print(f"tfsym3d train: unexpected arguments {args}", file=sys.stderr)
        return 2
    if not fv.config and not fv.init:
        print("tfsym3d train: --config is required (e.g. --config=tiny)", file=sys.stderr)
        return 2
    from tfsym3d.config import load_config, parse_overrides

    try:
        if fv.config:
            cfg = load_config(fv.config, fv.set)
        else:  # the checkpoint's own config, with the overrides
            from tfsym3d.loader import config_of

            cfg = load_config(None, {**config_of(fv.init).to_dict(),
                                     **parse_overrides(fv.set)})
    except (ValueError, FileNotFoundError) as err:
        print(f"tfsym3d train: {err}", file=sys.stderr)
        return 2
    name = os.path.splitext(os.path.basename(os.path.normpath(fv.config or fv.init)))[0]
    run_dir = fv.run_dir or cfg.run_dir or os.path.join(
        "runs", name if fv.config else f"{name}_finetuned")
    verbose = {"auto": "auto", "bar": 1, "epoch": 2, "none": 0}[fv.progress]
    from tfsym3d import distribute

    try:
        strategy = distribute.make_strategy(fv.devices, fv.strategy, fv.worker_timeout)
        print(distribute.describe(strategy), flush=True)
        train(cfg, run_dir, strategy, verbose=verbose, init=fv.init)
    except (ValueError, FileNotFoundError, NonFiniteLoss) as err:
        print(f"tfsym3d train: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # the run directory cannot be written (a full disk, ...)
        _remove_unfinished_save(run_dir)
        print(f"tfsym3d train: {run_dir}: {err}", file=sys.stderr)
        return 1
    except Exception as err:
        import tensorflow as tf

        if not isinstance(err, tf.errors.ResourceExhaustedError):
            raise
        # Out of memory, or out of disk while writing a checkpoint: the last complete
        # checkpoint is kept and the unfinished one removed at once (it holds the space).
        from tfsym3d.cli import no_space, one_line

        removed = _remove_unfinished_save(run_dir)
        if no_space(err):
            problem = "no space left on device" + (
                " while saving a checkpoint (the unfinished one was removed; the last "
                "complete one is kept)" if removed else "")
        else:
            problem = f"out of memory: {one_line(err)}"
        print(f"tfsym3d train: {run_dir}: {problem}", file=sys.stderr)
        return 1
    return 0


def _remove_unfinished_save(run_dir):
    """Removes the ckpt-N_temp folders of a save that failed; returns their paths."""
    from tfsym3d.checkpoints import checkpoint_dir, remove_partial_saves

    return remove_partial_saves(checkpoint_dir(run_dir))


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
    import fcntl

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
                print(f"removed {path}, left by a save that did not finish",
                      file=sys.stderr)
            checkpoints.repair_state(write_dir)
        manager = tf.train.CheckpointManager(ckpt, write_dir,
                                             max_to_keep=cfg.keep_num_checkpoint)
        initial_epoch = 0
        # The newest checkpoint that reads whole (damaged ones are named and skipped).
        latest = checkpoints.restore(ckpt, checkpoints.checkpoint_dir(run_dir),
                                     partial=False)
        if latest and init:
            print(f"resuming {run_dir}; --init {init} is ignored (the run has checkpoints)",
                  file=sys.stderr)
        elif init:
            missing = checkpoints.copy_weights(model, load_model(init), init)
            note = (f"; {len(missing)} weight(s) it does not have keep their initial "
                    f"values ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})"
                    if missing else "")
            print(f"starting {run_dir} from the weights of {init} (fresh optimizer, "
                  f"epoch 0){note}", file=sys.stderr)
        if latest:
            initial_epoch = int(model.epoch.numpy())
            print(f"resuming {run_dir} from {os.path.basename(latest)}: "
                  f"{initial_epoch} epoch(s) done, optimizer step "
                  f"{int(optimizer.iterations.numpy())}", file=sys.stderr)
    if cfg.lam_perc > 0:
        model._perceptual()  # fail now, with instructions, if VGG16 weights are missing
    if chief:
        cfg.save(checkpoints.config_path(run_dir))
    if initial_epoch >= cfg.num_epochs:
        print(f"{run_dir}: all {cfg.num_epochs} epochs are done already", file=sys.stderr)
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
