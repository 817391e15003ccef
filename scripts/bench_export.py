"""Benchmark: file size and batch-1 latency of every export format, side by side.

    python scripts/bench_export.py [--repeats=30] [--out=runs/bench_export]

Exports a full-size model (the paper's widths, 64x64, untrained weights) to SavedModel,
TFLite fp32/fp16/int8 (XNNPACK, LiteRT) and ONNX (ONNX Runtime), then times one image at
a time with 1 and 2 threads, the runtimes called in turn round after round (medians).
Keras eager runs the same inference graph (networks and shading, no re-rendering) op by
op. Bars (issue 6): int8 file <= 30% of fp32;
TFLite fp32 latency <= 1.2x ONNX Runtime's; TFLite int8 <= 1/3 of Keras eager.
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
    args = parser.parse_args()

    import export
    from export import convert
    from export.graph import InferenceModule, use_export_ops
    from tfsym3d.config import Config
    from tfsym3d.model import Unsup3D, build

    model = use_export_ops(build(Unsup3D(Config(fuse_renderer=False))))
    written = export.export_model(model, args.out, quantize=("none", "fp16", "int8"),
                                  log=lambda *a: None)
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


def _bind(fn, x):
    return lambda: fn(x)


def _saved_model(path):
    import tensorflow as tf

    fn = tf.saved_model.load(path).signatures["serving_default"]
    x = tf.constant(np.zeros([1, 64, 64, 3], np.float32))
    return lambda: fn(images=x)


if __name__ == "__main__":
    main()
