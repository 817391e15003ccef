"""tfsym3d: Unsupervised Learning of Probably Symmetric Deformable 3D Objects from Images
in the Wild (Wu, Rupprecht, Vedaldi, CVPR 2020) in TensorFlow/Keras.

Public API: Unsup3D, load_config, load_model, Renderer. The model-side names are
imported lazily so that `import tfsym3d` stays cheap and the renderer can be used alone.
"""

__version__ = "0.1.0"

from tfsym3d.renderer import Renderer  # noqa: E402

_LAZY = {
    "Unsup3D": ("tfsym3d.model", "Unsup3D"),
    "load_model": ("tfsym3d.model", "load_model"),
    "load_config": ("tfsym3d.config", "load_config"),
}

__all__ = ["Renderer", "Unsup3D", "load_config", "load_model", "__version__"]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'tfsym3d' has no attribute {name!r}")
