"""The published models by name (tfsym3d.pretrained, issue 51), with no network: a
server on 127.0.0.1 serves zips built from the authors'-format fixture in their layout."""

import http.server
import io
import os
import socket
import threading
import time
import zipfile

import numpy as np
import pytest

from tests.test_evaluate import run
from tfsym3d import official, pretrained

PTH = os.path.join(os.path.dirname(__file__), "fixtures", "official", "trainer_zip.pth")


def _zip(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def server():
    """Routes: /good (the zip), /html (an error page), /cut (the zip cut in half),
    /empty (a zip without the checkpoint), /stall (sends nothing for 5 s)."""
    good = _zip({"pretrained_celeba/checkpoint030.pth": open(PTH, "rb").read()})
    bodies = {"good": good, "html": b"<html><body>404 Not Found</body></html>",
              "cut": good[:len(good) // 2],
              "empty": _zip({"pretrained_celeba/readme.txt": b"no checkpoint"})}
    requests = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            route = self.path.strip("/").split("/")[0]
            requests.append(self.path)
            if route == "stall":
                time.sleep(5)
                return
            body = bodies[route]
            self.send_response(200)
            self.send_header("Content-Length", str(len(good) if route == "cut" else len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TFSYM3D_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TFSYM3D_DOWNLOAD_TIMEOUT", "1")
    return tmp_path / "home"


@pytest.mark.slow
def test_a_name_downloads_converts_and_caches_once(server, cache, monkeypatch, tmp_path,
                                                   capsys):
    from PIL import Image

    from tfsym3d.loader import load_model

    base, requests = server
    monkeypatch.setenv("TFSYM3D_PRETRAINED_URL", f"{base}/good")
    before = len(requests)
    Image.new("RGB", (80, 64), (160, 120, 100)).save(tmp_path / "photo.jpg")
    out = tmp_path / "out"
    assert run(["tfsym3d", "reconstruct", "--checkpoint=celeba", f"--out={out}",
                "--gifs=false", "--mesh=false", str(tmp_path / "photo.jpg")]) == 0
    assert len(requests) == before + 1 and "cached in" in capsys.readouterr().err
    assert pretrained.is_cached("celeba")
    # The same as converting the file by hand with the celeba preset.
    by_hand = official.convert(PTH, os.path.join(official.CONFIG_DIR, "celeba.yaml"))[0]
    x = np.random.default_rng(0).random((2, 64, 64, 3)).astype(np.float32)
    named = load_model("celeba")
    for key in ("canon_depth", "canon_albedo", "view"):
        np.testing.assert_allclose(named(x)[key].numpy(), by_hand(x)[key].numpy(), atol=1e-5)
    assert named.cfg.to_dict() == by_hand.cfg.to_dict()
    assert len(requests) == before + 1  # the second use reads the cache
    assert run(["tfsym3d", "pretrained", "--list"]) == 0
    assert "celeba     " + str(cache / "pretrained" / "celeba") in capsys.readouterr().out


@pytest.mark.parametrize("route, says", [("html", "not a zip file"), ("cut", "closed after"),
                                         ("empty", "has no pretrained_celeba/checkpoint030"),
                                         ("stall", "cannot download"),
                                         ("refused", "cannot download")])
def test_a_bad_download_is_one_line_and_caches_nothing(server, cache, monkeypatch, capsys,
                                                       route, says):
    base, _ = server
    if route == "refused":  # a port nobody listens on
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{s.getsockname()[1]}"
        s.close()
    monkeypatch.setenv("TFSYM3D_PRETRAINED_URL", f"{base}/{route}")
    assert run(["tfsym3d", "pretrained", "celeba"]) == 1
    err = [line for line in capsys.readouterr().err.strip().splitlines()
           if not line.endswith("MiB)")]  # progress lines aside
    assert len(err) == 1 and says in err[0] and "by hand" in err[0], err
    assert f"{base}/{route}/pretrained_celeba.zip" in err[0]
    assert not pretrained.is_cached("celeba")
    assert [f for f in os.listdir(cache / "pretrained") if not f.endswith(".lock")] == []


def test_two_at_once_download_once(server, cache, monkeypatch):
    base, requests = server
    monkeypatch.setenv("TFSYM3D_PRETRAINED_URL", f"{base}/good")
    before = len(requests)
    got = []
    threads = [threading.Thread(target=lambda: got.append(pretrained.fetch("celeba")))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert got == [str(cache / "pretrained" / "celeba")] * 2
    assert len(requests) == before + 1


def test_an_unknown_name_is_named():
    with pytest.raises(pretrained.PretrainedError, match="not a published model"):
        pretrained.fetch("dogs")


def test_vgg16_weights_are_downloaded_where_the_config_points(tmp_path, monkeypatch):
    """Keras' VGG16 (no top) fetched into the configured path when absent: here from a
    local server holding a fixture .h5 of a random VGG16; offline, one line."""
    from tfsym3d import losses

    served = tmp_path / "served"
    served.mkdir()
    # The fixture's VGG16 as Keras' legacy .h5 (convert-official --vgg16).
    vgg16_pth = os.path.join(os.path.dirname(PTH), "vgg16_zip.pth")
    official.convert_vgg16(vgg16_pth, str(served / losses.VGG16_NOTOP))
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(served), **k)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        target = tmp_path / "models" / losses.VGG16_NOTOP
        monkeypatch.setenv("TFSYM3D_VGG16_URL",
                           f"http://127.0.0.1:{httpd.server_address[1]}/{losses.VGG16_NOTOP}")
        loss = losses.PerceptualLoss(64, str(target))
        assert target.is_file()
        want = official.vgg16_arrays(vgg16_pth)["block3_conv3"][0]
        got = loss.features.get_layer("block3_conv3").get_weights()[0]
        np.testing.assert_array_equal(got, want)
    finally:
        httpd.shutdown()
        httpd.server_close()
    monkeypatch.setenv("TFSYM3D_DOWNLOAD_TIMEOUT", "2")
    monkeypatch.setenv("TFSYM3D_VGG16_URL", f"http://127.0.0.1:{httpd.server_address[1]}/x")
    other = tmp_path / "offline" / losses.VGG16_NOTOP
    with pytest.raises(FileNotFoundError, match="cannot download .*lam_perc=0"):
        losses.PerceptualLoss(64, str(other))
    assert not other.exists()


@pytest.mark.slow
def test_a_packed_model_unpacks_to_the_same_model_in_float16(model_run, tmp_path, cache,
                                                             monkeypatch, capsys):
    """pack -> unpack -> a run directory whose weights are the float16 roundings of the
    original's (numpy's, the reference) and whose outputs match; a name in OWN is
    unpacked into the cache on first use, offline, and read from it later."""
    from tfsym3d.checkpoints import load_model as load_run
    from tfsym3d.loader import load_model

    packed = tmp_path / "own.npz"
    assert run(["tfsym3d", "pretrained", f"--pack={model_run}", f"--out={packed}"]) == 0
    assert "MiB" in capsys.readouterr().out
    monkeypatch.setitem(pretrained.OWN, "own-test", str(packed))
    monkeypatch.setattr(pretrained, "NAMES", (*pretrained.NAMES, "own-test"))
    original = load_run(str(model_run))
    named = load_model("own-test")
    assert pretrained.is_cached("own-test")
    for a, b in zip(original.weights, named.weights, strict=True):
        want = a.numpy().astype(np.float16).astype(np.float32) if a.dtype == "float32" \
            else a.numpy()
        np.testing.assert_array_equal(b.numpy(), want)
    x = np.random.default_rng(0).random((2, 64, 64, 3)).astype(np.float32)
    for key in ("canon_depth", "view"):
        np.testing.assert_allclose(named(x)[key].numpy(), original(x)[key].numpy(),
                                   atol=2e-2)
    os.remove(packed)  # later uses read the cache
    assert load_model("own-test").cfg.to_dict() == original.cfg.to_dict()
    from tfsym3d.commands.pretrained import main
    from tfsym3d.errors import UsageError

    class Flags:
        pack, out, list = str(model_run), None, False
    with pytest.raises(UsageError, match="--pack needs --out"):
        main(Flags(), [])


@pytest.mark.slow
def test_tiny_faces_is_shipped_small_and_learned(tmp_path, cache):
    """The package's own model: at most 8 MB, and on 100 synthetic faces it was not
    trained on (another seed) its depth beats the mean-depth baseline in SIDE and MAD
    and the constant depth in MAD (a constant scores about the same SIDE on these faces:
    docs/models.md)."""
    import json

    from tfsym3d.data.synth import generate

    path = pretrained.OWN["tiny-faces"]
    assert os.path.getsize(path) <= 8 * 10 ** 6
    generate(str(tmp_path / "faces"), 100, image_size=64, seed=12345)
    report = tmp_path / "eval.json"
    assert run(["tfsym3d", "evaluate", "--checkpoint=tiny-faces", "--split=train",
                f"--data={tmp_path / 'faces'}", f"--json={report}"]) == 0
    scores = json.loads(report.read_text())
    assert scores["model"]["n"] >= 80
    model, mean, constant = (scores[k] for k in ("model", "baseline_avg", "baseline_null"))
    assert model["side"] < 0.8 * mean["side"] and model["mad"] < 0.8 * mean["mad"], scores
    assert model["mad"] < 0.6 * constant["mad"], scores
    assert model["side"] < 1.15 * constant["side"], scores


@pytest.mark.slow
def test_the_phone_demo_builds_from_a_name(server, cache, monkeypatch, tmp_path):
    """`bash mobile_demo/build.sh --checkpoint=celeba` from an empty cache: downloaded
    through the local server, converted, exported; its TFLite model gives the by-hand
    conversion's outputs. A web/ the script did not build is left alone."""
    import subprocess

    from tfsym3d.export.convert import run_tflite

    base, requests = server
    monkeypatch.setenv("TFSYM3D_PRETRAINED_URL", f"{base}/good")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = tmp_path / "demo"
    build = ["bash", os.path.join(root, "mobile_demo", "build.sh"), "--checkpoint=celeba",
             f"--out={out}", "--quantize=none", "--no-apk"]
    proc = subprocess.run(build, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert pretrained.is_cached("celeba")
    by_hand = official.convert(PTH, os.path.join(official.CONFIG_DIR, "celeba.yaml"))[0]
    x = np.random.default_rng(0).random((2, 64, 64, 3)).astype(np.float32)
    got = run_tflite(str(out / "web" / "model" / "tfsym3d_fp32.tflite"))(x)
    want = by_hand.infer(x)
    for key in ("canon_depth", "view"):
        np.testing.assert_allclose(got[key], want[key].numpy(), atol=1e-3)

    mine = tmp_path / "mine"
    (mine / "web").mkdir(parents=True)
    (mine / "web" / "index.html").write_text("my page")
    proc = subprocess.run([*build[:3], f"--out={mine}", "--quantize=none", "--no-apk"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 1 and "not a demo this script built" in proc.stderr
    assert (mine / "web" / "index.html").read_text() == "my page"
