"""The run directory: resolved config, epoch checkpoints, and loading a trained model.

    RUN_DIR/config.yaml              the resolved config of the run
    RUN_DIR/checkpoints/ckpt-N.*     model + optimizer + epoch (tf.train.Checkpoint),
                                     the newest keep_num_checkpoint kept
    RUN_DIR/logs/                    TensorBoard scalars and images
"""

import json
import logging
import os
import shutil
import zipfile

import tensorflow as tf

from tfsym3d.config import load_config
from tfsym3d.errors import one_line

log = logging.getLogger(__name__)

# A .keras file's config.json is read only up to this size (an Unsup3D's is ~3 kB).
MAX_KERAS_CONFIG_BYTES = 1 << 20


def config_path(run_dir):
    return os.path.join(run_dir, "config.yaml")


def checkpoint_dir(run_dir):
    return os.path.join(run_dir, "checkpoints")


def _number(prefix):
    tail = os.path.basename(prefix).rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def _mtime(prefix):
    index = prefix + ".index"
    return os.path.getmtime(index) if os.path.exists(index) else 0.0


def newest(directory):
    """The prefix of the newest complete checkpoint in directory, or None.

    tf.train.CheckpointManager writes ckpt-N.index and the data before it records ckpt-N in
    the state file, so a run killed between the two leaves a finished epoch unrecorded.
    TensorFlow writes the .index file of a checkpoint last, so a ckpt-N newer than the
    recorded one counts when its index can be read."""
    latest = tf.train.latest_checkpoint(directory)
    for prefix in all_checkpoints(directory):
        if latest is not None and _number(prefix) <= _number(latest):
            break
        try:
            tf.train.load_checkpoint(prefix)
        except (tf.errors.OpError, ValueError):
            continue  # killed while its index was being written
        return prefix
    return latest


def repair_state(directory):
    """Records the newest complete checkpoint (see newest) in directory's state file, so that
    a restarted CheckpointManager resumes from it and keeps rotating it. Returns its prefix."""
    prefix = newest(directory)
    state = tf.train.get_checkpoint_state(directory)
    if prefix is None or (state and _number(state.model_checkpoint_path) >= _number(prefix)):
        return prefix
    paths = list(state.all_model_checkpoint_paths) if state else []
    stamps = list(state.all_model_checkpoint_timestamps) if state else []
    if len(stamps) != len(paths):
        stamps = [_mtime(p) for p in paths]
    tf.compat.v1.train.update_checkpoint_state(
        directory, prefix, all_model_checkpoint_paths=paths + [prefix],
        all_model_checkpoint_timestamps=stamps + [_mtime(prefix)],
        last_preserved_timestamp=state.last_preserved_timestamp if state else None)
    return prefix


def all_checkpoints(directory):
    """Every checkpoint prefix in directory that has an .index file, newest first."""
    if not tf.io.gfile.isdir(directory):
        return []
    found = [os.path.join(directory, f[:-len(".index")])
             for f in tf.io.gfile.listdir(directory) if f.endswith(".index")]
    return sorted(found, key=_number, reverse=True)


class CheckpointMismatch(ValueError):
    """A readable checkpoint whose weights do not fit the model its config builds."""


def _restore_prefix(ckpt, prefix, shapes, partial, config="the config"):
    """Restores ckpt (make_checkpoint) from prefix, whose reader's name -> shape map is
    `shapes`. CheckpointMismatch, naming `config`, when its weights do not fit: the first
    weight whose shape differs (its network and both shapes), checked before restoring."""
    for key, weight in ckpt.weights.items():
        # tf.train names a dict entry by its key with '.' written '..' and '/' '.S'
        name = f"weights/{key.replace('.', '..').replace('/', '.S')}/.ATTRIBUTES/VARIABLE_VALUE"
        stored = shapes.get(name)
        if stored is not None and tuple(stored) != tuple(weight.shape):
            raise CheckpointMismatch(
                f"{prefix}: its weights do not fit the model of {config}: {key} (network "
                f"{key.split('/')[0]}) is {tuple(stored)} in the checkpoint, "
                f"{tuple(weight.shape)} in the model (was config.yaml edited?)")
    try:
        status = ckpt.restore(prefix)
        status.expect_partial() if partial else status.assert_existing_objects_matched()
    except (ValueError, AssertionError) as err:
        raise CheckpointMismatch(f"{prefix}: its weights do not fit the model of {config} "
                                 f"({one_line(err)})") from err


def restore(ckpt, directory, partial=True):
    """Restores ckpt (make_checkpoint) from the newest checkpoint of directory that reads
    whole, walking back past damaged ones (a truncated or overwritten data or index file)
    with one line logged for each. partial: whether the checkpoint may hold objects
    ckpt does not (an optimizer, when loading for inference).

    Returns the prefix restored, or None when directory holds no checkpoint. Raises
    ValueError naming the directory when none reads, CheckpointMismatch when one reads
    but its weights' shapes are not the model's."""
    candidates = all_checkpoints(directory)
    for prefix in candidates:
        try:
            reader = tf.train.load_checkpoint(prefix)
            shapes = reader.get_variable_to_shape_map()
            for name in shapes:
                reader.get_tensor(name)  # every byte read: a damaged file fails here
        except (tf.errors.OpError, ValueError, IndexError, RuntimeError, OSError) as err:
            log.warning(f"skipping the damaged checkpoint {prefix}: {one_line(err)}")
            continue
        _restore_prefix(ckpt, prefix, shapes, partial)
        if prefix != candidates[0]:
            log.warning(f"using the older checkpoint {prefix}")
        return prefix
    if candidates:
        raise ValueError(f"{directory}: none of its {len(candidates)} checkpoint(s) can be "
                         "read")
    return None


def remove_partial_saves(directory):
    """Removes the ckpt-N_temp folders a save interrupted (a kill, a full disk) left in
    directory; returns their paths."""
    if not os.path.isdir(directory):
        return []
    left = [os.path.join(directory, f) for f in os.listdir(directory) if f.endswith("_temp")]
    for path in left:
        shutil.rmtree(path, ignore_errors=True)
    return left


def make_checkpoint(model, optimizer=None):
    """A tf.train.Checkpoint of the model's weights, its epoch counter and optimizer.

    Keras 3 models are not tf.train trackables, so the weights are tracked by their
    stable paths (netD/enc_conv1/kernel, ...) without the model name, which Keras uniquifies."""
    weights = {weight_key(w): w for w in model.weights}
    if len(weights) != len(model.weights):
        raise ValueError("model weights do not have unique paths")
    items = {"weights": weights, "epoch": model.epoch}
    if optimizer is not None:
        # Adam's state, not a loss-scale wrapper's (mixed_float16): a run resumes under
        # any precision; the loss scale starts afresh.
        items["optimizer"] = getattr(optimizer, "inner_optimizer", optimizer)
    return tf.train.Checkpoint(**items)


def resolve(path):
    """(config file, checkpoint prefix) for a run directory or a checkpoint prefix.

    Raises FileNotFoundError naming the path when there is no checkpoint there."""
    path = os.fspath(path)
    if os.path.isdir(path):
        run_dir = path
        prefix = newest(checkpoint_dir(path))
        if prefix is None:
            raise FileNotFoundError(f"{path}: no checkpoint in {checkpoint_dir(path)}")
    elif os.path.exists(path + ".index"):
        prefix = path
        run_dir = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    else:
        raise FileNotFoundError(f"{path}: not a run directory, a checkpoint or a .keras file")
    cfg = config_path(run_dir)
    if not os.path.isfile(cfg):
        raise FileNotFoundError(f"{path}: no config.yaml in the run directory {run_dir}")
    return cfg, prefix


def load_model(path, **overrides):
    """Builds the model of a run directory, checkpoint prefix or `.keras` file (what
    `Unsup3D.save` writes) and loads its weights.

    overrides: config keys to change (e.g. jit_renderer=False); training-only keys do not
    affect inference. Raises FileNotFoundError or ValueError naming the path.
    """
    from tfsym3d.model import Unsup3D, build

    path = os.fspath(path)
    if path.endswith(".keras") and os.path.isfile(path):
        model = build(Unsup3D(_keras_file_config(path, overrides)))
        try:
            model.load_weights(path)
        except (OSError, ValueError, KeyError) as err:
            raise ValueError(f"{path}: cannot load its weights: {err}") from err
        return model
    cfg_file, prefix = resolve(path)
    cfg = load_config(cfg_file, overrides=overrides or None)
    model = build(Unsup3D(cfg))
    ckpt = make_checkpoint(model)
    if os.path.isdir(path):  # a run directory: its newest checkpoint that reads
        restore(ckpt, checkpoint_dir(path))
        return model
    try:
        shapes = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
        _restore_prefix(ckpt, prefix, shapes, partial=True, config=cfg_file)
    except CheckpointMismatch:
        raise
    except (tf.errors.OpError, ValueError, IndexError, RuntimeError) as err:
        raise ValueError(f"{prefix}: cannot read this checkpoint ({one_line(err)})") from err
    return model


def config_of(path):
    """The Config a run directory, checkpoint prefix or `.keras` file was made with (an
    authors' `.pth` too: tfsym3d.loader.config_of)."""
    path = os.fspath(path)
    if path.endswith(".keras") and os.path.isfile(path):
        return _keras_file_config(path, {})
    return load_config(resolve(path)[0])


def weight_key(weight):
    """A weight's stable name without the model's (Keras uniquifies model names):
    netD/enc_conv1/kernel."""
    return weight.path.split("/", 1)[-1]


def copy_weights(model, source, where):
    """Copies source's weights into model, matched by weight_key.

    Raises ValueError naming `where`, the weight and both shapes when a shape differs.
    Returns the keys of model's weights the source does not have (left as they are)."""
    have = {weight_key(w): w for w in source.weights}
    missing = []
    for w in model.weights:
        key = weight_key(w)
        if key not in have:
            missing.append(key)
            continue
        if tuple(have[key].shape) != tuple(w.shape):
            raise ValueError(f"{where}: {key} is {tuple(have[key].shape)} there but "
                             f"{tuple(w.shape)} in this config (network {key.split('/')[0]});"
                             " omit --config to train with the checkpoint's own widths")
        w.assign(have[key])
    return missing


def _keras_file_config(path, overrides):
    """The Config stored in a `.keras` archive of an Unsup3D, with overrides applied."""
    try:
        with zipfile.ZipFile(path) as archive:
            size = archive.getinfo("config.json").file_size
            if size > MAX_KERAS_CONFIG_BYTES:  # checked before inflating it
                raise ValueError(f"its config.json inflates to {size} bytes; an "
                                 "Unsup3D's is a few kB")
            saved = json.loads(archive.read("config.json"))
        values = dict(saved["config"]["cfg"]) if saved.get("class_name") == "Unsup3D" \
            else None
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not a readable .keras model ({err})") from err
    if values is None:
        raise ValueError(f"{path}: a .keras file of a {saved.get('class_name')}, "
                         "not of a tfsym3d Unsup3D")
    try:
        return load_config(None, {**values, **overrides})
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from err
