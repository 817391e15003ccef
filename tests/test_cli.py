"""The `tfsym3d` command line: TensorFlow's start-up lines stay hidden unless asked for."""

import os
import subprocess
import sys

import pytest

BIN = os.path.join(os.path.dirname(sys.executable), "tfsym3d")


@pytest.mark.slow
def test_start_up_lines_are_hidden_and_verbose_brings_them_back(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    quiet = subprocess.run([BIN, "synth", f"--out={tmp_path / 'a'}", "--num=3"],
                           capture_output=True, text=True, timeout=300, env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "", quiet.stderr
    assert quiet.stdout.startswith("wrote 3 images")
    loud = subprocess.run([BIN, "synth", f"--out={tmp_path / 'b'}", "--num=3", "--verbose"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert loud.returncode == 0, loud.stderr
    assert "oneDNN" in loud.stderr or "cpu_feature_guard" in loud.stderr, loud.stderr
    assert loud.stdout.startswith("wrote 3 images")


class _Failing:
    """A command module whose main raises what it is given."""

    def __init__(self, error):
        self.error = error

    def define_flags(self, fv):
        pass

    def main(self, fv, args):
        raise self.error


def test_an_unexpected_error_is_one_line_and_verbose_shows_its_traceback(monkeypatch,
                                                                         capsys):
    from tfsym3d import cli

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    monkeypatch.setattr(cli, "_load", lambda name: _Failing(RuntimeError("boom\nsecond")))
    with pytest.raises(SystemExit) as exit_info:
        cli.run(["tfsym3d", "train"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err == "tfsym3d train: RuntimeError: boom (--verbose shows the traceback)\n"
    with pytest.raises(RuntimeError, match="boom"):  # the traceback is Python's own
        cli.run(["tfsym3d", "train", "--verbose"])

    monkeypatch.setattr(cli, "_load", lambda name: _Failing(KeyboardInterrupt()))
    with pytest.raises(SystemExit) as exit_info:
        cli.run(["tfsym3d", "export"])
    assert exit_info.value.code == 130
    assert capsys.readouterr().err == "tfsym3d export: interrupted\n"
    from tfsym3d.errors import one_line

    assert one_line(ValueError("x" * 400)).endswith("...")
    assert len(one_line(ValueError("x" * 400))) == 300

