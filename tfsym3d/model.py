"""Unsup3D: the photo-geometric autoencoder of Wu, Rupprecht and Vedaldi (CVPR 2020).

An image I is factored into canonical depth d, albedo a, light l and view w by four
networks (netD, netA, netL, netV); the canonical image is the albedo shaded by the light
on the depth's normals, and re-rendering it from the view gives the reconstruction.
Depth and albedo are also flipped horizontally and must explain the image too
(symmetry); netC predicts per-pixel confidence (sigma) maps that weight the losses of the
plain and flipped reconstructions (probable symmetry).

    model = Unsup3D(load_config("configs/tiny.yaml"))
    out = model(images)   # images [B, H, W, 3] in [0, 1] -> the OUTPUTS below

The public output contract (OUTPUTS) is the same from `model(images)`,
tfsym3d.reconstruct and every exported model: images in [0, 1], depth in camera units,
angles in radians. Inside the model, images are in [-1, 1] (the networks' range); the
dicts of `factors` and `decompose` are internal and keep that range.
"""

import keras
import tensorflow as tf

from tfsym3d import losses, metrics, precision, views
from tfsym3d.config import Config
from tfsym3d.io.images import from_unit, to_unit
from tfsym3d.layers import ConfNet, EDDeconv, Encoder
from tfsym3d.layers.blocks import GroupNorm
from tfsym3d.renderer import Renderer, lambertian
from tfsym3d.renderer.xla import in_xla_context

LOSS_NAMES = ("loss", "l1", "l1_flip", "perc", "perc_flip", "depth_sm", "view_flip",
              "view_cycle", "view_score", "depth_prior")

# The public outputs: name -> (shape with N images of S x S pixels, range, meaning).
OUTPUTS = {
    "canon_depth": ("[N,S,S]", "min_depth..max_depth", "canonical depth, camera units "
                    "(z forward); the 2 border columns on each side hold border_depth"),
    "canon_albedo": ("[N,S,S,3]", "0..1", "canonical albedo, RGB"),
    "canon_normal": ("[N,S,S,3]", "-1..1", "unit normals of the canonical depth, camera "
                     "space (x right, y down, z forward; pointing away from the camera)"),
    "canon_shading": ("[N,S,S,1]", ">=0", "ambient + diffuse * max(0, n . d)"),
    "canon_im": ("[N,S,S,3]", "0..1", "the albedo shaded (clipped to 0..1)"),
    "canon_light_a": ("[N,1]", "min_amb_light..max_amb_light", "ambient light"),
    "canon_light_b": ("[N,1]", "min_diff_light..max_diff_light", "diffuse light"),
    "canon_light_d": ("[N,3]", "unit vector", "light direction (x, y, 1) normalised"),
    "view": ("[N,6]", "radians / camera units", "rotation x, y, z (R = Rz Ry Rx about "
             "(0, 0, rot_center_depth)) then translation x, y, z"),
    "conf_sigma_l1": ("[N,S,S,2]", ">0", "L1 confidence sigmas: channel 0 plain, 1 flipped "
                      "reconstruction (large = asymmetric / uncertain; ones without netC)"),
    "conf_sigma_percl": ("[N,S/4,S/4,2]", ">0", "perceptual confidence sigmas"),
    "recon_depth": ("[N,S,S]", "min_depth-margin..max_depth+margin", "depth seen from the "
                    "input view; background = max_depth + margin"),
    "recon_normal": ("[N,S,S,3]", "-1..1", "normals of recon_depth, camera space"),
    "recon_im": ("[N,S,S,3]", "0..1", "the canonical image re-rendered from the view "
                 "(0 where the surface is not seen)"),
}
# The re-rendering needs the rasterizer's segment-min on int64 keys, which TFLite and
# ONNX do not run: only the SavedModel carries these.
RECON_OUTPUTS = ("recon_depth", "recon_normal", "recon_im")


@keras.saving.register_keras_serializable(package="tfsym3d")
class Unsup3D(keras.Model):
    """The model, trainable with `fit`.

    Which method a caller wants:
      - `model(images)` / `infer(images)`: the public OUTPUTS, one forward pass of the
        plain half. What evaluate, reconstruct and every export run.
      - `forward(images)`: the same pass as an internal dict (images in [-1, 1]), for
        extra pictures such as `symmetry_line`.
      - `decompose(images, training)`: both halves, the plain and the flipped
        reconstruction; what training (`train_step`, `compute_losses`) and the
        TensorBoard grids use. Twice the rendering of `infer`.
      - `factors(images)`: the networks' outputs only, no shading or rendering.

    Args:
      cfg: a tfsym3d.config.Config or a dict of its keys.

    Sub-networks keep the authors' names: netD (depth), netA (albedo), netL (light), netV
    (view), netC (confidence; None when use_conf_map is false).

    Data for fit/evaluate: batches of images [B, H, W, 3] in [0, 1], or
    (images, depth_gt [B, H, W] in camera units) to also get SIDE and MAD.
    """

    def __init__(self, cfg=None, **kwargs):
        super().__init__(**kwargs)
        if cfg is None:
            cfg = Config()
        elif isinstance(cfg, dict):
            cfg = Config.from_dict(cfg)
        self.cfg = cfg
        s = cfg.image_size
        self.renderer = Renderer(s, cfg.fov, cfg.min_depth, cfg.max_depth,
                                 cfg.rot_center_depth, xla=cfg.jit_renderer,
                                 fused=cfg.fuse_renderer,
                                 normalisation=cfg.normal_normalisation,
                                 depth_supersample=cfg.depth_supersample,
                                 pixel_offset=cfg.pixel_offset)
        # --- graph: the networks compute in cfg.precision's type (their output
        # layers and everything after them in float32: tfsym3d.precision) ---
        g = cfg.gn_group_size
        with precision.policy_scope(cfg.precision):
            self.netD = EDDeconv(1, cfg.nf_depth, cfg.zdim_depth, s, None, g, name="netD")
            self.netA = EDDeconv(3, cfg.nf_depth, cfg.zdim_depth, s, "tanh", g,
                                 film=cfg.film_albedo, name="netA")
            self.netL = Encoder(4, cfg.nf_light, s, name="netL")
            # K view hypotheses and (K > 1) their K scores (tfsym3d.views).
            k = cfg.view_hypotheses
            self.netV = Encoder(6 * k + (k if k > 1 else 0), cfg.nf_light, s, name="netV")
            self.netC = ConfNet(cfg.nf_conf, cfg.zdim_conf, s, g, name="netC") \
                if cfg.use_conf_map else None
        # ---
        for layer in self._flatten_layers():
            if isinstance(layer, GroupNorm):
                layer.fused = cfg.fuse_group_norm
        self.view_scale = views.view_scale(cfg.xyz_rotation_range, cfg.xy_translation_range,
                                           cfg.z_translation_range)
        self.perceptual = None
        self._fused_apply = None
        self.epoch = tf.Variable(0, trainable=False, dtype=tf.int64, name="epoch")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in LOSS_NAMES}
        self.depth_trackers = {name: keras.metrics.Mean(name=name) for name in ("side", "mad")}

    # ----------------------------------------------------------------------------------
    # The decomposition
    # ----------------------------------------------------------------------------------
    def factors(self, images, training=False):
        """The networks' outputs turned into the paper's factors (no flip, no rendering).

        Args:
          images: [B, H, W, 3] in [0, 1].

        Returns:
          A dict: input_im [B,H,W,3] in [-1,1]; canon_depth_raw [B,H,W]; canon_depth
          [B,H,W] (camera units, border columns fixed); depth_sm (scalar); canon_albedo
          [B,H,W,3] in [-1,1]; canon_light_a, canon_light_b [B,1]; canon_light_d [B,3]
          (unit); view [B,6] (radians, camera units) and the rest of `views_of`;
          conf_sigma_l1 [B,H,W,2] and
          conf_sigma_percl [B,H/4,W/4,2] (absent without netC).
        """
        cfg = self.cfg
        x = from_unit(tf.convert_to_tensor(images, tf.float32))
        out = {"input_im": x}

        # Canonical depth: mean-centred, tanh, rescaled, border columns fixed.
        raw = _f32(self.netD(x, training=training))[..., 0]
        out["canon_depth_raw"] = raw
        t = tf.tanh(raw - tf.reduce_mean(raw, axis=[1, 2], keepdims=True))
        depth = self._rescale(t, cfg.min_depth, cfg.max_depth)
        out["depth_sm"] = losses.depth_smoothness(depth, cfg.min_depth, cfg.max_depth,
                                                   cfg.depth_sm_order)
        w = depth.shape[2]
        border = tf.constant([1.0] * 2 + [0.0] * (w - 4) + [1.0] * 2)
        out["canon_depth"] = depth * (1.0 - border) + border * cfg.resolved_border_depth
        out["canon_albedo"] = _f32(self.netA(x, training=training))
        if self.netC is not None:
            out["conf_sigma_l1"], out["conf_sigma_percl"] = map(
                _f32, self.netC(x, training=training))

        light = _f32(self.netL(x, training=training))
        out["canon_light_a"] = self._rescale(light[:, :1], cfg.min_amb_light, cfg.max_amb_light)
        out["canon_light_b"] = self._rescale(light[:, 1:2], cfg.min_diff_light,
                                             cfg.max_diff_light)
        d = tf.concat([light[:, 2:], tf.ones_like(light[:, :1])], axis=1)
        # |d| >= 1 (its z is 1): rsqrt instead of a division, which TFLite's int8
        # kernels cannot do by a quantised norm.
        out["canon_light_d"] = d * tf.math.rsqrt(tf.reduce_sum(tf.square(d), 1, keepdims=True))

        out.update(self.views_of(x, training))
        return out

    def views_of(self, x, training=False):
        """netV's view of images x [B, H, W, 3] in [-1, 1]: {"view": [B, 6]} and, with
        view_hypotheses K > 1, "view_hyps" [B, K, 6], "view_scores" [B, K] (predicted
        reconstruction losses) and "view_choice" [B] (the hypothesis in "view": the best
        scored, or while training the schedule of `_p_best`)."""
        k = self.cfg.view_hypotheses
        v = _f32(self.netV(x, training=training))
        hyps = views.hypothesis_views(v[:, :6 * k], self.view_scale, k)
        if k == 1:
            return {"view": hyps[:, 0], "view_hyps": hyps}
        scores = v[:, 6 * k:]
        if training:
            choice = views.choose_hypothesis(tf.stop_gradient(scores), self._p_best())
        else:
            choice = tf.argmin(scores, axis=1, output_type=tf.int32)
        return {"view": views.pick(hyps, choice, k), "view_hyps": hyps,
                "view_scores": scores, "view_choice": choice}

    def _p_best(self):
        """The chance of rendering with the best-scored hypothesis while training: 0 for
        view_hypotheses_explore steps, then rising linearly to 1 over as many."""
        n = self.cfg.view_hypotheses_explore
        if self.optimizer is None or n == 0:
            return tf.constant(1.0)
        step = tf.cast(self.optimizer.iterations, tf.float32)
        return tf.clip_by_value((step - n) / n, 0.0, 1.0)

    def decompose(self, images, training=False):
        """The full forward pass, both halves.

        Args:
          images: [B, H, W, 3] in [0, 1].

        Returns:
          A dict; tensors with a leading 2B hold the plain half then the flipped half:
          input_im [B,H,W,3] in [-1,1]; canon_depth_raw [B,H,W]; canon_depth [2B,H,W];
          canon_albedo [2B,H,W,3] in [-1,1]; canon_light_a, canon_light_b [2B,1];
          canon_light_d [2B,3]; canon_normal [2B,H,W,3]; canon_diffuse_shading
          [2B,H,W,1]; canon_shading [2B,H,W,1]; canon_im [2B,H,W,3]; view [2B,6];
          recon_depth [2B,H,W]; recon_render [2B,H,W,3] (the re-rendering, unmasked);
          recon_seen [2B,H,W] (1 where its view sees the surface); recon_im [2B,H,W,3]
          (recon_render masked by recon_mask, as the losses see it); recon_mask [2B,H,W]
          (plain and flipped both seen); conf_sigma_l1 [B,H,W,2] and conf_sigma_percl
          [B,H/4,W/4,2] (absent without netC); depth_sm (scalar). recon_normal: see
          public_outputs. While training with the view's own signals also
          view_hyps_of_flip [B,K,6] (lam_view_flip) and view_cycle_target [n,6],
          view_cycle_pred [n,K,6] (lam_view_cycle; see view_cycle).
        """
        cfg = self.cfg
        out = self.factors(images, training)
        b = tf.shape(out["input_im"])[0]
        depth, albedo = out["canon_depth"], out["canon_albedo"]
        out["canon_depth"] = tf.concat([depth, _flip(depth) if cfg.flip_depth else depth], 0)
        out["canon_albedo"] = tf.concat(
            [albedo, _flip(albedo) if cfg.flip_albedo else albedo], 0)
        for key in ("canon_light_a", "canon_light_b", "canon_light_d", "view"):
            out[key] = tf.tile(out[key], [2, 1])
        if training and cfg.lam_view_flip > 0:
            # The mirrored input's hypotheses; the input's bin k mirrors into bin K-1-k.
            out["view_hyps_of_flip"] = self.views_of(_flip(out["input_im"]),
                                                     training)["view_hyps"]

        out.update(self.shade(out["canon_depth"], out["canon_albedo"], out["canon_light_a"],
                              out["canon_light_b"], out["canon_light_d"]))
        out.update(self._render(out["canon_depth"], out["canon_im"], out["view"]))
        seen = out["recon_seen"]
        both = tf.stop_gradient(seen[:b] * seen[b:])
        out["recon_mask"] = tf.concat([both, both], 0)
        out["recon_im"] = out["recon_render"] * out["recon_mask"][..., None]
        if training and cfg.lam_view_cycle > 0:
            out.update(self.view_cycle(out["input_im"], depth, out["canon_im"][:b]))
        return out

    def view_cycle(self, input_im, canon_depth, canon_im):
        """Render and predict back: the first view_cycle_fraction of the batch's
        canonical surfaces (held constant) rendered from views v* drawn over
        view_cycle_range, on a background like their inputs' (tfsym3d.views), and netV's
        hypotheses for those renderings.

        Args: input_im [B,H,W,3] in [-1,1]; canon_depth [B,H,W]; canon_im [B,H,W,3].

        Returns: {"view_cycle_target": v* [n,6], "view_cycle_pred": [n,K,6]}.
        """
        cfg = self.cfg
        b = tf.shape(input_im)[0]
        n = tf.maximum(1, tf.cast(tf.math.ceil(cfg.view_cycle_fraction * tf.cast(b, tf.float32)),
                                  tf.int32))
        depth = tf.stop_gradient(canon_depth[:n])
        canon_im = tf.stop_gradient(tf.clip_by_value(canon_im[:n], -1.0, 1.0))
        ranges = cfg.view_cycle_range or [cfg.xyz_rotation_range] * 3
        target = views.sample_views(n, ranges, cfg.xy_translation_range,
                                    cfg.z_translation_range)
        r = self._render(depth, canon_im, target)
        im = views.composite(r["recon_render"], r["recon_seen"],
                             views.background_like(input_im[:n]))
        return {"view_cycle_target": target,
                "view_cycle_pred": self.views_of(im, training=True)["view_hyps"]}

    def shade(self, canon_depth, canon_albedo, light_a, light_b, light_d):
        """Lambertian shading of the canonical albedo on the depth's normals.

        Args: canon_depth [B,H,W]; canon_albedo [B,H,W,3] in [-1,1]; light_a, light_b
          [B,1]; light_d [B,3].

        Returns: canon_normal [B,H,W,3]; canon_diffuse_shading, canon_shading
          [B,H,W,1]; canon_im [B,H,W,3] in [-1,1] (albedo times shading).
        """
        normal = self.renderer.get_normal_from_depth(canon_depth)
        diffuse, shading = lambertian(normal, light_d, light_a[:, 0], light_b[:, 0])
        diffuse, shading = diffuse[..., None], shading[..., None]
        if not self.cfg.use_lighting:
            shading = tf.ones_like(shading)
        canon_im = from_unit(to_unit(canon_albedo) * shading)
        return {"canon_normal": normal, "canon_diffuse_shading": diffuse,
                "canon_shading": shading, "canon_im": canon_im}

    def _render(self, canon_depth, canon_im, view):
        """Re-rendering from the view (the rasterizer's visibility pass runs under XLA
        when cfg.jit_renderer)."""
        r = self.renderer
        recon_depth = r.warp_canon_depth(canon_depth, view)
        grid = r.get_inv_warped_2d_grid(recon_depth, view)
        return {
            "recon_depth": recon_depth,
            "recon_render": r.grid_sample(canon_im, grid),
            "recon_seen": r.seen(recon_depth),
        }

    def symmetry_line(self, out):
        """The canonical symmetry axis drawn on the input, for visualisation.

        The two middle columns of the canonical frame are warped to the input view like
        the canonical image is, and blended in green over the input.

        Args:
          out: a decomposition (`decompose`) or an inference forward pass (`forward`).

        Returns:
          [B, H, W, 3] in [0, 1], the line where the input view sees the surface.
        """
        x = out["input_im"]
        b = tf.shape(x)[0]
        w = self.cfg.image_size
        axis = tf.constant([0.0] * (w // 2 - 1) + [1.0] * 2 + [0.0] * (w // 2 - 1))
        axis = tf.broadcast_to(axis[None, None, :, None], tf.shape(x[..., :1]))
        recon_depth, view = out["recon_depth"][:b], out["view"][:b]
        grid = self.renderer.get_inv_warped_2d_grid(recon_depth, view)
        line = self.renderer.grid_sample(axis, grid) * out["recon_seen"][:b, ..., None]
        green = tf.constant([0.0, 1.0, 0.0])
        return tf.clip_by_value(0.5 * line * green + (1.0 - 0.5 * line) * to_unit(x), 0.0,
                                1.0)

    def call(self, images, training=False):
        """The public OUTPUTS of images [B, H, W, 3] in [0, 1]: `infer`, one half."""
        return self.infer(images)

    def forward(self, images, with_recon=True):
        """The inference forward pass, the plain half only (no flipped rendering): the
        internal dict of `factors` plus `shade` and, with with_recon, `_render`
        (recon_depth, recon_render, recon_seen), for callers that need more than the
        public outputs (reconstruct's symmetry line)."""
        out = self.factors(images, training=False)
        out.update(self.shade(out["canon_depth"], out["canon_albedo"], out["canon_light_a"],
                              out["canon_light_b"], out["canon_light_d"]))
        if with_recon:
            out.update(self._render(out["canon_depth"], out["canon_im"], out["view"]))
        return out

    def infer(self, images, with_recon=True):
        """The public OUTPUTS, one half (what `model(images)`, evaluate, reconstruct and
        the exports run): images [B, H, W, 3] in [0, 1]; with_recon False leaves out
        RECON_OUTPUTS (and the rasterizer)."""
        return self.public_outputs(self.forward(images, with_recon))

    def public_outputs(self, out):
        """The public OUTPUTS of an internal dict (decompose's, or factors + shade [+
        _render]): the first B images, images mapped to [0, 1], ones for the sigmas
        without netC. The re-rendering keys appear when `out` has them."""
        b = tf.shape(out["input_im"])[0]
        pub = {k: out[k][:b] for k in OUTPUTS if k in out and k != "recon_im"}
        pub["canon_albedo"] = to_unit(pub["canon_albedo"])
        pub["canon_im"] = tf.clip_by_value(to_unit(pub["canon_im"]), 0.0, 1.0)
        if "recon_depth" in out:
            # Only outputs need them; training steps do not pay for them.
            pub["recon_normal"] = self.renderer.get_normal_from_depth(out["recon_depth"][:b])
        if "recon_render" in out:
            pub["recon_im"] = tf.clip_by_value(to_unit(out["recon_render"][:b]), 0.0, 1.0) \
                * out["recon_seen"][:b, ..., None]
        if self.netC is None:
            s = self.cfg.image_size
            ones = tf.ones_like(out["input_im"][..., :2])
            pub["conf_sigma_l1"] = ones
            pub["conf_sigma_percl"] = tf.image.resize(ones, [s // 4, s // 4])
        return {k: pub[k] for k in OUTPUTS if k in pub}

    # ----------------------------------------------------------------------------------
    # Losses and the Keras training protocol
    # ----------------------------------------------------------------------------------
    def compute_losses(self, out, replicas=1):
        """The loss terms of a decomposition: a dict with LOSS_NAMES.

        With replicas > 1 (inside a replica context of a distribution strategy) every
        term is this replica's share of the global-batch value: masked sums are divided
        by the mask count of the global batch and plain means by the replica count, so
        the shares add up to the value on the whole batch.
        """
        cfg = self.cfg
        x = out["input_im"]
        b = tf.shape(x)[0]
        mask = out["recon_mask"]

        def norm(m, channels, pooled_to=None):
            """The global count for masked means (None: the local one). The mask is
            pooled to the feature size only when a global count is needed."""
            if replicas == 1:
                return None
            if pooled_to is not None:
                m = losses.pool_mask(m, pooled_to)
            return _global_count(m, channels)

        sig = {key: (out[key][..., :1], out[key][..., 1:]) if key in out else (None, None)
               for key in ("conf_sigma_l1", "conf_sigma_percl")}
        recon, recon_flip = out["recon_im"][:b], out["recon_im"][b:]
        m, m_flip = mask[:b], mask[b:]
        terms = {
            "l1": losses.photometric_loss(recon, x, m, sig["conf_sigma_l1"][0], norm(m, 3)),
            "l1_flip": losses.photometric_loss(recon_flip, x, m_flip,
                                               sig["conf_sigma_l1"][1], norm(m_flip, 3)),
            "depth_sm": out["depth_sm"] / replicas,
        }
        if cfg.lam_perc > 0:
            # The input's features serve both halves: VGG runs on 3B images, not 4B.
            perc = self._perceptual()
            s = cfg.image_size // 4
            channels = perc.features.output.shape[-1]
            f_in = perc.feature_maps(x)
            f_rec, f_rec_flip = tf.split(perc.feature_maps(out["recon_im"]), 2, axis=0)
            terms["perc"] = perc.from_features(
                f_rec, f_in, m, sig["conf_sigma_percl"][0], norm(m, channels, s))
            terms["perc_flip"] = perc.from_features(
                f_rec_flip, f_in, m_flip, sig["conf_sigma_percl"][1], norm(m_flip, channels, s))
        else:
            terms["perc"] = terms["perc_flip"] = tf.constant(0.0)
        lam_flip = tf.where(self.epoch < cfg.lam_flip_start_epoch, 1.0, cfg.lam_flip)
        terms.update(self.view_terms(out, lam_flip, replicas))
        lam_prior = 0.0
        terms["depth_prior"] = tf.constant(0.0)
        if cfg.depth_prior_steps and self.optimizer is not None:
            depth = out["canon_depth"][:b]
            terms["depth_prior"] = losses.ellipsoid_prior(
                depth, cfg.min_depth, cfg.max_depth) / replicas
            lam_prior = tf.where(self.optimizer.iterations < cfg.depth_prior_steps,
                                 cfg.lam_depth_prior, 0.0)
        lam_cycle = cfg.lam_view_cycle
        if cfg.view_cycle_start and self.optimizer is not None:
            lam_cycle = tf.where(self.optimizer.iterations < cfg.view_cycle_start, 0.0,
                                 lam_cycle)
        terms["loss"] = (terms["l1"] + lam_flip * terms["l1_flip"]
                         + cfg.lam_perc * (terms["perc"] + lam_flip * terms["perc_flip"])
                         + cfg.lam_depth_sm * terms["depth_sm"]
                         + cfg.lam_view_flip * terms["view_flip"]
                         + lam_cycle * terms["view_cycle"] + terms["view_score"]
                         + lam_prior * terms["depth_prior"])
        return terms

    def view_terms(self, out, lam_flip, replicas=1):
        """The view's own loss terms (tfsym3d.views), each 0 where its option is off or
        its inputs are absent (evaluation):

        - view_flip: the mirrored input's hypotheses against the mirror of the input's
          (bin k against bin K-1-k; the input's side constant), in units of each
          component's range;
        - view_cycle: the hypothesis of v*'s yaw bin against v*, likewise;
        - view_score: each image's predicted loss of the hypothesis it was rendered with
          against its reconstruction L1 (plain + lam_flip * flipped, held constant).
        """
        k = self.cfg.view_hypotheses
        zero = tf.constant(0.0)
        terms = {"view_flip": zero, "view_cycle": zero, "view_score": zero}
        if "view_hyps_of_flip" in out:
            target = views.mirror_view(tf.reverse(out["view_hyps"], axis=[1]))
            terms["view_flip"] = views.normalised_l1(
                out["view_hyps_of_flip"], tf.stop_gradient(target), self.view_scale)
        if "view_cycle_pred" in out:
            target = out["view_cycle_target"]
            k_bin = views.yaw_bin(target[:, 1], self.view_scale[1], k)
            pred = views.pick(out["view_cycle_pred"], k_bin, k)
            terms["view_cycle"] = views.normalised_l1(pred, target, self.view_scale)
        if "view_scores" in out:
            x = out["input_im"]
            b = tf.shape(x)[0]
            err = [losses.per_image_l1(out["recon_im"][h * b:(h + 1) * b], x,
                                       out["recon_mask"][h * b:(h + 1) * b])
                   for h in (0, 1)]
            target = tf.stop_gradient(err[0] + lam_flip * err[1])
            score = views.pick(out["view_scores"][..., None], out["view_choice"], k)[:, 0]
            terms["view_score"] = tf.reduce_mean(tf.abs(score - target))
        return {name: t / replicas for name, t in terms.items()}

    def _perceptual(self):
        if self.perceptual is None:
            self.perceptual = losses.PerceptualLoss(
                self.cfg.image_size, self.cfg.vgg16_weights, self.cfg.vgg16_preprocess,
                precision.perceptual_dtype(self.cfg.precision, self.cfg.perc_dtype))
        return self.perceptual

    @property
    def metrics(self):
        return list(self.trackers.values()) + list(self.depth_trackers.values())

    def train_step(self, data):
        images, depth_gt = _unpack(data)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        scaled = isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)
        with tf.GradientTape() as tape:
            out = self.decompose(images, training=True)
            terms = self.compute_losses(out, replicas)
            # mixed_float16: the gradients of the loss times the dynamic scale, which
            # the optimizer divides out (and skips the step when they overflow).
            loss = self.optimizer.scale_loss(terms["loss"]) if scaled else terms["loss"]
        variables = self.trainable_variables
        grads = tape.gradient(loss, variables)
        # Weights no loss term uses (the perceptual head of netC when lam_perc is 0)
        # have no gradient and are left alone, as torch leaves a parameter whose .grad
        # is None.
        pairs = [(g, v) for g, v in zip(grads, variables, strict=True) if g is not None]
        grads, variables = [g for g, _ in pairs], [v for _, v in pairs]
        if replicas == 1 and self.cfg.fuse_optimizer and not scaled and not in_xla_context():
            # The variables are closed over (Keras variables cannot be tf.function
            # arguments); the set that gets gradients is fixed for a model.
            key = tuple(id(v) for v in variables)
            if self._fused_apply is None or self._fused_apply[0] != key:
                def apply(grads_):
                    self._apply_gradients(grads_, variables, 1)

                self._fused_apply = (key, tf.function(apply, jit_compile=True))
            self._fused_apply[1](grads)
        else:
            self._apply_gradients(grads, variables, replicas)
        return self._update_metrics(terms, out, depth_gt, replicas)

    def _apply_gradients(self, grads, variables, replicas):
        if self.cfg.weight_decay:
            # The authors' torch Adam(weight_decay): L2 added to the gradients. The
            # optimiser sums gradients over replicas, so each adds its share (times the
            # loss scale, which it divides out, under mixed_float16).
            decay = self.cfg.weight_decay / replicas
            if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
                decay = decay * self.optimizer.dynamic_scale
            grads = [g + decay * v for g, v in zip(grads, variables, strict=True)]
        self.optimizer.apply(grads, variables)

    def test_step(self, data):
        images, depth_gt = _unpack(data)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        out = self.decompose(images, training=False)
        return self._update_metrics(self.compute_losses(out, replicas), out, depth_gt,
                                    replicas)

    def _update_metrics(self, terms, out, depth_gt, replicas):
        # Metrics average over replicas; each term is a share of the global value.
        for name, tracker in self.trackers.items():
            tracker.update_state(terms[name] * float(replicas))
        results = {name: t.result() for name, t in self.trackers.items()}
        if depth_gt is not None:
            b = tf.shape(depth_gt)[0]
            errors = metrics.depth_errors(out["recon_depth"][:b], depth_gt, self.renderer)
            self.depth_trackers["side"].update_state(errors["side"] * 100.0)
            self.depth_trackers["mad"].update_state(errors["mad"])
            results.update({name: t.result() for name, t in self.depth_trackers.items()})
        if isinstance(self.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
            # Keras reduces the logs of a multi-worker step with strategy.reduce("MEAN",
            # v, axis=0), which needs an axis: [1] comes back as the scalar mean.
            results = {name: tf.reshape(v, [1]) for name, v in results.items()}
        return results

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3's fit first averages a distributed batch with strategy.reduce, which
        # MultiWorkerMirroredStrategy cannot do eagerly (keras-team/keras#20585: "Attempt
        # to convert a value (PerReplica...)"). Training builds the model, its trackers
        # and the optimizer before fit, so there is nothing left to build there.
        if isinstance(self.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def get_config(self):
        return {"cfg": self.cfg.to_dict(), "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @staticmethod
    def _rescale(t, lo, hi):
        """[-1, 1] -> [lo, hi]."""
        return (1.0 + t) / 2.0 * hi + (1.0 - t) / 2.0 * lo


def _flip(x):
    """Horizontal mirror of [B, H, W] or [B, H, W, C]."""
    return tf.reverse(x, axis=[2])


def _unpack(data):
    if isinstance(data, tuple | list):
        if len(data) == 2:
            return data[0], data[1]
        return data[0], None
    if isinstance(data, dict):
        return data["image"], data.get("depth")
    return data, None


def _global_count(mask, channels):
    """Mask count summed over replicas (inside a replica context)."""
    local = losses.mask_count(mask, channels)
    ctx = tf.distribute.get_replica_context()
    if ctx is None:
        return local
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, local)


def _f32(t):
    """A network's output as float32 (a no-op: their output layers compute in float32
    under every precision, tfsym3d.layers.networks.OUT_DTYPE)."""
    return tf.cast(t, tf.float32)


def make_optimizer(cfg):
    """The training optimizer of a config: Adam (the authors' betas and epsilon), wrapped
    in Keras' LossScaleOptimizer when cfg.precision resolves to mixed_float16 (float16
    gradients underflow without loss scaling; bfloat16 has float32's range)."""
    optimizer = keras.optimizers.Adam(cfg.lr, beta_1=cfg.beta1, beta_2=cfg.beta2,
                                      epsilon=1e-8)
    if precision.resolve(cfg.precision) == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def build(model):
    """Creates the model's weights by running it once on zeros."""
    s = model.cfg.image_size
    model(tf.zeros([1, s, s, 3]))
    return model
