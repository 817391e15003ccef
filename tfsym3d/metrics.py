"""Accuracy on data with ground truth: SIDE and MAD (the paper's Table 1), the
constant-depth baseline, viewpoint errors and the landmark depth correlation.

Depth maps are [B, H, W] in camera units. Both metrics use the authors' mask:
ground-truth foreground (depth below its per-image maximum) eroded by one pixel, times
the predicted valid mask (recon_depth below max_depth + margin) eroded by one pixel.
"""

import math

import numpy as np
import tensorflow as tf


def erode(mask):
    """One-pixel erosion of a 0/1 mask [B, H, W]: 1 where the whole 3x3 window is 1.

    Pixels on the image border are eroded too (the window counts the outside as 0, as
    the authors' avg_pool2d with zero padding does)."""
    padded = tf.pad(mask[..., None], [[0, 0], [1, 1], [1, 1], [0, 0]])
    pooled = tf.nn.avg_pool2d(padded, 3, 1, "VALID")[..., 0]
    return tf.cast(pooled > 0.99, tf.float32)


def gt_foreground(depth_gt):
    """1 where the ground-truth depth is below its per-image maximum (the background)."""
    far = tf.reduce_max(depth_gt, axis=[1, 2], keepdims=True)
    return tf.cast(depth_gt < far, tf.float32)


def evaluation_mask(depth_gt, recon_depth, renderer):
    """The SIDE/MAD mask [B, H, W] described in the module docstring."""
    valid = renderer.seen(recon_depth)
    return erode(gt_foreground(depth_gt)) * erode(valid)


def coverage(depth_gt, recon_depth, renderer):
    """Share [B] of the eroded ground-truth foreground that the SIDE/MAD mask keeps.

    Near 1 when the prediction covers the face. A prediction whose valid region
    collapses (e.g. a view rotated to the range's end) scores SIDE/MAD over the few
    pixels left, which is not comparable with a full-coverage score."""
    return _coverage(depth_gt, evaluation_mask(depth_gt, recon_depth, renderer))


def _coverage(depth_gt, mask):
    face = tf.reduce_sum(erode(gt_foreground(depth_gt)), axis=[1, 2])
    return tf.reduce_sum(mask, axis=[1, 2]) / tf.maximum(face, 1.0)


def side(pred, gt, mask):
    """Scale-invariant depth error per image: [B, H, W] x3 -> [B].

    sqrt(mean(D^2) - mean(D)^2) over the mask, D = log(pred) - log(gt). Multiply by 100
    for the paper's x1e-2 figures."""
    diff = (tf.math.log(pred) - tf.math.log(gt)) * mask
    count = tf.maximum(tf.reduce_sum(mask, axis=[1, 2]), 1.0)
    mean = tf.reduce_sum(diff, axis=[1, 2]) / count
    var = tf.reduce_sum(tf.square(diff - mean[:, None, None]) * mask, axis=[1, 2]) / count
    return tf.sqrt(tf.maximum(var, 0.0))


def mad(normal_pred, normal_gt, mask):
    """Mean angle in degrees between normals [B, H, W, 3] over the mask: -> [B].

    The angle is acos of the clipped dot product, as the authors compute it, so normals
    that are not unit vectors (their n / (|n| + 1e-7)) add to it."""
    cos = tf.reduce_sum(normal_pred * normal_gt, axis=-1)
    cos = tf.clip_by_value(cos, -1.0, 1.0)
    angle = tf.acos(cos) * (180.0 / math.pi)
    count = tf.maximum(tf.reduce_sum(mask, axis=[1, 2]), 1.0)
    return tf.reduce_sum(angle * mask, axis=[1, 2]) / count


def depth_errors(recon_depth, depth_gt, renderer):
    """SIDE (x1) and MAD (degrees) per image of recon_depth against depth_gt.

    Two MADs: "mad" as the paper's tables compute it (the authors' normals, n / (|n| +
    1e-7), which are ~0.3% short at 64 px and 10 degrees of field of view, so identical
    depth maps score ~6.5 degrees, not 0) and "mad_unit" with unit normals (0 for
    identical maps).

    Args:
      recon_depth, depth_gt: [B, H, W] camera units.
      renderer: a tfsym3d.renderer.Renderer (camera and depth range).

    Returns:
      {"side", "mad", "mad_unit", "coverage"}: each [B] (coverage: see `coverage`, from
      the same mask).
    """
    mask = evaluation_mask(depth_gt, recon_depth, renderer)
    errors = {"side": side(recon_depth, depth_gt, mask)}
    for name, normalisation in (("mad", "authors"), ("mad_unit", "unit")):
        errors[name] = mad(renderer.get_normal_from_depth(recon_depth, normalisation),
                           renderer.get_normal_from_depth(depth_gt, normalisation), mask)
    errors["coverage"] = _coverage(depth_gt, mask)
    return errors


def null_depth(shape, renderer):
    """The constant-depth baseline: the middle of the depth range everywhere, [B, H, W]."""
    return tf.fill(shape, (renderer.min_depth + renderer.max_depth) / 2.0)


def summarise(values):
    """{"mean", "std", "n"} of a 1-D sequence of per-image values (NaN-free)."""
    values = np.asarray(values, np.float64)
    return {"mean": float(values.mean()) if values.size else float("nan"),
            "std": float(values.std()) if values.size else float("nan"),
            "n": int(values.size)}


def view_errors(pred_degrees, true_degrees):
    """Viewpoint errors (as in the self-supervised viewpoint literature): mean absolute
    error in degrees of pitch (elevation), yaw (azimuth) and roll (tilt), raw and after
    removing each angle's mean offset (a learned canonical frame need not be frontal).

    Also the calibration of each angle: the least-squares slope of the predicted angle
    regressed on the true one (1 = calibrated; a model that turns its views too little
    scores below 1 even when its offset-removed MAE looks moderate) and their Pearson
    correlation, on the angles as given (no wrap-around). Both are NaN with fewer than
    two images or a constant true angle (corr also for a constant prediction).

    Args:
      pred_degrees, true_degrees: [N, 3] (pitch, yaw, roll), degrees.

    Returns:
      {"pitch"|"yaw"|"roll": {"mae": degrees, "mae_debiased": degrees, "offset": degrees,
      "slope": degrees per degree, "corr": in [-1, 1]}}.
    """
    pred = np.asarray(pred_degrees, np.float64).reshape(-1, 3)
    true = np.asarray(true_degrees, np.float64).reshape(-1, 3)
    diff = (pred - true + 180.0) % 360.0 - 180.0
    out = {}
    for k, name in enumerate(("pitch", "yaw", "roll")):
        d = diff[:, k]
        offset = float(d.mean()) if d.size else 0.0
        out[name] = {"mae": float(np.abs(d).mean()) if d.size else float("nan"),
                     "mae_debiased": float(np.abs(d - offset).mean()) if d.size
                     else float("nan"),
                     "offset": offset}
        out[name].update(_calibration(pred[:, k], true[:, k]))
    return out


def _calibration(pred, true):
    """{"slope", "corr"} of pred regressed on true (1-D, degrees); NaN when undefined."""
    nan = {"slope": float("nan"), "corr": float("nan")}
    if true.size < 2:
        return nan
    t, p = true - true.mean(), pred - pred.mean()
    var_t, var_p = float(np.sum(t * t)), float(np.sum(p * p))
    if var_t <= 0.0:
        return nan
    cov = float(np.sum(t * p))
    return {"slope": cov / var_t,
            "corr": cov / np.sqrt(var_t * var_p) if var_p > 0.0 else float("nan")}


def keypoint_depth_correlation(pred, true):
    """The depth-correlation score of the paper's 3DFAW table (from DepthNet): for each
    landmark, the Pearson correlation over the images of predicted and true depth,
    summed over the landmarks (a perfect score is the number of landmarks).

    Args:
      pred, true: [N, L] depths at the landmarks (any units; the score is invariant to
        per-landmark affine changes).

    Returns:
      (score, per-landmark correlations [L]); a landmark whose depths do not vary scores 0.
    """
    pred = np.asarray(pred, np.float64)
    true = np.asarray(true, np.float64)
    pc = pred - pred.mean(0)
    tc = true - true.mean(0)
    denom = np.sqrt((pc ** 2).sum(0) * (tc ** 2).sum(0))
    corr = np.where(denom > 0, (pc * tc).sum(0) / np.where(denom > 0, denom, 1.0), 0.0)
    return float(corr.sum()), corr


def sample_points(depth, uv):
    """Bilinear values of maps [B, H, W] at pixel positions uv [B, L, 2] (u right, v down,
    pixel centres at integers; clamped to the image): -> [B, L]."""
    depth = np.asarray(depth, np.float64)
    b, h, w = depth.shape
    u = np.clip(np.asarray(uv, np.float64)[..., 0], 0, w - 1)
    v = np.clip(np.asarray(uv, np.float64)[..., 1], 0, h - 1)
    u0 = np.minimum(np.floor(u).astype(int), w - 2)
    v0 = np.minimum(np.floor(v).astype(int), h - 2)
    fu, fv = u - u0, v - v0
    i = np.arange(b)[:, None]
    return ((1 - fu) * (1 - fv) * depth[i, v0, u0] + fu * (1 - fv) * depth[i, v0, u0 + 1]
            + (1 - fu) * fv * depth[i, v0 + 1, u0] + fu * fv * depth[i, v0 + 1, u0 + 1])


def chroma(images):
    """Mean chroma of images [..., H, W, 3] in [0, 1]: the standard deviation over R, G
    and B at each pixel, averaged over the pixels (and the batch). 0 for grey images."""
    return float(np.mean(np.std(np.asarray(images, np.float64), axis=-1)))


def colour_fidelity(outputs, images, renderer):
    """How well a decomposition keeps the input's colour.

    Args:
      outputs: the model's public outputs (canon_albedo [B,H,W,3], recon_im [B,H,W,3]
        in [0, 1], recon_depth [B,H,W]) for `images` [B, H, W, 3] in [0, 1].
      renderer: the model's Renderer (which recon_depth pixels are seen).

    Returns:
      A dict: albedo_chroma and input_chroma (see `chroma`), chroma_ratio (their
      ratio: near 0 for a grey albedo; about 1 when the albedo is as colourful as the
      input) and recon_l1 (mean |recon_im - image| over the pixels the re-rendering
      sees and all three channels).
    """
    images = np.asarray(images, np.float64)
    recon = np.asarray(outputs["recon_im"], np.float64)
    seen = np.asarray(renderer.seen(outputs["recon_depth"]), np.float64)[..., None]
    albedo_chroma, input_chroma = chroma(outputs["canon_albedo"]), chroma(images)
    return {"albedo_chroma": albedo_chroma, "input_chroma": input_chroma,
            "chroma_ratio": albedo_chroma / max(input_chroma, 1e-12),
            "recon_l1": float(np.sum(np.abs(recon - images) * seen)
                              / max(3.0 * np.sum(seen), 1.0))}
