"""Tries the `tfsym3d` commands as a careless user and a hostile file would (issue 41):
damaged checkpoints, full disks, memory bombs, out-of-range configs, paths in the way,
bad photos and .pth files. Each probe is one `tfsym3d` process; the table says its exit
status, how many lines it wrote on stderr, whether a Python traceback showed, its peak
memory, and whether that is what the project promises.

    python scripts/probe_faults.py [--work=DIR] [--out=TABLE.md] [--json=ROWS.json]
                                   [--only=GROUP]

The workspace (a 48-image synthetic dataset, a tiny.yaml run of 2 epochs, an export) is
made once and reused when --work names it again. The last table is in docs/faults.md.
Peak memory is each process's own (os.wait4), measured from this small process.

Promises checked: an error a user can cause exits non-zero in at most two lines (one per
bad file where several are named), never with a traceback; a damaged newest checkpoint
is walked past (exit 0, the skipped one named); every probe peaks under 2 GiB; a failed
write leaves no 0-byte file, no `*_temp` or `.partial` folder. The full-disk probes mount
a 3 MB tmpfs in a user and mount namespace (`unshare -rm`); where that is not allowed
they are reported as skipped.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import hostile_files  # noqa: E402

TFSYM3D = shutil.which("tfsym3d", path=os.path.dirname(sys.executable)) or "tfsym3d"
GIB = 2 ** 30
LIMIT_BYTES = 2 * GIB
TRAIN = ["--config=tiny", "--set=batch_size=8", "--progress=none"]
SHOW = ("--nomesh", "--nogifs")


class Workspace:
    """The data, trained run, photos and export the probes start from (made once)."""

    def __init__(self, root):
        self.root = root
        self.data = os.path.join(root, "data")
        self.run = os.path.join(root, "run")
        self.photos = os.path.join(root, "photos")
        self.export = os.path.join(root, "export")

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def build(self):
        if not os.path.isdir(self.data):
            _check([TFSYM3D, "synth", "--style=faces", "--num=48", "--image_size=64",
                    f"--out={self.data}"])
        if not os.path.isdir(os.path.join(self.run, "checkpoints")):
            _check([TFSYM3D, "train", *TRAIN, f"--set=data_dir={self.data}",
                    "--set=num_epochs=2", f"--run_dir={self.run}"])
        if not os.path.isdir(self.photos):
            from PIL import Image

            os.makedirs(self.photos)
            for i in range(2):
                Image.new("RGB", (96, 80), (90 + 40 * i, 80, 70)).save(
                    os.path.join(self.photos, f"p{i}.png"))
        if not os.path.isdir(self.export):
            _check([TFSYM3D, "export", f"--checkpoint={self.run}", f"--out={self.export}",
                    "--formats=saved_model"])

    def copy_run(self, name):
        """A fresh copy of the trained run for one probe to damage."""
        dst = self.path("probes", name)
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(self.run, dst)
        return dst

    def fresh(self, name):
        """An empty folder for one probe."""
        dst = self.path("probes", name)
        shutil.rmtree(dst, ignore_errors=True)
        os.makedirs(dst)
        return dst


def _check(argv):
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"setup failed: {' '.join(argv)}\n{done.stderr[-2000:]}")


def _damage(run, how, which=2):
    prefix = os.path.join(run, "checkpoints", f"ckpt-{which}")
    if how == "index_cut":
        path = prefix + ".index"
        data = open(path, "rb").read()[:40]
    else:
        path = prefix + ".data-00000-of-00001"
        size = os.path.getsize(path)
        data = (open(path, "rb").read()[:size // 2] if how == "truncated"
                else os.urandom(size))
    with open(path, "wb") as f:
        f.write(data)


def _under_tmpfs(mount, size, shell):
    """argv running `shell` with a `size` tmpfs at `mount`, in a user and mount
    namespace; afterwards it lists 0-byte files and *_temp / .partial leftovers."""
    listing = (f"find {mount} -type f -size 0 -printf 'LEFT empty %p\\n'; "
               f"find {mount} \\( -name '*_temp' -o -name '.*.partial' \\) "
               f"-printf 'LEFT leftover %p\\n'")
    script = (f"mount -t tmpfs -o size={size} tmpfs {mount} || exit 99; {shell}; rc=$?; "
              f"{listing}; exit $rc")
    return ["unshare", "-rm", "sh", "-c", script]


# Each probe: (group, name, expect, setup) where setup(w) returns the argv (or a dict with
# argv, env, signal_after). expect: "error" (non-zero, <= 2 lines, no traceback),
# "named" (non-zero, no traceback, one line per bad file), "fallback" (exit 0, a skipped
# checkpoint named), "refused" (the serving graph's pixel limit said), "ok" (exit 0, or
# the dict's "rc"). A dict may add "check" (the files afterwards) and "timeout" (a hang).
PROBES = []


def probe(group, name, expect="error"):
    def register(setup):
        PROBES.append((group, name, expect, setup))
        return setup
    return register


def _recon(w, checkpoint, out=None, inputs=None):
    return [TFSYM3D, "reconstruct", f"--checkpoint={checkpoint}",
            f"--out={out or w.fresh('recon_out')}", *SHOW, *(inputs or [w.photos])]


def _commands(w, run):
    """The four commands that load a run directory."""
    return {
        "reconstruct": _recon(w, run),
        "export": [TFSYM3D, "export", f"--checkpoint={run}", f"--out={w.fresh('exp_out')}",
                   "--formats=tflite"],
        "evaluate": [TFSYM3D, "evaluate", f"--checkpoint={run}", f"--data={w.data}",
                     "--split=test"],
        "train": [TFSYM3D, "train", *TRAIN, f"--set=data_dir={w.data}",
                  "--set=num_epochs=3", f"--run_dir={run}"],
    }


for _how in ("truncated", "random", "index_cut"):
    for _cmd in ("reconstruct", "export", "evaluate", "train"):
        def _setup(w, how=_how, cmd=_cmd):
            run = w.copy_run(f"damaged_{how}_{cmd}")
            _damage(run, how)
            return _commands(w, run)[cmd]
        probe("1 damaged newest checkpoint", f"{_how}, {_cmd}", "fallback")(_setup)


@probe("1 damaged newest checkpoint", "every checkpoint damaged, reconstruct", "named")
def _(w):
    run = w.copy_run("all_damaged")
    _damage(run, "random", 1)
    _damage(run, "random", 2)
    return _recon(w, run)


@probe("2 disk full", "train, 3 MB tmpfs, then resume with space", "named")
def _(w):
    mount = w.fresh("tmpfs_train")
    run = os.path.join(mount, "run")
    train = " ".join([TFSYM3D, "train", *TRAIN, f"--set=data_dir={w.data}",
                      "--set=num_epochs=2", f"--run_dir={run}"])
    shell = (f"{train}; first=$?; mount -o remount,size=256m {mount}; {train} >/dev/null; "
             f"echo RESUMED rc=$?; exit $first")
    return _under_tmpfs(mount, "3m", shell)


@probe("2 disk full", "reconstruct, 300 kB tmpfs", "named")
def _(w):
    mount = w.fresh("tmpfs_recon")
    return _under_tmpfs(mount, "300k", " ".join(
        [TFSYM3D, "reconstruct", f"--checkpoint={w.run}", f"--out={mount}/out", w.photos]))


@probe("2 disk full", "export, 3 MB tmpfs")
def _(w):
    mount = w.fresh("tmpfs_export")
    return _under_tmpfs(mount, "3m", " ".join(
        [TFSYM3D, "export", f"--checkpoint={w.run}", f"--out={mount}/out",
         "--formats=saved_model,tflite"]))


@probe("3 memory", "13000x13000 PNG (0.5 MB) through reconstruct", "named")
def _(w):
    folder = w.fresh("big_png")
    hostile_files.big_png(os.path.join(folder, "big.png"), 13000, 13000)
    return _recon(w, w.run, inputs=[folder])


@probe("3 memory", "20000x20000 PNG (1.1 MB) through the SavedModel's serving_bytes",
       "refused")
def _(w):
    path = w.path("probes", "huge.png")
    if not os.path.exists(path):
        hostile_files.big_png(path, 20000, 20000)
    return [sys.executable, "-c", _serving_bytes(w, path)]


@probe("3 memory", "zip-bomb .pth (4 GB inflated) through convert-official")
def _(w):
    path = w.path("probes", "bomb.pth")
    if not os.path.exists(path):
        hostile_files.zip_bomb_pth(path, os.path.join(ROOT, "tests", "fixtures", "official",
                                                      "trainer_zip.pth"), 4 * 10 ** 9)
    return [TFSYM3D, "convert-official", path, f"--out={w.fresh('bomb_out')}/run"]


@probe("3 memory", "stride-0 view (2000, 1000000) .pth through convert-official")
def _(w):
    path = w.path("probes", "stride0.pth")
    hostile_files.stride_zero_pth(path)
    return [TFSYM3D, "convert-official", path, f"--out={w.fresh('stride_out')}/run"]


for _key, _value in (("batch_size", "0"), ("batch_size", "-1"), ("lr", "-1"),
                     ("num_epochs", "-1"), ("image_size", "0"), ("fov", "200"),
                     ("crop", "[1,2"), ("crop", "!!python/object/apply:os.system [ls]"),
                     ("no_such_key", "1")):
    def _setup(w, key=_key, value=_value):
        return [TFSYM3D, "train", *TRAIN, f"--set=data_dir={w.data}", f"--set={key}={value}",
                f"--run_dir={w.fresh('cfg_run')}/run"]
    probe("4 config ranges", f"--set={_key}={_value}")(_setup)

for _devices in ("0", "-1", "99"):
    def _setup(w, devices=_devices):
        return [TFSYM3D, "train", *TRAIN, f"--set=data_dir={w.data}", f"--devices={devices}",
                f"--run_dir={w.fresh('dev_run')}/run"]
    probe("4 config ranges", f"--devices={_devices}")(_setup)


@probe("4 config ranges", "a YAML file with a syntax error")
def _(w):
    path = w.path("probes", "bad.yaml")
    with open(path, "w") as f:
        f.write("batch_size: 8\nlr: [0.1\n")
    return [TFSYM3D, "train", f"--config={path}", f"--run_dir={w.fresh('yaml_run')}/run"]


@probe("4 config ranges", "a config file that does not exist")
def _(w):
    return [TFSYM3D, "train", "--config=no/such.yaml", f"--run_dir={w.fresh('nf_run')}/run"]


@probe("4 config ranges", "TF_CONFIG that is not JSON")
def _(w):
    return {"argv": [TFSYM3D, "train", *TRAIN, f"--set=data_dir={w.data}",
                     "--strategy=multi_worker", f"--run_dir={w.fresh('tfc_run')}/run"],
            "env": {"TF_CONFIG": "{not json"}}


@probe("5 paths in the way", "export: a file named tflite in --out")
def _(w):
    out = w.fresh("blocked_export")
    open(os.path.join(out, "tflite"), "w").close()
    return [TFSYM3D, "export", f"--checkpoint={w.run}", f"--out={out}",
            "--formats=saved_model,tflite"]


@probe("5 paths in the way", "export: --out is a file")
def _(w):
    path = os.path.join(w.fresh("file_out"), "out")
    open(path, "w").close()
    return [TFSYM3D, "export", f"--checkpoint={w.run}", f"--out={path}"]


@probe("5 paths in the way", "reconstruct: --out is a file")
def _(w):
    path = os.path.join(w.fresh("file_out2"), "out")
    open(path, "w").close()
    return _recon(w, w.run, out=path)


@probe("5 paths in the way", "reconstruct: an input that does not exist", "named")
def _(w):
    return _recon(w, w.run, inputs=[w.path("no_such.png"), w.photos])


@probe("5 paths in the way", "reconstruct: --checkpoint does not exist")
def _(w):
    return _recon(w, w.path("no_such_run"))


@probe("5 paths in the way", "evaluate: --data does not exist")
def _(w):
    return [TFSYM3D, "evaluate", f"--checkpoint={w.run}", f"--data={w.path('no_data')}"]


@probe("5 paths in the way", "prepare: --images does not exist")
def _(w):
    return [TFSYM3D, "prepare", f"--images={w.path('no_photos')}",
            f"--out={w.fresh('prep_out')}/data"]


@probe("5 paths in the way", "prepare-tfrecords: --data does not exist")
def _(w):
    return [TFSYM3D, "prepare-tfrecords", f"--data={w.path('no_data')}",
            f"--out={w.fresh('rec_out')}/rec"]


@probe("6 checkpoint vs config", "config.yaml widths changed after training")
def _(w):
    run = w.copy_run("mismatch")
    path = os.path.join(run, "config.yaml")
    text = open(path).read().replace("nf_depth: 16", "nf_depth: 32")
    assert "nf_depth: 32" in text
    with open(path, "w") as f:
        f.write(text)
    return _recon(w, run)


@probe("7 bad files", "photos: 0-byte, truncated, text as .jpg, 1x1", "named")
def _(w):
    folder = w.fresh("bad_photos")
    good = open(os.path.join(w.photos, "p0.png"), "rb").read()
    for name, data in (("empty.png", b""), ("cut.png", good[:len(good) // 2]),
                       ("text.jpg", b"this is not a picture\n" * 20)):
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
    from PIL import Image

    Image.new("RGB", (1, 1)).save(os.path.join(folder, "tiny.png"))
    shutil.copy(os.path.join(w.photos, "p0.png"), folder)
    return _recon(w, w.run, inputs=[folder])


@probe("7 bad files", ".pth: a zip cut short")
def _(w):
    path = w.path("probes", "cut.pth")
    data = open(os.path.join(ROOT, "tests", "fixtures", "official", "trainer_zip.pth"),
                "rb").read()
    with open(path, "wb") as f:
        f.write(data[:len(data) // 2])
    return [TFSYM3D, "convert-official", path, f"--out={w.fresh('cut_out')}/run"]


@probe("7 bad files", ".pth: random bytes")
def _(w):
    path = w.path("probes", "random.pth")
    with open(path, "wb") as f:
        f.write(os.urandom(5000))
    return [TFSYM3D, "convert-official", path, f"--out={w.fresh('rnd_out')}/run"]


@probe("7 bad files", ".pth: a pickle calling os.system")
def _(w):
    import pickle
    import zipfile

    class Hostile:
        def __reduce__(self):
            return os.system, (f"touch {w.path('probes', 'RAN')}",)

    path = w.path("probes", "hostile.pth")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hostile/data.pkl", pickle.dumps({"netD": Hostile()}, protocol=2))
        archive.writestr("hostile/version", "3\n")
    return [TFSYM3D, "convert-official", path, f"--out={w.fresh('hostile_out')}/run"]


@probe("7 bad files", "evaluate: one depth PNG missing", "named")
def _(w):
    data = w.fresh("missing_depth")
    shutil.rmtree(data)
    shutil.copytree(w.data, data)
    depths = sorted(f for f in os.listdir(os.path.join(data, "test", "depth")))
    os.remove(os.path.join(data, "test", "depth", depths[0]))
    return [TFSYM3D, "evaluate", f"--checkpoint={w.run}", f"--data={data}", "--split=test"]


@probe("8 interrupt", "Ctrl-C (SIGINT) during training")
def _(w):
    return {"argv": [TFSYM3D, "train", *TRAIN, f"--set=data_dir={w.data}",
                     "--set=num_epochs=50", f"--run_dir={w.fresh('sigint')}/run"],
            "signal_after": 25}


# Issue 49: nothing of the user's lost, limits at every door. A probe's `check` (given the
# probe's stdout and stderr) returns what is wrong with the files afterwards, or None.

def _tree(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder)
                  for d, _, files in os.walk(folder) for f in files)


@probe("9 user files", "export --name=../../victim: refused, the victim kept")
def _(w):
    out = w.fresh("name_escape")
    victim = os.path.join(out, "victim", "1")
    os.makedirs(victim)
    open(os.path.join(victim, "mine.txt"), "w").close()
    return {"argv": [TFSYM3D, "export", f"--checkpoint={w.run}",
                     f"--out={os.path.join(out, 'a', 'b')}", "--name=../../victim"],
            "check": lambda *_: None if _tree(os.path.join(out, "victim")) == ["1/mine.txt"]
            else f"victim now {_tree(os.path.join(out, 'victim'))}"}


@probe("9 user files", "reconstruct into an out/holiday/ of the user's", "ok")
def _(w):
    out = w.fresh("holiday_out")
    os.makedirs(os.path.join(out, "holiday"))
    open(os.path.join(out, "holiday", "notes.txt"), "w").write("mine")
    photo = os.path.join(w.fresh("holiday_in"), "holiday.png")
    shutil.copy(os.path.join(w.photos, "p0.png"), photo)

    def check(*_):
        if _tree(os.path.join(out, "holiday")) != ["notes.txt"]:
            return "the user's folder changed"
        return None if os.path.isdir(os.path.join(out, "holiday_2")) else "no holiday_2"
    return {"argv": _recon(w, w.run, out=out, inputs=[photo]), "check": check}


@probe("9 user files", "reconstruct: one photo twice, index.html.png, a FIFO cam.png",
       "named")
def _(w):
    folder = w.fresh("clashes")
    shutil.copy(os.path.join(w.photos, "p0.png"), os.path.join(folder, "index.html.png"))
    os.mkfifo(os.path.join(folder, "cam.png"))
    out = w.fresh("clashes_out")
    photo = os.path.join(w.photos, "p1.png")

    def check(*_):
        folders = sorted(d for d in os.listdir(out) if os.path.isdir(os.path.join(out, d)))
        # index.html is its own page: the photo index.html.png goes to index.html_2
        return None if folders == ["index.html_2", "p1"] else f"folders {folders}"
    return {"argv": _recon(w, w.run, out=out, inputs=[photo, photo, folder]),
            "check": check, "timeout": 300}


@probe("9 user files", "prepare: photo.jpg and photo.png, --out inside --images, twice",
       "ok")
def _(w):
    from PIL import Image

    photos = w.fresh("same_stem")
    Image.new("RGB", (64, 64), (200, 30, 30)).save(os.path.join(photos, "photo.jpg"))
    Image.new("RGB", (64, 64), (30, 200, 30)).save(os.path.join(photos, "photo.png"))
    out = os.path.join(photos, "data")
    prepare = [TFSYM3D, "prepare", f"--images={photos}", f"--out={out}", "--size=32",
               "--detect=none", "--split=1,0,0"]

    def check(*_):
        crops = [f for f in _tree(out) if f.startswith("train/")]
        return None if len(crops) == 2 else f"crops {crops}"
    return {"argv": ["sh", "-c", " ".join(prepare) + " && " + " ".join(prepare)],
            "check": check}


for _flags in (("--size=0",), ("--size=8000",), ("--split=nan,nan,nan",)):
    def _setup(w, flags=_flags):
        out = os.path.join(w.fresh("prep_range"), "data")
        return {"argv": [TFSYM3D, "prepare", f"--images={w.photos}", f"--out={out}", *flags],
                "check": lambda *_: f"{out} written" if os.path.exists(out) else None}
    probe("9 user files", f"prepare {' '.join(_flags)}")(_setup)

for _flag in ("--batch=0", "--batch=-1"):
    def _setup(w, flag=_flag):
        out = os.path.join(w.fresh("synth_range"), "data")
        return {"argv": [TFSYM3D, "synth", f"--out={out}", "--num=10", flag],
                "check": lambda *_: f"{out} written" if os.path.exists(out) else None}
    probe("9 user files", f"synth {_flag}")(_setup)


@probe("9 user files", "a second train on a run directory being trained")
def _(w):
    run = w.fresh("locked_run")
    first = " ".join([TFSYM3D, "train", *TRAIN, f"--set=data_dir={w.data}",
                      "--set=num_epochs=50", f"--run_dir={run}"])
    second = " ".join([TFSYM3D, "train", *TRAIN, f"--set=data_dir={w.data}",
                       "--set=num_epochs=1", f"--run_dir={run}"])
    # the first holds the lock once it has started; the second's status is the probe's
    return ["sh", "-c", f"{first} >/dev/null 2>&1 & pid=$!; "
            f"while [ ! -e {run}/config.yaml ]; do sleep 1; done; {second}; rc=$?; "
            "kill -INT $pid; wait $pid; exit $rc"]


@probe("9 user files", "SIGTERM during export, then the next export", "ok")
def _(w):
    out = w.fresh("term_export")
    export = " ".join([TFSYM3D, "export", f"--checkpoint={w.run}", f"--out={out}",
                       "--formats=saved_model"])
    return {"argv": ["sh", "-c", f"{export} >/dev/null 2>&1 & pid=$!; "
                     f"while ! ls -d {out}/.partial-* >/dev/null 2>&1; do sleep 0.2; done; "
                     f"kill -TERM $pid; wait $pid; {export}"],
            "check": lambda *_: next((f"left {d}" for d in os.listdir(out)
                                     if d.startswith(".partial")), None)}


@probe("9 user files", "a TFRecord shard with a flipped byte: named, skipped, trained on",
       "ok")
def _(w):
    records = os.path.join(w.fresh("crc"), "rec")
    _check([TFSYM3D, "prepare-tfrecords", f"--data={w.data}", f"--out={records}",
            "--shards=2"])
    shard = sorted(os.listdir(os.path.join(records, "train")))[1]
    path = os.path.join(records, "train", shard)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x40
    open(path, "wb").write(bytes(data))
    return {"argv": [TFSYM3D, "train", *TRAIN, f"--set=data_dir={records}",
                     "--set=num_epochs=1", f"--run_dir={w.fresh('crc_run')}/run"],
            "check": lambda out, err: None if f"skipping {path}: damaged" in err
            else "the shard not named"}


@probe("9 memory", "49 Mpx PNG turned by EXIF (orientation 6) through reconstruct", "ok")
def _(w):
    folder = w.fresh("phone")
    hostile_files.big_png(os.path.join(folder, "phone.png"), 8064, 6048, orientation=6)
    return _recon(w, w.run, inputs=[folder])


@probe("9 memory", "JPEG whose header says 7000x7000 (96x80 inside) through reconstruct",
       "named")
def _(w):
    folder = w.fresh("lying")
    hostile_files.lying_jpeg(os.path.join(folder, "lie.jpg"), 7000, 7000)
    return _recon(w, w.run, inputs=[folder])


@probe("9 memory", "13300x13300 depth PNG through evaluate", "ok")
def _(w):
    data = w.fresh("big_depth")
    shutil.rmtree(data)
    shutil.copytree(w.data, data)
    depth = sorted(os.listdir(os.path.join(data, "test", "depth")))[0]
    hostile_files.big_png(os.path.join(data, "test", "depth", depth), 13300, 13300,
                          grey16=True)
    return {"argv": [TFSYM3D, "evaluate", f"--checkpoint={w.run}", f"--data={data}",
                     "--split=test"],
            "check": lambda *_: None, "rc": 1}  # the pair named and skipped: exit 1


@probe("9 memory", "2500-frame 660x660 GIF (3 MB) through serving_bytes", "refused")
def _(w):
    path = w.path("probes", "frames.gif")
    hostile_files.many_frames_gif(path, 2500, 660)
    return [sys.executable, "-c", _serving_bytes(w, path)]


@probe("9 memory", ".pth whose pickle unzips to 2.1 GB (2 MB)")
def _(w):
    path = w.path("probes", "pickle_bomb.pth")
    if not os.path.exists(path):
        hostile_files.pickle_bomb_pth(path, 2_100_000_000)
    return [TFSYM3D, "convert-official", path, f"--out={w.fresh('pkl_out')}/run"]


@probe("9 memory", ".pth of 538 bytes declaring widths of 256")
def _(w):
    from tfsym3d.layers.networks import EDDeconv, Encoder
    from tfsym3d.official import torch_layout

    key = {layer.name: k for k, layer, _ in torch_layout(EDDeconv(1, 16, 16, 64))}
    conv1 = next(k for k, layer, _ in torch_layout(Encoder(4, 16, 64))
                 if layer.name == "conv1")
    wide = {net: {key["enc_conv1"]: (256, 3, 4, 4), key["enc_conv_z"]: (256, 2048, 4, 4)}
            for net in ("netD", "netA")}
    wide.update({net: {conv1: (32, 3, 4, 4)} for net in ("netL", "netV")})
    path = w.path("probes", "wide.pth")
    hostile_files.declared_pth(path, wide)
    return [TFSYM3D, "convert-official", path, f"--out={w.fresh('wide_out')}/run"]


@probe("9 memory", ".pth: a list nested 100k deep (0.3 kB)")
def _(w):
    path = w.path("probes", "deep.pth")
    hostile_files.nested_pth(path)
    return [TFSYM3D, "convert-official", path, f"--out={w.fresh('deep_out')}/run"]


@probe("9 memory", ".keras whose config.json inflates to 1.2 GB, through reconstruct")
def _(w):
    import zipfile

    path = w.path("probes", "bomb.keras")
    if not os.path.exists(path):
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z, \
                z.open("config.json", "w", force_zip64=True) as entry:
            for _ in range(300):
                entry.write(b" " * (4 << 20))
    return _recon(w, path)


for _name, _text in (
        ("a 50 MB config.yaml", "# " + "x" * (50 << 20) + "\n"),
        ("a YAML anchor bomb", "a: &a [1, 1]\n" + "".join(
            f"b{i}: &b{i} [*{'a' if i == 0 else f'b{i - 1}'}, "
            f"*{'a' if i == 0 else f'b{i - 1}'}]\n" for i in range(60))),
        ("YAML nested 5000 deep", "x: " + "[" * 5000 + "]" * 5000 + "\n")):
    def _setup(w, text=_text, name=_name):
        path = w.path("probes", name.replace(" ", "_") + ".yaml")
        with open(path, "w") as f:
            f.write(text)
        return [TFSYM3D, "train", f"--config={path}", f"--init={w.run}",
                f"--run_dir={w.fresh('yaml_bomb')}/run"]
    probe("9 memory", f"train --init with {_name}")(_setup)


def _serving_bytes(w, path):
    """Python that feeds a file to the exported SavedModel's serving_bytes and exits with
    the graph's message."""
    return (
        "import sys\n"
        "from tfsym3d.cli import quiet_tensorflow\n"
        "quiet_tensorflow()  # TensorFlow's start-up lines hidden, as the commands do\n"
        "import tensorflow as tf\n"
        f"m = tf.saved_model.load({os.path.join(w.export, 'saved_model', 'tfsym3d', '1')!r})\n"
        f"data = open({path!r}, 'rb').read()\n"
        "try:\n"
        "    m.signatures['serving_bytes'](image_bytes=tf.constant([data]))\n"
        "except tf.errors.InvalidArgumentError as err:\n"
        "    said = [l for l in err.message.splitlines() if 'pixels' in l] or ['?']\n"
        "    sys.exit('serving_bytes: ' + said[0].strip()[:200])\n")


def run_probe(w, group, name, expect, setup):
    spec = setup(w)
    if isinstance(spec, list):
        spec = {"argv": spec}
    env = dict(os.environ, **spec.get("env", {}))
    start = time.time()
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        # SIGINT as a terminal leaves it (a background launcher may have ignored it, and
        # a Python started with SIGINT ignored never raises KeyboardInterrupt).
        proc = subprocess.Popen(spec["argv"], stdout=out, stderr=err, env=env,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        if "signal_after" in spec:
            time.sleep(spec["signal_after"])
            proc.send_signal(signal.SIGINT)
        timer = None
        if "timeout" in spec:  # a hang is killed and reported
            import threading

            timer = threading.Timer(spec["timeout"], proc.kill)
            timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        if timer is not None:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        out.seek(0)
        stderr = err.read().decode(errors="replace")
        stdout = out.read().decode(errors="replace")
    lines = [line for line in stderr.splitlines() if line.strip()]
    left = [line for line in stdout.splitlines() if line.startswith("LEFT ")]
    traceback = "Traceback (most recent call last)" in stderr
    rc = proc.returncode
    peak = usage.ru_maxrss * 1024
    row = dict(group=group, name=name, expect=expect, rc=rc, lines=len(lines),
               traceback=traceback, peak_gib=round(peak / GIB, 2),
               seconds=round(time.time() - start, 1), left=left,
               first=lines[0][:160] if lines else "", stdout_tail=stdout[-300:])
    if rc == 99 and spec["argv"][0] == "unshare":
        row["verdict"] = "skipped (no tmpfs)"
        return row
    ok = not traceback and peak < LIMIT_BYTES and not left
    problem = spec["check"](stdout, stderr) if "check" in spec else None
    if problem:
        row["problem"] = problem
        ok = False
    if "rc" in spec:
        ok = ok and rc == spec["rc"]
    elif expect == "ok":
        ok = ok and rc == 0
    if expect == "ok":
        pass
    elif expect == "error":
        ok = ok and rc != 0 and len(lines) <= 2
    elif expect == "named":
        ok = ok and rc != 0
        if "RESUMED" in stdout:
            ok = ok and "RESUMED rc=0" in stdout
    elif expect == "refused":  # the serving graph, from Python
        ok = ok and rc != 0 and len(lines) <= 2 and "more pixels than the limit" in stderr
    elif expect == "fallback":
        ok = ok and rc == 0 and any("skip" in line.lower() for line in lines)
    else:
        raise ValueError(f"unknown expectation {expect!r}")
    if "hostile" in name or "os.system" in name:
        ok = ok and not os.path.exists(w.path("probes", "RAN"))
    row["verdict"] = "holds" if ok else "NOT RIGHT"
    return row


def table(rows):
    head = ["group", "probe", "exit", "stderr lines", "traceback", "peak GiB", "s",
            "verdict", "first stderr line"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        first = r["first"].replace("|", "\\|").replace(r.get("root", "\0"), "W")
        out.append("| " + " | ".join(str(x) for x in (
            r["group"], r["name"], r["rc"], r["lines"], "yes" if r["traceback"] else "no",
            r["peak_gib"], r["seconds"], r["verdict"], f"`{first}`")) + " |")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=None, help="Workspace (kept; default a temp dir).")
    parser.add_argument("--out", default=None, help="Also write the table (markdown) here.")
    parser.add_argument("--json", default=None, help="Also write the rows as JSON here.")
    parser.add_argument("--only", default=None, help="Run the groups starting with this.")
    args = parser.parse_args()
    root = os.path.abspath(args.work or tempfile.mkdtemp(prefix="probe_faults_"))
    os.makedirs(os.path.join(root, "probes"), exist_ok=True)
    w = Workspace(root)
    print(f"workspace {root}; {TFSYM3D}; {platform.node()}", flush=True)
    w.build()
    rows = []
    for group, name, expect, setup in PROBES:
        if args.only and not group.startswith(args.only):
            continue
        row = run_probe(w, group, name, expect, setup)
        row["root"] = root
        rows.append(row)
        print(f"{row['verdict']:>10}  rc={row['rc']:<4} lines={row['lines']:<3} "
              f"tb={'y' if row['traceback'] else 'n'} {row['peak_gib']:.2f} GiB "
              f"{row['seconds']:6.1f} s  {group}: {name}\n            {row['first']}"
              + (f"\n            {row['left']}" if row["left"] else ""), flush=True)
    from bench_train import cpu_line

    held = sum(r["verdict"] == "holds" for r in rows)
    summary = (f"{held} of {len(rows)} probes hold; "
               f"{sum(r['verdict'].startswith('skipped') for r in rows)} skipped; "
               f"{cpu_line()}")
    print(summary)
    if args.out:
        with open(args.out, "w") as f:
            f.write(f"{summary}\n\n{table(rows)}\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0 if held + sum(r["verdict"].startswith("skipped") for r in rows) == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
