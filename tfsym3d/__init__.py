"""tfsym3d: Unsupervised Learning of Probably Symmetric Deformable 3D Objects from Images
in the Wild (Wu, Rupprecht, Vedaldi, CVPR 2020) in TensorFlow/Keras.

Public API: Unsup3D, load_config, load_model, Renderer. They are imported lazily, so
`import tfsym3d` (and `tfsym3d --help`) does not pay for importing TensorFlow.
"""

import importlib
import os

# TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) hides the program's own
# output; users can still ask for it with TF_CPP_MIN_LOG_LEVEL=0.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# oneDNN's CPU kernels. TensorFlow turns them on by itself only on CPUs with AVX-512
# VNNI/BF16 or AMX; elsewhere (e.g. AVX2) it falls back to Eigen, whose convolution
# gradients are slow at these networks' shapes: a configs/tiny.yaml training step on a
# 2-core AVX2 CPU takes about half the time with oneDNN (benchmarks/bench_train.py
# --config). Same arithmetic up to float rounding. Read once, when TensorFlow is first
# imported, so `import tfsym3d` before tensorflow; TF_ENABLE_ONEDNN_OPTS=0 turns it off.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"

_LAZY = {
    "Renderer": ("tfsym3d.renderer", "Renderer"),
    "Unsup3D": ("tfsym3d.model", "Unsup3D"),
    "load_model": ("tfsym3d.loader", "load_model"),
    "load_config": ("tfsym3d.config", "load_config"),
}

__all__ = ["Renderer", "Unsup3D", "load_config", "load_model", "__version__"]


def __getattr__(name):
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'tfsym3d' has no attribute {name!r}")
