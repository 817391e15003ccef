"""The viewpoint's own training signals (issue 48; none of them is the authors').

The photometric loss alone gives netV little gradient toward the turn of objects seen
at wide angles. Three signals from the self-supervised viewpoint literature, each a
config option that is off in the authors' presets:

- flip equivariance (SSV's symmetry constraint, DOVE): the view of the mirrored image is
  the mirror of the view (`mirror_view`);
- render and predict back (SSV's generative consistency): the model's own canonical
  surface rendered from a sampled view v* (`sample_views`) over a background like the
  inputs' (`background_like`) must give v* back;
- viewpoint hypotheses (MagicPony, DOVE): K yaw bins, each with a view inside it and a
  score that predicts its reconstruction loss (`hypothesis_views`, `choose_hypothesis`).

Views are [..., 6]: rotation x (pitch), y (yaw), z (roll) in radians, then translation
x, y, z in camera units (tfsym3d.renderer.camera).
"""

import math

import numpy as np
import tensorflow as tf

# A horizontal mirror of the image negates yaw, roll and the x translation.
MIRROR = (1.0, -1.0, -1.0, -1.0, 1.0, 1.0)


def view_scale(rotation_range, xy_range, z_range):
    """The largest value of each view component: a numpy float32 [6] (radians, camera
    units), so that graphs embed it as a constant (an eager tensor kept on the model
    would be captured as an input, which the ONNX export cannot feed).

    Args: rotation_range in degrees (+-), xy_range and z_range in camera units (+-).
    """
    r = math.radians(rotation_range)
    return np.array([r, r, r, xy_range, xy_range, z_range], np.float32)


def mirror_view(view):
    """The view of the horizontally mirrored image: [..., 6] -> [..., 6]."""
    return view * tf.constant(MIRROR)


def normalised_l1(pred, target, scale):
    """Mean |pred - target| / scale over the components whose range is not 0:
    pred, target [..., 6], scale [6] -> scalar (1 = an error of a whole range)."""
    used = tf.cast(scale > 0, tf.float32)
    safe = tf.where(scale > 0, scale, tf.ones_like(scale))
    err = tf.abs(pred - target) / safe * used
    return tf.reduce_sum(tf.reduce_mean(tf.reshape(err, [-1, 6]), 0)) / tf.reduce_sum(used)


def hypothesis_views(raw, scale, num):
    """Views of K hypotheses from netV's tanh outputs.

    The yaw range [-R, R] is cut into K equal bins; hypothesis k's yaw is the bin's
    centre plus R/K times its tanh output, so it stays inside its bin. The other
    components are their tanh output times their range, as the authors' single view.
    K = 1 is the authors' view exactly.

    Args:
      raw: [B, 6K] in [-1, 1], hypothesis after hypothesis.
      scale: [6], view_scale.
      num: K.

    Returns:
      [B, K, 6].
    """
    v = tf.reshape(raw, [-1, num, 6]) * scale
    if num == 1:
        return v
    r = scale[1]
    centres = -r + (2.0 * tf.range(num, dtype=tf.float32) + 1.0) * r / num
    yaw = centres[None, :] + v[..., 1] / num
    return tf.concat([v[..., :1], yaw[..., None], v[..., 2:]], -1)


def yaw_bin(yaw, yaw_range, num):
    """The hypothesis bin of yaw angles [N] (radians) in [-R, R] with K bins: [N] int32."""
    k = tf.floor((yaw + yaw_range) / (2.0 * yaw_range) * num)
    return tf.cast(tf.clip_by_value(k, 0, num - 1), tf.int32)


def choose_hypothesis(scores, p_best, seed=None):
    """Which hypothesis each image is rendered with while training: the best-scored
    (lowest predicted loss) with probability p_best, else one at random.

    Args: scores [B, K]; p_best scalar in [0, 1].

    Returns: [B] int32.
    """
    b, k = tf.shape(scores)[0], tf.shape(scores)[1]
    best = tf.argmin(scores, axis=1, output_type=tf.int32)
    rand = tf.random.uniform([b], 0, k, dtype=tf.int32, seed=seed)
    return tf.where(tf.random.uniform([b], seed=seed) < p_best, best, rand)


def pick(hypotheses, index, num):
    """hypotheses [B, K, C] at index [B] -> [B, C] (a one-hot sum: TFLite and ONNX run it)."""
    return tf.reduce_sum(hypotheses * tf.one_hot(index, num)[..., None], axis=1)


def sample_views(n, ranges, xy_range, z_range, seed=None):
    """Views drawn uniformly over the ranges: [n, 6].

    Args: n images; ranges [3] degrees (+-) for pitch, yaw, roll; xy_range and z_range
    camera units (+-).
    """
    lim = tf.constant([math.radians(float(r)) for r in ranges] + [xy_range, xy_range,
                                                                   z_range], tf.float32)
    return tf.random.uniform([n, 6], -1.0, 1.0, seed=seed) * lim


def background_like(images, ring=3, seed=None):
    """A background for rendered images that looks like the inputs': each image's mean
    colour of its outer ring of `ring` pixels plus Gaussian noise of that ring's standard
    deviation (so the view network cannot tell a rendering by a black or flat border).

    Args: images [B, H, W, C].

    Returns: [B, H, W, C].
    """
    h, w = images.shape[1], images.shape[2]
    rows = tf.range(h)[:, None]
    cols = tf.range(w)[None, :]
    edge = (rows < ring) | (rows >= h - ring) | (cols < ring) | (cols >= w - ring)
    m = tf.cast(edge, images.dtype)[None, :, :, None]
    count = tf.reduce_sum(m) * 1.0
    mean = tf.reduce_sum(images * m, [1, 2], keepdims=True) / count
    var = tf.reduce_sum(tf.square(images - mean) * m, [1, 2], keepdims=True) / count
    noise = tf.random.normal(tf.shape(images), seed=seed)
    return mean + tf.sqrt(var + 1e-12) * noise


def composite(render, seen, background):
    """render [B,H,W,C] where seen [B,H,W] is 1, background elsewhere."""
    s = seen[..., None]
    return render * s + background * (1.0 - s)
