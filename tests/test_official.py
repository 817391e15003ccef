"""The authors' checkpoints as tfsym3d models (tfsym3d.official): the mapping onto the
Keras networks (against outputs PyTorch computed, in tests/fixtures/official, made by
tests/make_official_fixtures.py), the config chosen, and the command. The reader
itself: test_torch_file.py."""

import os

import numpy as np
import pytest

from tests.test_evaluate import run
from tfsym3d import official, torch_file

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "official")
WIDTHS = {"nf_depth": 16, "zdim_depth": 16, "nf_light": 4, "nf_conf": 16, "zdim_conf": 8}


def fixture(name):
    return os.path.join(FIXTURES, name)


@pytest.fixture(scope="module")
def expected():
    return dict(np.load(fixture("expected.npz")))


def nhwc(x):
    return np.transpose(x, (0, 2, 3, 1)) if x.ndim == 4 else x


@pytest.mark.parametrize("name", ["trainer_zip.pth", "model_legacy.pth"])
def test_converted_networks_compute_what_pytorch_computed(name, expected):
    model, _, _, _ = official.convert(fixture(name))
    images = nhwc(expected["images"])
    for net in ("netD", "netA", "netL", "netV"):
        np.testing.assert_allclose(getattr(model, net)(images).numpy(), nhwc(expected[net]),
                                   atol=1e-4, err_msg=net)
    l1, percl = model.netC(images)
    np.testing.assert_allclose(l1.numpy(), nhwc(expected["netC_l1"]), atol=1e-4)
    np.testing.assert_allclose(percl.numpy(), nhwc(expected["netC_percl"]), atol=1e-4)
    cfg = model.cfg
    assert {k: getattr(cfg, k) for k in WIDTHS} == WIDTHS and cfg.use_conf_map


def test_a_model_without_netc_converts_to_a_syncar_config(expected):
    model, epoch, config_file, why = official.convert(fixture("noconf_legacy.pth"))
    assert epoch == 30 and model.netC is None and not model.cfg.use_conf_map
    assert os.path.basename(config_file) == "syncar.yaml" and "without netC" in why
    assert model.cfg.border_depth == 1.08 and model.cfg.lam_depth_sm == 0.1
    r = model.renderer  # trained through neural_renderer: reconstructs through its sampling
    assert (r.normalisation, r.depth_supersample, r.pixel_offset) == ("authors", 2, 0.5)
    np.testing.assert_allclose(model.netD(nhwc(expected["images"])).numpy(),
                               nhwc(expected["netD"]), atol=1e-4)


@pytest.mark.slow
def test_the_config_follows_the_path_or_the_flag(tmp_path):
    src = fixture("model_legacy.pth")
    named = tmp_path / "pretrained_synface"
    named.mkdir()
    (named / "checkpoint030.pth").write_bytes(open(src, "rb").read())
    _, _, config_file, why = official.convert(str(named / "checkpoint030.pth"))
    assert os.path.basename(config_file) == "synface.yaml" and "synface" in why
    model, _, config_file, _ = official.convert(src, config="configs/cat.yaml")
    assert config_file == "configs/cat.yaml" and model.cfg.lam_flip_start_epoch == 10


@pytest.mark.slow
def test_cli_writes_a_run_directory_and_a_keras_file_that_load(tmp_path, expected, capsys):
    from tfsym3d.checkpoints import load_model

    images = nhwc(expected["images"])
    for out in (tmp_path / "run", tmp_path / "model.keras"):
        assert run(["tfsym3d", "convert-official", fixture("trainer_zip.pth"),
                    f"--out={out}"]) == 0
        printed = capsys.readouterr().out
        assert "celeba.yaml" in printed and "epoch 30" in printed
        model = load_model(str(out))
        np.testing.assert_allclose(model.netD(images).numpy(), nhwc(expected["netD"]),
                                   atol=1e-4)
        if out.suffix != ".keras":  # a .keras file keeps weights, not the epoch counter
            assert int(model.epoch.numpy()) == 30
    # Nothing already there is overwritten.
    assert run(["tfsym3d", "convert-official", fixture("trainer_zip.pth"),
                f"--out={tmp_path / 'run'}"]) == 1
    assert "already a run directory" in capsys.readouterr().err


@pytest.mark.slow
def test_keys_that_do_not_fit_are_named():
    from tfsym3d.model import Unsup3D, build

    nets, _ = official.read_networks(fixture("model_legacy.pth"))
    cfg = official.convert(fixture("model_legacy.pth"))[0].cfg
    cases = []
    missing = {k: dict(v) for k, v in nets.items()}
    del missing["netA"]["network.4.weight"]
    cases.append((missing, "missing key netA.network.4.weight"))
    extra = {k: dict(v) for k, v in nets.items()}
    extra["netL"]["network.99.weight"] = np.zeros(3, np.float32)
    cases.append((extra, "unexpected key netL.network.99.weight"))
    wrong = {k: dict(v) for k, v in nets.items()}
    wrong["netV"]["network.10.weight"] = np.zeros((5, 32, 1, 1), np.float32)
    cases.append((wrong, "netV.network.10.weight has shape (5, 32, 1, 1), the network "
                         "expects (6, 32, 1, 1)"))
    for state, message in cases:
        with pytest.raises(official.ConversionError, match=message.replace("(", r"\(")
                           .replace(")", r"\)")):
            official.load_weights(build(Unsup3D(cfg)), state, "x.pth")


def test_unreadable_files_are_named(tmp_path, capsys):
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(open(fixture("model_legacy.pth"), "rb").read()[:50000])
    for path in (text, truncated):
        with pytest.raises(torch_file.TorchFileError, match=str(path)):
            torch_file.load(path)
        assert run(["tfsym3d", "convert-official", str(path),
                    f"--out={tmp_path / 'o.keras'}"]) == 1
        assert str(path) in capsys.readouterr().err
    assert not (tmp_path / "o.keras").exists()
    cut_zip = tmp_path / "cut_zip.pth"
    cut_zip.write_bytes(open(fixture("trainer_zip.pth"), "rb").read()[:50000])
    with pytest.raises(torch_file.TorchFileError, match="the file was cut short"):
        torch_file.load(cut_zip)
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        torch_file.load(tmp_path / "nowhere.pth")
    assert run(["tfsym3d", "convert-official", f"--out={tmp_path / 'o'}"]) == 2


def test_vgg16_weights_convert_for_the_perceptual_loss(tmp_path, expected, capsys):
    import keras

    from tfsym3d.losses import PerceptualLoss

    out = tmp_path / "vgg16_torch_notop.h5"
    assert run(["tfsym3d", "convert-official", f"--vgg16={fixture('vgg16_zip.pth')}",
                f"--out={out}"]) == 0
    assert "vgg16_preprocess: torch" in capsys.readouterr().out
    vgg = keras.applications.VGG16(include_top=False, weights=str(out),
                                   input_shape=(32, 32, 3))
    relu3_3 = keras.Model(vgg.input, vgg.get_layer("block3_conv3").output)
    got = relu3_3(nhwc(expected["vgg_input"])).numpy()
    want = nhwc(expected["vgg_relu3_3"])
    np.testing.assert_allclose(got, want, atol=1e-5 * np.abs(want).max())
    loss = PerceptualLoss(64, str(out), "torch")  # the loss loads the file as it is
    assert loss.features.output.shape[1:] == (16, 16, 256)
    assert run(["tfsym3d", "convert-official", f"--vgg16={fixture('trainer_zip.pth')}",
                f"--out={tmp_path / 'bad.h5'}"]) == 1
    assert "features.0.weight" in capsys.readouterr().err


# The authors' experiments/train_synface.yml and test_synface.yml, their published values,
# with the paths pointed at this test's folders (and, for evaluation, no crop: the synthetic
# images are 64 px, not the 256 px renders the authors crop at 170).
TRAIN_SYNFACE = """## train synface
## trainer
run_train: true
num_epochs: 30
batch_size: 64
checkpoint_dir: {run}
save_checkpoint_freq: 1
keep_num_checkpoint: 2
resume: true
use_logger: true
log_freq: 500

## dataloader
num_workers: 4
image_size: 64
crop: 170
load_gt_depth: true
paired_data_dir_names: ['image', 'depth']
paired_data_filename_diff: ['image', 'depth']
train_val_data_dir: {data}

## model
model_name: unsup3d_synface
min_depth: 0.9
max_depth: 1.1
xyz_rotation_range: 60  # (-r,r) in degrees
xy_translation_range: 0.1  # (-t,t) in 3D
z_translation_range: 0  # (-t,t) in 3D
lam_perc: 1
lam_flip: 0.5
lr: 0.0001

## renderer
rot_center_depth: 1.0
fov: 10  # in degrees
tex_cube_size: 2
"""

TEST_SYNFACE = """## test synface
## trainer
run_test: true
batch_size: 64
checkpoint_dir: {run}
checkpoint_name: checkpoint030.pth
test_result_dir: {run}/test_results_checkpoint030

## dataloader
num_workers: 4
image_size: 64
crop: null
load_gt_depth: true
paired_data_dir_names: ['image', 'depth']
paired_data_filename_diff: ['image', 'depth']
test_data_dir: {data}/test

## model
model_name: unsup3d_synface
min_depth: 0.9
max_depth: 1.1
xyz_rotation_range: 60  # (-r,r) in degrees
xy_translation_range: 0.1  # (-t,t) in 3D
z_translation_range: 0  # (-t,t) in 3D
lam_perc: 1
lam_flip: 0.5

## renderer
rot_center_depth: 1.0
fov: 10  # in degrees
tex_cube_size: 2
"""


def test_the_authors_experiment_files_map_to_tfsym3d_keys(tmp_path, logged):
    from tfsym3d.config import load_config

    path = tmp_path / "train_synface.yml"
    path.write_text(TRAIN_SYNFACE.format(run="results/synface", data="data/synface"))
    cfg = load_config(str(path))
    assert cfg.data_dir == "data/synface" and cfg.run_dir == "results/synface"
    assert (cfg.crop, cfg.batch_size, cfg.lam_flip, cfg.load_gt_depth) == (170, 64, 0.5, True)
    err = logged()
    assert "train_synface.yml: train_val_data_dir -> data_dir = data/synface" in err
    assert "train_synface.yml: num_workers: ignored" in err
    assert "tex_cube_size: ignored" in err
    path.write_text(TRAIN_SYNFACE.format(run="r", data="d") + "lam_flipp: 1\n")
    with pytest.raises(ValueError, match="unknown config key.*lam_flipp"):
        load_config(str(path))
    path.write_text(TRAIN_SYNFACE.format(run="r", data="d").replace(
        "paired_data_dir_names: ['image', 'depth']", "paired_data_dir_names: ['im', 'd']"))
    with pytest.raises(ValueError, match="paired_data_dir_names"):
        load_config(str(path))


@pytest.fixture(scope="module")
def synth_split(tmp_path_factory):
    from tfsym3d.data.synth import generate

    root = tmp_path_factory.mktemp("synface")
    generate(str(root), 24, image_size=64, seed=5, batch=12)
    return root


def test_evaluate_runs_the_authors_test_file_on_their_checkpoint(tmp_path, synth_split,
                                                                 capsys):
    import json

    run_dir = tmp_path / "results" / "synface"
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoint030.pth").write_bytes(open(fixture("trainer_zip.pth"), "rb").read())
    config = tmp_path / "test_synface.yml"
    config.write_text(TEST_SYNFACE.format(run=run_dir, data=synth_split))
    out = tmp_path / "scores.json"
    assert run(["tfsym3d", "evaluate", f"--config={config}", f"--json={out}"]) == 0
    report = json.loads(out.read_text())
    assert report["model"]["n"] == report["baseline_avg"]["n"] > 0
    assert "checkpoint030.pth: read with test_synface.yml (--config)" in capsys.readouterr().err


@pytest.mark.slow
def test_train_runs_the_authors_training_file(tmp_path, synth_split):
    from tfsym3d.checkpoints import newest

    run_dir = tmp_path / "results" / "synface"
    config = tmp_path / "train_synface.yml"
    config.write_text(TRAIN_SYNFACE.format(run=run_dir, data=synth_split))
    small = ["num_epochs=1", "steps_per_epoch=1", "val_steps=1", "batch_size=2",
             "lam_perc=0", "crop=null", "nf_depth=16", "zdim_depth=16", "nf_light=4",
             "nf_conf=16", "zdim_conf=8"]
    assert run(["tfsym3d", "train", f"--config={config}", "--progress=none"]
               + [f"--set={s}" for s in small]) == 0
    assert newest(str(run_dir / "checkpoints")) is not None
