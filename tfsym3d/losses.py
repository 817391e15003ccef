"""Confidence-weighted reconstruction losses (the paper's eqs. 3 and 5).

Images are NHWC in [-1, 1]; masks are [B, H, W] of 0/1; sigmas are positive,
[B, H, W, 1] (broadcast over channels). Every loss is a masked mean over pixels and
channels. With `normaliser` the masked sum is divided by that number instead of the
local mask sum: multi-replica training passes the global mask count, so that the
replicas' losses add up to the loss of the whole global batch.
"""

import math
import os
import socket

import keras
import tensorflow as tf

from tfsym3d import precision
from tfsym3d.io.images import to_unit

EPS = 1e-7


def photometric_loss(im1, im2, mask=None, conf_sigma=None, normaliser=None):
    """Laplacian negative log-likelihood of |im1 - im2| (up to a constant).

    loss = |im1 - im2| * sqrt(2) / (sigma + eps) + log(sigma + eps), or plain L1 without
    sigma; averaged over masked pixels and channels.

    Args:
      im1, im2: [B, H, W, C].
      mask: [B, H, W] or None.
      conf_sigma: [B, H, W, 1] or None.
      normaliser: optional scalar replacing the mask count (see module docstring).

    Returns:
      Scalar.
    """
    loss = tf.abs(im1 - im2)
    if conf_sigma is not None:
        loss = loss * math.sqrt(2.0) / (conf_sigma + EPS) + tf.math.log(conf_sigma + EPS)
    return masked_mean(loss, mask, normaliser)


def masked_mean(loss, mask=None, normaliser=None):
    """Mean of loss [B, H, W, C] over the pixels where mask [B, H, W] is 1 and channels."""
    if mask is None:
        mask = tf.ones_like(loss[..., 0])
    mask = tf.broadcast_to(mask[..., None], tf.shape(loss))
    total = tf.reduce_sum(loss * mask)
    count = tf.reduce_sum(mask) if normaliser is None else normaliser
    return total / tf.maximum(count, EPS)


def per_image_l1(im1, im2, mask):
    """Each image's mean |im1 - im2| over its masked pixels and channels: [B,H,W,C] twice
    and mask [B,H,W] -> [B] (0 where nothing is masked)."""
    m = mask[..., None]
    total = tf.reduce_sum(tf.abs(im1 - im2) * m, axis=[1, 2, 3])
    count = tf.reduce_sum(m, axis=[1, 2, 3]) * tf.cast(tf.shape(im1)[-1], tf.float32)
    return total / tf.maximum(count, EPS)


def ellipsoid_depth(height, width, min_depth, max_depth, radius=0.6, bulge=0.5):
    """A centred ellipsoid in the canonical frame (GAN2Shape's initial shape): max_depth
    outside an ellipse of `radius` times the half-width and half-height, rising toward
    the camera to max_depth - bulge * (max_depth - min_depth) at the centre: [H, W]."""
    y = tf.linspace(-1.0, 1.0, height)[:, None] / radius
    x = tf.linspace(-1.0, 1.0, width)[None, :] / radius
    cap = tf.sqrt(tf.maximum(1.0 - x * x - y * y, 0.0))
    return max_depth - bulge * (max_depth - min_depth) * cap


def ellipsoid_prior(canon_depth, min_depth, max_depth):
    """Mean |canon_depth - ellipsoid_depth| in units of the depth range: [B, H, W] ->
    scalar (the 2 border columns on each side, fixed by the model, left out)."""
    h, w = canon_depth.shape[1], canon_depth.shape[2]
    target = ellipsoid_depth(h, w, min_depth, max_depth)
    err = tf.abs(canon_depth - target)[:, :, 2:-2] / (max_depth - min_depth)
    return tf.reduce_mean(err)


def mask_count(mask, channels):
    """The normaliser of masked_mean for a mask [B, H, W] and C channels."""
    return tf.reduce_sum(mask) * channels


def depth_smoothness(canon_depth, min_depth, max_depth, order=1):
    """Mean absolute finite difference of the depth in units of the depth range:
    [B, H, W] -> scalar (vertical term + horizontal term).

    order 1: d[i+1] - d[i] (total variation; penalises any slope, planes included).
    order 2: d[i-1] - 2 d[i] + d[i+1] (zero on planes, small on smooth bumps, largest on
    period-2 ripples, which normals from central differences cannot see)."""
    scale = max_depth - min_depth

    def diff(d, axis):  # order-th forward difference along axis 1 (rows) or 2 (columns)
        for _ in range(order):
            d = d[:, 1:] - d[:, :-1] if axis == 1 else d[:, :, 1:] - d[:, :, :-1]
        return d

    return (tf.reduce_mean(tf.abs(diff(canon_depth, 1))) +
            tf.reduce_mean(tf.abs(diff(canon_depth, 2)))) / scale


# Keras' ImageNet VGG16 without the top: the file name keras.applications.VGG16 caches
# it under, and where it comes from (TFSYM3D_VGG16_URL overrides the address, for
# mirrors and tests; TFSYM3D_VGG16_HASH its md5, none then unless given).
VGG16_NOTOP = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG16_NOTOP_MD5 = "6d6bbae143d832006294945121d1f1fc"


def download_vgg16(path):
    """Downloads Keras' VGG16 weights (no top) to path with keras.utils.get_file
    (checked against their md5). FileNotFoundError in one line, naming the address and
    what to do by hand, when it cannot."""
    from keras.src.applications.vgg16 import WEIGHTS_PATH_NO_TOP

    url = os.environ.get("TFSYM3D_VGG16_URL") or WEIGHTS_PATH_NO_TOP
    md5 = os.environ.get("TFSYM3D_VGG16_HASH") if os.environ.get("TFSYM3D_VGG16_URL") \
        else VGG16_NOTOP_MD5
    folder = os.path.dirname(os.path.abspath(path))
    # get_file has no timeout of its own: a stalled server would hang training forever.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(float(os.environ.get("TFSYM3D_DOWNLOAD_TIMEOUT") or 60))
    try:
        got = keras.utils.get_file(os.path.basename(path), url, file_hash=md5 or None,
                                   cache_dir=os.path.dirname(folder),
                                   cache_subdir=os.path.basename(folder))
    except Exception as err:  # URLError, HTTPError, a hash mismatch: all one line
        raise FileNotFoundError(
            f"VGG16 weights: cannot download {url} ({str(err).splitlines()[0]}); fetch "
            f"it by hand to {path}, or train without the perceptual loss with "
            "--set=lam_perc=0") from None
    finally:
        socket.setdefaulttimeout(previous)
    if os.path.abspath(got) != os.path.abspath(path):
        os.replace(got, path)


class PerceptualLoss:
    """Gaussian negative log-likelihood of VGG16 relu3_3 feature differences.

    loss = (f1 - f2)^2 / (2 sigma^2 + eps) + log(sigma + eps), masked mean; the mask is
    average-pooled to the feature resolution (S/4).

    Args:
      image_size: input side in pixels.
      weights: path to Keras' VGG16 ImageNet weights without the top
        (vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5), or "random" for an untrained
        VGG16 (benchmarks and tests only: the loss is then meaningless for training).
      preprocess: 'caffe' for Keras' weights (BGR, mean-subtracted 0..255, as they were
        trained) or 'torch' (RGB, ImageNet mean/std on 0..1, as torchvision's weights
        that the authors used).
      dtype: arithmetic of the VGG16 convolutions: 'float32' (the authors'), 'bfloat16'
        (weights stay float32, features come back as float32; the loss agrees to ~0.1%,
        the gradient to ~10% relative noise), 'float16' (under precision
        mixed_float16) or 'auto' (bfloat16 where the hardware has it natively, see
        tfsym3d.precision.fast_bfloat16). The rest of the loss is float32 either way.

    Raises:
      FileNotFoundError with what to do when the weights file is absent.
    """

    def __init__(self, image_size=64, weights=None, preprocess="caffe", dtype="float32"):
        if weights != "random":
            weights = os.path.expanduser(weights or "")
            if not os.path.isfile(weights) and os.path.basename(weights) == VGG16_NOTOP:
                download_vgg16(weights)
            if not os.path.isfile(weights):
                raise FileNotFoundError(
                    f"VGG16 weights not found at {weights or '(vgg16_weights unset)'}: the "
                    "perceptual loss needs Keras' ImageNet VGG16 weights without the top, "
                    "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5; copy that file "
                    "there (or point the config key vgg16_weights at it), or train without "
                    "the perceptual loss with --set=lam_perc=0")
        if preprocess not in ("caffe", "torch"):
            raise ValueError(f"preprocess must be 'caffe' or 'torch'; got {preprocess!r}")
        policies = {"float32": "float32", "bfloat16": "mixed_bfloat16",
                    "float16": "mixed_float16", "auto": "auto"}
        if dtype not in policies:
            raise ValueError("dtype must be 'float32', 'bfloat16', 'float16' or 'auto'; got "
                             f"{dtype!r}")
        self.dtype = precision.compute_dtype(policies[dtype])
        # keras.applications builds with the global policy; a mixed one keeps the
        # variables (and the loaded weights) in float32 and computes in the narrow type.
        with precision.policy_scope(policies[dtype]):
            vgg = keras.applications.VGG16(
                include_top=False, weights=None if weights == "random" else weights,
                input_shape=(image_size, image_size, 3))
        self.features = keras.Model(vgg.input, vgg.get_layer("block3_conv3").output,
                                    name="vgg16_relu3_3")
        self.features.trainable = False
        self.preprocess = preprocess

    def normalise(self, im):
        """[-1, 1] RGB -> the input the VGG16 weights expect."""
        x = to_unit(im)
        if self.preprocess == "torch":
            return (x - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
        return x[..., ::-1] * 255.0 - [103.939, 116.779, 123.68]

    def __call__(self, im1, im2, mask=None, conf_sigma=None, normaliser=None):
        """im1, im2 [B, H, W, 3] in [-1, 1]; mask [B, H, W]; conf_sigma [B, h, w, 1] at
        the feature size -> scalar."""
        f1, f2 = tf.split(self.feature_maps(tf.concat([im1, im2], 0)), 2, axis=0)
        return self.from_features(f1, f2, mask, conf_sigma, normaliser)

    def feature_maps(self, im):
        """relu3_3 features of images [B, H, W, 3] in [-1, 1]: [B, H/4, W/4, 256] float32."""
        return tf.cast(self.features(self.normalise(im), training=False), tf.float32)

    def from_features(self, f1, f2, mask=None, conf_sigma=None, normaliser=None):
        """The loss between two feature maps [B, h, w, C] (see the class docstring)."""
        loss = tf.square(f1 - f2)
        if conf_sigma is not None:
            loss = loss / (2.0 * tf.square(conf_sigma) + EPS) + tf.math.log(conf_sigma + EPS)
        if mask is not None:
            mask = pool_mask(mask, loss.shape[1])
        return masked_mean(loss, mask, normaliser)


def pool_mask(mask, size):
    """Average-pools a mask [B, H, W] to [B, size, size] (H a multiple of size; static)."""
    factor = mask.shape[1] // size
    pooled = tf.nn.avg_pool2d(mask[..., None], factor, factor, "VALID")
    return pooled[..., 0]
