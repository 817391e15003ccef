"""Training past one machine, with local worker processes on 127.0.0.1: TF_CONFIG checks,
sharded TFRecords, two workers against one process on the same global batches, and a
worker killed and restarted. Every process is bounded in time and killed by its id."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.test_evaluate import run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Small and deterministic: the files' order (shuffle_buffer 1), no random flips, a seed.
SMALL = ["load_gt_depth=true", "batch_size=4", "val_steps=1", "seed=0", "shuffle_buffer=1",
         "random_flip=false", "nf_depth=16", "zdim_depth=16", "nf_light=8", "nf_conf=16",
         "zdim_conf=16"]

pytestmark = pytest.mark.multiprocess


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tf_config(ports, index):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def start_worker(config, run_dir, data, sets, log, timeout=60):
    env = dict(os.environ, TF_CONFIG=config, TF_CPP_MIN_LOG_LEVEL="2",
               CUDA_VISIBLE_DEVICES="")
    argv = [sys.executable, "-m", "tfsym3d.cli", "train", "--config=configs/tiny.yaml",
            f"--run_dir={run_dir}", "--progress=epoch", f"--worker_timeout={timeout}",
            f"--set=data_dir={data}"] + [f"--set={s}" for s in SMALL + sets]
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def finish(processes, timeout):
    """Waits for the processes up to timeout seconds in all; kills (SIGKILL, by id) any
    still running. Returns their exit codes (None for a killed one)."""
    deadline = time.monotonic() + timeout
    codes = []
    for p in processes:
        try:
            codes.append(p.wait(timeout=max(deadline - time.monotonic(), 0.1)))
        except subprocess.TimeoutExpired:
            codes.append(None)
    for p in processes:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
    return codes


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """A paired synthetic dataset (32 training images) as 2 TFRecord shards per split."""
    from tfsym3d.data.synth import generate

    root = tmp_path_factory.mktemp("mw")
    generate(str(root / "files"), 40, image_size=64, seed=2, batch=20)
    assert run(["tfsym3d", "prepare-tfrecords", f"--data={root / 'files'}",
                f"--out={root / 'records'}", "--shards=2"]) == 0
    return root


def test_a_missing_worker_is_named_not_waited_for(tmp_path, records):
    ports = free_ports(2)
    with open(tmp_path / "w0.log", "w") as log:
        p = start_worker(tf_config(ports, 0), tmp_path / "run", records / "records",
                         ["num_epochs=1"], log, timeout=5)
        code, = finish([p], 90)
    text = (tmp_path / "w0.log").read_text()
    assert code == -signal.SIGKILL, text[-2000:]  # killed by its watchdog
    assert f"worker 1 (127.0.0.1:{ports[1]})" in text
    bad = dict(os.environ, TF_CONFIG="{oops")
    out = subprocess.run([sys.executable, "-m", "tfsym3d.cli", "train",
                          "--config=configs/tiny.yaml", f"--run_dir={tmp_path / 'r2'}"],
                         cwd=ROOT, env=bad, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "TF_CONFIG is not valid JSON" in out.stderr


def test_truncated_shards_are_named_and_skipped(tmp_path, records, logged):
    from tfsym3d.data import folder, tfrecords

    split = tmp_path / "data" / "train"
    shutil.copytree(records / "records" / "train", split)
    shards = tfrecords.shard_files(str(split))
    assert len(shards) == 2
    whole = tfrecords.count_records(shards[0])
    raw = open(shards[1], "rb").read()
    with open(shards[1], "wb") as f:
        f.write(raw[:-100])
    counter = folder.SkipCounter()
    ds = folder.paired_dataset(str(tmp_path / "data"), "train", batch_size=2,
                               counter=counter)
    assert sum(len(b[0]) for b in ds) == whole
    assert counter.take() == [shards[1]]
    assert "truncated" in logged()


def test_records_decode_like_the_files(records):
    from tfsym3d.data import folder

    for split in ("train", "test"):
        files = list(folder.paired_dataset(str(records / "files"), split, batch_size=4))
        recs = list(folder.paired_dataset(str(records / "records"), split, batch_size=4))
        assert len(files) == len(recs) > 0
        for a, b in zip(files, recs, strict=True):  # 2 shards, round robin: same order
            np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
            np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())


def first_line(text):
    """The first line a worker printed itself (TensorFlow's C++ start-up lines aside)."""
    noise = ("WARNING: All log messages", "I0000", "W0000", "E0000")
    return next(line for line in text.splitlines() if not line.startswith(noise))


def epoch_losses(log_dir):
    """The per-epoch loss the chief's TensorBoard callback wrote."""
    import tensorflow as tf

    losses = {}
    for name in sorted(os.listdir(log_dir)):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(log_dir, name)):
            for value in event.summary.value:
                if value.tag == "epoch_loss":
                    losses[event.step] = float(tf.make_ndarray(value.tensor))
    return [losses[k] for k in sorted(losses)]


def test_two_workers_match_one_process_on_the_same_global_batches(tmp_path, records):
    """Worker k reads shard k (AutoShardPolicy.FILE) in its order, 2 images a step; one
    process given, each step, shard 0's 2 images then shard 1's must see the same losses:
    the first step checks the forward pass and the data, the next ones the all-reduced
    gradients and their scaling."""
    import tensorflow as tf

    from tfsym3d.config import load_config
    from tfsym3d.data import folder
    from tfsym3d.train import train

    ports = free_ports(2)
    run_dir = tmp_path / "run"
    sets = ["num_epochs=3", "steps_per_epoch=1"]
    logs = [open(tmp_path / f"w{i}.log", "w") for i in range(2)]
    try:
        workers = [start_worker(tf_config(ports, i), run_dir, records / "records", sets,
                                logs[i]) for i in range(2)]
        codes = finish(workers, 400)
    finally:
        for log in logs:
            log.close()
    texts = [(tmp_path / f"w{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], texts[0][-3000:] + texts[1][-3000:]
    assert first_line(texts[0]) == ("strategy: MultiWorkerMirroredStrategy, 2 worker(s), "
                                    "this is worker 0 (chief), 2 replica(s) in sync")
    assert first_line(texts[1]).endswith("this is worker 1, 2 replica(s) in sync")
    # Only the chief writes the run directory (and holds its training lock).
    assert sorted(os.listdir(run_dir)) == [".train.lock", "checkpoints", "config.yaml", "logs"]
    assert os.path.exists(run_dir / "checkpoints" / "ckpt-3.index")
    multi = epoch_losses(run_dir / "logs" / "train")

    # One process, one device, the same global batches.
    halves = []
    for k in range(2):
        shard_root = tmp_path / f"shard{k}"
        (shard_root / "train").mkdir(parents=True)
        shard = sorted((records / "records" / "train").glob("*.tfrecord"))[k]
        shutil.copy(shard, shard_root / "train")
        halves.append(folder.paired_dataset(str(shard_root), "train", batch_size=2,
                                            training=True, seed=0, shuffle_buffer=1,
                                            random_flip=False, repeat=True))
    global_batches = tf.data.Dataset.zip(tuple(halves)).map(
        lambda a, b: (tf.concat([a[0], b[0]], 0), tf.concat([a[1], b[1]], 0)))
    cfg = load_config("configs/tiny.yaml", SMALL + sets + [f"data_dir={records / 'x'}"])
    _, history = train(cfg, str(tmp_path / "single"), train_ds=global_batches, verbose=0)
    single = history.history["loss"]
    assert len(multi) == len(single) == 3
    # The first step's loss agrees to ~1e-6; Adam's early updates are about lr * sign(g),
    # so the all-reduce's summation order, rounding near-zero gradients differently,
    # moves some weights by up to lr: 2.1e-4 and 6.4e-4 relative in the third step's loss
    # on the default synthetic faces on two VMs. (Adam is scale-invariant, so what this
    # catches is a missing all-reduce or wrong data, which move the loss by far more.)
    np.testing.assert_allclose(multi, single, rtol=1e-3)
    assert single[2] < single[0]  # it trained


def test_a_killed_worker_restarts_from_the_last_epoch(tmp_path, records):
    ports = free_ports(2)
    run_dir = tmp_path / "run"
    sets = ["num_epochs=3", "steps_per_epoch=3"]
    first = tmp_path / "checkpoints-1"
    logs = [open(tmp_path / f"a{i}.log", "w") for i in range(2)]
    try:
        workers = [start_worker(tf_config(ports, i), run_dir, records / "records", sets,
                                logs[i], timeout=20) for i in range(2)]
        deadline = time.monotonic() + 300
        while not (run_dir / "checkpoints" / "ckpt-1.index").exists():
            assert time.monotonic() < deadline and all(w.poll() is None for w in workers)
            time.sleep(0.2)
        os.kill(workers[1].pid, signal.SIGKILL)  # worker 1 dies after epoch 1
        workers[1].wait()
        finish(workers[:1], 60)  # the chief stops (its all-reduce times out) or is killed
    finally:
        for log in logs:
            log.close()
    shutil.copytree(run_dir / "checkpoints", first)
    done_before = max(int(f[5:-6]) for f in os.listdir(first) if f.endswith(".index"))
    assert 1 <= done_before < 3

    logs = [open(tmp_path / f"b{i}.log", "w") for i in range(2)]
    try:
        fresh = free_ports(2)
        workers = [start_worker(tf_config(fresh, i), run_dir,
                                records / "records", sets, logs[i]) for i in range(2)]
        codes = finish(workers, 400)
    finally:
        for log in logs:
            log.close()
    texts = [(tmp_path / f"b{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], texts[0][-3000:]
    for text in texts:
        assert f"{done_before} epoch(s) done" in text
        assert f"Epoch {done_before + 1}/3" in text and "Epoch 1/3" not in text
    assert os.path.exists(run_dir / "checkpoints" / "ckpt-3.index")
