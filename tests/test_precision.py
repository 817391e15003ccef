"""Mixed precision: the precision key, one training step against float32, loss scaling,
checkpoints that load and export whatever precision trained them."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfsym3d import load_config, precision
from tfsym3d.model import Unsup3D, build, make_optimizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = dict(nf_depth=16, zdim_depth=32, nf_light=8, nf_conf=16, zdim_conf=32, lam_perc=0,
             gn_group_size=4, batch_size=4, seed=0)


def faces(n):
    """n synthetic faces [n, 64, 64, 3] in [0, 1] (a smooth input: random noise would
    put every network in a regime no training run sees)."""
    import tempfile

    from tfsym3d.data import folder
    from tfsym3d.data.synth import generate

    with tempfile.TemporaryDirectory() as root:
        generate(root, n + 20, image_size=64, seed=0)
        images, _ = next(iter(folder.paired_dataset(root, "train", batch_size=n,
                                                    random_flip=False)))
    return images.numpy()


def test_fast_bfloat16_follows_the_hardware():
    assert precision.fast_bfloat16([(8, 0), (9, 0)])  # Ampere, Hopper
    assert not precision.fast_bfloat16([(8, 0), (7, 5)])  # one Turing card: emulated
    assert precision.fast_bfloat16([], {"fpu", "avx512f", "amx_bf16", "amx_tile"})
    assert precision.fast_bfloat16([], {"avx512f", "avx512_bf16"})
    assert not precision.fast_bfloat16([], {"fpu", "avx2", "avx512f"})


def test_auto_picks_bfloat16_only_on_bfloat16_hardware_and_bad_values_are_one_line():
    assert precision.resolve("auto", fast=False) == "float32"
    assert precision.resolve("auto", fast=True) == "mixed_bfloat16"
    assert precision.resolve("mixed_float16") == "mixed_float16"
    assert precision.compute_dtype("mixed_bfloat16") == "bfloat16"
    # The VGG16 follows a mixed precision; under float32, perc_dtype decides.
    assert precision.perceptual_dtype("mixed_bfloat16", "float32") == "bfloat16"
    assert precision.perceptual_dtype("mixed_float16", "auto") == "float16"
    assert precision.perceptual_dtype("float32", "auto") == "auto"
    with pytest.raises(ValueError) as err:
        load_config(None, ["precision=bf16"])
    assert str(err.value) == ("precision must be one of float32, mixed_bfloat16, "
                              "mixed_float16, auto; got 'bf16'")
    result = subprocess.run([sys.executable, "-m", "tfsym3d.cli", "train",
                             "--config=configs/tiny.yaml", "--set=precision=half"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if "precision" in line]
    assert lines and "Traceback" not in result.stderr, result.stderr[-2000:]


def _pair(cfg_values):
    """A float32 and a mixed_bfloat16 model with the same weights."""
    models = []
    for name in ("float32", "mixed_bfloat16"):
        keras.utils.set_random_seed(0)
        models.append(build(Unsup3D(load_config(None, dict(cfg_values, precision=name)))))
    models[1].set_weights(models[0].get_weights())
    return models


@pytest.mark.slow
def test_networks_compute_in_bfloat16_and_hand_float32_to_the_renderer():
    f32, bf16 = _pair(SMALL)
    conv = bf16.netD.stack[0]
    assert conv.compute_dtype == "bfloat16" and conv.kernel.dtype == "float32"
    # The output layers stay float32 (depth resolution), and so does every output.
    for net in (bf16.netD, bf16.netA, bf16.netL, bf16.netV):
        out_conv = next(layer for layer in net.stack if layer.name == "conv_out")
        assert out_conv.compute_dtype == "float32", net.name
    assert bf16.netC.head_l1[-2].compute_dtype == "float32"  # l1_conv (softplus after)
    out = bf16(faces(2))
    assert all(v.dtype == tf.float32 for v in out.values())
    assert all(w.dtype == "float32" for w in bf16.weights)
    assert f32.netD.stack[0].compute_dtype == "float32"


@pytest.mark.slow
def test_one_mixed_bfloat16_step_tracks_the_float32_one():
    """Same weights, same batch of faces: the loss terms agree to 2e-3 relative and the
    gradients point the same way (bfloat16 keeps 8 bits of mantissa: ~4e-3 relative per
    rounding; the terms are means over ~10^4 pixels, so the roundings mostly average
    out). Measured on the faces: loss 2.4e-4 relative; gradient cosine 0.965 for netD
    (depth reaches the loss through the normals' differences, which amplify rounding),
    0.999-0.9997 for the others."""
    images = tf.constant(faces(4))
    results = []
    for model in _pair(SMALL):
        with tf.GradientTape() as tape:
            out = model.decompose(images, training=True)
            terms = model.compute_losses(out)
        grads = tape.gradient(terms["loss"], model.trainable_variables)
        results.append(({k: float(v) for k, v in terms.items()}, grads))
    (t32, g32), (t16, g16) = results
    for key in ("loss", "l1", "l1_flip", "depth_sm"):
        assert t16[key] == pytest.approx(t32[key], rel=2e-3), (key, t16[key], t32[key])
    # The same weights get gradients (netC's perceptual head none: lam_perc is 0), all
    # finite.
    assert [g is None for g in g16] == [g is None for g in g32]
    assert all(bool(tf.reduce_all(tf.math.is_finite(g))) for g in g16 if g is not None)
    model = _pair(SMALL)[0]
    for net in ("netD", "netA", "netL", "netV", "netC"):
        own = {id(v) for v in getattr(model, net).trainable_variables}
        idx = [i for i, v in enumerate(model.trainable_variables)
               if id(v) in own and g32[i] is not None]
        a = np.concatenate([g32[i].numpy().ravel() for i in idx])
        b = np.concatenate([g16[i].numpy().ravel() for i in idx])
        cosine = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
        print(net, "gradient cosine", cosine)
        assert cosine > 0.9, (net, cosine)


@pytest.mark.slow
def test_mixed_float16_scales_the_loss_and_takes_finite_steps():
    cfg = load_config(None, dict(SMALL, precision="mixed_float16"))
    keras.utils.set_random_seed(0)
    model = build(Unsup3D(cfg))
    optimizer = make_optimizer(cfg)
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    model.compile(optimizer=optimizer, jit_compile=False)
    optimizer.build(model.trainable_variables)
    before = [v.numpy() for v in model.trainable_variables]
    logs = model.train_step(tf.constant(faces(2)))
    assert np.isfinite(float(logs["loss"]))
    moved = [float(np.abs(a - v.numpy()).max())
             for a, v in zip(before, model.trainable_variables, strict=True)]
    # Adam's first step moves every weight with a gradient by about lr (not by lr times
    # the loss scale, which the optimizer divides out; nor 0, a skipped step).
    assert 0.5 * cfg.lr < max(moved) < 2.0 * cfg.lr, max(moved)


@pytest.mark.slow
def test_a_bfloat16_checkpoint_loads_reconstructs_and_exports(tmp_path):
    """Trained in mixed_bfloat16: the run's weights are float32; load_model gives the
    bfloat16 model it trained, whose outputs agree with the float32 one of the same
    checkpoint to bfloat16 rounding (below); reconstruct runs it, and export writes a float32
    TFLite model at the usual parity with the Keras float32 outputs."""
    from tfsym3d import cli
    from tfsym3d.checkpoints import load_model
    from tfsym3d.train import train

    run = str(tmp_path / "run")
    x = faces(8)
    cfg = load_config(None, dict(SMALL, num_epochs=1, precision="mixed_bfloat16"))
    train(cfg, run, train_ds=tf.data.Dataset.from_tensor_slices(x).batch(4), verbose=0)
    trained = load_model(run)
    assert trained.cfg.precision == "mixed_bfloat16"
    assert trained.netD.stack[0].compute_dtype == "bfloat16"
    plain = load_model(run, precision="float32")
    a, b = trained.infer(x[:2]), plain.infer(x[:2])
    depth_err = float(tf.reduce_max(tf.abs(a["canon_depth"] - b["canon_depth"])))
    albedo_err = float(tf.reduce_max(tf.abs(a["canon_albedo"] - b["canon_albedo"])))
    print("bfloat16 vs float32 outputs: depth", depth_err, "albedo", albedo_err)
    # Measured 3.5e-3 (of a 0.2 depth range) and 1.3e-2: bfloat16's rounding through a
    # dozen layers, not an error of the casts (which would be off by the range).
    assert depth_err < 1e-2 and albedo_err < 5e-2

    photos = tmp_path / "photos"
    photos.mkdir()
    from PIL import Image

    Image.fromarray((x[0] * 255).astype(np.uint8)).save(photos / "face.png")
    with pytest.raises(SystemExit) as exit_info:
        cli.run(["tfsym3d", "reconstruct", f"--checkpoint={run}", f"--out={tmp_path / 'recon'}",
                 "--nomesh", "--nogifs", str(photos)])
    assert exit_info.value.code == 0
    assert (tmp_path / "recon" / "face" / "albedo.png").exists()

    with pytest.raises(SystemExit) as exit_info:
        cli.run(["tfsym3d", "export", f"--checkpoint={run}", f"--out={tmp_path / 'out'}",
                 "--formats=tflite"])
    assert exit_info.value.code == 0
    import json

    card = json.loads(next((tmp_path / "out").rglob("*.json")).read_text())
    assert max(card["parity"]["max_abs_diff"].values()) < 1e-4, card["parity"]


@pytest.mark.slow
def test_mixed_bfloat16_trains_on_two_replicas():
    """MirroredStrategy over two logical CPU devices: one fit step in mixed_bfloat16
    gives a finite loss within 2e-3 of the one-device float32 loss on the same batch."""
    script = textwrap.dedent("""
        import numpy as np, tensorflow as tf, keras
        from tfsym3d.distribute import make_strategy
        strategy = make_strategy(2)
        from tfsym3d import Unsup3D, load_config
        from tfsym3d.model import build, make_optimizer
        x = np.random.default_rng(0).uniform(size=(4, 64, 64, 3)).astype(np.float32)
        def first_loss(strat, name):
            cfg = load_config(None, dict(CFG, precision=name))
            with strat.scope():
                keras.utils.set_random_seed(0)
                m = build(Unsup3D(cfg))
                m.compile(optimizer=make_optimizer(cfg))
            return m.fit(tf.data.Dataset.from_tensors(x), epochs=1, verbose=0
                         ).history["loss"][0]
        l32 = first_loss(tf.distribute.get_strategy(), "float32")
        l16 = first_loss(strategy, "mixed_bfloat16")
        assert strategy.num_replicas_in_sync == 2
        print("LOSS", l32, l16)
        assert np.isfinite(l16) and abs(l16 - l32) < 2e-3 * abs(l32), (l32, l16)
    """).replace("CFG", repr(dict(SMALL, jit_renderer=False)))
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "LOSS" in result.stdout
