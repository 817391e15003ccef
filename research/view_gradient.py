"""Does the view get a usable gradient? netV alone, trained against the TRUE canonical
surfaces of synthetic objects held fixed, scored by its yaw slope on the real renders.

    python research/view_gradient.py --mode=photometric|cycle [--steps=300] [--num=64]
        [--style=blobs]

photometric: the model's masked L1 between the canonical surface re-rendered from
netV's view and the image (what the full model trains the view with); cycle: render and
predict back (tfsym3d.views) over the family's view ranges. Prints the loss and the yaw
slope every 50 steps (issue 48, docs/learning_log.md).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=("photometric", "cycle"), required=True)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--num", type=int, default=64)
    parser.add_argument("--style", default="blobs")
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from tfsym3d import losses, views
    from tfsym3d.data import synth
    from tfsym3d.layers import Encoder
    from tfsym3d.renderer import Renderer

    s, n = 64, args.num
    rng = np.random.default_rng(0)
    p = synth.sample_params(rng, n, args.style)
    idx = np.arange(n)
    images, _, _, true_view = synth.render_batch(p, idx, s, seed=0, centre=False)
    maps = [synth.canonical_maps(p, i, s, np.random.default_rng([0, i])) for i in idx]
    depth = np.stack([m[0] for m in maps])
    albedo, mask = np.stack([m[1] for m in maps]), np.stack([m[2] for m in maps])
    r = Renderer(s, 10.0, 0.9, 1.1, 1.0)
    shade = synth.shading(p, idx, r.get_normal_from_depth(depth).numpy())
    bg = p["bg"][idx, 0][:, None, None, :]
    canon = np.where(mask[..., None], np.clip(albedo * shade[..., None], 0, 1), bg)
    canon = (canon * 2 - 1).astype(np.float32)
    x = (images * 2 - 1).astype(np.float32)
    scale = views.view_scale(60.0, 0.1, 0.0)  # numpy [6]
    ranges = [float(np.abs(p[k]).max()) for k in ("pitch", "yaw", "roll")]
    keras.utils.set_random_seed(0)
    net = Encoder(6, 16, s)
    opt = keras.optimizers.Adam(1e-3)

    def render(b, view):
        d = r.warp_canon_depth(depth[b], view)
        return r.grid_sample(canon[b], r.get_inv_warped_2d_grid(d, view)), r.seen(d)

    def slope():
        pred = np.degrees((net(x) * scale).numpy()[:, 1])
        true = np.degrees(true_view[:, 1])
        t = true - true.mean()
        return float(np.sum(t * (pred - pred.mean())) / np.sum(t * t))

    start = time.monotonic()
    for step in range(args.steps):
        b = rng.choice(n, 32)
        with tf.GradientTape() as tape:
            if args.mode == "cycle":
                target = views.sample_views(32, ranges, 0.03, 0.0)
                im, seen = render(b, target)
                im = views.composite(im, seen, views.background_like(x[b]))
                loss = views.normalised_l1(net(im) * scale, target, scale)
            else:
                im, seen = render(b, net(x[b]) * scale)
                loss = losses.photometric_loss(im, x[b], seen)
        grads = tape.gradient(loss, net.trainable_variables)
        opt.apply(grads, net.trainable_variables)
        if step % 50 == 0 or step == args.steps - 1:
            print(f"{args.mode} step {step}: loss {float(loss):.4f} yaw slope {slope():.3f} "
                  f"({time.monotonic() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
