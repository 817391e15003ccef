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

from absl import flags

from tfsym3d import checkpoints, distribute
from tfsym3d.config import load_config, parse_overrides
from tfsym3d.errors import UsageError, UserError, no_space, one_line
from tfsym3d.loader import config_of
from tfsym3d.train import NonFiniteLoss, train


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
        raise UsageError(f"unexpected arguments {args}")
    if not fv.config and not fv.init:
        raise UsageError("--config is required (e.g. --config=tiny)")
    if fv.config:
        cfg = load_config(fv.config, fv.set)
    else:  # the checkpoint's own config, with the overrides
        cfg = load_config(None, {**config_of(fv.init).to_dict(), **parse_overrides(fv.set)})
    name = os.path.splitext(os.path.basename(os.path.normpath(fv.config or fv.init)))[0]
    run_dir = fv.run_dir or cfg.run_dir or os.path.join(
        "runs", name if fv.config else f"{name}_finetuned")
    verbose = {"auto": "auto", "bar": 1, "epoch": 2, "none": 0}[fv.progress]
    strategy = distribute.make_strategy(fv.devices, fv.strategy, fv.worker_timeout)
    print(distribute.describe(strategy), flush=True)
    try:
        train(cfg, run_dir, strategy, verbose=verbose, init=fv.init)
    except NonFiniteLoss as err:
        raise UserError(str(err)) from err
    except (ValueError, FileNotFoundError):
        raise
    except Exception as err:
        # The run directory cannot be written (a full disk, ...), or TensorFlow ran out of
        # memory or disk while writing a checkpoint: the last complete checkpoint is kept
        # and the unfinished one removed at once (it holds the space).
        import tensorflow as tf

        if not isinstance(err, (OSError, tf.errors.ResourceExhaustedError)):
            raise
        removed = checkpoints.remove_partial_saves(checkpoints.checkpoint_dir(run_dir))
        if no_space(err):
            problem = "no space left on device" + (
                " while saving a checkpoint (the unfinished one was removed; the last "
                "complete one is kept)" if removed else "")
        elif isinstance(err, OSError):
            problem = str(err)
        else:
            problem = f"out of memory: {one_line(err)}"
        raise UserError(f"{run_dir}: {problem}") from err
    return 0
