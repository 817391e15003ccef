"""The reconstruction of files and folders of photos into one output folder: what
`tfsym3d reconstruct` does (tfsym3d/commands/reconstruct.py lists the files written per
image). Each image's files, the contact sheet and index.html replace earlier ones only
once whole; a photo that cannot be read, or where no face is found, is logged and
listed, and the others are still done.
"""

import concurrent.futures
import logging
import os

import numpy as np

from tfsym3d.errors import no_space
from tfsym3d.reconstruct.inference import Reconstructor
from tfsym3d.reconstruct.inputs import InputError, collect_inputs, prepare, unique_names
from tfsym3d.reconstruct.outputs import (
    TOP_FILES,
    replace_file,
    save_png,
    taken,
    write_image_outputs,
    write_index,
)
from tfsym3d.reconstruct.pictures import sheet_row

log = logging.getLogger(__name__)
SHEET_ROWS = 100


def reconstruct_files(model, inputs, out, detector=None, crop="config", texture="albedo",
                      batch_size=32, mesh=True, gifs=True, engine=None):
    """Reconstructs every input into out (see the module docstring).

    detector: a FaceDetector (the crop is then the face it finds), or None; crop:
    'config' (the model config's crop) or 'none' (the centre square) without one.
    engine: a Reconstructor of this model to reuse (its graphs are traced once).

    Returns {"done": [names], "failed": [(path, reason)], "images_failed": how many of
    the photos failed (the rest of "failed" are the shared files), "out": out}. Inference
    runs on the calling thread; files are written by a pool of writer threads meanwhile."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"{out}: is a file, not a folder to write into")
    failed = []

    def fail(path, reason):
        failed.append((path, reason))
        log.warning(f"{path}: {reason}")

    def cannot_write(path, err):
        fail(path, "cannot write: " + ("no space left on device" if no_space(err) else str(err)))

    files, problems = collect_inputs(inputs, exclude=out)
    for path, reason in problems:
        if reason.startswith("given more than once"):
            log.warning(f"{path}: {reason}")
        else:
            fail(path, reason)
    os.makedirs(out, exist_ok=True)
    names = dict(zip(files, unique_names(files, TOP_FILES, lambda n: taken(out, n)),
                     strict=True))
    for path, name in names.items():
        stem = os.path.splitext(os.path.basename(path))[0]
        if name != stem:
            why = (f"{os.path.join(out, stem)} is not reconstruct's own, left alone"
                   if stem and taken(out, stem) else "its name is taken")
            log.warning(f"{path}: written to {os.path.join(out, name)} ({why})")
    cfg, s = model.cfg, model.cfg.image_size
    crop_spec = cfg.crop if crop == "config" else None
    engine = engine or Reconstructor(model)
    done, rows = [], []
    pending = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        batch, batch_names = [], []

        def flush():
            if not batch:
                return
            maps = engine(np.stack(batch), animations=gifs)
            for i, name in enumerate(batch_names):
                pending.append((name, pool.submit(
                    write_image_outputs, os.path.join(out, name), maps, i, cfg,
                    model.renderer, texture, mesh, gifs)))
                if len(rows) < SHEET_ROWS:
                    rows.append((name, sheet_row(maps, i, cfg)))
            batch.clear()
            batch_names.clear()

        for path in files:
            try:
                batch.append(prepare(path, s, detector, crop_spec))
                batch_names.append(names[path])
            except InputError as err:
                fail(path, str(err))
                continue
            if len(batch) == batch_size:
                flush()
        flush()
        for name, future in pending:
            try:
                future.result()
                done.append(name)
            except OSError as err:
                cannot_write(os.path.join(out, name), err)
    images_failed = len(failed)
    # Each keeps the previous file until the new one is whole; one failing (a full disk)
    # does not stop the other.
    if rows:
        sheet = np.concatenate([r for _, r in rows])
        try:
            replace_file(os.path.join(out, "contact_sheet.png"),
                         lambda path: save_png(path, sheet))
        except OSError as err:
            cannot_write(os.path.join(out, "contact_sheet.png"), err)
    try:
        write_index(out, done, mesh=mesh, gifs=gifs)
    except OSError as err:
        cannot_write(os.path.join(out, "index.html"), err)
    return {"done": done, "failed": failed, "images_failed": images_failed, "out": out}
