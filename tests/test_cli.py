"""The `tfsym3d` command line: TensorFlow's start-up lines stay hidden unless asked for."""

import os
import subprocess
import sys

BIN = os.path.join(os.path.dirname(sys.executable), "tfsym3d")


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
