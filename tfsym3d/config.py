"""Every option of an experiment in one dataclass, loaded from YAML with overrides.

    cfg = load_config("celeba", overrides={"batch_size": 8})     # a preset, or
    cfg = load_config("my/exp.yaml", overrides=["num_epochs=2", "lam_perc=0"])  # a file

The presets (PRESETS: celeba, synface, cat, syncar, the authors' four experiments, and
tiny, CPU-sized) ship inside the package, in tfsym3d/configs/.

Unknown keys are errors that list the valid ones, so a typo never silently becomes a
default. Names follow the authors' YAML files where they have one, and the authors'
experiment files (unsup3d's experiments/*.yml) load as they are: their other keys are
mapped (AUTHORS_KEYS), one line on stderr naming each mapping.
"""

import dataclasses
import logging
import os
import typing
from dataclasses import dataclass, field

import yaml

from tfsym3d.errors import ConfigError

log = logging.getLogger(__name__)

PRESET_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
PRESETS = ("celeba", "synface", "cat", "syncar", "tiny")

# The values of the precision key (tfsym3d.precision resolves them; kept here so that
# reading a config needs no TensorFlow).
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")


def _opt(default, doc):
    return field(default=default, metadata={"doc": doc})


# The authors' renderer behaviour (neural_renderer as their code calls it): what a model
# trained by their code was trained through. convert-official sets it.
AUTHORS_RENDERER = {"normal_normalisation": "authors", "depth_supersample": 2,
                    "pixel_offset": 0.5}


@dataclass
class Config:
    # --- job ---
    run_dir: str = _opt("", "Run directory when `train` gets no --run_dir (the authors' "
                        "checkpoint_dir).")
    checkpoint: str = _opt("", "What `evaluate` loads when it gets no --checkpoint: a run "
                           "directory, .keras or the authors' .pth (converted on the fly).")
    # --- data ---
    data_dir: str = _opt("", "Dataset root with train/val/test folders (the authors' layout).")
    image_size: int = _opt(64, "Network input side in pixels: 64 (the paper) or 128.")
    crop: typing.Any = _opt(None, "None, a centre-crop side in pixels, or [x0, y0, w, h].")
    load_gt_depth: bool = _opt(False, "Paired image+depth data: report SIDE/MAD while training.")
    gt_depth_range: typing.Any = _opt(None, "[near, far] camera depths that ground-truth "
                                      "depth PNGs span (65535 = near, 0 = far); None: "
                                      "[min_depth, max_depth], the authors' convention.")
    shuffle_buffer: int = _opt(4096, "tf.data shuffle buffer (file names or records; 1 "
                               "keeps the files' order).")
    random_flip: bool = _opt(True, "Flip training images horizontally at random.")
    seed: typing.Any = _opt(None, "Seed for weights and data order; None = nondeterministic.")
    # --- trainer ---
    num_epochs: int = _opt(30, "Training epochs.")
    batch_size: int = _opt(64, "Global batch size (split across replicas).")
    steps_per_epoch: typing.Any = _opt(None, "Cap on steps per epoch; None = whole train split.")
    val_steps: typing.Any = _opt(None, "Cap on validation steps; None = whole val split.")
    keep_num_checkpoint: int = _opt(2, "Epoch checkpoints kept in the run directory.")
    log_freq: int = _opt(500, "Steps between TensorBoard scalar and image summaries.")
    jit_renderer: bool = _opt(False, "Rasterizer visibility pass under XLA (see bench).")
    fuse_renderer: bool = _opt(True, "Renderer per-pixel arithmetic (normals, sampling, "
                               "depth) compiled with XLA; off where XLA is unavailable.")
    fuse_group_norm: bool = _opt(True, "The networks' GroupNorm layers compiled with XLA "
                                 "(forward and backward); off where XLA is unavailable.")
    fuse_optimizer: bool = _opt(True, "On one device, the Adam update (with the L2 decay) "
                                "compiled with XLA: one fused pass over the weights.")
    # --- model: ranges ---
    min_depth: float = _opt(0.9, "Canonical depth range, lower end (camera units).")
    max_depth: float = _opt(1.1, "Canonical depth range, upper end.")
    border_depth: typing.Any = _opt(None, "Depth of the 2 border columns; None: 0.7 max + "
                                    "0.3 min.")
    min_amb_light: float = _opt(0.0, "Ambient light range, lower end.")
    max_amb_light: float = _opt(1.0, "Ambient light range, upper end.")
    min_diff_light: float = _opt(0.0, "Diffuse light range, lower end.")
    max_diff_light: float = _opt(1.0, "Diffuse light range, upper end.")
    xyz_rotation_range: float = _opt(60.0, "Viewpoint rotation range (+-, degrees).")
    xy_translation_range: float = _opt(0.1, "Viewpoint x/y translation range (+-, camera units).")
    z_translation_range: float = _opt(0.0, "Viewpoint z translation range (+-, camera units).")
    # --- model: networks ---
    nf_depth: int = _opt(64, "Width of the depth and albedo networks (EDDeconv nf).")
    zdim_depth: int = _opt(256, "Code size of the depth and albedo networks.")
    nf_light: int = _opt(32, "Width of the light and view networks (Encoder nf).")
    nf_conf: int = _opt(64, "Width of the confidence network.")
    zdim_conf: int = _opt(128, "Code size of the confidence network.")
    gn_group_size: typing.Any = _opt(None, "Channels per GroupNorm group in the depth, "
                                     "albedo and confidence networks; None: the authors' "
                                     "nf/16 (4 at nf 64, 1 = instance norm at nf 16).")
    film_albedo: bool = _opt(False, "Scale and shift the albedo decoder's GroupNorm "
                             "outputs per image from its code (FiLM; not the authors'): "
                             "per-object colours on plain backgrounds stay grey without it.")
    # --- losses and ablations ---
    use_conf_map: bool = _opt(True, "Predict confidence maps (False: sigma = 1, no netC).")
    lam_perc: float = _opt(1.0, "Weight of the perceptual loss (0: no VGG16 needed).")
    lam_flip: float = _opt(0.5, "Weight of the flipped reconstruction's losses.")
    lam_flip_start_epoch: int = _opt(0, "Before this epoch the flipped losses weigh 1.")
    lam_depth_sm: float = _opt(0.0, "Weight of the canonical depth smoothness loss.")
    depth_sm_order: int = _opt(1, "Smoothness on first differences (1, total variation) or "
                               "second differences (2: free for planes, heavy on ripples).")
    flip_depth: bool = _opt(True, "Ablation switch: flip the canonical depth (symmetry).")
    flip_albedo: bool = _opt(True, "Ablation switch: flip the canonical albedo (symmetry).")
    use_lighting: bool = _opt(True, "Ablation switch: shade with the predicted light.")
    # --- the view's own signals (issue 48, tfsym3d/views.py; not the authors') ---
    lam_view_flip: float = _opt(0.0, "Weight of flip equivariance: the view of the mirrored "
                                "input must be the mirror of the input's (yaw, roll, x "
                                "negated); the input's side held constant.")
    lam_view_cycle: float = _opt(0.0, "Weight of render-and-predict-back: the canonical "
                                 "surface (held constant) rendered from a sampled view on "
                                 "an input-like background; netV must predict that view.")
    view_cycle_start: int = _opt(0, "Training steps before lam_view_cycle applies.")
    view_cycle_fraction: float = _opt(0.5, "Fraction of the batch rendered from sampled "
                                      "views for lam_view_cycle (in (0, 1]).")
    view_cycle_range: typing.Any = _opt(None, "[pitch, yaw, roll] degrees (+-) the sampled "
                                        "views span; None: xyz_rotation_range for each.")
    depth_prior_steps: int = _opt(0, "Steps at the start during which the canonical depth "
                                  "is also pulled toward a centred ellipsoid (GAN2Shape's "
                                  "warm start), weight lam_depth_prior; 0: off.")
    lam_depth_prior: float = _opt(1.0, "Weight of the ellipsoid pull (depth_prior_steps).")
    view_hypotheses: int = _opt(1, "K yaw bins, each with a view and a score predicting "
                                "its reconstruction loss (1: the authors' single view).")
    view_hypotheses_explore: int = _opt(1000, "Steps of random hypotheses; over as many "
                                        "again the chance of taking the best rises to 1.")
    vgg16_weights: str = _opt("~/.keras/models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
                              "Keras VGG16 ImageNet weights (no top) for the perceptual loss.")
    vgg16_preprocess: str = _opt("caffe", "Input normalisation the VGG16 weights expect: caffe "
                                 "(Keras' weights) or torch (torchvision's).")
    perc_dtype: str = _opt("float32", "VGG16 arithmetic in the perceptual loss when "
                           "precision is float32: float32, bfloat16, or auto (bfloat16 where "
                           "the GPU or CPU has it natively: see benchmarks/bench_train.py); "
                           "under a mixed precision the VGG16 follows the precision.")
    precision: str = _opt("float32", "Arithmetic of the five networks (and the VGG16): "
                          "float32, mixed_bfloat16, mixed_float16 (with loss scaling) or "
                          "auto (mixed_bfloat16 where the hardware has bfloat16 natively, "
                          "else float32). Weights, renderer, losses and metrics stay "
                          "float32 (tfsym3d/precision.py).")
    # --- optimiser ---
    lr: float = _opt(1e-4, "Adam learning rate.")
    beta1: float = _opt(0.9, "Adam beta1.")
    beta2: float = _opt(0.999, "Adam beta2.")
    weight_decay: float = _opt(5e-4, "L2 weight decay added to the gradients (torch Adam style).")
    # --- renderer ---
    fov: float = _opt(10.0, "Camera field of view (degrees).")
    rot_center_depth: float = _opt(1.0, "Depth of the point views rotate about.")
    normal_normalisation: str = _opt("unit", "Normals: unit (exact unit vectors) or authors "
                                     "(n / (|n| + 1e-7), 0.3% short at 64 px, as the "
                                     "authors' renderer).")
    depth_supersample: int = _opt(1, "recon_depth samples per pixel along each axis, "
                                  "averaged (2: neural_renderer's anti-aliasing; a pixel "
                                  "with an empty sub-sample is background).")
    pixel_offset: float = _opt(0.0, "Where recon_depth samples each pixel, pixels right of "
                               "and below its centre on the warps' grid (0.5: "
                               "neural_renderer's offset).")

    def __post_init__(self):
        for f in dataclasses.fields(self):
            setattr(self, f.name, _coerce(f, getattr(self, f.name)))
        for name, (lo, hi, closed) in RANGES.items():
            _check_range(name, getattr(self, name), lo, hi, closed)
        if self.min_depth >= self.max_depth:
            raise ValueError(f"min_depth ({self.min_depth}) must be below max_depth "
                             f"({self.max_depth})")
        rng = self.gt_depth_range
        if rng is not None and not (
                isinstance(rng, list | tuple) and len(rng) == 2
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in rng)
                and rng[0] < rng[1]):
            raise ValueError("gt_depth_range must be None or [near, far] with near < far; "
                             f"got {self.gt_depth_range!r}")
        if self.perc_dtype not in ("float32", "bfloat16", "auto"):
            raise ValueError(f"perc_dtype must be float32, bfloat16 or auto; got "
                             f"{self.perc_dtype!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got "
                             f"{self.precision!r}")
        g = self.gn_group_size
        if g is not None and not (isinstance(g, int) and not isinstance(g, bool) and g >= 1
                                  and self.nf_depth % g == 0 and self.nf_conf % g == 0):
            raise ValueError("gn_group_size must be None or a positive int dividing nf_depth "
                             f"({self.nf_depth}) and nf_conf ({self.nf_conf}); got {g!r}")
        if self.normal_normalisation not in ("unit", "authors"):
            raise ValueError("normal_normalisation must be unit or authors; got "
                             f"{self.normal_normalisation!r}")
        if self.depth_supersample not in (1, 2, 3, 4):
            raise ValueError(f"depth_supersample must be 1 to 4; got {self.depth_supersample}")
        if not 0.0 <= self.pixel_offset < 1.0:
            raise ValueError(f"pixel_offset must be in [0, 1); got {self.pixel_offset}")
        if self.depth_sm_order not in (1, 2):
            raise ValueError(f"depth_sm_order must be 1 or 2; got {self.depth_sm_order}")
        if self.image_size not in (64, 128):
            raise ValueError(f"image_size must be 64 or 128; got {self.image_size}")
        if not 0.0 < self.view_cycle_fraction <= 1.0:
            raise ValueError("view_cycle_fraction must be in (0, 1]; got "
                             f"{self.view_cycle_fraction}")
        r = self.view_cycle_range
        if r is not None and not (
                isinstance(r, list | tuple) and len(r) == 3
                and all(isinstance(v, int | float) and not isinstance(v, bool)
                        and 0 <= v < 180 for v in r)):
            raise ValueError("view_cycle_range must be None or [pitch, yaw, roll] degrees "
                             f"in [0, 180); got {r!r}")
        if self.view_hypotheses > 36:
            raise ValueError(f"view_hypotheses must be 1 to 36; got {self.view_hypotheses}")
        if self.crop is not None and not (isinstance(self.crop, int) or (
                isinstance(self.crop, list | tuple) and len(self.crop) == 4)):
            raise ValueError(f"crop must be None, an int or [x0, y0, w, h]; got {self.crop!r}")

    @property
    def resolved_border_depth(self):
        if self.border_depth is not None:
            return float(self.border_depth)
        return 0.7 * self.max_depth + 0.3 * self.min_depth

    @property
    def resolved_gt_depth_range(self):
        """(near, far) depths of ground-truth depth PNGs: gt_depth_range or the model's range.

        Kept apart from min_depth/max_depth so that changing the model's depth prior does
        not silently re-scale the ground truth it is evaluated against."""
        if self.gt_depth_range is not None:
            return float(self.gt_depth_range[0]), float(self.gt_depth_range[1])
        return self.min_depth, self.max_depth

    def to_dict(self):
        return dataclasses.asdict(self)

    def save(self, path):
        with open(path, "w") as f:
            yaml.safe_dump(self.to_dict(), f, sort_keys=False)

    @classmethod
    def from_dict(cls, values):
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise ValueError(f"unknown config key(s) {', '.join(unknown)}; valid keys: "
                             f"{', '.join(valid)}")
        return cls(**values)


# Numeric keys' ranges: key -> (low, high or None, whether the low end is allowed); the
# high end is exclusive. None values (where a key allows None) are not checked.
RANGES = {
    **{k: (1, None, True) for k in (
        "batch_size", "num_epochs", "steps_per_epoch", "val_steps", "keep_num_checkpoint",
        "log_freq", "shuffle_buffer", "nf_depth", "zdim_depth", "nf_light", "nf_conf",
        "zdim_conf", "view_hypotheses")},
    **{k: (0, None, True) for k in (
        "lam_perc", "lam_flip", "lam_flip_start_epoch", "lam_depth_sm", "weight_decay",
        "lam_view_flip", "lam_view_cycle", "view_cycle_start", "view_hypotheses_explore",
        "depth_prior_steps", "lam_depth_prior",
        "xy_translation_range", "z_translation_range", "min_amb_light", "min_diff_light")},
    "xyz_rotation_range": (0, 180, True),
    "lr": (0, None, False),
    "beta1": (0, 1, True),
    "beta2": (0, 1, True),
    "fov": (0, 180, False),
    "min_depth": (0, None, False),
    "rot_center_depth": (0, None, False),
}


def _check_range(name, value, lo, hi, closed):
    if value is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{name} must be a number; got {value!r}")
    low_ok = value >= lo if closed else value > lo
    if not low_ok or (hi is not None and value >= hi):
        want = (f">= {lo}" if closed else f"> {lo}") + (f" and < {hi}" if hi is not None
                                                          else "")
        raise ValueError(f"{name} must be {want}; got {value!r}")


def describe():
    """One line per option: name, default and doc."""
    return "\n".join(f"{f.name} = {f.default!r}  # {f.metadata['doc']}"
                     for f in dataclasses.fields(Config))


def load_config(path=None, overrides=None):
    """Reads a YAML config and applies overrides.

    Args:
      path: a YAML file of `key: value` pairs, a preset name (PRESETS), or None for the
        defaults.
      overrides: a dict, or a list of "key=value" strings (values parsed as YAML).

    Returns:
      A Config. Raises tfsym3d.errors.ConfigError (a ValueError; exit status 2 in every
      command) naming the file and the problem for unknown keys, values of the wrong
      type or range, or a file that is not a YAML mapping.
    """
    try:
        return _load_config(path, overrides)
    except ConfigError:
        raise
    except ValueError as err:
        raise ConfigError(str(err)) from err


def _load_config(path, overrides):
    values = {}
    if path is not None:
        path = config_file(path)
        try:
            loaded = read_yaml(path)
        except OSError as err:
            raise ValueError(f"{path}: cannot read config: {err.strerror} (presets: "
                             f"{', '.join(PRESETS)})") from err
        except yaml.YAMLError as err:
            raise ValueError(f"{path}: not valid YAML: {_yaml_problem(err)}") from err
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: a config must be a mapping of key: value")
        values.update(from_authors(loaded, path))
    values.update(parse_overrides(overrides))
    try:
        return Config.from_dict(values)
    except ValueError as err:
        raise ValueError(f"{path}: {err}" if path else str(err)) from err


# Limits of a config file, checked before PyYAML builds anything: a config is a few kB.
MAX_YAML_BYTES = 1 << 20
MAX_YAML_DEPTH = 20
MAX_YAML_ALIASES = 100


def read_yaml(path):
    """A YAML file's content (yaml.safe_load), refused with ValueError when it is over
    MAX_YAML_BYTES, nests deeper than MAX_YAML_DEPTH or uses more than MAX_YAML_ALIASES
    aliases (an alias bomb expands exponentially once walked). OSError as open raises."""
    with open(path, "rb") as f:
        data = f.read(MAX_YAML_BYTES + 1)
    if len(data) > MAX_YAML_BYTES:
        raise ValueError(f"{path}: over {MAX_YAML_BYTES >> 20} MiB; not a config file")
    text = data.decode("utf-8", errors="replace")
    check_yaml_shape(text, path)
    return yaml.safe_load(text)


def check_yaml_shape(text, where):
    """ValueError naming `where` when YAML text nests too deep or uses too many aliases
    (read from the parser's events: nothing is built)."""
    depth = aliases = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise ValueError(f"{where}: nested deeper than {MAX_YAML_DEPTH} levels; "
                                 "not a config")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_YAML_ALIASES:
                raise ValueError(f"{where}: more than {MAX_YAML_ALIASES} YAML aliases; "
                                 "not a config")


def parse_overrides(overrides):
    """Overrides as a dict: a dict as it is, or "key=value" strings (values parsed as
    YAML). ConfigError (one line) for an item that is not key=value or not YAML."""
    if isinstance(overrides, dict):
        return dict(overrides)
    values = {}
    for item in overrides or ():
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value")
        key, text = item.split("=", 1)
        try:
            check_yaml_shape(text, f"override {key.strip()}")
            values[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"override {item!r}: not a YAML value "
                              f"({_yaml_problem(err)})") from err
        except ValueError as err:  # nested too deep, too many aliases
            raise ConfigError(str(err)) from err
    return values


def _yaml_problem(err):
    """A YAML error in one line: what is wrong and where (line, column, 1-based)."""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    mark = getattr(err, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def config_file(name):
    """The file of a --config value: an existing path as it is, else a preset's file
    (`tiny`, `tiny.yaml` or `configs/tiny.yaml` all name the tiny preset). A name that
    is neither comes back unchanged (reading it then names it)."""
    name = os.fspath(name)
    if os.path.isfile(name):
        return name
    stem = os.path.basename(name)
    stem = stem[:-5] if stem.endswith(".yaml") else stem
    if stem in PRESETS and os.path.dirname(name) in ("", "configs"):
        return os.path.join(PRESET_DIR, f"{stem}.yaml")
    return name


def _coerce(f, value):
    """Checks and converts a value to the field's type (int -> float allowed)."""
    kind = f.type
    if value is None or kind is typing.Any:
        return value
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{f.name} must be true or false; got {value!r}")
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is str and isinstance(value, str):
        return value
    raise ValueError(f"{f.name} must be {kind.__name__}; got {value!r}")


# The authors' experiment-file keys that tfsym3d spells differently or has no use for:
# key -> (tfsym3d key or None, what happens). Keys both share (batch_size, crop, lam_perc,
# log_freq, ...) need no entry.
AUTHORS_KEYS = {
    "train_val_data_dir": ("data_dir", "the dataset root"),
    "test_data_dir": ("data_dir", "evaluate reads it as one split folder"),
    "checkpoint_dir": ("run_dir", "train writes its run there"),
    "checkpoint_name": ("checkpoint", "evaluate loads checkpoint_dir/checkpoint_name"),
    "paired_data_dir_names": (None, "tfsym3d's paired layout is image/ and depth/"),
    "paired_data_filename_diff": (None, "tfsym3d's paired files are NAME_image / NAME_depth"),
    "run_train": (None, "the command (train or evaluate) chooses the job"),
    "run_test": (None, "the command (train or evaluate) chooses the job"),
    "num_workers": (None, "tf.data chooses its own parallelism"),
    "use_logger": (None, "TensorBoard logs are always written"),
    "save_checkpoint_freq": (None, "a checkpoint is written every epoch"),
    "resume": (None, "train always resumes a run directory"),
    "archive_code": (None, "config.yaml records the run's settings"),
    "model_name": (None, "unused"),
    "test_result_dir": (None, "evaluate writes where --json/--csv say"),
    "tex_cube_size": (None, "neural_renderer's texture size; this renderer has none"),
}
_PAIRED = {"paired_data_dir_names": ["image", "depth"],
           "paired_data_filename_diff": ["image", "depth"]}


def from_authors(values, path=None):
    """The authors' experiment-file keys mapped to tfsym3d's (see AUTHORS_KEYS), one line
    logged per key. A mapping without them comes back unchanged.

    Raises ValueError for a paired layout tfsym3d does not read."""
    if not any(key in AUTHORS_KEYS for key in values):
        return values
    name = os.path.basename(path) if path else "config"
    out = {k: v for k, v in values.items() if k not in AUTHORS_KEYS}
    for key, value in values.items():
        if key not in AUTHORS_KEYS:
            continue
        target, note = AUTHORS_KEYS[key]
        if key in _PAIRED and value != _PAIRED[key]:
            raise ValueError(f"{key}: {value!r} is not supported; {note}")
        if key == "test_data_dir" and "train_val_data_dir" in values:
            target, note = None, "train_val_data_dir is the data_dir; evaluate uses its test split"
        if key == "checkpoint_name" and value is not None:
            value = os.path.join(str(values.get("checkpoint_dir") or "."), str(value))
        if target is None:
            log.info(f"{name}: {key}: ignored ({note})")
        else:
            out[target] = value
            log.info(f"{name}: {key} -> {target} = {value} ({note})")
    if "checkpoint_name" not in values and "checkpoint_dir" in values and \
            values.get("run_test"):
        out["checkpoint"] = values["checkpoint_dir"]
    return out
