"""The authors' five networks: Encoder (light, view), EDDeconv (depth, albedo), ConfNet.

All take images in [-1, 1], NHWC [B, S, S, 3], S = 64 (the paper) or 128 (one more
stage each way). Convolutions have no biases. Layer names are stable, and each network's
`torch_sections` lists its layer stacks under the names of the authors' nn.Sequential
attributes, layer for layer as theirs (ZeroPadding2D and Cropping2D aside), so their
PyTorch checkpoints map one-to-one (see tfsym3d/official.py).
"""

import keras

from tfsym3d.layers.blocks import (
    GroupNorm,
    activation,
    conv,
    deconv,
    group_norm,
    num_stages,
    run,
    upsample_conv3x3,
)

# Each network's output convolution and activation compute in float32 whatever the
# precision (tfsym3d.precision): their input is cast up, so the depth, albedo, light,
# view and sigmas leave the networks as float32 at float32 resolution (a bfloat16 depth
# would be quantised to ~4e-4 camera units, coarser than the normals need).
OUT_DTYPE = "float32"


def _weighted(stack):
    """The layers of a stack that hold weights, in order."""
    kinds = (keras.layers.Conv2D, keras.layers.Conv2DTranspose,
             keras.layers.GroupNormalization)
    return [layer for layer in stack if isinstance(layer, kinds)]


def gn_encoder(nf, zdim, image_size, gn_group_size=None):
    """The encoder EDDeconv and ConfNet share: 4x4 stride-2 convolutions with GroupNorm
    (none on the last) and LeakyReLU 0.2 down to 4x4, a 4x4 valid convolution to zdim,
    ReLU. Returns the list of layers."""
    stack = []
    n_down = num_stages(image_size, 4)
    for i in range(n_down):
        ch = nf * min(2 ** i, 8)
        stack += conv(ch, 4, 2, 1, name=f"enc_conv{i + 1}")
        if i < n_down - 1:
            stack.append(group_norm(ch, nf, f"enc_gn{i + 1}", gn_group_size))
        stack += activation("lrelu", f"enc_lrelu{i + 1}")
    return stack + conv(zdim, 4, name="enc_conv_z") + activation("relu", "enc_relu_z")


@keras.saving.register_keras_serializable(package="tfsym3d")
class Encoder(keras.Model):
    """Image -> vector: the light (cout=4) and view (cout=6) networks.

    Four (five at 128 px) 4x4 stride-2 convolutions with ReLU down to 4x4, a 4x4 valid
    convolution to 1x1, ReLU, a 1x1 output convolution, then `final_activation`.

    Args:
      cout: output size.
      nf: base width (32 in the paper).
      image_size: 64 or 128.
      final_activation: 'tanh' (default) or None.

    Call: images [B, S, S, 3] -> [B, cout].

    Example:
      >>> netL = Encoder(4)
      >>> netL(tf.zeros([2, 64, 64, 3])).shape
      TensorShape([2, 4])
    """

    def __init__(self, cout, nf=32, image_size=64, final_activation="tanh", **kwargs):
        super().__init__(**kwargs)
        self.cout, self.nf, self.image_size = cout, nf, image_size
        self.final_activation = final_activation
        stack = []
        # --- graph ---
        for i in range(num_stages(image_size, 4)):
            stack += conv(nf * min(2 ** i, 8), 4, 2, 1, name=f"conv{i + 1}")
            stack += activation("relu", f"relu{i + 1}")
        n = len(_weighted(stack)) + 1
        stack += conv(nf * 8, 4, name=f"conv{n}") + activation("relu", f"relu{n}")
        stack += conv(cout, 1, name="conv_out", dtype=OUT_DTYPE)
        stack += activation(final_activation, "out_act", OUT_DTYPE)
        # ---
        self.stack = stack
        self.torch_sections = [("network", stack)]

    def call(self, images, training=None):
        out = run(self.stack, images, training)
        return keras.ops.reshape(out, (-1, self.cout))

    def get_config(self):
        return {"cout": self.cout, "nf": self.nf, "image_size": self.image_size,
                "final_activation": self.final_activation, "name": self.name}


@keras.saving.register_keras_serializable(package="tfsym3d")
class EDDeconv(keras.Model):
    """Image -> map: the depth (cout=1, no activation) and albedo (cout=3, tanh) networks.

    Encoder: 4x4 stride-2 convolutions with GroupNorm (nf/16 channels per group, none on
    the last) and LeakyReLU 0.2 down to 4x4, a 4x4 valid convolution to a zdim code, ReLU.
    Decoder: 4x4 transposed convolution to 4x4 and a 3x3 convolution (ReLU), then per
    factor-2 stage a 4x4 stride-2 transposed convolution and a 3x3 convolution, each with
    GroupNorm and ReLU, up to S/2; nearest upsampling to S; 3x3 and 5x5 convolutions with
    GroupNorm and ReLU; a 5x5 output convolution.

    Args:
      cout: output channels.
      nf: base width (64 in the paper).
      zdim: code size (256 in the paper).
      image_size: 64 or 128.
      final_activation: 'tanh' or None.
      gn_group_size: channels per GroupNorm group; None: the authors' nf / 16.
      film: after each decoder GroupNorm, scale and shift its channels per image by
        a linear function of the code z (FiLM: x * (1 + gamma(z)) + beta(z), the dense
        layers `{gn name}_film` zero-initialised, so training starts from the authors'
        network). Not the authors': it lets the decoder multiply a shape by a colour,
        which their plain decoder learns very slowly (issue 43: per-object colours).

    Call: images [B, S, S, 3] -> [B, S, S, cout].
    """

    def __init__(self, cout, nf=64, zdim=256, image_size=64, final_activation="tanh",
                 gn_group_size=None, film=False, **kwargs):
        super().__init__(**kwargs)
        self.cout, self.nf, self.zdim, self.image_size = cout, nf, zdim, image_size
        self.final_activation, self.gn_group_size = final_activation, gn_group_size
        self.film = film
        g = gn_group_size
        # --- graph: encoder ---
        stack = gn_encoder(nf, zdim, image_size, g)
        # --- graph: decoder ---
        stack += deconv(nf * 8, 4, name="dec_deconv0") + activation("relu", "dec_relu0a")
        stack += conv(nf * 8, 3, 1, 1, name="dec_conv0") + activation("relu", "dec_relu0b")
        n_up = num_stages(image_size, 8)
        for i in range(n_up):
            ch = nf * 2 ** (n_up - 1 - i)
            stack += deconv(ch, 4, 2, 1, name=f"dec_deconv{i + 1}")
            stack.append(group_norm(ch, nf, f"dec_gn{i + 1}a", g))
            stack += activation("relu", f"dec_relu{i + 1}a")
            stack += conv(ch, 3, 1, 1, name=f"dec_conv{i + 1}")
            stack.append(group_norm(ch, nf, f"dec_gn{i + 1}b", g))
            stack += activation("relu", f"dec_relu{i + 1}b")
        stack.append(keras.layers.UpSampling2D(2, interpolation="nearest", name="upsample"))
        stack += conv(nf, 3, 1, 1, name="head_conv1") + [group_norm(nf, nf, "head_gn1", g)]
        stack += activation("relu", "head_relu1")
        stack += conv(nf, 5, 1, 2, name="head_conv2") + [group_norm(nf, nf, "head_gn2", g)]
        stack += activation("relu", "head_relu2")
        stack += conv(cout, 5, 1, 2, name="conv_out", dtype=OUT_DTYPE)
        stack += activation(final_activation, "out_act", OUT_DTYPE)
        # --- graph: FiLM of the decoder's GroupNorms from the code (film=True) ---
        decoder = stack[[layer.name for layer in stack].index("enc_relu_z") + 1:]
        self.films = {layer.name: keras.layers.Dense(
            2 * layer.channels, kernel_initializer="zeros", name=f"{layer.name}_film")
            for layer in decoder if film and isinstance(layer, GroupNorm)}
        # ---
        self.stack = stack
        self.torch_sections = [("network", stack)]

    def _run(self, stack, x, training, code):
        """Applies `stack` (a slice of self.stack), FiLM after the decoder's GroupNorms
        when self.film. code: the [B, zdim] code once the slice has passed the
        bottleneck (None before). Returns (x, code)."""
        for layer in stack:
            x = run([layer], x, training)
            if layer.name == "enc_relu_z":
                code = keras.ops.reshape(x, (-1, self.zdim))
            elif layer.name in self.films:
                gamma, beta = keras.ops.split(self.films[layer.name](code)[:, None, None], 2,
                                              axis=-1)
                x = x * (1.0 + gamma) + beta
        return x, code

    # Export formulation (tfsym3d.export.graph.use_export_ops): the nearest upsampling and the
    # 3x3 convolution after it as one sub-pixel convolution (blocks.upsample_conv3x3).
    subpixel_head = False

    def call(self, images, training=None):
        if not self.subpixel_head:
            return self._run(self.stack, images, training, None)[0]
        up = next(i for i, layer in enumerate(self.stack)
                  if isinstance(layer, keras.layers.UpSampling2D))
        x, code = self._run(self.stack[:up], images, training, None)
        x = upsample_conv3x3(x, self.stack[up + 1].kernel)
        return self._run(self.stack[up + 2:], x, training, code)[0]

    def get_config(self):
        return {"cout": self.cout, "nf": self.nf, "zdim": self.zdim,
                "image_size": self.image_size, "final_activation": self.final_activation,
                "gn_group_size": self.gn_group_size, "film": self.film, "name": self.name}


@keras.saving.register_keras_serializable(package="tfsym3d")
class ConfNet(keras.Model):
    """Image -> confidence: per-pixel sigmas for the perceptual and the L1 losses.

    The EDDeconv encoder down to a zdim code, then transposed convolutions (GroupNorm,
    ReLU) up to S/4, where a 3x3 convolution + softplus gives the perceptual sigmas; two
    more transposed convolutions up to S and a 5x5 convolution + softplus give the L1
    sigmas. Channel 0 is for the plain reconstruction, channel 1 for the flipped one.

    Args:
      nf: base width (64 in the paper).
      zdim: code size (128 in the paper).
      image_size: 64 or 128.
      gn_group_size: channels per GroupNorm group; None: the authors' nf / 16.

    Call: images [B, S, S, 3] -> (conf_sigma_l1 [B, S, S, 2],
                                  conf_sigma_percl [B, S/4, S/4, 2]), the authors' order.
    """

    def __init__(self, nf=64, zdim=128, image_size=64, gn_group_size=None, **kwargs):
        super().__init__(**kwargs)
        self.nf, self.zdim, self.image_size = nf, zdim, image_size
        self.gn_group_size = g = gn_group_size
        # --- graph: shared trunk ---
        trunk = gn_encoder(nf, zdim, image_size, g)
        trunk += deconv(nf * 8, 4, name="dec_deconv0") + activation("relu", "dec_relu0")
        n_up = num_stages(image_size, 16)
        for i in range(n_up):
            ch = nf * 2 ** (n_up - i)
            trunk += deconv(ch, 4, 2, 1, name=f"dec_deconv{i + 1}")
            trunk.append(group_norm(ch, nf, f"dec_gn{i + 1}", g))
            trunk += activation("relu", f"dec_relu{i + 1}")
        # --- graph: heads ---
        head_percl = conv(2, 3, 1, 1, name="percl_conv", dtype=OUT_DTYPE) + \
            activation("softplus", "percl_act", OUT_DTYPE)
        head_l1 = []
        for i in range(2):
            head_l1 += deconv(nf, 4, 2, 1, name=f"l1_deconv{i + 1}")
            head_l1.append(group_norm(nf, nf, f"l1_gn{i + 1}", g))
            head_l1 += activation("relu", f"l1_relu{i + 1}")
        head_l1 += conv(2, 5, 1, 2, name="l1_conv", dtype=OUT_DTYPE) + \
            activation("softplus", "l1_act", OUT_DTYPE)
        # ---
        self.trunk, self.head_percl, self.head_l1 = trunk, head_percl, head_l1
        # The authors' modules: network, out_net1 (the L1 head), out_net2 (perceptual).
        self.torch_sections = [("network", trunk), ("out_net1", head_l1),
                               ("out_net2", head_percl)]

    def call(self, images, training=None):
        feat = run(self.trunk, images, training)
        return run(self.head_l1, feat, training), run(self.head_percl, feat, training)

    def get_config(self):
        return {"nf": self.nf, "zdim": self.zdim, "image_size": self.image_size,
                "gn_group_size": self.gn_group_size, "name": self.name}
