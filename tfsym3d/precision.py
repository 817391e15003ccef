"""Mixed precision: which arithmetic the networks compute in (the config key `precision`).

    float32          everything in float32 (the authors' arithmetic; the default)
    mixed_bfloat16   the five networks and the VGG16 loss compute in bfloat16
    mixed_float16    the same in float16, with Keras' LossScaleOptimizer in training
    auto             mixed_bfloat16 where the hardware has bfloat16 natively, else float32

Under a mixed precision the variables (and so the checkpoints) stay float32: a model
trained either way loads in every command. Only the networks' convolutions use the
narrow type. Each network's output layer, the GroupNorm statistics, the renderer, the
shading, depth-to-normals, the losses and the metrics stay float32: the depth map's
range is 0.2 camera units and depth differences of 1e-4 matter to the normals and to
SIDE, finer than bfloat16's 8-bit mantissa resolves (~4e-3 relative).
"""

import contextlib

import keras
import tensorflow as tf

from tfsym3d.config import PRECISIONS


def fast_bfloat16(gpu_capabilities=None, cpu_flags=None):
    """Whether this machine computes bfloat16 convolutions natively and fast.

    With GPUs: all of them have compute capability >= 8.0 (Ampere and later). Without:
    the CPU has AMX or AVX-512 BF16 (flags from /proc/cpuinfo; elsewhere False). On
    other hardware bfloat16 is emulated and slower than float32. The arguments (a list
    of (major, minor) and a set of flag names) replace what this machine reports.
    """
    if gpu_capabilities is None:
        gpu_capabilities = [
            tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
            for gpu in tf.config.list_physical_devices("GPU")]
    if gpu_capabilities:
        return all(tuple(c) >= (8, 0) for c in gpu_capabilities)
    if cpu_flags is None:
        cpu_flags = cpu_features()
    return bool({"amx_bf16", "avx512_bf16"} & set(cpu_flags))


def cpu_features():
    """The CPU's feature flags from /proc/cpuinfo (an empty set where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            return set(f.read().split())
    except OSError:
        return set()


def resolve(precision, fast=None):
    """The Keras dtype policy name of a `precision` value: 'auto' becomes
    'mixed_bfloat16' where fast_bfloat16() (or `fast`, when given), else 'float32'.

    Raises ValueError for a value not in PRECISIONS."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got "
                         f"{precision!r}")
    if precision == "auto":
        fast = fast_bfloat16() if fast is None else fast
        return "mixed_bfloat16" if fast else "float32"
    return precision


def compute_dtype(precision):
    """'float32', 'bfloat16' or 'float16': what the networks compute in."""
    return keras.DTypePolicy(resolve(precision)).compute_dtype


@contextlib.contextmanager
def policy_scope(precision):
    """Layers created inside take the dtype policy of `precision` (Keras layers read
    the global policy when they are constructed); the previous policy comes back after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(resolve(precision))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def perceptual_dtype(precision, perc_dtype):
    """The VGG16 loss network's arithmetic: under a mixed precision its compute dtype;
    under float32, `perc_dtype` (float32, bfloat16 or auto) decides alone."""
    dtype = compute_dtype(precision)
    return perc_dtype if dtype == "float32" else dtype
