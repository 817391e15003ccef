"""Trained models by name: the authors' published `celeba`, `synface`, `cat`, `syncar`,
and the project's own `tiny-faces` (shipped in the package).

    tfsym3d reconstruct --checkpoint=celeba --crop=face selfie.jpg   # any --checkpoint
    model = tfsym3d.load_model("cat")
    tfsym3d pretrained celeba        # fetch now;   tfsym3d pretrained --list

On first use a name's zip (BASE/pretrained_NAME.zip, as the authors' download scripts
fetch it; BASE is TFSYM3D_PRETRAINED_URL or their server) is downloaded into a
temporary file, checked (a zip holding pretrained_NAME/checkpointNNN.pth), converted by
tfsym3d.official (every tensor checked) and only then renamed into the cache,
$TFSYM3D_HOME/pretrained/NAME (default ~/.cache/tfsym3d), a run directory that later
uses read. A lock makes two processes asking at once download once. Anything that goes
wrong (no network, a refused or stalled connection, an HTML page, a truncated zip) is a
PretrainedError naming the address and what to do by hand, with nothing cached.

`tiny-faces` is configs/tiny.yaml trained on 3000 synthetic faces (docs/models.md says
how, with its scores): its weights are in the package as float16
(tfsym3d/models/tiny-faces.npz, written by `tfsym3d pretrained --pack=RUN --out=FILE`)
and are unpacked into the same cache on first use, offline.
"""

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile

from tfsym3d.errors import UserError

log = logging.getLogger(__name__)

BASE_URL = "https://www.robots.ox.ac.uk/~vgg/research/unsup3d/data"
# name -> the checkpoint inside its zip (the authors' download scripts and README).
MODELS = {"celeba": "checkpoint030.pth", "synface": "checkpoint030.pth",
          "cat": "checkpoint100.pth", "syncar": "checkpoint100.pth"}
# name -> the packed weights in the package (see pack): the project's own models.
OWN = {"tiny-faces": os.path.join(os.path.dirname(os.path.abspath(__file__)), "models",
                                  "tiny-faces.npz")}
NAMES = (*MODELS, *OWN)
MAX_ZIP_BYTES = 2 ** 30  # the published zips are tens of MB
TIMEOUT_S = 60.0  # a stalled server: no byte for this long (TFSYM3D_DOWNLOAD_TIMEOUT)


class PretrainedError(UserError):
    """A published model that could not be fetched or read; the message says what to do."""


def home():
    """The cache root: $TFSYM3D_HOME, else $XDG_CACHE_HOME/tfsym3d, else ~/.cache/tfsym3d."""
    if os.environ.get("TFSYM3D_HOME"):
        return os.environ["TFSYM3D_HOME"]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                            ".cache")
    return os.path.join(cache, "tfsym3d")


def url_of(name):
    """BASE/pretrained_NAME.zip, BASE from TFSYM3D_PRETRAINED_URL or the authors'."""
    base = os.environ.get("TFSYM3D_PRETRAINED_URL") or BASE_URL
    return f"{base.rstrip('/')}/pretrained_{name}.zip"


def cache_dir(name):
    return os.path.join(home(), "pretrained", name)


def is_cached(name):
    d = cache_dir(name)
    return os.path.isfile(os.path.join(d, "config.yaml")) and \
        os.path.isdir(os.path.join(d, "checkpoints"))


def fetch(name):
    """The run directory of published model `name`, downloaded and converted on first
    use (see the module docstring); progress is logged.

    Raises PretrainedError (one line) when it cannot be had; nothing is cached then."""
    if name not in NAMES:
        raise PretrainedError(f"{name}: not a published model (known: "
                              f"{', '.join(NAMES)})")
    if is_cached(name):
        return cache_dir(name)
    root = os.path.join(home(), "pretrained")
    os.makedirs(root, exist_ok=True)
    with _locked(os.path.join(root, f".{name}.lock")):
        if is_cached(name):  # another process finished it while this one waited
            return cache_dir(name)
        with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=root) as work:
            run_dir = os.path.join(work, "run")
            if name in OWN:
                unpack(OWN[name], run_dir)
            else:
                zip_path = os.path.join(work, f"pretrained_{name}.zip")
                download(url_of(name), zip_path, _by_hand(name))
                _convert(name, _extract(name, zip_path, work), run_dir)
            shutil.rmtree(cache_dir(name), ignore_errors=True)  # a partial one of ours
            os.replace(run_dir, cache_dir(name))
    log.info(f"{name}: cached in {cache_dir(name)}")
    return cache_dir(name)


def download(url, path, by_hand=""):
    """url -> path, in chunks; progress logged every 10%.
    PretrainedError naming the address on any failure, `by_hand` (what to do instead)
    after it."""
    timeout = float(os.environ.get("TFSYM3D_DOWNLOAD_TIMEOUT") or TIMEOUT_S)
    done, shown = 0, -1
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, \
                open(path, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            if total > MAX_ZIP_BYTES:
                raise PretrainedError(f"{url}: {total:,} bytes, over {MAX_ZIP_BYTES:,}")
            while True:
                chunk = response.read(1 << 20)
                if not chunk:
                    break
                done += len(chunk)
                if done > MAX_ZIP_BYTES:
                    raise PretrainedError(f"{url}: over {MAX_ZIP_BYTES:,} bytes")
                out.write(chunk)
                step = done * 10 // total if total else shown
                if step != shown:
                    log.info(f"{url}: {step * 10}% ({done / 2 ** 20:.1f} of "
                             f"{total / 2 ** 20:.1f} MiB)")
                    shown = step
            if total and done != total:
                raise PretrainedError(f"{url}: the connection closed after {done:,} of "
                                      f"{total:,} bytes")
    except PretrainedError as err:
        raise PretrainedError(f"{err}; {by_hand}".rstrip("; ")) from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        raise PretrainedError(f"{url}: cannot download ({reason}); {by_hand}".rstrip("; ")) \
            from None


def _extract(name, zip_path, work):
    """The checkpoint of pretrained_NAME.zip, extracted into work: its path."""
    member = f"pretrained_{name}/{MODELS[name]}"
    url = url_of(name)
    try:
        with zipfile.ZipFile(zip_path) as z:
            try:
                info = z.getinfo(member)
            except KeyError:
                raise PretrainedError(f"{url}: the zip has no {member}; "
                                      f"{_by_hand(name)}") from None
            if info.file_size > MAX_ZIP_BYTES:
                raise PretrainedError(f"{url}: {member} unpacks to {info.file_size:,} bytes")
            return z.extract(info, work)
    except zipfile.BadZipFile:
        raise PretrainedError(f"{url}: not a zip file (an error page, or cut short); "
                              f"{_by_hand(name)}") from None


def _convert(name, pth, run_dir):
    from tfsym3d import official

    preset = os.path.join(official.CONFIG_DIR, f"{name}.yaml")
    try:
        model = official.convert(pth, preset)[0]
    except ValueError as err:
        raise PretrainedError(f"{url_of(name)}: its checkpoint does not convert: {err}") \
            from None
    official.write_model(model, run_dir)


def _by_hand(name):
    return (f"fetch {url_of(name)} by hand, unzip it and use "
            f"--checkpoint=pretrained_{name}/{MODELS[name]}")


def pack(run_dir, out):
    """Writes a run directory's model as one small file: its config (YAML text) and its
    weights in float16 (the others as they are), in the model's weight order (unpack
    checks their number and shapes). Returns the file's size in bytes."""
    import numpy as np

    from tfsym3d import checkpoints

    model = checkpoints.load_model(run_dir)
    with open(checkpoints.config_path(run_dir)) as f:
        arrays = {"config": np.array(f.read()), "count": np.array(len(model.weights))}
    for k, w in enumerate(model.weights):
        value = w.numpy()
        arrays[f"w{k}"] = value.astype(np.float16) if value.dtype == np.float32 else value
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "wb") as f:
        np.savez_compressed(f, **arrays)
    return os.path.getsize(out)


def unpack(path, run_dir):
    """A file written by pack -> a run directory (config.yaml and a checkpoint)."""
    import numpy as np
    import yaml

    from tfsym3d import official
    from tfsym3d.config import load_config
    from tfsym3d.model import Unsup3D, build

    with np.load(path, allow_pickle=False) as packed:
        model = build(Unsup3D(load_config(None, yaml.safe_load(str(packed["config"])))))
        shapes = [packed[f"w{k}"].shape for k in range(int(packed["count"]))]
        if shapes != [tuple(w.shape) for w in model.weights]:
            raise PretrainedError(f"{path}: its weights are not those of its config's model")
        for k, w in enumerate(model.weights):
            w.assign(packed[f"w{k}"].astype(w.dtype))
    official.write_model(model, run_dir)


@contextlib.contextmanager
def _locked(path):
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def listing():
    """[(name, cached run directory or None, its size in bytes, address)]."""
    rows = []
    for name in NAMES:
        d = cache_dir(name) if is_cached(name) else None
        size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d)
                   for f in fs) if d else 0
        rows.append((name, d, size, OWN[name] if name in OWN else url_of(name)))
    return rows
