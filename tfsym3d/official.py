"""The authors' PyTorch checkpoints as tfsym3d models (what `tfsym3d convert-official`
does, tfsym3d.commands.convert_official, and how every door reads a `.pth`).

    model, epoch, config_file, why = convert("pretrained_celeba/checkpoint030.pth")
    write_model(model, "runs/celeba_official")       # or "celeba.keras"
    convert_vgg16("vgg16-397923af.pth", "vgg16_torch_notop.h5")

Reads a checkpoint of the authors' trainer (a dict with the netD, netA, netL, netV and,
unless the model has no confidence maps, netC state dicts; optimizer states, the
metrics trace and the epoch are read and ignored) or a model-only checkpoint (the five
state dicts), in either torch.save format, without torch and without running code from
the file (tfsym3d.torch_file). Every tensor is mapped by name to the Keras networks
(convolutions OIHW -> HWIO, transposed convolutions IOHW -> HWOI, GroupNorm weight/bias
-> gamma/beta), the widths are read from the shapes, and the model is written as a run
directory (config.yaml + a checkpoint) or a `.keras` file that `evaluate`, `reconstruct`
and `export` take like any other.

The config is the authors' experiment: the one given, else the one the authors' own folder
names name (`pretrained_NAME/` as their download scripts unzip, `results/NAME/` their
checkpoint_dir), else syncar for a model without netC and celeba otherwise; the widths
and use_conf_map always come from the file, and
the renderer behaves as the authors' did (config.AUTHORS_RENDERER: their normal
normalisation, 2x2 supersampled recon depth, half-pixel offset), so the converted model
reconstructs as in their code.

convert_vgg16 converts torchvision's VGG16 ImageNet weights (the file the authors' perceptual
loss loads) into a Keras VGG16 weights file without the top; point the config key
vgg16_weights at it and set vgg16_preprocess: torch.
"""

import os

import numpy as np

from tfsym3d import torch_file
from tfsym3d.config import AUTHORS_RENDERER, PRESET_DIR

NETWORKS = ("netD", "netA", "netL", "netV", "netC")
# The widest networks a .pth may declare (the authors': nf 64, zdim 256, nf_light 32,
# nf_conf 64, zdim_conf 128): twice theirs and 4x the codes. A few hundred bytes can
# declare widths whose networks take gigabytes to build.
MAX_WIDTHS = {"nf_depth": 128, "zdim_depth": 1024, "nf_light": 64, "nf_conf": 128,
              "zdim_conf": 512}
EXPERIMENTS = ("syncar", "synface", "celeba", "cat")  # checked in this order
CONFIG_DIR = PRESET_DIR  # the presets inside the package (any install kind)
# torchvision vgg16.features indices of the 13 convolutions -> Keras VGG16 layer names.
VGG16_CONVS = dict(zip((0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28),
                       [f"block{b}_conv{c}" for b, n in ((1, 2), (2, 2), (3, 3), (4, 3),
                                                        (5, 3)) for c in range(1, n + 1)],
                       strict=True))


class ConversionError(ValueError):
    """A checkpoint that does not fit the networks; the message names the file and key."""


def torch_layout(net):
    """The authors' state-dict names of a network's weights.

    Args:
      net: an Encoder, EDDeconv or ConfNet (tfsym3d.layers.networks).

    Returns:
      [(key, layer, attribute)]: e.g. ("network.0.weight", <Conv2D enc_conv1>, "kernel"),
      in the authors' module order.
    """
    import keras

    skipped = (keras.layers.ZeroPadding2D, keras.layers.Cropping2D)
    out = []
    for prefix, stack in net.torch_sections:
        index = 0
        for layer in stack:
            if isinstance(layer, skipped):
                continue
            if isinstance(layer, keras.layers.GroupNormalization):
                out += [(f"{prefix}.{index}.weight", layer, "gamma"),
                        (f"{prefix}.{index}.bias", layer, "beta")]
            elif isinstance(layer, keras.layers.Conv2D | keras.layers.Conv2DTranspose):
                out.append((f"{prefix}.{index}.weight", layer, "kernel"))
            index += 1
    return out


def to_keras(array, attribute):
    """A torch weight in the Keras layout: OIHW (Conv2d) and IOHW (ConvTranspose2d) both
    become [kh, kw, in|out, out|in] by the same transpose; vectors stay."""
    array = np.asarray(array, np.float32)
    return np.transpose(array, (2, 3, 1, 0)) if attribute == "kernel" else array


def read_networks(path):
    """The network state dicts of an authors' checkpoint.

    Returns:
      ({name: {key: ndarray}} for the networks present, epoch or None). Raises
      ConversionError naming the file when netD, netA, netL or netV is missing or a
      value is not a tensor.
    """
    state = torch_file.load(path)
    if not isinstance(state, dict):
        raise ConversionError(f"{path}: holds a {type(state).__name__}, not the authors' "
                              "dict of network state dicts")
    nets = {}
    for name in NETWORKS:
        if name not in state:
            if name == "netC":
                continue
            raise ConversionError(f"{path}: no {name} state dict (keys: "
                                  f"{', '.join(map(str, state))})")
        params = state[name]
        if not isinstance(params, dict):
            raise ConversionError(f"{path}: {name} is a {type(params).__name__}, not a "
                                  "state dict")
        for key, value in params.items():
            if not isinstance(value, np.ndarray):
                raise ConversionError(f"{path}: {name}.{key} is not a tensor")
        nets[name] = params
    epoch = state.get("epoch")
    return nets, epoch if isinstance(epoch, int) else None


def _shape_of(nets, name, key, path):
    try:
        return nets[name][key].shape
    except KeyError:
        raise ConversionError(f"{path}: missing key {name}.{key}") from None


def infer_widths(nets, image_size, path):
    """Config widths read from the weight shapes: {nf_depth, zdim_depth, nf_light,
    nf_conf, zdim_conf, use_conf_map}. Raises ConversionError naming the first key that
    does not fit."""
    from tfsym3d.layers.networks import ConfNet, EDDeconv, Encoder

    def key_of(net, layer_name):
        return next(k for k, layer, _ in torch_layout(net) if layer.name == layer_name)

    probe_ed = EDDeconv(1, 16, 16, image_size)
    probe_enc = Encoder(4, 16, image_size)
    widths = {}
    for name in ("netD", "netA"):
        nf = _shape_of(nets, name, key_of(probe_ed, "enc_conv1"), path)[0]
        zdim = _shape_of(nets, name, key_of(probe_ed, "enc_conv_z"), path)[0]
        if widths and (nf, zdim) != (widths["nf_depth"], widths["zdim_depth"]):
            raise ConversionError(f"{path}: netA has nf {nf} and zdim {zdim}, netD "
                                  f"{widths['nf_depth']} and {widths['zdim_depth']}; tfsym3d "
                                  "gives both one width")
        widths.update(nf_depth=int(nf), zdim_depth=int(zdim))
    nf_light = {_shape_of(nets, n, key_of(probe_enc, "conv1"), path)[0]
                for n in ("netL", "netV")}
    if len(nf_light) != 1:
        raise ConversionError(f"{path}: netL and netV differ in width ({sorted(nf_light)})")
    widths["nf_light"] = int(nf_light.pop())
    widths["use_conf_map"] = "netC" in nets
    if "netC" in nets:
        probe_conf = ConfNet(16, 16, image_size)
        widths["nf_conf"] = int(_shape_of(nets, "netC", key_of(probe_conf, "enc_conv1"),
                                          path)[0])
        widths["zdim_conf"] = int(_shape_of(nets, "netC", key_of(probe_conf, "enc_conv_z"),
                                            path)[0])
    for key, value in widths.items():  # before any network of these widths is built
        if key in MAX_WIDTHS and value > MAX_WIDTHS[key]:
            raise ConversionError(f"{path}: declares {key} {value}, over {MAX_WIDTHS[key]} "
                                  "(the authors' models use 64, 256, 32, 64, 128); not "
                                  "converted")
    return widths


def experiment_config(path, nets, config=None):
    """(config file, how it was chosen) for a checkpoint: --config; else the experiment
    that the authors' own folder names name (a folder `pretrained_NAME`, as their
    download scripts unzip, or `NAME` inside `results`, their checkpoint_dir); else the
    networks' shapes (with netC: celeba, without: syncar). Never a substring of the path:
    /home/cathy/model.pth is not the cat model."""
    if config:
        return config, "--config"
    folders = os.path.dirname(os.path.abspath(path)).split(os.sep)
    for parent, folder in zip([""] + folders[:-1], folders, strict=True):
        for name in EXPERIMENTS:
            if folder == f"pretrained_{name}":
                return os.path.join(CONFIG_DIR, f"{name}.yaml"), f"its folder {folder}/"
            if folder == name and parent == "results":
                return os.path.join(CONFIG_DIR, f"{name}.yaml"), f"its folder results/{name}/"
    name = "celeba" if "netC" in nets else "syncar"
    why = "no authors' folder name in its path; a model " + (
        "with netC (confidence maps)" if "netC" in nets else "without netC")
    return os.path.join(CONFIG_DIR, f"{name}.yaml"), why


def load_weights(model, nets, path):
    """Assigns the state dicts to the model's networks, checking every key and shape.

    Raises ConversionError naming the first key that is missing, unexpected or of the
    wrong shape."""
    for name in NETWORKS:
        net = getattr(model, name)
        if net is None:
            if name in nets:
                raise ConversionError(f"{path}: has netC but the config has "
                                      "use_conf_map: false")
            continue
        params = nets[name]
        layout = torch_layout(net)
        expected = {key for key, _, _ in layout}
        unexpected = [k for k in params if k not in expected]
        if unexpected:
            raise ConversionError(f"{path}: unexpected key {name}.{unexpected[0]}")
        for key, layer, attribute in layout:
            if key not in params:
                raise ConversionError(f"{path}: missing key {name}.{key}")
            variable = getattr(layer, attribute)
            value = to_keras(params[key], attribute)
            if tuple(value.shape) != tuple(variable.shape):
                want = tuple(variable.shape)
                if attribute == "kernel":  # say it in torch's layout, as the file has it
                    want = (want[3], want[2], want[0], want[1])
                raise ConversionError(f"{path}: {name}.{key} has shape "
                                      f"{tuple(params[key].shape)}, the network expects {want}")
            variable.assign(value)


def converted_config(path, config=None, overrides=None, nets=None):
    """The tfsym3d Config of an authors' checkpoint, without building the model: its
    experiment's config (see experiment_config), the widths its networks have and the
    authors' renderer. nets: the file's networks when already read (read_networks).

    Returns (cfg, config file used, why it was chosen)."""
    from tfsym3d.config import Config, load_config

    if nets is None:
        nets, _ = read_networks(path)
    config_file, why = experiment_config(path, nets, config)
    base = load_config(config_file)
    widths = infer_widths(nets, base.image_size, path)
    cfg = Config.from_dict({**base.to_dict(), **widths, **AUTHORS_RENDERER,
                            **(overrides or {})})
    return cfg, config_file, why


def convert(path, config=None, overrides=None):
    """Builds the tfsym3d model of an authors' checkpoint.

    Args:
      path: the .pth file.
      config: a config file (tfsym3d's or the authors' YAML) or None (see the module
        docstring).
      overrides: more config keys to set.

    Returns:
      (model, epoch or None, config file used, why it was chosen).
    """
    from tfsym3d.model import Unsup3D, build

    nets, epoch = read_networks(path)
    cfg, config_file, why = converted_config(path, config, overrides, nets)
    model = build(Unsup3D(cfg))
    load_weights(model, nets, path)
    if epoch is not None:
        model.epoch.assign(epoch)
    return model, epoch, config_file, why


def write_model(model, out):
    """Writes a model as a `.keras` file or a run directory (config.yaml + checkpoint).

    Refuses to write into a run directory that already holds a checkpoint or config."""
    import tensorflow as tf

    from tfsym3d import checkpoints

    if out.endswith(".keras"):
        if os.path.exists(out):
            raise FileExistsError(f"{out}: exists; choose another --out")
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        model.save(out)
        return
    if os.path.exists(checkpoints.config_path(out)) or \
            os.path.isdir(checkpoints.checkpoint_dir(out)):
        raise FileExistsError(f"{out}: already a run directory; choose another --out")
    os.makedirs(out, exist_ok=True)
    model.cfg.save(checkpoints.config_path(out))
    manager = tf.train.CheckpointManager(checkpoints.make_checkpoint(model),
                                         checkpoints.checkpoint_dir(out), max_to_keep=1)
    manager.save(checkpoint_number=int(model.epoch.numpy()))


def vgg16_arrays(path):
    """torchvision VGG16 features -> {Keras layer name: [kernel HWIO, bias]}."""
    state = torch_file.load(path)
    if not isinstance(state, dict):
        raise ConversionError(f"{path}: not a state dict")
    out = {}
    for index, name in VGG16_CONVS.items():
        weight, bias = (state.get(f"features.{index}.{p}") for p in ("weight", "bias"))
        if not isinstance(weight, np.ndarray) or not isinstance(bias, np.ndarray):
            raise ConversionError(f"{path}: missing key features.{index}.weight or .bias "
                                  "(not torchvision's VGG16 layout)")
        if weight.ndim != 4 or weight.shape[0] != bias.shape[0]:
            raise ConversionError(f"{path}: features.{index}.weight has shape "
                                  f"{weight.shape}, not a 3x3 convolution's")
        out[name] = [to_keras(weight, "kernel"), np.asarray(bias, np.float32)]
    return out


def convert_vgg16(path, out):
    """Writes torchvision's VGG16 weights as a Keras weights file without the top (the
    legacy HDF5 layout of Keras' own ..._notop.h5, which keras.applications.VGG16 loads).
    Shapes are checked by building the Keras model with them."""
    import h5py
    import keras

    arrays = vgg16_arrays(path)
    vgg = keras.applications.VGG16(include_top=False, weights=None)
    for name, values in arrays.items():
        layer = vgg.get_layer(name)
        want = [tuple(w.shape) for w in layer.weights]
        if [v.shape for v in values] != want:
            raise ConversionError(f"{path}: {name} weights have shapes "
                                  f"{[v.shape for v in values]}, VGG16 expects {want}")
    if os.path.exists(out):
        raise FileExistsError(f"{out}: exists; choose another --out")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    names = [layer.name for layer in vgg.layers if layer.weights]
    with h5py.File(out, "w") as f:
        f.attrs["layer_names"] = [n.encode() for n in names]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = keras.__version__.encode()
        for name in names:
            group = f.create_group(name)
            weight_names = [f"{name}/kernel:0", f"{name}/bias:0"]
            group.attrs["weight_names"] = [n.encode() for n in weight_names]
            for weight_name, value in zip(weight_names, arrays[name], strict=True):
                group.create_dataset(weight_name, data=value)
