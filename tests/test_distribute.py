"""Distribution strategies (tfsym3d.distribute): TF_CONFIG checked in one line, and two
replicas computing what one does on the same global batch. Worker processes on
127.0.0.1: test_multiworker.py."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.test_model import REPO, TINY
from tfsym3d import distribute


def test_tf_config_errors_are_one_line():
    good = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
            "task": {"type": "worker", "index": 1}}
    spec = distribute.read_tf_config({"TF_CONFIG": json.dumps(good)})
    assert spec["index"] == 1 and len(spec["workers"]) == 2
    assert distribute.read_tf_config({}) is None
    cases = [("{not json", "not valid JSON"),
             (json.dumps({"cluster": good["cluster"]}), "no \"task\""),
             (json.dumps(dict(good, task={"type": "worker", "index": 2})), "out of range"),
             (json.dumps(dict(good, task={"type": "ps", "index": 0})), "not in the cluster"),
             (json.dumps({"cluster": {"worker": ["nohost"]}, "task": good["task"]}),
              "not host:port")]
    for text, message in cases:
        with pytest.raises(ValueError, match=message) as err:
            distribute.read_tf_config({"TF_CONFIG": text})
        assert "\n" not in str(err.value)


@pytest.mark.slow
def test_two_replicas_match_one_replica_on_the_same_global_batch():
    script = textwrap.dedent("""
        import numpy as np, tensorflow as tf, keras
        from tfsym3d.distribute import make_strategy
        strategy = make_strategy(2)
        from tfsym3d import Unsup3D, load_config
        from tfsym3d.model import build
        cfg = load_config(None, CFG)
        rng = np.random.default_rng(0)
        x = rng.uniform(size=(4, 64, 64, 3)).astype(np.float32)
        def one_step(strat):
            with strat.scope():
                keras.utils.set_random_seed(0)
                m = build(Unsup3D(cfg))
                # SGD: the update is the summed gradient itself. (Adam's first step is
                # lr * sign(g): a gradient near 0 whose sign differs by float rounding
                # between batch sizes moves a weight by 2 lr.)
                m.compile(optimizer=keras.optimizers.SGD(1.0))
            w0 = [v.numpy() for v in m.trainable_variables]
            ds = tf.data.Dataset.from_tensors(x)
            logs = m.fit(ds, epochs=1, verbose=0).history
            return logs["loss"][0], w0, [v.numpy() for v in m.trainable_variables]
        l1, w0, w1 = one_step(tf.distribute.get_strategy())
        l2, _, w2 = one_step(strategy)
        assert strategy.num_replicas_in_sync == 2
        diff = max(float(np.abs(a - b).max()) for a, b in zip(w1, w2))
        step = max(float(np.abs(a - b).max()) for a, b in zip(w0, w1))
        print("LOSS", l1, l2, "WEIGHTDIFF", diff, "STEP", step)
        assert abs(l1 - l2) < 1e-5, (l1, l2)
        # oneDNN's convolution gradients differ by ~3e-3 of the largest update between
        # batch 4 and 2 x 2; a replica-scaling bug would be off by ~1.
        assert diff < 1e-2 * step, (diff, step)
    """).replace("CFG", repr(dict(TINY, jit_renderer=False)))
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "LOSS" in result.stdout


def test_make_strategy_refuses_what_cannot_be_and_describes_what_it_made():
    with pytest.raises(ValueError, match="--strategy must be one of"):
        distribute.make_strategy(1, "ring")
    with pytest.raises(ValueError, match="--devices must be at least 1"):
        distribute.make_strategy(0)
    with pytest.raises(ValueError, match="needs TF_CONFIG"):
        os.environ.pop("TF_CONFIG", None)
        distribute.make_strategy(1, "multi_worker")
    strategy = distribute.make_strategy(1, "default")
    assert distribute.describe(strategy) == ("strategy: default (one device), 1 worker(s), "
                                            "1 replica(s) in sync")
    assert distribute.is_chief(strategy) and distribute.worker_info(strategy) == (1, None, 0)
