"""Reading the authors' `.pth` files without torch (tfsym3d.torch_file): both torch.save
formats, nothing from the file run, sizes checked before anything is allocated. The
files are tests/fixtures/official (made by tests/make_official_fixtures.py)."""

import io
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

from tfsym3d import official, torch_file

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "official")


def fixture(name):
    return os.path.join(FIXTURES, name)


def test_reader_rebuilds_the_trainer_checkpoint_without_its_classes():
    state = torch_file.load(fixture("trainer_zip.pth"))
    assert set(state) == {"netD", "netA", "netL", "netV", "netC", "optimizerD", "optimizerA",
                          "optimizerL", "optimizerV", "optimizerC", "metrics_trace", "epoch"}
    assert state["epoch"] == 30
    trace = state["metrics_trace"]
    assert isinstance(trace, torch_file.Inert) and trace.name == "unsup3d.meters.MetricsTrace"
    assert trace.state == {"data": {"train": [{"loss": 0.5}], "val": [{"loss": 0.6}]}}
    group = state["optimizerD"]["param_groups"][0]
    assert group["lr"] == 1e-4 and group["betas"] == (0.9, 0.999)
    assert state["optimizerD"]["state"][0]["exp_avg"].shape == (16, 3, 4, 4)
    first = state["netD"]["network.0.weight"]
    assert first.dtype == np.float32 and first.shape == (16, 3, 4, 4)
    assert list(state["netD"])[:3] == ["network.0.weight", "network.1.weight",
                                       "network.1.bias"]


def test_both_file_formats_hold_the_same_tensors():
    new = torch_file.load(fixture("trainer_zip.pth"))
    legacy = torch_file.load(fixture("model_legacy.pth"))
    assert set(legacy) == {"netD", "netA", "netL", "netV", "netC"}
    for name, params in legacy.items():
        assert list(params) == list(new[name])
        for key, value in params.items():
            np.testing.assert_array_equal(value, new[name][key], err_msg=f"{name}.{key}")


class _Hostile:
    """Pickles as a call to os.system, as a malicious checkpoint would."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _Eval:
    def __reduce__(self):
        return eval, ("__import__('os').system('true')",)


def test_a_pickle_that_would_run_commands_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    payload = {"netD": _Hostile(f"touch {marker}"), "epoch": _Eval()}
    blob = pickle.dumps(payload, protocol=2)
    assert b"system" in blob  # the pickle really names os.system
    zipped = tmp_path / "hostile_zip.pth"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("hostile/data.pkl", blob)
        archive.writestr("hostile/version", "3\n")
    legacy = tmp_path / "hostile_legacy.pth"
    with open(legacy, "wb") as f:
        for part in (torch_file.LEGACY_MAGIC, torch_file.LEGACY_PROTOCOL,
                     {"little_endian": True}):
            pickle.dump(part, f, protocol=2)
        f.write(blob)
        pickle.dump([], f, protocol=2)
    for path in (zipped, legacy):
        state = torch_file.load(path)
        assert not marker.exists()
        assert isinstance(state["netD"], torch_file.Inert)
        assert state["netD"].name in ("posix.system", "os.system", "nt.system")
        assert state["netD"].args == (f"touch {marker}",)
        assert state["epoch"].name in ("builtins.eval", "__builtin__.eval")
        with pytest.raises(official.ConversionError, match="netD is a"):
            official.read_networks(path)
    assert not marker.exists()


def test_storage_records_that_lie_are_refused(tmp_path):
    """A legacy file whose storage claims more bytes than the file holds."""
    path = tmp_path / "short.pth"
    raw = open(fixture("model_legacy.pth"), "rb").read()
    f = io.BytesIO(raw)
    for _ in range(5):  # magic, protocol, system info, the object, the storage keys
        torch_file._Unpickler(f, {}).load()
    head = f.tell()
    numel = struct.unpack("<q", raw[head:head + 8])[0]
    path.write_bytes(raw[:head] + struct.pack("<q", numel + 10 ** 6) + raw[head + 8:])
    with pytest.raises(torch_file.TorchFileError, match="truncated"):
        torch_file.load(path)


def test_sizes_are_checked_before_anything_is_allocated(tmp_path, monkeypatch):
    """A zip entry that inflates past its storage (a zip bomb), a storage declaring more
    than the limit, a tensor view blown up by zero strides: each refused, named."""
    bomb = tmp_path / "bomb.pth"
    with zipfile.ZipFile(fixture("trainer_zip.pth")) as src, \
            zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        entries = [n for n in src.namelist() if "/data/" in n]
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, data + bytes(10 ** 7) if name == entries[0] else data)
    assert bomb.stat().st_size < 2 * os.path.getsize(fixture("trainer_zip.pth")) + 10 ** 5
    with pytest.raises(torch_file.TorchFileError, match="unpacks to 1[0-9,]+ bytes, more than"):
        torch_file.load(bomb)

    monkeypatch.setattr(torch_file, "MAX_BYTES", 1000)
    with pytest.raises(torch_file.TorchFileError, match="over the limit of 1,000"):
        torch_file.load(fixture("model_legacy.pth"))
    storage = torch_file._Storage("FloatStorage", 4)
    storage.fill(bytes(16))
    with pytest.raises(torch_file.TorchFileError, match=r"would take 8,000,000,000 bytes"):
        torch_file._TensorRef(storage, 0, (2000, 1000000), (0, 0)).to_numpy()
