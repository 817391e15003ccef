"""Batched inference for `tfsym3d reconstruct`: the model's public outputs, the symmetry
plane and the animation frames, as numpy arrays."""

import numpy as np

GIF_FRAMES = 24
GIF_YAW_DEGREES = 50.0
RELIGHT_AMBIENT, RELIGHT_DIFFUSE, RELIGHT_RADIUS = 0.3, 0.8, 0.8


class Reconstructor:
    """Images -> every map, parameter and animation frame, as numpy.

    Args:
      model: an Unsup3D.

    Call: images [B, S, S, 3] in [0, 1], animations (bool) -> dict of numpy arrays: the
    model's OUTPUTS (tfsym3d.model: depths in camera units, images in [0, 1], normals as
    unit vectors, view in radians and camera units), input [B,S,S,3] (the images),
    symmetry [B,S,S,3] (the canonical symmetry plane drawn on the input), and with
    animations rotate_shaded [B,T,S,S,3] (the shaded canonical image turned through a
    yaw sweep, white where nothing is seen), rotate_normal [B,T,S,S,3] (its unit
    normals, 0 where nothing is seen), rotate_seen [B,T,S,S] and relight [B,T,S,S,3]
    (the albedo under an orbiting light, seen from the input view).
    """

    def __init__(self, model):
        import tensorflow as tf

        self.model = model
        self.renderer = model.renderer
        s = model.cfg.image_size
        spec = tf.TensorSpec([None, s, s, 3], tf.float32)
        self._maps = tf.function(self._maps_graph, input_signature=[spec])
        self._frames = tf.function(self._frames_graph)

    def __call__(self, images, animations=True):
        out = {k: v.numpy() for k, v in self._maps(np.asarray(images, np.float32)).items()}
        if animations:
            out.update({k: v.numpy() for k, v in self._frames(
                out["canon_depth"], out["canon_im"], out["canon_albedo"],
                out["canon_normal"], out["recon_depth"], out["view"],
                out["input"]).items()})
        return out

    def _maps_graph(self, images):
        m = self.model
        out = m.forward(images)
        maps = m.public_outputs(out)
        maps["input"] = images
        maps["symmetry"] = m.symmetry_line(out)
        return maps

    def _frames_graph(self, canon_depth, canon_im, albedo, normal, recon_depth, view,
                      images):
        """Rotation frames [B, T, S, S, 3] (shaded, normals) and relighting frames.

        All B * T rotated views are rasterized in one call; the normals of a view are the
        canonical normals turned by its rotation, interpolated like the colours."""
        import tensorflow as tf

        from tfsym3d.renderer import euler_rotation, lambertian

        r = self.renderer
        b = tf.shape(canon_depth)[0]
        s = canon_depth.shape[1]
        t = np.arange(GIF_FRAMES, dtype=np.float32) / GIF_FRAMES
        yaws = np.radians(GIF_YAW_DEGREES) * np.sin(2 * np.pi * t)
        angles = np.stack([np.zeros_like(yaws), yaws, np.zeros_like(yaws)], 1)
        rot = euler_rotation(angles.astype(np.float32))                   # [T, 3, 3]
        turned = tf.einsum("tij,bhwj->bthwi", rot, normal)                  # [B, T, S, S, 3]
        texture = tf.concat([tf.repeat(canon_im[:, None], GIF_FRAMES, 1), turned], -1)
        views = tf.tile(np.concatenate([angles, np.zeros_like(angles)], 1).astype(np.float32),
                        [b, 1])
        rendered, seen = r.render_view(tf.reshape(texture, [-1, s, s, 6]),
                                       tf.repeat(canon_depth, GIF_FRAMES, 0), views,
                                       background=1.0)
        n = rendered[..., 3:]
        n = n / tf.maximum(tf.norm(n, axis=-1, keepdims=True), 1e-6) * seen[..., None]
        shape = [b, GIF_FRAMES, s, s]
        # Relighting: the albedo shaded by an orbiting light, warped to the input view.
        grid = r.get_inv_warped_2d_grid(recon_depth, view)
        mask = r.seen(recon_depth)[:, None, ..., None]
        d = np.stack([RELIGHT_RADIUS * np.cos(2 * np.pi * t),
                      RELIGHT_RADIUS * np.sin(2 * np.pi * t), np.ones_like(t)], 1)
        d = (d / np.linalg.norm(d, axis=1, keepdims=True)).astype(np.float32)  # [T, 3]
        shade = lambertian(normal[:, None], d[None], RELIGHT_AMBIENT, RELIGHT_DIFFUSE)[1]
        canon = tf.clip_by_value(albedo[:, None] * shade[..., None], 0.0, 1.0)  # [B,T,S,S,3]
        canon = tf.reshape(tf.transpose(canon, [0, 2, 3, 1, 4]), [b, s, s, GIF_FRAMES * 3])
        relit = tf.reshape(r.grid_sample(canon, grid), [b, s, s, GIF_FRAMES, 3])
        relit = tf.transpose(relit, [0, 3, 1, 2, 4])
        relit = relit * mask + images[:, None] * (1.0 - mask)
        return {"rotate_shaded": tf.reshape(rendered[..., :3], shape + [3]),
                "rotate_normal": tf.reshape(n, shape + [3]),
                "rotate_seen": tf.reshape(seen, shape), "relight": relit}


def reconstruct_images(model, images, animations=True):
    """The Python API: decomposes images [B, S, S, 3] in [0, 1] into numpy maps (the
    dict of `Reconstructor`: the model's public OUTPUTS plus input, symmetry and, with
    animations, the frames)."""
    return Reconstructor(model)(images, animations)
