"""Small building blocks shared by the factor networks, with PyTorch-exact padding.

The authors' convolutions are `Conv2d(k=4, s=2, padding=1)` and
`ConvTranspose2d(k=4, s=2, padding=1)` (and k=3/p=1, k=5/p=2 at stride 1). On inputs
divisible by the stride, as all of the networks' are, TensorFlow's 'same' padding is
exactly that symmetric padding (total k - s, split evenly), so those are 'same'
convolutions; any other combination is written as the explicit operation (zero-pad then
'valid'; 'valid' transposed then a crop). The weights map one-to-one either way.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from tfsym3d.renderer.xla import fuse


def torch_default_init():
    """PyTorch's default weight init for Conv2d and ConvTranspose2d:
    kaiming_uniform(a=sqrt(5)), i.e. uniform in +-1/sqrt(fan_in). Keras' fan_in of a
    transposed convolution's kernel (k * k * filters) equals the one PyTorch uses for it
    (its weight's second dimension times k * k), so one initializer serves both."""
    return keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")


def _is_same(kernel, stride, padding):
    """Whether PyTorch's symmetric `padding` is TensorFlow's 'same' for this kernel and
    stride: true when 2 * padding == kernel - stride, for inputs divisible by the stride
    (all of the networks' are: powers of two from 4 up)."""
    return padding > 0 and 2 * padding == kernel - stride


def conv(filters, kernel, stride=1, padding=0, name=None, dtype=None):
    """Conv2d without bias; `padding` zero pixels on every side first (PyTorch style).

    Written as 'same' where that is the same arithmetic (one op instead of a pad and a
    convolution in exported graphs), else as an explicit zero-pad then 'valid'. dtype:
    the layer's dtype policy (None: the global one, see tfsym3d.precision)."""
    same = _is_same(kernel, stride, padding)
    convolution = layers.Conv2D(filters, kernel, strides=stride,
                                padding="same" if same else "valid", use_bias=False,
                                kernel_initializer=torch_default_init(), name=name,
                                dtype=dtype)
    if padding == 0 or same:
        return [convolution]
    return [layers.ZeroPadding2D(padding, name=f"{name}_pad"), convolution]


def deconv(filters, kernel, stride=1, padding=0, name=None):
    """ConvTranspose2d without bias; `padding` pixels cropped from every side after
    ('same' where that is the same arithmetic, see conv)."""
    same = _is_same(kernel, stride, padding)
    convolution = layers.Conv2DTranspose(filters, kernel, strides=stride,
                                         padding="same" if same else "valid", use_bias=False,
                                         kernel_initializer=torch_default_init(), name=name)
    if padding == 0 or same:
        return [convolution]
    return [convolution, layers.Cropping2D(padding, name=f"{name}_crop")]


def group_norm_nhwc(x, gamma, beta, groups, epsilon):
    """GroupNorm of NHWC x [B, H, W, C] with per-channel float32 gamma, beta [C]: each
    image's groups of C / groups channels normalised over H, W and the group (Keras'
    GroupNormalization's arithmetic), then scaled and shifted. The statistics are
    float32 whatever x's type (a bfloat16 mean of 4096 values is off by ~1e-2); the
    result has x's type."""
    dtype = x.dtype
    x = tf.cast(x, tf.float32)
    shape = tf.shape(x)
    c = x.shape[-1]
    grouped = tf.reshape(x, [shape[0], shape[1], shape[2], groups, c // groups])
    mean, var = tf.nn.moments(grouped, [1, 2, 4], keepdims=True)
    scale = tf.math.rsqrt(var + epsilon) * tf.reshape(gamma, [groups, c // groups])
    shift = tf.reshape(beta, [groups, c // groups]) - mean * scale
    return tf.cast(tf.reshape(grouped * scale + shift, shape), dtype)


_group_norm_xla = fuse(group_norm_nhwc)


@keras.saving.register_keras_serializable(package="tfsym3d")
class GroupNorm(layers.GroupNormalization):
    """Keras' GroupNormalization on NHWC with two more formulations of the same values.

    With `fused` set (Unsup3D sets it from the config's fuse_group_norm) the layer is
    one XLA computation forward and backward (group_norm_nhwc): on a 2-core CPU the
    five networks' training step of configs/tiny.yaml is ~14% faster; values equal to
    float rounding.

    With `stats_4d` set (export.load_for_export sets it; it wins over `fused`) the
    statistics are computed without the 5-D [B, H, W, G, C/G] reshape: per-channel means
    of x and x^2 over H, W, averaged within each group by a [C, C] block matrix, var =
    E[x^2] - E[x]^2. Every op is then 4-D or 2-D, which TFLite's XNNPACK delegate takes
    whole (it leaves 5-D ops to the slower builtin kernels). Same weights, same values to
    float precision.
    """

    stats_4d = False
    fused = False

    def call(self, inputs, training=None):
        if not self.stats_4d:
            if not self.fused:
                return super().call(inputs)
            c = inputs.shape[-1]
            gamma = self.gamma if self.scale else tf.ones([c])
            beta = self.beta if self.center else tf.zeros([c])
            return _group_norm_xla(inputs, tf.convert_to_tensor(gamma),
                                   tf.convert_to_tensor(beta), self.groups, self.epsilon)
        c = inputs.shape[-1]
        per_group = c // self.groups
        mean = tf.reduce_mean(inputs, axis=[1, 2], keepdims=True)
        mean_sq = tf.reduce_mean(tf.square(inputs), axis=[1, 2], keepdims=True)
        if per_group > 1:
            block = np.kron(np.eye(self.groups), np.full((per_group, per_group),
                                                         1.0 / per_group))
            block = tf.constant(block, tf.float32)
            mean = tf.reshape(tf.matmul(tf.reshape(mean, [-1, c]), block), [-1, 1, 1, c])
            mean_sq = tf.reshape(tf.matmul(tf.reshape(mean_sq, [-1, c]), block),
                                 [-1, 1, 1, c])
        var = tf.maximum(mean_sq - tf.square(mean), 0.0)
        scale = tf.math.rsqrt(var + self.epsilon)
        if self.scale:
            scale = scale * self.gamma
        shift = -mean * scale
        if self.center:
            shift = shift + self.beta
        return inputs * scale + shift


# Nearest x2 upsampling then a 3x3 'same' convolution, per output phase: output row 2i + a
# sees upsampled rows 2i + a - 1 .. 2i + a + 1, i.e. input rows (i - 1, i) for a = 0 and
# (i, i + 1) for a = 1; these matrices sum the 3 kernel rows onto those 2 (same for columns).
_PHASE_TAPS = np.array([[[1, 0, 0], [0, 1, 1]],
                        [[1, 1, 0], [0, 0, 1]]], np.float32)  # [phase, tap, kernel row]


def upsample_conv3x3(x, kernel):
    """Conv2D(3x3, 'same', no bias)(UpSampling2D(2, 'nearest')(x)) with half the work:
    each of the 4 output phases is a 2x2 convolution of the small input.

    The 4 phase kernels are stacked into one 2x2 'valid' convolution of x zero-padded by
    one pixel ([H+1, W+1] outputs, 4 * Cout channels); phase (a, b) takes its block at
    offset (a, b), and depth_to_space interleaves them. 16 (H+1)(W+1) multiply-adds per
    input/output channel pair instead of 36 HW; the same values to float rounding (the
    phase kernels are sums of the 3x3 taps).

    Args:
      x: [B, H, W, Cin].
      kernel: [3, 3, Cin, Cout], the convolution's weights (float32; cast to x's type).
    Returns: [B, 2H, 2W, Cout].
    """
    kernel = tf.cast(kernel, x.dtype)
    h, w = x.shape[1], x.shape[2]
    cout = kernel.shape[-1]
    taps = tf.constant(_PHASE_TAPS)
    # [a, b, r, s, Cin, Cout]: phase (a, b)'s 2x2 kernel.
    phase = tf.einsum("arm,bsn,mnio->abrsio", taps, taps, kernel)
    stacked = tf.reshape(tf.transpose(phase, [2, 3, 4, 0, 1, 5]),
                         [2, 2, kernel.shape[2], 4 * cout])  # channel = (a * 2 + b) * Cout + o
    y = tf.nn.conv2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), stacked, 1, "VALID")
    blocks = [y[:, a:a + h, b:b + w, (a * 2 + b) * cout:(a * 2 + b + 1) * cout]
              for a in (0, 1) for b in (0, 1)]
    return tf.nn.depth_to_space(tf.concat(blocks, axis=-1), 2)


def group_norm(channels, nf, name, group_size=None):
    """The authors' GroupNorm(16 * channels / nf, channels): nf / 16 channels per group,
    or `group_size` channels per group when given (at nf < 64 the authors' rule puts
    fewer than 4 channels in a group, down to one at nf = 16: instance normalisation,
    which removes each image's per-channel mean and contrast)."""
    per_group = group_size or max(nf // 16, 1)
    layer = GroupNorm(groups=max(channels // per_group, 1), epsilon=1e-5, name=name)
    layer.channels = channels  # known before the layer is built (EDDeconv's FiLM sizes)
    return layer


def activation(kind, name, dtype=None):
    """'relu', 'lrelu' (slope 0.2), 'tanh', 'softplus' or None; dtype as conv's."""
    if kind is None:
        return []
    if kind == "lrelu":
        return [layers.LeakyReLU(negative_slope=0.2, name=name, dtype=dtype)]
    return [layers.Activation(kind, name=name, dtype=dtype)]


def num_stages(image_size, final):
    """How many factor-2 stages separate `final` from image_size (both powers of two)."""
    n = 0
    size = image_size
    while size > final:
        if size % 2:
            break
        size //= 2
        n += 1
    if size != final:
        raise ValueError(f"image_size must be {final} times a power of two; got {image_size}")
    return n


def run(stack, x, training=None):
    """Applies a list of layers in order."""
    for layer in stack:
        if isinstance(layer, layers.GroupNormalization | keras.layers.Dropout):
            x = layer(x, training=training)
        else:
            x = layer(x)
    return x
