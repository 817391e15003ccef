"""The export formats: a writer and a runner for each, in one registry.

    FORMATS["tflite"].write(model, path, "int8", calibration)   # -> notes for the card
    FORMATS["onnx"].runner(path)(images)                        # -> {name: numpy array}

A format is a `Format` registered with `register`: its name, the variants it writes
(TFLite: fp32, fp16, dynamic, int8; the others fp32 only), where its file goes, its
writer, its runner, and whether it carries the re-rendering outputs. Adding a format is
one `register(Format(...))` call; `tfsym3d export` and its model cards pick it up.

Every writer traces tfsym3d.export.graph.InferenceModule. Keras 3 models are exported
through keras.export.ExportArchive, which saves the variables its endpoints capture, so
that TFLite's converter freezes them (a tf.Module holding the model gives a TFLite file
without weights). A runner is fn(images [N,S,S,3] in [0,1]) -> {name: numpy array}.
"""

import os
import tempfile
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

TFLITE_KINDS = ("fp32", "fp16", "dynamic", "int8")


def _archive(model, with_recon, with_bytes, batch=None):
    import keras
    import tensorflow as tf

    from tfsym3d.export.graph import InferenceModule

    module = InferenceModule(model, with_recon=with_recon)
    s = model.cfg.image_size
    archive = keras.export.ExportArchive()
    # No archive.track(model): the endpoints' variables are saved without it, and
    # tracking the model as well stores every weight a second time (its keras.Variable
    # wrappers beside the tf.Variables the endpoints capture; keras-team/keras#23553),
    # doubling the SavedModel and the variable memory of every server that loads it.
    archive.add_endpoint("serving_default", module.predict, input_signature=[
        tf.TensorSpec([batch, s, s, 3], tf.float32, name="images")])
    if with_bytes:
        archive.add_endpoint("serving_bytes", module.predict_bytes, input_signature=[
            tf.TensorSpec([None], tf.string, name="image_bytes")])
    return archive, module


def write_saved_model(model, path, with_recon=True):
    """Writes the SavedModel with signatures serving_default (images [N,S,S,3] float32
    in [0,1]) and serving_bytes (image_bytes [N] encoded JPEG/PNG/BMP/GIF)."""
    archive, _ = _archive(model, with_recon, with_bytes=True)
    archive.write_out(path, verbose=False)


# The int8 model keeps the head of each geometry and shading output in float: the last
# convolution on its path and every op after it (tanh, the ranges, the depth's
# mean-centring and border columns, the normals' differences of neighbouring depths, the
# shading). Quantised, the view's 8-bit output alone turned it by up to 0.004 rad and
# cost 5% of SIDE, the depth head 8% of SIDE and 13% of MAD on a trained model, and the
# normals of 8-bit depths came out zero (docs/benchmarks.md); in float the heads cost
# nothing in size.
FLOAT_HEADS = ("canon_depth", "view", "canon_normal", "canon_shading", "canon_im")
_CONVOLUTIONS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED")


def head_nodes(flat, outputs=FLOAT_HEADS):
    """The output tensor names of the ops from each named output of a TFLite model back
    to, and including, the last convolution on its path (what the quantiser's
    `denylisted_nodes` takes).

    Args:
      flat: TFLite flatbuffer bytes (float), one signature.
      outputs: signature output names.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flat)
    # The op graph is only exposed by the interpreter's (stable, if underscored) details.
    ops = interpreter._get_ops_details()
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    producer = {t: op for op in ops for t in op["outputs"]}
    signature = interpreter._get_full_signature_list()["serving_default"]["outputs"]
    nodes, seen = [], set()
    stack = [signature[name] for name in outputs]
    while stack:
        tensor = stack.pop()
        op = producer.get(tensor)
        if op is None or op["index"] in seen:
            continue
        seen.add(op["index"])
        nodes.append(names[op["outputs"][0]])
        if op["op_name"] not in _CONVOLUTIONS:
            stack.extend(t for t in op["inputs"] if t >= 0)
    return nodes


def tflite_bytes(model, kind="fp32", calibration=None):
    """Converts the inference graph (without the re-rendering) to TFLite, builtin ops only.

    Args:
      model: an Unsup3D built with fuse_renderer=False.
      kind: 'fp32'; 'fp16' (float16 weights); 'dynamic' (int8 weights, float
        activations); 'int8' (int8 weights and activations calibrated on `calibration`,
        float input and output, the FLOAT_HEADS in float).
      calibration: images [M, S, S, 3] in [0, 1] for 'int8'.

    Returns:
      (flatbuffer bytes, notes: a list of strings for the model card).
    """
    import tensorflow as tf

    if kind not in TFLITE_KINDS:
        raise ValueError(f"unknown TFLite quantisation {kind!r}; use one of "
                         f"{', '.join(TFLITE_KINDS)}")
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        # One image per call, as on a phone: static shapes let XNNPACK take the whole
        # graph.
        archive, _ = _archive(model, with_recon=False, with_bytes=False, batch=1)
        archive.write_out(tmp, verbose=False)

        def converter():
            c = tf.lite.TFLiteConverter.from_saved_model(tmp)
            c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            return c

        conv = converter()
        if kind == "fp16":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.target_spec.supported_types = [tf.float16]
        elif kind == "dynamic":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
        elif kind == "int8":
            if calibration is None or len(calibration) == 0:
                raise ValueError("int8 quantisation needs calibration images")
            data = np.asarray(calibration, np.float32)

            def representative():
                for im in data:
                    yield {"images": im[None]}

            heads = head_nodes(converter().convert())
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = representative
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                              tf.lite.OpsSet.TFLITE_BUILTINS]
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=conv, debug_dataset=lambda: ([im[None]] for im in data[:1]),
                debug_options=tf.lite.experimental.QuantizationDebugOptions(
                    denylisted_nodes=heads))
            notes = [f"int8 calibrated on {len(data)} images; the heads of "
                     f"{', '.join(FLOAT_HEADS)} ({len(heads)} ops from their last "
                     "convolution on) stay float"]
            return debugger.get_nondebug_quantized_model(), notes
        return conv.convert(), notes


def write_tflite(model, path, kind, calibration=None):
    """Writes tflite_bytes to path; returns the card's notes."""
    flat, notes = tflite_bytes(model, kind, calibration)
    with open(path, "wb") as f:
        f.write(flat)
    return notes


def write_onnx(model, path, kind="fp32", calibration=None, opset=17):
    """Writes onnx_bytes to path; returns the card's notes."""
    del kind, calibration  # float32 only
    with open(path, "wb") as f:
        f.write(onnx_bytes(model, opset))
    return [f"opset {opset}"]


def onnx_bytes(model, opset=17):
    """Converts the inference graph (without the re-rendering) to ONNX with tf2onnx;
    input 'images' [N,S,S,3] float32 in [0,1], outputs named as the Python API."""
    import tensorflow as tf
    import tf2onnx

    from tfsym3d.export.graph import InferenceModule

    module = InferenceModule(model, with_recon=False)
    s = model.cfg.image_size
    fn = tf.function(module.predict)
    proto, _ = tf2onnx.convert.from_function(
        fn, input_signature=[tf.TensorSpec([None, s, s, 3], tf.float32, name="images")],
        opset=opset)
    return proto.SerializeToString()


# --------------------------------------------------------------------------------------
# Loading back
# --------------------------------------------------------------------------------------
def run_saved_model(path, threads=None):
    """The serving_default signature of a SavedModel as a runner."""
    import tensorflow as tf

    del threads
    fn = tf.saved_model.load(path).signatures["serving_default"]
    return lambda x: {k: v.numpy() for k, v in fn(images=tf.constant(x, tf.float32)).items()}


def run_tflite(path, threads=None):
    """A TFLite file as a runner: LiteRT's interpreter, one image per call (as on a
    phone)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=threads)
    run = interpreter.get_signature_runner("serving_default")

    def tflite(x):
        outs = [run(images=np.asarray(im[None], np.float32)) for im in x]
        return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}

    return tflite


def run_onnx(path, threads=None):
    """An ONNX file as a runner: onnxruntime on the CPU."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return lambda x: dict(zip(names, session.run(names, {"images": np.asarray(
        x, np.float32)}), strict=True))


def runner(fmt, path, threads=None):
    """The runner of an exported file of format fmt (a FORMATS name)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    return FORMATS[fmt].runner(path, threads)


# --------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------
class Format(NamedTuple):
    """An export format.

    name: the --formats name. variants: what it can write (the first is the default).
    path: (model name, variant) -> the file (or folder) under the export folder.
    card: (model name, variant) -> its model card's path there. write: (model, path,
    variant, calibration) -> notes. runner: (path, threads) -> runner. recon: whether it
    carries RECON_OUTPUTS. batch: the input's batch dimension (None: any).
    """

    name: str
    variants: tuple
    path: Callable
    card: Callable
    write: Callable
    runner: Callable
    recon: bool
    batch: int | None


FORMATS = {}


def register(fmt):
    """Adds a Format to FORMATS (replacing one of the same name); returns it."""
    FORMATS[fmt.name] = fmt
    return fmt


register(Format(
    "saved_model", ("fp32",),
    path=lambda name, variant: os.path.join("saved_model", name, "1"),
    card=lambda name, variant: os.path.join("saved_model", name, "model_card.json"),
    write=lambda model, path, variant, calibration: write_saved_model(model, path) or [],
    runner=run_saved_model, recon=True, batch=None))
register(Format(
    "tflite", TFLITE_KINDS,
    path=lambda name, variant: os.path.join("tflite", f"{name}_{variant}.tflite"),
    card=lambda name, variant: os.path.join("tflite", f"{name}_{variant}.card.json"),
    write=write_tflite, runner=run_tflite, recon=False, batch=1))
register(Format(
    "onnx", ("fp32",),
    path=lambda name, variant: os.path.join("onnx", f"{name}.onnx"),
    card=lambda name, variant: os.path.join("onnx", f"{name}.card.json"),
    write=write_onnx, runner=run_onnx, recon=False, batch=None))


def size_of(path):
    """Bytes of a file, or of everything under a folder."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(path) for f in files)
