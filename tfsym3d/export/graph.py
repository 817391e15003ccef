"""The inference graph that every export format carries.

    graph = InferenceModule(model, with_recon=True)
    graph.predict(images)        # images [N, S, S, 3] float32 in [0, 1] -> dict
    graph.predict_bytes(data)    # data [N] tf.string, encoded JPEG/PNG/BMP/GIF -> dict

The outputs are the model's public contract, tfsym3d.model.OUTPUTS (shapes, ranges and
meaning; the model cards repeat them); without with_recon the RECON_OUTPUTS are left out
(TFLite and ONNX cannot run the re-rendering's z-buffer).
"""

import tensorflow as tf


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
      with_recon: also output the RECON_OUTPUTS (recon_depth, recon_normal, recon_im).
    """

    def __init__(self, model, with_recon=False):
        self.model = model
        self.with_recon = with_recon
        self.image_size = model.cfg.image_size

    def predict(self, images):
        """images [N, S, S, 3] float32 in [0, 1] -> {output name: tensor}."""
        out = self.model.infer(images, with_recon=self.with_recon)
        return {k: tf.identity(v, name=k) for k, v in out.items()}

    def predict_bytes(self, data):
        """Each encoded image decoded, cut to the model's crop (its config's `crop`, as
        training cut its images) and resized as every reader does
        (tfsym3d.io.images.decode_and_prepare), then predict."""
        from tfsym3d.io.images import decode_and_prepare

        s, crop = self.image_size, self.model.cfg.crop
        images = tf.map_fn(lambda item: decode_and_prepare(item, s, crop), data,
                           fn_output_signature=tf.TensorSpec([s, s, 3], tf.float32))
        return self.predict(images)
