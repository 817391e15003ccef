"""The export job: a model written in each format under DIR/.partial-*/, its parity with
the Keras model measured, its model card written, then moved into place (see
tfsym3d/export/__init__.py for the layout)."""

import datetime
import json
import logging
import os
import shutil
import tempfile

import numpy as np

from tfsym3d.errors import UsageError
from tfsym3d.export.convert import FORMATS, size_of
from tfsym3d.reconstruct.mesh import camera_fields

log = logging.getLogger(__name__)

QUANTIZE = {"none": "fp32", "fp32": "fp32", "fp16": "fp16", "dynamic": "dynamic",
            "int8": "int8"}
PARITY_IMAGES = 8
CALIBRATION_IMAGES = 200    # most images read from a calibration folder
CALIBRATION_SYNTHETIC = 64  # synthetic faces when the model's data is not here


def parse_list(text, known, what):
    """'a,b' -> ['a', 'b'], each checked against known (errors.UsageError naming the bad
    one: a flag's value)."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise UsageError(f"no {what} given")
    for item in items:
        if item not in known:
            raise UsageError(f"unknown {what} {item!r}; use one of {', '.join(known)}")
    return items


def sample_images(n, image_size, seed=2):
    """Real-looking inputs for parity checks: synthetic faces from the tfsym3d synth
    generator, [n, S, S, 3] in [0, 1]."""
    from tfsym3d.data.synth import render_batch, sample_params

    params = sample_params(np.random.default_rng(seed), n)
    images = render_batch(params, np.arange(n), image_size, seed)[0]
    return images.astype(np.float32)


def calibration_images(folder, image_size, crop=None, limit=CALIBRATION_IMAGES):
    """Up to `limit` images of a folder (recursive, or its image/ folder when it is a
    paired split; spread over the sorted files), read, cropped and resized as training
    reads them: [M, S, S, 3]. ValueError naming the folder when none can be read."""
    from tfsym3d.data.folder import split_images
    from tfsym3d.io.images import InputError, load

    files = split_images(folder)
    files = files[::max(1, len(files) // limit)][:limit]
    images = []
    for path in files:
        try:
            images.append(load(path, image_size, crop))
        except InputError:
            continue
    if not images:
        raise ValueError(f"{folder}: no readable calibration images")
    return np.stack(images)


def default_calibration(model):
    """int8 calibration images when none are given: the model's own training images
    (the train split of its config's data_dir) when that folder is here, else synthetic
    faces. Returns (images, a description for the model card)."""
    from tfsym3d.data.folder import split_dir

    cfg = model.cfg
    if cfg.data_dir:
        try:
            folder = split_dir(cfg.data_dir, "train")
            images = calibration_images(folder, cfg.image_size, cfg.crop)
            return images, f"{len(images)} training images of the model ({folder})"
        except ValueError:
            pass
    images = sample_images(CALIBRATION_SYNTHETIC, cfg.image_size, seed=3)
    return images, (f"{len(images)} synthetic faces (the model's data_dir "
                    f"{cfg.data_dir!r} has no readable train images)" if cfg.data_dir
                    else f"{len(images)} synthetic faces (the model names no data_dir)")


def check_request(formats, quantize):
    """The TFLite variant kinds ('fp32', 'fp16', 'dynamic', 'int8') that `quantize` asks
    of `formats`; errors.UsageError for an unknown format or quantisation, or a
    quantisation without a format that has variants (TFLite)."""
    for f in formats:
        if f not in FORMATS:
            raise UsageError(f"unknown format {f!r}; use one of {', '.join(FORMATS)}")
    kinds = []
    for q in quantize:
        if q not in QUANTIZE:
            raise UsageError(f"unsupported quantisation {q!r}; use one of "
                             f"{', '.join(QUANTIZE)}")
        if QUANTIZE[q] not in kinds:
            kinds.append(QUANTIZE[q])
    if kinds != ["fp32"] and not any(len(FORMATS[f].variants) > 1 for f in formats):
        raise UsageError("quantisation applies to the tflite format only; add tflite to "
                         "the formats")
    return kinds


def export_model(model, out, formats=tuple(FORMATS), quantize=("none",), name="tfsym3d",
                 checkpoint=None, calibration=None):
    """Writes the requested formats under out (see the module docstring).

    Args:
      model: an Unsup3D built with fuse_renderer=False (see load_for_export).
      out: output folder.
      formats: names of tfsym3d.export.convert.FORMATS.
      quantize: variants of the formats that have them (TFLite): none (fp32), fp16,
        dynamic, int8.
      name: model name (TF Serving's).
      checkpoint: the source, recorded in the model cards.
      calibration: images [M, S, S, 3] in [0, 1] for int8 (default: default_calibration).

    Returns:
      {label: path} of the files written (labels: the format, or format_variant for a
      format with several variants).
    """
    kinds = check_request(formats, quantize)
    s = model.cfg.image_size
    probe = sample_images(PARITY_IMAGES, s)
    reference = _keras_outputs(model, probe)
    calibration_note = "given by the caller"
    if calibration is None and "int8" in kinds:
        calibration, calibration_note = default_calibration(model)
        log.info(f"int8 calibration: {calibration_note}")
    jobs = [(fmt, kind) for fmt in (FORMATS[f] for f in formats)
            for kind in ([k for k in kinds if k in fmt.variants] if len(fmt.variants) > 1
                         else fmt.variants[:1])]
    check_name(name)
    for fmt, kind in jobs:  # before anything is written: nothing half-done on a clash
        for rel in (fmt.path(name, kind), fmt.card(name, kind)):
            _check_destination(out, rel)
        _check_own(out, fmt.path(name, kind), fmt.card(name, kind))
    created = not os.path.exists(out)
    os.makedirs(out, exist_ok=True)
    _clear_stale_partials(out)
    partial = tempfile.mkdtemp(prefix=f"{PARTIAL}{os.getpid()}-", dir=out)
    written, cards = {}, []
    try:
        for fmt, kind in jobs:
            path = os.path.join(partial, fmt.path(name, kind))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            notes = list(fmt.write(model, path, kind, calibration))
            if kind == "int8":
                notes.append(f"calibration: {calibration_note}")
            cards.append(_card(model, fmt, kind, checkpoint, path, reference, probe, notes))
        # Every format written and checked: only now is anything moved into place.
        for (fmt, kind), card in zip(jobs, cards, strict=True):
            rel = fmt.path(name, kind)
            _commit(partial, out, rel, card, fmt.card(name, kind))
            several = len(fmt.variants) > 1
            label = f"{fmt.name}_{kind}" if several else fmt.name
            written[label] = os.path.join(out, rel)
            log.info(f"{fmt.name}{' ' + kind if several else ''}: {written[label]} "
                     f"({_mib(card['bytes'])})")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        if created and not os.listdir(out):
            os.rmdir(out)  # failed before anything was committed: as it was
        raise
    shutil.rmtree(partial, ignore_errors=True)
    return written


# The staging folders: PARTIAL + the writing process's id + a random part.
PARTIAL = ".partial-"


def check_name(name):
    """errors.UsageError unless name is one plain path component (the model's folder and
    file names under --out): not empty, no separator, not . or .., no NUL."""
    if (not isinstance(name, str) or name in ("", ".", "..") or "/" in name
            or os.sep in name or (os.altsep and os.altsep in name) or "\0" in name):
        raise UsageError(f"--name {name!r} must be a plain name (no '/', not '.' or "
                         "'..'): the export writes only inside --out")


def _check_own(out, rel, card_rel):
    """ValueError naming the path when something is at out/rel that an earlier export
    did not write (no model card beside it naming it): the export replaces only its own."""
    path = os.path.join(out, rel)
    if not os.path.lexists(path):
        return
    try:
        with open(os.path.join(out, card_rel)) as f:
            ours = json.load(f).get("file") == os.path.normpath(rel)
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours or os.path.islink(path):
        raise ValueError(f"{path}: already there and not written by tfsym3d export (no "
                         "model card names it); left alone: move it or choose another "
                         "--out or --name")


def _clear_stale_partials(out):
    """Removes the staging folders of exports into out whose process is gone (killed)."""
    for entry in os.listdir(out):
        if not entry.startswith(PARTIAL):
            continue
        pid = entry[len(PARTIAL):].split("-", 1)[0]
        if pid.isdigit() and _alive(int(pid)):
            continue
        shutil.rmtree(os.path.join(out, entry), ignore_errors=True)
        log.warning(f"removed {os.path.join(out, entry)} (left by an export that did not "
                    "finish)")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_destination(out, rel):
    """ValueError naming the path when a file stands where out/rel needs a folder (or out
    itself is a file)."""
    path = out
    for part in [""] + os.path.dirname(rel).split(os.sep):
        path = os.path.join(path, part) if part else path
        if os.path.exists(path) and not os.path.isdir(path):
            raise ValueError(f"{path}: a file is in the way (the export writes "
                             f"{os.path.join(out, rel)}); move it or choose another --out")


def load_for_export(checkpoint):
    """The model of a run directory or checkpoint, built for export (the renderer's
    pieces as plain TensorFlow ops, no XLA; GroupNorm statistics in 4-D ops, see
    tfsym3d.layers.blocks.GroupNorm; float32 whatever precision it was trained in:
    the checkpoint's weights are float32, and the fp16 and int8 variants are made by
    the converters)."""
    from tfsym3d.export.graph import use_export_ops
    from tfsym3d.loader import load_model

    return use_export_ops(load_model(checkpoint, fuse_renderer=False, fuse_group_norm=False,
                                     jit_renderer=False, precision="float32"))


def _keras_outputs(model, images):
    return {k: v.numpy() for k, v in model.infer(images, with_recon=True).items()}


def _mib(n):
    return f"{n / 2 ** 20:.1f} MiB"


def _commit(partial, out, rel, card, card_rel):
    """Moves partial/rel to out/rel (replacing what was there) and writes its card."""
    src, dst = os.path.join(partial, rel), os.path.join(out, rel)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if os.path.isdir(dst):
        shutil.rmtree(dst)
    os.replace(src, dst)
    card["file"] = os.path.relpath(dst, out)
    with open(os.path.join(out, card_rel), "w") as f:
        json.dump(card, f, indent=2)


def _card(model, fmt, quantization, checkpoint, path, reference, probe, notes=()):
    """The model card: what goes in and out, the camera, the source and measured parity."""
    import tensorflow as tf

    from tfsym3d import __version__
    from tfsym3d.model import OUTPUTS, RECON_OUTPUTS

    cfg = model.cfg
    outputs = fmt.runner(path)(probe)
    parity = {k: float(np.max(np.abs(outputs[k] - reference[k]))) for k in outputs
              if k in reference}
    names = [k for k in OUTPUTS if fmt.recon or k not in RECON_OUTPUTS]
    s = cfg.image_size
    card = {
        "model": "tfsym3d Unsup3D (Wu, Rupprecht, Vedaldi, CVPR 2020)",
        "format": fmt.name,
        "quantization": "none" if quantization == "fp32" and len(fmt.variants) == 1
        else quantization,
        "bytes": size_of(path),
        "input": {"name": "images", "dtype": "float32",
                  "shape": [fmt.batch, s, s, 3],
                  "range": "0..1", "layout": "NHWC RGB",
                  "normalisation": "none outside the graph: it maps [0,1] to [-1,1] itself",
                  "crop": cfg.crop,
                  "crop_meaning": "the model's crop, as training applied it to each photo "
                                  "before resizing to S x S (tfsym3d.io.images.crop_box): "
                                  "null = the centre square, n = the centre square of side "
                                  "n, [x0, y0, w, h] = that box in pixels; serving_bytes "
                                  "applies it in the graph, images expects it done"},
        "outputs": {k: {"shape": OUTPUTS[k][0].replace("S/4", str(s // 4)).replace(
            "S", str(s)), "range": OUTPUTS[k][1], "meaning": OUTPUTS[k][2]} for k in names},
        "recon_outputs": ("included" if fmt.recon else
                          "not included: the re-rendering's z-buffer (segment-min on int64 "
                          "keys) does not convert to builtin ops; render recon_depth from "
                          "canon_depth and view with tfsym3d.Renderer"),
        "camera": {"image_size": s, "fov_degrees": cfg.fov, "min_depth": cfg.min_depth,
                   "max_depth": cfg.max_depth, "border_depth": cfg.resolved_border_depth,
                   **camera_fields(model.renderer)},
        "source_checkpoint": os.path.abspath(checkpoint) if checkpoint else None,
        "parity": {"reference": "the Keras model in float32", "images": len(probe),
                   "inputs": "synthetic faces (tfsym3d synth generator, seed 2)",
                   "max_abs_diff": parity},
        "notes": list(notes) + ([
            f"netV predicts {cfg.view_hypotheses} views, one per yaw bin, and a score for "
            "each (its predicted reconstruction loss); `view` is the lowest-scored one's"]
            if cfg.view_hypotheses > 1 else []),
        "versions": {"tfsym3d": __version__, "tensorflow": tf.__version__},
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if fmt.name == "saved_model":
        card["signatures"] = {
            "serving_default": "images [N,S,S,3] float32 in 0..1",
            "serving_bytes": "image_bytes [N] string: encoded JPEG/PNG/BMP/GIF, EXIF "
                             "orientation applied, cut to input.crop and resized in the "
                             "graph as tfsym3d.io.images does"}
        card["tf_serving"] = (
            "docker run -p 8501:8501 -p 8500:8500 -v $PWD/saved_model/NAME:/models/NAME "
            "-e MODEL_NAME=NAME tensorflow/serving")
    return card
