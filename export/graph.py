"""The inference graph that every export format carries.

    graph = InferenceModule(model, with_recon=True)
    graph.predict(images)        # images [N, S, S, 3] float32 in [0, 1] -> dict
    graph.predict_bytes(data)    # data [N] tf.string, encoded JPEG/PNG/BMP/GIF -> dict

Outputs (OUTPUTS lists shapes, ranges and meaning; the model card repeats them):
canon_depth, canon_albedo (0..1), canon_normal, canon_shading, canon_light_a,
canon_light_b, canon_light_d, view, conf_sigma_l1, conf_sigma_percl, and with_recon also
recon_depth and recon_im (the re-rendering needs the rasterizer's segment-min on int64
keys, which TFLite and ONNX do not run: only the SavedModel has them).
"""

import tensorflow as tf

# name -> (shape with S = image size, range, meaning)
OUTPUTS = {
    "canon_depth": ("[N,S,S]", "min_depth..max_depth", "canonical depth, camera units "
                    "(z forward); the 2 border columns hold border_depth"),
    "canon_albedo": ("[N,S,S,3]", "0..1", "canonical albedo, RGB"),
    "canon_normal": ("[N,S,S,3]", "-1..1", "unit normals of the canonical depth, camera "
                     "space (x right, y down, z forward)"),
    "canon_shading": ("[N,S,S,1]", ">=0", "ambient + diffuse * max(0, n . l)"),
    "canon_light_a": ("[N,1]", "min_amb_light..max_amb_light", "ambient light"),
    "canon_light_b": ("[N,1]", "min_diff_light..max_diff_light", "diffuse light"),
    "canon_light_d": ("[N,3]", "unit vector", "light direction (x, y, 1) normalised"),
    "view": ("[N,6]", "radians / camera units", "rotation x, y, z (R = Rz Ry Rx about "
             "(0, 0, rot_center_depth)) then translation x, y, z"),
    "conf_sigma_l1": ("[N,S,S,2]", ">0", "L1 confidence sigmas: channel 0 plain, 1 flipped "
                      "reconstruction (large = asymmetric / uncertain)"),
    "conf_sigma_percl": ("[N,S/4,S/4,2]", ">0", "perceptual confidence sigmas"),
    "recon_depth": ("[N,S,S]", "min_depth-margin..max_depth+margin", "depth seen from the "
                    "input view; background = max_depth + margin"),
    "recon_im": ("[N,S,S,3]", "0..1", "re-rendered input (0 where nothing is seen)"),
}
RECON_OUTPUTS = ("recon_depth", "recon_im")


def use_export_ops(model):
    """Switches a model's layers to their export formulations (same weights, same values
    to float precision): GroupNorm statistics in 4-D ops, which XNNPACK delegates
    (tfsym3d.layers.blocks.GroupNorm), and the depth and albedo networks' nearest
    upsampling + 3x3 convolution as one sub-pixel convolution with about half the
    multiply-adds (tfsym3d.layers.blocks.upsample_conv3x3). Returns the model."""
    from tfsym3d.layers.blocks import GroupNorm
    from tfsym3d.layers.networks import EDDeconv

    for layer in model._flatten_layers():
        if isinstance(layer, GroupNorm):
            layer.stats_4d = True
        if isinstance(layer, EDDeconv):
            layer.subpixel_head = True
    return model


class InferenceModule:
    """The export graph of an Unsup3D (built with fuse_renderer=False); its methods are
    plain Python, traced by each exporter with its own input signature.

    Args:
      model: the Keras model.
      with_recon: also output recon_depth and recon_im.
    """

    def __init__(self, model, with_recon=False):
        self.model = model
        self.with_recon = with_recon
        self.image_size = model.cfg.image_size

    def predict(self, images):
        """images [N, S, S, 3] float32 in [0, 1] -> {output name: tensor}."""
        m = self.model
        f = m.factors(images, training=False)
        sh = m.shade(f["canon_depth"], f["canon_albedo"], f["canon_light_a"],
                     f["canon_light_b"], f["canon_light_d"])
        s = self.image_size
        ones = tf.ones_like(images[..., :2])
        out = {
            "canon_depth": f["canon_depth"],
            "canon_albedo": f["canon_albedo"] / 2.0 + 0.5,
            "canon_normal": sh["canon_normal"],
            "canon_shading": sh["canon_shading"],
            "canon_light_a": f["canon_light_a"],
            "canon_light_b": f["canon_light_b"],
            "canon_light_d": f["canon_light_d"],
            "view": f["view"],
            "conf_sigma_l1": f.get("conf_sigma_l1", ones),
            "conf_sigma_percl": f.get("conf_sigma_percl",
                                      tf.image.resize(ones, [s // 4, s // 4])),
        }
        if self.with_recon:
            r = m._render(f["canon_depth"], sh["canon_im"], f["view"])
            out["recon_depth"] = r["recon_depth"]
            out["recon_im"] = (r["recon_im"] / 2.0 + 0.5) * r["recon_valid"][..., None]
        return {k: tf.identity(v, name=k) for k, v in out.items()}

    def predict_bytes(self, data):
        """Decodes each encoded image, takes its centre square and resizes it (bilinear)
        to the model's input."""
        s = self.image_size

        def decode(item):
            im = tf.io.decode_image(item, channels=3, expand_animations=False)
            im = tf.image.convert_image_dtype(im, tf.float32)
            h, w = tf.shape(im)[0], tf.shape(im)[1]
            side = tf.minimum(h, w)
            im = tf.image.crop_to_bounding_box(im, (h - side) // 2, (w - side) // 2, side,
                                               side)
            return tf.image.resize(im, [s, s], method="bilinear", antialias=True)

        images = tf.map_fn(decode, data, fn_output_signature=tf.TensorSpec([s, s, 3],
                                                                            tf.float32))
        return self.predict(images)
