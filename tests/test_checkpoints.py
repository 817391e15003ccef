"""Run directories and their checkpoints (tfsym3d.checkpoints): damaged checkpoints are
named and walked past, leftovers of an interrupted save are removed, a checkpoint that
does not fit its config says so, and one written but not recorded is still resumed."""

import numpy as np
import pytest
import tensorflow as tf

from tfsym3d import load_config
from tfsym3d.checkpoints import CheckpointMismatch, load_model
from tfsym3d.train import train

SMALL = dict(nf_depth=16, zdim_depth=16, nf_light=8, nf_conf=16, zdim_conf=16, lam_perc=0,
             batch_size=4, log_freq=1, seed=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run directory after two epochs (ckpt-1 and ckpt-2), its data and ckpt-1's
    weights; trained once for the module."""
    x = np.random.default_rng(0).uniform(size=(8, 64, 64, 3)).astype(np.float32)
    run = tmp_path_factory.mktemp("trained") / "run"
    ds = tf.data.Dataset.from_tensor_slices(x).batch(4)
    model, _ = train(load_config(None, dict(SMALL, num_epochs=1)), str(run), train_ds=ds,
                     verbose=0)
    first = [v.numpy() for v in model.weights]
    train(load_config(None, dict(SMALL, num_epochs=2)), str(run), train_ds=ds, verbose=0)
    return run, ds, first


@pytest.fixture
def run(trained, tmp_path):
    """A copy of the trained run directory for one test to damage."""
    import shutil

    source, ds, first = trained
    shutil.copytree(source, tmp_path / "run")
    return tmp_path / "run", ds, first


def _data_file(run, n):
    return run / "checkpoints" / f"ckpt-{n}.data-00000-of-00001"


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "random", "index_cut"])
def test_a_damaged_newest_checkpoint_is_named_and_the_previous_one_used(run, logged,
                                                                         damage):
    run, ds, first = run
    if damage == "index_cut":
        index = run / "checkpoints" / "ckpt-2.index"
        index.write_bytes(index.read_bytes()[:40])
    else:
        data = _data_file(run, 2)
        size = data.stat().st_size
        data.write_bytes(data.read_bytes()[:size // 2] if damage == "truncated"
                         else np.random.default_rng(1).bytes(size))
    logged()
    model = load_model(str(run))
    err = logged()
    assert "skipping the damaged checkpoint" in err and "ckpt-2" in err
    assert "using the older checkpoint" in err and "ckpt-1" in err
    for a, b in zip(first, [v.numpy() for v in model.weights], strict=True):
        np.testing.assert_array_equal(a, b)
    # Training resumes from ckpt-1 and writes a good ckpt-2 over the damaged one.
    model, history = train(load_config(None, dict(SMALL, num_epochs=2)), str(run),
                           train_ds=ds, verbose=0)
    assert len(history.history["loss"]) == 1 and int(model.epoch) == 2
    logged()
    load_model(str(run))
    assert "skipping" not in logged()


@pytest.mark.slow
def test_no_readable_checkpoint_is_one_line_naming_the_run(run, capsys):
    from tfsym3d import cli

    run, _, _ = run
    for n in (1, 2):
        _data_file(run, n).write_bytes(b"")
    with pytest.raises(ValueError, match="none of its 2 checkpoint"):
        load_model(str(run))
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        cli.run(["tfsym3d", "reconstruct", f"--checkpoint={run}", f"--out={run}/r", "x.png"])
    assert exit_info.value.code == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("tfsym3d reconstruct: ") and "none of its 2 checkpoint" in last


@pytest.mark.slow
def test_an_interrupted_save_is_cleaned_up(run, logged):
    run, ds, _ = run
    temp = run / "checkpoints" / "ckpt-3_temp"
    temp.mkdir()
    (temp / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"half")
    train(load_config(None, dict(SMALL, num_epochs=3)), str(run), train_ds=ds, verbose=0)
    assert not temp.exists()
    assert "removed" in logged()


@pytest.mark.slow
def test_a_checkpoint_that_does_not_fit_its_config_says_so(run):
    run, _, _ = run
    cfg = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(cfg.replace("nf_depth: 16", "nf_depth: 32"))
    with pytest.raises(CheckpointMismatch) as err:
        load_model(str(run))
    assert str(err.value).endswith(
        "ckpt-2: its weights do not fit the model of the config: netD/enc_conv1/kernel "
        "(network netD) is (4, 4, 3, 16) in the checkpoint, (4, 4, 3, 32) in the model (was "
        "config.yaml edited?)")
    assert "\n" not in str(err.value)


def test_a_checkpoint_written_but_not_recorded_is_resumed_from(tmp_path):
    """A kill between writing ckpt-N and recording it in the state file loses no epoch."""
    from tfsym3d.checkpoints import newest, repair_state

    step = tf.Variable(0)
    ckpt = tf.train.Checkpoint(step=step)
    manager = tf.train.CheckpointManager(ckpt, str(tmp_path), max_to_keep=2)
    manager.save()
    state = (tmp_path / "checkpoint").read_text()  # records ckpt-1 only
    step.assign(7)
    manager.save()
    (tmp_path / "checkpoint").write_text(state)  # as if killed before recording ckpt-2
    (tmp_path / "ckpt-3.index").write_bytes(b"trunc")  # and killed while writing ckpt-3
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-1")
    assert newest(str(tmp_path)).endswith("ckpt-2")

    assert repair_state(str(tmp_path)).endswith("ckpt-2")
    step2 = tf.Variable(0)
    ckpt2 = tf.train.Checkpoint(step=step2)
    manager2 = tf.train.CheckpointManager(ckpt2, str(tmp_path), max_to_keep=2)
    assert manager2.latest_checkpoint.endswith("ckpt-2")
    ckpt2.restore(manager2.latest_checkpoint)
    assert int(step2.numpy()) == 7
    # The repaired checkpoint is rotated out like any other.
    assert manager2.save().endswith("ckpt-3") and manager2.save().endswith("ckpt-4")
    assert not (tmp_path / "ckpt-2.index").exists() and (tmp_path / "ckpt-3.index").exists()
    # Nothing newer than the record: the record stands, and repairing changes nothing.
    assert newest(str(tmp_path)).endswith("ckpt-4")
    assert repair_state(str(tmp_path)).endswith("ckpt-4")
    assert newest(str(tmp_path / "none")) is None
