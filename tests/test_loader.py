"""One loader (tfsym3d.loader, issue 50): every door takes a run directory, a checkpoint
prefix, a .keras file and the authors' .pth, and a .pth's preset is chosen from the
authors' folder names or the networks' shapes, never from a substring of the path."""

import os
import shutil

import numpy as np
import pytest

from tests.test_evaluate import run
from tfsym3d import loader, official

OFFICIAL = os.path.join(os.path.dirname(__file__), "fixtures", "official")
PTH = os.path.join(OFFICIAL, "trainer_zip.pth")  # has netC
NOCONF = os.path.join(OFFICIAL, "noconf_legacy.pth")


def _at(tmp_path, rel, src=PTH):
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, path)
    return str(path)


@pytest.mark.parametrize("rel, src, preset, because", [
    ("cathy/x.pth", PTH, "celeba", "with netC"),            # not 'cat' in 'cathy'
    ("celeba_work/cat_model.pth", PTH, "celeba", "with netC"),  # neither name counts
    ("cat_results/synface.pth", NOCONF, "syncar", "without netC"),
    ("pretrained_cat/checkpoint100.pth", PTH, "cat", "pretrained_cat/"),
    ("results/synface/checkpoint030.pth", PTH, "synface", "results/synface/"),
    ("synface/checkpoint030.pth", PTH, "celeba", "with netC"),  # not under results/
])
def test_a_pth_preset_comes_from_the_authors_folders_or_the_shapes(tmp_path, rel, src,
                                                                   preset, because, logged):
    model = loader.load_model(_at(tmp_path, rel, src))
    said = logged().splitlines()
    assert len(said) == 1 and f"{preset}.yaml" in said[0] and because in said[0], said
    cfg = loader.config_of(str(tmp_path / rel))
    want = official.converted_config(PTH if src == PTH else NOCONF,
                                     os.path.join(official.CONFIG_DIR, f"{preset}.yaml"))[0]
    assert cfg.to_dict() == want.to_dict() == model.cfg.to_dict()


@pytest.fixture(scope="module")
def kinds(model_run, tmp_path_factory):
    """The same untrained tiny model as a run directory, a prefix and a .keras file, and
    an authors' .pth (other weights: a door reading it gives their outputs)."""
    from tfsym3d.checkpoints import checkpoint_dir, newest

    root = tmp_path_factory.mktemp("kinds")
    keras_file = str(root / "model.keras")
    loader.load_model(str(model_run)).save(keras_file)
    return {"run": str(model_run), "prefix": newest(checkpoint_dir(str(model_run))),
            "keras": keras_file, "pth": _at(root, "pretrained_celeba/checkpoint030.pth")}


@pytest.mark.slow
def test_the_python_api_takes_every_kind(kinds):
    import tfsym3d

    x = np.random.default_rng(0).random((2, 64, 64, 3)).astype(np.float32)
    depth = {k: tfsym3d.load_model(v)(x)["canon_depth"].numpy() for k, v in kinds.items()}
    for k in ("prefix", "keras"):
        np.testing.assert_allclose(depth[k], depth["run"], atol=1e-5)
    assert np.abs(depth["pth"] - depth["run"]).max() > 1e-3  # other weights


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["run", "prefix", "keras", "pth"])
def test_reconstruct_takes_every_kind(kinds, kind, tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (64, 64), (150, 110, 90)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    assert run(["tfsym3d", "reconstruct", f"--checkpoint={kinds[kind]}", f"--out={out}",
                "--gifs=false", "--mesh=false", str(tmp_path / "a.png")]) == 0
    assert (out / "a" / "canon_depth.npy").is_file()
    err = capsys.readouterr().err
    assert ("celeba.yaml" in err) == (kind == "pth")


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    from tfsym3d.data.synth import generate

    root = tmp_path_factory.mktemp("data")
    generate(str(root), 24, image_size=64, seed=5, batch=12)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["run", "prefix", "keras", "pth"])
def test_evaluate_takes_every_kind(kinds, kind, split, capsys):
    assert run(["tfsym3d", "evaluate", f"--checkpoint={kinds[kind]}", f"--data={split}"]) == 0
    assert "SIDE" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["prefix", "keras", "pth"])  # a run: test_export's
def test_export_takes_every_kind(kinds, kind, tmp_path):
    out = tmp_path / "export"
    assert run(["tfsym3d", "export", f"--checkpoint={kinds[kind]}", f"--out={out}",
                "--formats=tflite"]) == 0
    assert (out / "tflite" / "tfsym3d_fp32.tflite").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["prefix"])  # the others: test_train's --init tests
def test_train_init_takes_every_kind(kinds, kind, split, tmp_path):
    run_dir = tmp_path / "run"
    assert run(["tfsym3d", "train", f"--init={kinds[kind]}", f"--run_dir={run_dir}",
                f"--set=data_dir={split}", "--set=num_epochs=1", "--set=batch_size=4",
                "--set=steps_per_epoch=1", "--set=val_steps=1", "--set=lam_perc=0",
                "--progress=none"]) == 0
    assert os.path.isfile(run_dir / "config.yaml")
