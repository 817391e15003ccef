"""Training runs: checkpoints, resume, the non-finite guard, the CLI."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfsym3d import load_config
from tfsym3d.checkpoints import load_model
from tfsym3d.train import NonFiniteLoss, train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(nf_depth=16, zdim_depth=32, nf_light=8, nf_conf=16, zdim_conf=32, lam_perc=0,
            batch_size=4, log_freq=1, seed=0)


def images(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(n, 64, 64, 3)).astype(np.float32)


def dataset(x):
    return tf.data.Dataset.from_tensor_slices(x).batch(4)


@pytest.mark.slow
def test_resume_continues_at_the_right_epoch_and_step(tmp_path):
    run = str(tmp_path / "run")
    x = images(8)
    cfg = load_config(None, dict(TINY, num_epochs=1))
    model, _ = train(cfg, run, train_ds=dataset(x), verbose=0)
    assert int(model.optimizer.iterations) == 2
    first = [v.numpy() for v in model.trainable_variables]
    loaded = load_model(run)
    for a, b in zip(first, [v.numpy() for v in loaded.trainable_variables], strict=True):
        np.testing.assert_array_equal(a, b)

    cfg = load_config(None, dict(TINY, num_epochs=3))
    model, history = train(cfg, run, train_ds=dataset(x), verbose=0)
    assert int(model.epoch) == 3
    assert int(model.optimizer.iterations) == 6  # 2 steps per epoch, continued
    assert len(history.history["loss"]) == 2  # only epochs 2 and 3 ran
    assert sorted(os.listdir(os.path.join(run, "checkpoints")))[0] == "checkpoint"


@pytest.mark.slow
def test_a_saved_keras_file_loads_with_its_config_and_weights(tmp_path):
    import zipfile

    from tfsym3d.model import Unsup3D, build

    cfg = load_config(None, dict(TINY, fov=12.0))
    model = build(Unsup3D(cfg))
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = load_model(path, jit_renderer=False)
    assert loaded.cfg.fov == 12.0 and loaded.cfg.nf_light == 8 and not loaded.cfg.jit_renderer
    x = images(2)
    # A freshly initialised model differs; the loaded one gives the saved one's outputs.
    for key in ("recon_depth", "canon_albedo", "view"):
        np.testing.assert_allclose(loaded(x)[key].numpy(), model(x)[key].numpy(), atol=1e-6)
    fresh = build(Unsup3D(cfg))
    assert np.abs(fresh(x)["canon_albedo"].numpy() - model(x)["canon_albedo"].numpy()).max() > 1e-3
    # Plain Keras loading works too (Unsup3D is registered when tfsym3d.model is imported).
    import keras

    plain = keras.saving.load_model(path)
    np.testing.assert_allclose(plain(x)["recon_depth"].numpy(), model(x)["recon_depth"].numpy(),
                               atol=1e-6)

    (tmp_path / "text.keras").write_text("not a zip")
    with pytest.raises(ValueError, match="text.keras: not a readable .keras model"):
        load_model(str(tmp_path / "text.keras"))
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as z:
        z.writestr("config.json", '{"class_name": "Sequential", "config": {}}')
    with pytest.raises(ValueError, match="other.keras: a .keras file of a Sequential"):
        load_model(str(tmp_path / "other.keras"))
    with pytest.raises(FileNotFoundError, match="missing.keras: not a run directory"):
        load_model(str(tmp_path / "missing.keras"))


@pytest.mark.slow
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    run = str(tmp_path / "run")
    cfg = load_config(None, dict(TINY, num_epochs=1))
    train(cfg, run, train_ds=dataset(images(4)), verbose=0)
    ckpt_dir = os.path.join(run, "checkpoints")
    before = {f: os.path.getmtime(os.path.join(ckpt_dir, f)) for f in os.listdir(ckpt_dir)}
    bad = images(8)
    bad[5] = np.nan
    cfg = load_config(None, dict(TINY, num_epochs=3))
    with pytest.raises(NonFiniteLoss, match="epoch 2, step 2.*ckpt-1"):
        train(cfg, run, train_ds=dataset(bad), verbose=0)
    after = {f: os.path.getmtime(os.path.join(ckpt_dir, f)) for f in os.listdir(ckpt_dir)}
    assert after == before
    model = load_model(run)
    assert int(model.epoch) == 1
    assert all(np.all(np.isfinite(v.numpy())) for v in model.trainable_variables)


@pytest.mark.slow
def test_cli_trains_from_a_folder(tmp_path):
    """The command trains on a folder of photos and skips an unreadable one, named. (Its
    resuming: test_restart_after_kill_resumes_from_the_last_epoch through the command,
    test_resume_continues_at_the_right_epoch_and_step in depth.)"""
    data = tmp_path / "data"
    for split, n in (("train", 8), ("val", 4)):
        (data / split / "sub").mkdir(parents=True)
        for i, im in enumerate(images(n, seed=len(split))):
            Image.fromarray((im * 255).astype(np.uint8)).save(data / split / "sub" / f"{i}.png")
    (data / "train" / "broken.jpg").write_bytes(b"not a jpeg")
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "tfsym3d.cli", "train",
           f"--config={REPO}/configs/tiny.yaml", f"--run_dir={run}", "--progress=epoch",
           f"--set=data_dir={data}", "--set=load_gt_depth=false", "--set=batch_size=4",
           "--set=nf_depth=16", "--set=zdim_depth=32", "--set=num_epochs=1"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "broken.jpg" in first.stderr and "skipped 1 unreadable" in first.stderr
    assert os.path.isfile(run / "config.yaml")
    assert os.listdir(run / "logs")
    assert os.path.exists(run / "checkpoints" / "ckpt-1.index")


@pytest.mark.slow
def test_cli_rejects_config_typos_and_missing_data(tmp_path):
    base = [sys.executable, "-m", "tfsym3d.cli", "train", f"--config={REPO}/configs/tiny.yaml",
            f"--run_dir={tmp_path / 'run'}"]
    typo = subprocess.run(base + ["--set=lam_flp=1"], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert typo.returncode == 2 and "unknown config key(s) lam_flp" in typo.stderr
    missing = subprocess.run(base + [f"--set=data_dir={tmp_path / 'nowhere'}"],
                             capture_output=True, text=True, cwd=REPO, timeout=300)
    assert missing.returncode == 1
    last = missing.stderr.strip().splitlines()[-1]
    assert "nowhere: no such folder" in last


@pytest.mark.slow
def test_restart_after_kill_resumes_from_the_last_epoch(tmp_path):
    import signal
    import time

    data = tmp_path / "data" / "train"
    data.mkdir(parents=True)
    for i, im in enumerate(images(8, seed=9)):
        Image.fromarray((im * 255).astype(np.uint8)).save(data / f"{i}.png")
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "tfsym3d.cli", "train",
           f"--config={REPO}/configs/tiny.yaml", f"--run_dir={run}", "--progress=none",
           f"--set=data_dir={tmp_path / 'data'}", "--set=load_gt_depth=false",
           "--set=batch_size=4", "--set=nf_depth=16", "--set=zdim_depth=32",
           "--set=num_epochs=1000"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 400
        state = run / "checkpoints" / "checkpoint"

        def recorded():  # the state file names ckpt-2 or later: epoch 2 is saved
            try:
                return 'model_checkpoint_path: "ckpt-1"' not in state.read_text()
            except FileNotFoundError:
                return False
        while time.time() < deadline and not recorded():
            time.sleep(0.5)
        assert recorded(), "no checkpoint in time"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    again = subprocess.run(cmd[:-1] + ["--set=num_epochs=2"], capture_output=True,
                           text=True, timeout=600, cwd=REPO)
    assert again.returncode == 0, again.stderr[-3000:]
    # Killed at or after the end of epoch 2: the restart finds at least 2 epochs done.
    assert "resuming" in again.stderr and "all 2 epochs are done" in again.stderr


def _weights(model):
    from tfsym3d.checkpoints import weight_key

    return {weight_key(w): w.numpy() for w in model.weights}


@pytest.mark.slow
def test_init_starts_a_new_run_from_each_kind_of_checkpoint(tmp_path, logged):
    """--init from a run directory, a .keras file and the authors' .pth: the new run
    starts from those weights (lr 1e-7: after two Adam steps every weight is within
    ~1e-6 of its source, where a fresh start differs by ~0.1), with epoch and optimizer
    afresh; a second call resumes the new run and ignores --init."""
    from tfsym3d.loader import config_of
    from tfsym3d.loader import load_model as load_any

    x = dataset(images(8))
    source_run = str(tmp_path / "source")
    source, _ = train(load_config(None, dict(TINY, num_epochs=1)), source_run, train_ds=x,
                      verbose=0)
    source.save(str(tmp_path / "source.keras"))
    pth = os.path.join(REPO, "tests", "fixtures", "official", "model_legacy.pth")
    for init in (source_run, str(tmp_path / "source.keras"), pth):
        values = dict(config_of(init).to_dict(), lam_perc=0, num_epochs=1, lr=1e-7,
                      batch_size=4, log_freq=1, seed=1)
        run = str(tmp_path / f"from_{os.path.basename(init)}")
        logged()
        model, _ = train(load_config(None, values), run, train_ds=x, verbose=0, init=init)
        assert f"starting {run} from the weights of {init}" in logged()
        assert int(model.epoch) == 1 and int(model.optimizer.iterations) == 2
        want = _weights(load_any(init))
        got = _weights(model)
        assert set(want) == set(got), init
        worst = max(float(np.abs(got[k] - want[k]).max()) for k in want)
        assert worst < 1e-5, (init, worst)
    values["num_epochs"] = 2
    model, _ = train(load_config(None, values), run, train_ds=x, verbose=0, init=source_run)
    assert "is ignored (the run has checkpoints)" in logged()
    assert int(model.epoch) == 2 and int(model.optimizer.iterations) == 4


def test_init_with_other_widths_names_the_weight_and_both_shapes(tmp_path):
    from tfsym3d.loader import config_of

    pth = os.path.join(REPO, "tests", "fixtures", "official", "model_legacy.pth")
    values = dict(config_of(pth).to_dict(), lam_perc=0, num_epochs=1, batch_size=4,
                  nf_light=16)  # the fixture's light and view networks have nf 4
    with pytest.raises(ValueError) as err:
        train(load_config(None, values), str(tmp_path / "r"), train_ds=dataset(images(4)),
              verbose=0, init=pth)
    message = str(err.value)
    assert message.startswith(f"{pth}: netL/conv1/kernel is (4, 4, 3, 4) there but "
                              "(4, 4, 3, 16) in this config (network netL)"), message


@pytest.mark.slow
def test_init_without_config_trains_with_the_checkpoints_own(tmp_path):
    from tfsym3d import cli

    source_run = tmp_path / "source"
    train(load_config(None, dict(TINY, num_epochs=1, fov=12.0)), str(source_run),
          train_ds=dataset(images(8)), verbose=0)
    folder = tmp_path / "photos"
    for split, n in (("train", 8), ("val", 4)):
        (folder / split).mkdir(parents=True)
        for i, im in enumerate(images(n, seed=3)):
            Image.fromarray((im * 255).astype(np.uint8)).save(folder / split / f"{i}.png")
    with pytest.raises(SystemExit) as exit_info:
        cli.run(["tfsym3d", "train", f"--init={source_run}", f"--run_dir={tmp_path / 'new'}",
                 f"--set=data_dir={folder}", "--set=num_epochs=1", "--progress=none"])
    assert exit_info.value.code == 0
    cfg = load_config(str(tmp_path / "new" / "config.yaml"))
    assert cfg.fov == 12.0 and cfg.nf_light == 8 and cfg.data_dir == str(folder)
