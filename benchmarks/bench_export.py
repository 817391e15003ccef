"""Benchmark: file size and batch-1 latency of every export format, side by side.

    python benchmarks/bench_export.py [--repeats=30] [--out=runs/bench_export] [--kernels]

Exports a full-size model (the paper's widths, 64x64, untrained weights) to SavedModel,
TFLite fp32/fp16/int8 (XNNPACK, LiteRT) and ONNX (ONNX Runtime), then times one image at
a time with 1 and 2 threads, the runtimes called in turn round after round (medians).
Keras eager runs the same inference graph (networks and shading, no re-rendering) op by
op. Bars (issue 6): int8 file <= 30% of fp32;
TFLite fp32 latency <= 1.2x ONNX Runtime's; TFLite int8 <= 1/3 of Keras eager.

--kernels instead times single convolutions of the networks' own shapes, each converted
alone to TFLite (XNNPACK) and ONNX (ONNX Runtime), one thread: how fast the two
runtimes' kernels are on this CPU, apart from the graph around them.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from benchlib import interleaved_times  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", default="runs/bench_export")
    parser.add_argument("--kernels", action="store_true",
                        help="time the networks' convolution shapes alone instead")
    args = parser.parse_args()
    if args.kernels:
        return kernels(args.repeats)

    from tfsym3d import export
    from tfsym3d.config import Config
    from tfsym3d.export import convert
    from tfsym3d.export.graph import InferenceModule, use_export_ops
    from tfsym3d.model import Unsup3D, build

    model = use_export_ops(build(Unsup3D(Config(fuse_renderer=False))))
    written = export.export_model(model, args.out, quantize=("none", "fp16", "int8"))
    x = export.sample_images(1, model.cfg.image_size, seed=4)
    # The same inference graph as the exports (networks and shading, no re-rendering),
    # run op by op.
    eager = InferenceModule(model, with_recon=False)
    rows = {}
    for threads in (1, 2):
        runners = {
            "Keras eager": lambda: eager.predict(x),
            "SavedModel": _saved_model(written["saved_model"]),
            "TFLite fp32": _bind(convert.runner("tflite", written["tflite_fp32"], threads), x),
            "TFLite fp16": _bind(convert.runner("tflite", written["tflite_fp16"], threads), x),
            "TFLite int8": _bind(convert.runner("tflite", written["tflite_int8"], threads), x),
            "ONNX Runtime": _bind(convert.runner("onnx", written["onnx"], threads), x),
        }
        times = interleaved_times(list(runners.values()), args.repeats, warmup=3)
        for name, t in zip(runners, times, strict=True):
            rows.setdefault(name, {})[threads] = t
    files = {"Keras eager": None, "SavedModel": written["saved_model"],
             "TFLite fp32": written["tflite_fp32"], "TFLite fp16": written["tflite_fp16"],
             "TFLite int8": written["tflite_int8"], "ONNX Runtime": written["onnx"]}
    print("| runtime | file (MiB) | 1 thread (ms) | 2 threads (ms) |")
    print("|---|---|---|---|")
    for name, t in rows.items():
        size = f"{convert.size_of(files[name]) / 2 ** 20:.1f}" if files[name] else "-"
        print(f"| {name} | {size} | {t[1] * 1e3:.1f} | {t[2] * 1e3:.1f} |")
    fp32 = convert.size_of(written["tflite_fp32"])
    int8 = convert.size_of(written["tflite_int8"])
    print(f"\nint8 / fp32 file: {int8 / fp32:.2f} (bar <= 0.30)")
    for threads in (1, 2):
        print(f"{threads} thread(s): TFLite fp32 / ONNX Runtime "
              f"{rows['TFLite fp32'][threads] / rows['ONNX Runtime'][threads]:.2f} (bar <= 1.2); "
              f"TFLite int8 / Keras eager "
              f"{rows['TFLite int8'][threads] / rows['Keras eager'][threads]:.2f} (bar <= 0.33)")
    print("Keras eager and SavedModel use TensorFlow's own thread pool (all cores) in both "
          "columns.")


# (name, input [H, W, C], layer): convolutions of the full-size networks at 64x64.
KERNELS = (
    ("conv 4x4/2, 64x64x3 -> 64", (64, 64, 3), ("conv", 64, 4, 2)),
    ("conv 4x4/2, 32x32x64 -> 128", (32, 32, 64), ("conv", 128, 4, 2)),
    ("deconv 4x4/2, 16x16x128 -> 64", (16, 16, 128), ("deconv", 64, 4, 2)),
    ("deconv 4x4/2, 32x32x64 -> 64", (32, 32, 64), ("deconv", 64, 4, 2)),
    ("conv 3x3, 64x64x64 -> 64", (64, 64, 64), ("conv", 64, 3, 1)),
    ("conv 5x5, 64x64x64 -> 64", (64, 64, 64), ("conv", 64, 5, 1)),
)


def kernels(repeats):
    import keras
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx
    from ai_edge_litert.interpreter import Interpreter

    print("| convolution | TFLite (ms) | ONNX Runtime (ms) | ratio |")
    print("|---|---|---|---|")
    for name, shape, (kind, filters, k, stride) in KERNELS:
        inp = keras.Input(shape, batch_size=1)
        layer = (keras.layers.Conv2D if kind == "conv" else keras.layers.Conv2DTranspose)(
            filters, k, stride, padding="same", use_bias=False)
        net = keras.Model(inp, layer(inp))
        interpreter = Interpreter(
            model_content=tf.lite.TFLiteConverter.from_keras_model(net).convert(),
            num_threads=1)
        interpreter.allocate_tensors()
        index = interpreter.get_input_details()[0]["index"]
        spec = [tf.TensorSpec((1,) + shape, tf.float32, name="x")]
        proto, _ = tf2onnx.convert.from_function(tf.function(lambda x, n=net: n(x)),
                                                 input_signature=spec, opset=17)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(proto.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).uniform(size=(1,) + shape).astype(np.float32)

        def tflite(i=interpreter, j=index, x=x):
            i.set_tensor(j, x)
            i.invoke()

        def onnx(s=session, x=x):
            s.run(None, {"x": x})

        t_tfl, t_ort = interleaved_times([tflite, onnx], repeats, warmup=3)
        print(f"| {name} | {t_tfl * 1e3:.2f} | {t_ort * 1e3:.2f} | {t_tfl / t_ort:.2f} |",
              flush=True)


def _bind(fn, x):
    return lambda: fn(x)


def _saved_model(path):
    import tensorflow as tf

    fn = tf.saved_model.load(path).signatures["serving_default"]
    x = tf.constant(np.zeros([1, 64, 64, 3], np.float32))
    return lambda: fn(images=x)


if __name__ == "__main__":
    main()
