"""Export for serving and the edge: a SavedModel in TF Serving's layout, TFLite (fp32,
fp16, dynamic-range int8, full-integer int8) and ONNX, each with a model card JSON.

    from export import export_model
    written = export_model(model, "exported", formats=("saved_model", "tflite", "onnx"),
                           quantize=("none", "fp16", "int8"))

Layout of DIR:
  saved_model/NAME/1/            SavedModel: signatures serving_default (images) and
                                 serving_bytes (encoded images); recon_depth/recon_im
                                 included
  saved_model/NAME/model_card.json
  tflite/NAME_{fp32,fp16,dynamic,int8}.tflite + .card.json
  onnx/NAME.onnx + NAME.card.json

Everything is written into DIR/.partial-*/ first and moved into place when its parity
check has run, so a failure leaves no half-written file looking valid.
"""

import datetime
import json
import os
import shutil
import tempfile

import numpy as np

FORMATS = ("saved_model", "tflite", "onnx")
QUANTIZE = {"none": "fp32", "fp32": "fp32", "fp16": "fp16", "dynamic": "dynamic",
            "int8": "int8"}
PARITY_IMAGES = 8


def parse_list(text, known, what):
    """'a,b' -> ['a', 'b'], each checked against known (ValueError naming the bad one)."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise ValueError(f"no {what} given")
    for item in items:
        if item not in known:
            raise ValueError(f"unknown {what} {item!r}; use one of {', '.join(known)}")
    return items


def sample_images(n, image_size, seed=2):
    """Real-looking inputs for parity checks and int8 calibration: synthetic faces from
    the tfsym3d synth generator, [n, S, S, 3] in [0, 1]."""
    from tfsym3d.data.synth import render_batch, sample_params

    params = sample_params(np.random.default_rng(seed), n)
    images = render_batch(params, np.arange(n), image_size, seed)[0]
    return images.astype(np.float32)


def calibration_images(folder, image_size, limit=200):
    """Images from a folder (recursive), centre-cropped and resized: [M, S, S, 3]."""
    from tfsym3d.reconstruct import InputError, collect_inputs, prepare

    files, _ = collect_inputs([folder])
    images = []
    for path in files[:limit]:
        try:
            images.append(prepare(path, image_size))
        except InputError:
            continue
    if not images:
        raise ValueError(f"{folder}: no readable calibration images")
    return np.stack(images)


def export_model(model, out, formats=FORMATS, quantize=("none",), name="tfsym3d",
                 checkpoint=None, calibration=None, log=print):
    """Writes the requested formats under out (see the module docstring).

    Args:
      model: an Unsup3D built with fuse_renderer=False (see load_for_export).
      out: output folder.
      formats: subset of FORMATS.
      quantize: TFLite variants: none (fp32), fp16, dynamic, int8.
      name: model name (TF Serving's model name).
      checkpoint: the source, recorded in the model cards.
      calibration: images [M, S, S, 3] in [0, 1] for int8 (default: synthetic faces).
      log: a print-like function for progress lines.

    Returns:
      {label: path} of the files written.
    """
    from export import convert

    for f in formats:
        if f not in FORMATS:
            raise ValueError(f"unknown format {f!r}; use one of {', '.join(FORMATS)}")
    kinds = []
    for q in quantize:
        if q not in QUANTIZE:
            raise ValueError(f"unsupported quantisation {q!r}; use one of "
                             f"{', '.join(QUANTIZE)}")
        if QUANTIZE[q] not in kinds:
            kinds.append(QUANTIZE[q])
    if kinds != ["fp32"] and "tflite" not in formats:
        raise ValueError("quantisation applies to the tflite format only; add tflite to "
                         "the formats")
    s = model.cfg.image_size
    probe = sample_images(PARITY_IMAGES, s)
    reference = _keras_outputs(model, probe)
    os.makedirs(out, exist_ok=True)
    partial = tempfile.mkdtemp(prefix=".partial-", dir=out)
    written = {}
    try:
        if "saved_model" in formats:
            rel = os.path.join("saved_model", name, "1")
            path = os.path.join(partial, rel)
            convert.write_saved_model(model, path)
            card = _card(model, "saved_model", "none", checkpoint, path, reference, probe,
                         recon=True)
            _commit(partial, out, rel, card, os.path.join("saved_model", name,
                                                          "model_card.json"))
            written["saved_model"] = os.path.join(out, rel)
            log(f"saved_model: {written['saved_model']} ({_mib(card['bytes'])})")
        if "tflite" in formats:
            for kind in kinds:
                data = calibration
                if kind == "int8" and data is None:
                    data = sample_images(64, s, seed=3)
                flat, notes = convert.tflite_bytes(model, kind, data)
                rel = os.path.join("tflite", f"{name}_{kind}.tflite")
                path = os.path.join(partial, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(flat)
                card = _card(model, "tflite", kind, checkpoint, path, reference, probe,
                             recon=False, notes=notes)
                _commit(partial, out, rel, card, rel[:-len(".tflite")] + ".card.json")
                written[f"tflite_{kind}"] = os.path.join(out, rel)
                log(f"tflite {kind}: {written[f'tflite_{kind}']} ({_mib(card['bytes'])})")
        if "onnx" in formats:
            rel = os.path.join("onnx", f"{name}.onnx")
            path = os.path.join(partial, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(convert.onnx_bytes(model))
            card = _card(model, "onnx", "none", checkpoint, path, reference, probe,
                         recon=False, notes=["opset 17"])
            _commit(partial, out, rel, card, rel[:-len(".onnx")] + ".card.json")
            written["onnx"] = os.path.join(out, rel)
            log(f"onnx: {written['onnx']} ({_mib(card['bytes'])})")
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return written


def load_for_export(checkpoint):
    """The model of a run directory or checkpoint, built for export (the renderer's
    pieces as plain TensorFlow ops, no XLA; GroupNorm statistics in 4-D ops, see
    tfsym3d.layers.blocks.GroupNorm)."""
    from export.graph import use_export_ops
    from tfsym3d.checkpoints import load_model

    return use_export_ops(load_model(checkpoint, fuse_renderer=False, jit_renderer=False))


def _keras_outputs(model, images):
    from export.graph import InferenceModule

    out = InferenceModule(model, with_recon=True).predict(images)
    return {k: v.numpy() for k, v in out.items()}


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


def _card(model, fmt, quantization, checkpoint, path, reference, probe, recon, notes=()):
    """The model card: what goes in and out, the camera, the source and measured parity."""
    import tensorflow as tf

    from export import convert
    from export.graph import OUTPUTS, RECON_OUTPUTS
    from tfsym3d import __version__

    cfg = model.cfg
    outputs = convert.runner(fmt, path)(probe)
    parity = {k: float(np.max(np.abs(outputs[k] - reference[k]))) for k in outputs
              if k in reference}
    names = [k for k in OUTPUTS if recon or k not in RECON_OUTPUTS]
    s = cfg.image_size
    card = {
        "model": "tfsym3d Unsup3D (Wu, Rupprecht, Vedaldi, CVPR 2020)",
        "format": fmt,
        "quantization": quantization,
        "bytes": convert.size_of(path),
        "input": {"name": "images", "dtype": "float32",
                  "shape": [1 if fmt == "tflite" else None, s, s, 3],
                  "range": "0..1", "layout": "NHWC RGB",
                  "normalisation": "none outside the graph: it maps [0,1] to [-1,1] itself",
                  "crop": "a centred, face-filling square as in training"},
        "outputs": {k: {"shape": OUTPUTS[k][0].replace("S/4", str(s // 4)).replace(
            "S", str(s)), "range": OUTPUTS[k][1], "meaning": OUTPUTS[k][2]} for k in names},
        "recon_outputs": ("included" if recon else
                          "not included: the re-rendering's z-buffer (segment-min on int64 "
                          "keys) does not convert to builtin ops; render recon_depth from "
                          "canon_depth and view with tfsym3d.Renderer"),
        "camera": {"image_size": s, "fov_degrees": cfg.fov, "min_depth": cfg.min_depth,
                   "max_depth": cfg.max_depth, "border_depth": cfg.resolved_border_depth,
                   "rot_center_depth": cfg.rot_center_depth,
                   "intrinsics": model.renderer.K.tolist()},
        "source_checkpoint": os.path.abspath(checkpoint) if checkpoint else None,
        "parity": {"reference": "the Keras model in float32", "images": len(probe),
                   "inputs": "synthetic faces (tfsym3d synth generator, seed 2)",
                   "max_abs_diff": parity},
        "notes": list(notes),
        "versions": {"tfsym3d": __version__, "tensorflow": tf.__version__},
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if fmt == "saved_model":
        card["signatures"] = {
            "serving_default": "images [N,S,S,3] float32 in 0..1",
            "serving_bytes": "image_bytes [N] string: encoded JPEG/PNG/BMP/GIF, centre "
                             "square cropped and resized (bilinear, antialiased) in the graph"}
        card["tf_serving"] = (
            "docker run -p 8501:8501 -p 8500:8500 -v $PWD/saved_model/NAME:/models/NAME "
            "-e MODEL_NAME=NAME tensorflow/serving")
    return card
