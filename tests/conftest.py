import os

import pytest

import tfsym3d  # noqa: F401  (first: it sets TensorFlow's start-up options)

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


@pytest.fixture
def logged(caplog):
    """A function giving the lines the library logged (logger `tfsym3d`, INFO and above)
    since the last call, one per line: what a command shows on stderr."""
    caplog.set_level("INFO", logger="tfsym3d")

    def lines():
        text = "\n".join(r.getMessage() for r in caplog.records
                         if r.name.startswith("tfsym3d"))
        caplog.clear()
        return text

    return lines


@pytest.fixture(scope="session")
def model_run(tmp_path_factory):
    """A run directory holding an untrained configs/tiny.yaml model (shared by the tests
    of the commands that load checkpoints)."""
    import keras

    from tfsym3d import Unsup3D, load_config
    from tfsym3d.checkpoints import checkpoint_dir, config_path, make_checkpoint
    from tfsym3d.model import build

    run_dir = tmp_path_factory.mktemp("run")
    cfg = load_config("configs/tiny.yaml")
    keras.utils.set_random_seed(0)  # the same untrained weights every run
    model = build(Unsup3D(cfg))
    os.makedirs(checkpoint_dir(run_dir))
    cfg.save(config_path(run_dir))
    make_checkpoint(model).save(os.path.join(checkpoint_dir(run_dir), "ckpt"))
    return run_dir


@pytest.fixture(scope="session")
def exported(model_run, tmp_path_factory):
    """model_run exported to every format, TFLite as fp32, fp16 and int8 (shared by the
    export and phone-demo tests)."""
    from tfsym3d import cli

    out = tmp_path_factory.mktemp("exported")
    with pytest.raises(SystemExit) as exit_info:
        cli.run(["tfsym3d", "export", f"--checkpoint={model_run}", f"--out={out}",
                 "--quantize=none,fp16,int8"])
    assert exit_info.value.code == 0
    return out
