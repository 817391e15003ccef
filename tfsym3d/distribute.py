"""Distribution strategies for `tfsym3d train`: one device, several local devices, or
several workers named by TF_CONFIG.

    strategy = make_strategy(devices=1, kind="auto", worker_timeout=300)
    line = describe(strategy)          # the first line `tfsym3d train` prints
    if is_chief(strategy): ...         # only the chief writes the run directory

TF_CONFIG is TensorFlow's cluster description (JSON), the same on every worker but for
"task":
    {"cluster": {"worker": ["host1:12345", "host2:12345"]},
     "task": {"type": "worker", "index": 0}}
With more than one worker (and kind "auto") training uses MultiWorkerMirroredStrategy,
each worker with all its local devices; the global batch size stays the config's, each
worker computes batch_size / replicas images a step, and the gradients are summed over
all replicas (the learning rate needs no change).

MultiWorkerMirroredStrategy waits, inside TensorFlow's C++ runtime and deaf to SIGTERM,
until every worker is up. A watchdog process bounds that wait: a worker whose address does
not accept connections within worker_timeout seconds is named and the process is
killed. Collective operations get the same timeout, so a worker that dies later stops the
others with an error instead of a hang.
"""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time

from tfsym3d.errors import UsageError

KINDS = ("auto", "default", "mirrored", "multi_worker")
log = logging.getLogger(__name__)


def read_tf_config(environ=None):
    """The cluster TF_CONFIG describes, checked, or None without TF_CONFIG.

    Returns:
      {"cluster": {type: [address]}, "type": task type, "index": task index,
       "workers": [(type, index, address)] in TensorFlow's order (chief first)}.

    Raises:
      ValueError, one line saying what is wrong (bad JSON, no task, an index out of
      range, an address without a port).
    """
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON: {err}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("cluster"), dict):
        raise ValueError("TF_CONFIG has no \"cluster\" mapping of task type to addresses")
    cluster = spec["cluster"]
    for kind, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            raise ValueError(f"TF_CONFIG cluster.{kind} must be a list of host:port strings")
        for address in addresses:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"TF_CONFIG cluster.{kind}: {address!r} is not host:port")
    task = spec.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ValueError("TF_CONFIG has no \"task\" with \"type\" and \"index\" (which "
                         "worker is this process?)")
    kind, index = task["type"], task["index"]
    if kind not in cluster:
        raise ValueError(f"TF_CONFIG task type {kind!r} is not in the cluster "
                         f"({', '.join(cluster)})")
    if not isinstance(index, int) or isinstance(index, bool) or \
            not 0 <= index < len(cluster[kind]):
        raise ValueError(f"TF_CONFIG task index {index!r} is out of range: cluster.{kind} "
                         f"has {len(cluster[kind])} address(es)")
    workers = [(k, i, a) for k in ("chief", "worker") for i, a in enumerate(cluster.get(k, []))]
    return {"cluster": cluster, "type": kind, "index": index, "workers": workers}


def _reachable(address, timeout=1.0):
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except OSError:
        return False


class PeerWatchdog:
    """Kills this process with a line naming the workers that did not accept a connection
    within `timeout` seconds, unless `stop` is called first.

    It runs as a separate small process (this file run as a script): while
    MultiWorkerMirroredStrategy waits for its peers, TensorFlow's runtime holds the
    interpreter and catches SIGTERM, so neither a thread nor a polite signal could end
    the wait. The process then ends with SIGKILL (exit status 137 in a shell)."""

    def __init__(self, spec, timeout):
        me = (spec["type"], spec["index"])
        peers = [f"{k}:{i}={a}" for k, i, a in spec["workers"] if (k, i) != me]
        self._argv = [sys.executable, os.path.abspath(__file__), str(os.getpid()),
                      str(timeout)] + peers
        self._process = None

    def start(self):
        self._process = subprocess.Popen(self._argv, stdin=subprocess.DEVNULL)
        return self

    def stop(self):
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()


def _watch(parent, timeout, peers, poll=0.5):
    """The watchdog process: peers are "type:index=host:port"."""
    waiting = dict(p.split("=", 1) for p in peers)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(parent, 0)
        except OSError:
            return  # the trainer is gone
        waiting = {name: a for name, a in waiting.items() if not _reachable(a)}
        time.sleep(poll)
    names = ", ".join(f"{name.replace(':', ' ')} ({a})" for name, a in waiting.items())
    # A process of its own, without the command's handler: logging's last resort writes
    # the message as it is to stderr.
    log.error(f"tfsym3d train: no answer within {timeout:g} s from "
              f"{names or 'the cluster (every address answers, but the workers did not meet)'}"
              "; start the same command on every worker of TF_CONFIG")
    os.kill(parent, signal.SIGKILL)


def make_strategy(devices=1, kind="auto", worker_timeout=300.0):
    """The distribution strategy for this process.

    Args:
      devices: local replicas for "mirrored" (>1 splits the CPU into logical devices
        when there are fewer GPUs); ignored by "multi_worker", which uses every GPU or
        the CPU.
      kind: "auto" (multi_worker when TF_CONFIG names more than one worker, else mirrored
        with devices > 1, else default), or one of KINDS to force it.
      worker_timeout: seconds to wait for the other workers, and for any collective.

    Must run before TensorFlow initialises its devices. Raises ValueError (one line) for
    a malformed TF_CONFIG, errors.UsageError (a ValueError) for an impossible request.
    """
    import tensorflow as tf

    if kind not in KINDS:
        raise UsageError(f"--strategy must be one of {', '.join(KINDS)}; got {kind!r}")
    if devices < 1:
        raise UsageError(f"--devices must be at least 1; got {devices}")
    spec = read_tf_config()
    if kind == "auto":
        if spec is not None and len(spec["workers"]) > 1:
            kind = "multi_worker"
        else:
            kind = "mirrored" if devices > 1 else "default"
    if kind == "multi_worker":
        if spec is None:
            raise ValueError("--strategy=multi_worker needs TF_CONFIG naming the workers")
        watchdog = PeerWatchdog(spec, worker_timeout).start()
        options = tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=worker_timeout)
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        watchdog.stop()
        return strategy
    if kind == "default":
        return tf.distribute.get_strategy()
    return _mirrored(devices)


def _mirrored(devices):
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) >= devices:
        return tf.distribute.MirroredStrategy([f"/gpu:{i}" for i in range(devices)])
    if gpus:
        raise UsageError(f"--devices={devices}: this machine has {len(gpus)} GPU(s)")
    cores = os.cpu_count() or 1
    if devices > cores:
        raise UsageError(f"--devices={devices}: no GPU and {cores} CPU core(s); the CPU "
                         f"splits into at most {cores} devices")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
    except RuntimeError:
        pass  # already initialised; fine if it was split the same way before
    logical = tf.config.list_logical_devices("CPU")
    if len(logical) < devices:
        raise ValueError(f"--devices={devices}: only {len(logical)} CPU devices; TensorFlow "
                         "was initialised before the CPU could be split")
    log.info(f"training on {devices} logical CPU devices ({len(gpus)} GPUs found)")
    return tf.distribute.MirroredStrategy(
        [d.name for d in logical[:devices]],
        cross_device_ops=tf.distribute.ReductionToOneDevice())


def worker_info(strategy):
    """(number of workers, this worker's task type, index) for any strategy."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return 1, None, 0
    spec = resolver.cluster_spec().as_dict()
    count = len(spec.get("chief", [])) + len(spec.get("worker", []))
    return count, resolver.task_type, resolver.task_id


def is_chief(strategy):
    """True on the process that writes the run directory: the only one, the "chief"
    task, or worker 0 of a cluster without a chief (TensorFlow's convention)."""
    count, task_type, task_id = worker_info(strategy)
    if count <= 1 or task_type is None:
        return True
    if task_type == "chief":
        return True
    resolver = strategy.cluster_resolver
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def describe(strategy):
    """One line: strategy, workers, this worker and the replicas."""
    import tensorflow as tf

    count, task_type, task_id = worker_info(strategy)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        name = "MultiWorkerMirroredStrategy"
    elif isinstance(strategy, tf.distribute.MirroredStrategy):
        name = "MirroredStrategy"
    else:
        name = "default (one device)"
    line = f"strategy: {name}, {count} worker(s)"
    if task_type is not None:
        line += f", this is {task_type} {task_id}" + (" (chief)" if is_chief(strategy) else "")
    return line + f", {strategy.num_replicas_in_sync} replica(s) in sync"


if __name__ == "__main__":  # the watchdog process (see PeerWatchdog)
    _watch(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3:])
