"""One loader for every door: `tfsym3d.load_model(source)`.

    model = load_model("runs/tiny")                           # a run directory
    model = load_model("runs/tiny/checkpoints/ckpt-4")        # a checkpoint prefix
    model = load_model("model.keras")                         # Unsup3D.save's file
    model = load_model("pretrained_celeba/checkpoint030.pth") # the authors' (converted)

reconstruct, evaluate, export, `train --init`, mobile_demo/build.sh and the Python API
all load through here, so each takes every kind, and the names of the authors'
published models (`celeba`, `synface`, `cat`, `syncar`: tfsym3d.pretrained, downloaded
and converted on first use, then read from the cache) and of the project's own
(`tiny-faces`, unpacked from the package on first use). An authors' `.pth` is converted in
memory (tfsym3d.official): its config is `config` when given, else the preset that the
authors' own folder names name (`pretrained_NAME/`, `results/NAME/`), else the one its
networks' shapes fit (with a confidence network: celeba, without: syncar); never a
substring of the path. Which, and why, is logged (one line on stderr in a command). A
folder of `.pth` files (the authors' checkpoint_dir) gives its last one by name, as
their trainer picks it.
"""

import logging
import os

from tfsym3d import checkpoints, official, pretrained

log = logging.getLogger(__name__)


def _pth_of(path):
    """path; a model's name (tfsym3d.pretrained.NAMES, where no file or folder of that
    name is here): its cached run directory, fetched or unpacked on first use; or the
    last .pth of a folder of them that is not a run directory."""
    if path in pretrained.NAMES and not os.path.exists(path):
        return pretrained.fetch(path)
    if os.path.isdir(path) and not os.path.isfile(checkpoints.config_path(path)):
        found = sorted(f for f in os.listdir(path) if f.endswith(".pth"))
        if found:
            return os.path.join(path, found[-1])
    return path


def load_model(source, config=None, **overrides):
    """The model of a run directory, checkpoint prefix, `.keras` file or authors' `.pth`.

    Args:
      source: the path (see the module docstring).
      config: for a `.pth` only, the config file to read it with (else chosen as the
        module docstring says).
      overrides: config keys to change (e.g. jit_renderer=False).

    Raises FileNotFoundError or ValueError (official.ConversionError for a `.pth` that
    does not fit) naming the path.
    """
    path = _pth_of(os.fspath(source))
    if path.endswith(".pth"):
        model, _, config_file, why = official.convert(path, config, overrides or None)
        log.info(f"{path}: read with {os.path.basename(config_file)} ({why})")
        return model
    return checkpoints.load_model(path, **overrides)


def config_of(source, config=None):
    """The Config a checkpoint of any kind (see load_model) was made with, without
    building the model."""
    path = _pth_of(os.fspath(source))
    if path.endswith(".pth"):
        return official.converted_config(path, config)[0]
    return checkpoints.config_of(path)
