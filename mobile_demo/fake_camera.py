"""A looping video for Chromium's fake camera (--use-file-for-fake-video-capture): the
phone page's live mode is tested and benchmarked with it (tests/test_mobile.py,
benchmarks/bench_mobile.py)."""

import numpy as np


def write_y4m(path, frames, width=320, height=240, fps=30):
    """A looping camera: each face [S, S, 3] in 0..1 upscaled into the frame's centre
    square, as YUV 4:2:0 (BT.601, what Chromium's fake capture device reads)."""
    from PIL import Image

    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for face in frames:
            canvas = Image.new("RGB", (width, height), (40, 40, 40))
            face = Image.fromarray((face * 255 + 0.5).astype(np.uint8)).resize(
                (height, height), Image.BILINEAR)
            canvas.paste(face, ((width - height) // 2, 0))
            ycbcr = np.asarray(canvas.convert("YCbCr"))
            f.write(b"FRAME\n")
            f.write(ycbcr[..., 0].tobytes())
            for c in (1, 2):
                f.write(ycbcr[::2, ::2, c].tobytes())
