"""Configs: typos and types refused, the presets shipped in the package, and the presets
against the authors' own experiment files."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tfsym3d.config import PRESET_DIR, PRESETS, load_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures")
# Keys that name places, not settings.
PATHS = {"data_dir", "run_dir", "checkpoint"}
# Where a preset departs from the authors' experiment file on purpose; the README's
# Train section says why, key by key.
DEVIATIONS = {"perc_dtype"}


def test_config_typos_and_bad_types_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown config key.*batch_sise.*valid keys: "):
        load_config(None, ["batch_sise=8"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("lam_perk: 1\n")
    with pytest.raises(ValueError, match=f"{bad}: unknown config key"):
        load_config(str(bad))
    with pytest.raises(ValueError, match="batch_size must be int"):
        load_config(None, {"batch_size": "eight"})
    with pytest.raises(ValueError, match="perc_dtype must be"):
        load_config(None, {"perc_dtype": "half"})
    with pytest.raises(ValueError, match="gn_group_size must be"):
        load_config(None, {"nf_depth": 16, "gn_group_size": 3})
    cfg = load_config(os.path.join(REPO, "configs", "cat.yaml"), ["lam_flip=1"])
    assert cfg.lam_flip == 1.0 and isinstance(cfg.lam_flip, float) and cfg.crop == 170


@pytest.mark.parametrize("name", ["celeba", "synface", "cat", "syncar"])
def test_presets_are_the_authors_experiment_files(name, capsys):
    """The authors' experiments/train_NAME.yml (verbatim in tests/fixtures/authors) and
    the preset NAME give the same value for every key but paths and the DEVIATIONS
    (keys neither sets take the same default on both sides)."""
    theirs = load_config(os.path.join(FIXTURES, "authors", f"train_{name}.yml")).to_dict()
    capsys.readouterr()  # the mapping lines of their trainer keys
    ours = load_config(name).to_dict()
    differ = {k: (ours[k], theirs[k]) for k in ours if k not in PATHS and ours[k] != theirs[k]}
    assert set(differ) == DEVIATIONS, differ


def test_every_deviation_is_explained_in_the_readme():
    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read()
    for key in DEVIATIONS:
        assert f"`{key}" in readme, key


def test_presets_load_by_name_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sorted(os.path.splitext(f)[0] for f in os.listdir(PRESET_DIR)) == sorted(PRESETS)
    for name in PRESETS:
        by_file = load_config(os.path.join(PRESET_DIR, f"{name}.yaml"))
        assert load_config(name) == by_file == load_config(f"configs/{name}.yaml")
    with pytest.raises(ValueError, match="cannot read config.*presets: celeba, synface"):
        load_config("tinny")
    # A file of that name in the working directory wins over the preset.
    (tmp_path / "tiny.yaml").write_text("batch_size: 3\n")
    assert load_config("tiny.yaml").batch_size == 3


@pytest.mark.slow
def test_a_non_editable_install_converts_and_trains_with_presets(tmp_path):
    """`pip install .` (no editable link back to the checkout), run from an empty
    directory: convert-official finds its config without --config, and train runs one
    step of --config=tiny on a folder of 16 images."""
    from PIL import Image

    src = tmp_path / "src"
    shutil.copytree(os.path.join(REPO, "tfsym3d"), src / "tfsym3d",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(os.path.join(REPO, name), src)
    site = tmp_path / "site"
    # Built in pip's isolated environment (setuptools from the package index, as any
    # `pip install .` does): the venv's own setuptools may be too old to build a wheel.
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    f"--target={site}", str(src)], check=True, timeout=600)
    shutil.rmtree(src)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site), CUDA_VISIBLE_DEVICES="")

    def tfsym3d(*argv):
        return subprocess.run([sys.executable, "-m", "tfsym3d.cli", *argv], cwd=empty,
                              env=env, capture_output=True, text=True, timeout=600)

    where = subprocess.run([sys.executable, "-c", "import tfsym3d; print(tfsym3d.__file__)"],
                           cwd=empty, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(site)), where.stdout
    done = tfsym3d("convert-official", os.path.join(FIXTURES, "official", "model_legacy.pth"),
                   f"--out={tmp_path / 'converted.keras'}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "converted.keras").is_file()

    rng = np.random.default_rng(0)
    for split, n in (("train", 16), ("val", 4)):
        (tmp_path / "photos" / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (80, 80, 3), np.uint8)).save(
                tmp_path / "photos" / split / f"{i}.png")
    done = tfsym3d("train", "--config=tiny", f"--run_dir={tmp_path / 'run'}",
                   f"--set=data_dir={tmp_path / 'photos'}", "--set=load_gt_depth=false",
                   "--set=num_epochs=1", "--set=steps_per_epoch=1", "--set=val_steps=1",
                   "--progress=none")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "run" / "checkpoints" / "ckpt-1.index").exists()


@pytest.mark.parametrize("item,message", [
    ("batch_size=0", "batch_size must be >= 1; got 0"),
    ("batch_size=-1", "batch_size must be >= 1; got -1"),
    ("num_epochs=-1", "num_epochs must be >= 1; got -1"),
    ("lr=-1", "lr must be > 0; got -1.0"),
    ("lr=0", "lr must be > 0; got 0.0"),
    ("fov=180", "fov must be > 0 and < 180; got 180.0"),
    ("beta2=1", "beta2 must be >= 0 and < 1; got 1.0"),
    ("lam_flip=-0.5", "lam_flip must be >= 0; got -0.5"),
    ("steps_per_epoch=ten", "steps_per_epoch must be a number; got 'ten'"),
])
def test_numeric_keys_out_of_range_are_named(item, message):
    with pytest.raises(ValueError) as err:
        load_config("tiny", [item])
    assert str(err.value).endswith(message), str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("item", ["crop=[1,2", "crop=!!python/object/apply:os.system [ls]"])
def test_malformed_override_values_are_one_line(item):
    with pytest.raises(ValueError) as err:
        load_config("tiny", [item])
    assert str(err.value).startswith(f"override {item!r}: not a YAML value (")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("argv,message", [
    (["--set=batch_size=0"], "tiny.yaml: batch_size must be >= 1; got 0"),
    (["--set=crop=[1,2"], "override 'crop=[1,2': not a YAML value"),
    (["--devices=0"], "--devices must be at least 1; got 0"),
    (["--devices=999"], "--devices=999: no GPU and"),
])
def test_train_refuses_bad_settings_in_one_line(tmp_path, capsys, argv, message):
    from tfsym3d import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.run(["tfsym3d", "train", "--config=tiny", f"--run_dir={tmp_path / 'run'}",
                 f"--set=data_dir={tmp_path}", *argv])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tfsym3d train: ") and message in err[0], err
    assert not (tmp_path / "run").exists()


def test_a_bad_config_key_has_one_status_in_every_command(tmp_path, capsys):
    """The same mistake, the same exit status (2, as a bad flag) and one line naming it."""
    from tests.test_evaluate import run

    bad = tmp_path / "bad.yaml"
    bad.write_text("lam_flipp: 1\n")
    pth = os.path.join(os.path.dirname(__file__), "fixtures", "official", "trainer_zip.pth")
    commands = {
        "train": ["train", f"--config={bad}", f"--run_dir={tmp_path / 'run'}"],
        "evaluate": ["evaluate", f"--config={bad}", f"--data={tmp_path}"],
        "convert-official": ["convert-official", pth, f"--config={bad}",
                             f"--out={tmp_path / 'conv'}"],
    }
    for name, argv in commands.items():
        assert run(["tfsym3d", *argv]) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "lam_flipp" in err[0] and str(bad) in err[0], (name, err)
