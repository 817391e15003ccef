"""Inputs of `tfsym3d reconstruct`: image files under the paths given, unique output
names, and the crop of each photo (the model's config crop, or a face found by OpenCV's Haar
cascade framed like the CelebA crops). Reading, cropping and resizing are
tfsym3d.io.images', as for every other command."""

import os
import stat

import numpy as np

from tfsym3d.data.layout import image_files
from tfsym3d.io import images
from tfsym3d.io.images import InputError

FACE_SCALE = 1.6  # crop side / detector box side (Haar boxes span brows to mouth)
FACE_SHIFT = 0.1  # crop centre moved down by this fraction of the box (to include the chin)

__all__ = ["FACE_SCALE", "FACE_SHIFT", "FaceDetector", "InputError", "collect_inputs",
           "face_box", "prepare", "unique_names"]


def collect_inputs(paths, exclude=None):
    """Files named directly, and image files under folders (tfsym3d.data.layout's
    image_files: recursive, in the order every command lists a folder), each once (the
    same file given twice, or through a link, counts once).

    Only regular files are taken: a FIFO, device or socket is named and skipped, never
    opened. exclude: a folder whose contents are never taken (the command's own --out,
    when it lies inside an input folder).

    Returns (files, problems): problems lists (path, reason) for what was not taken and
    should be said: missing paths, files that are not regular, folders that cannot be
    read, files given twice.
    """
    files, problems, seen = [], [], set()
    skip = os.path.realpath(exclude) if exclude else None

    def take(path):
        try:
            st = os.stat(path)
        except OSError as err:
            problems.append((path, f"cannot read: {err.strerror}"))
            return
        if not stat.S_ISREG(st.st_mode):
            problems.append((path, "not a regular file (a FIFO, device or socket): skipped"))
            return
        key = (st.st_dev, st.st_ino)
        if key in seen:
            problems.append((path, "given more than once: reconstructed once"))
            return
        seen.add(key)
        files.append(path)

    def unreadable(err):
        problems.append((err.filename, f"cannot read this folder: {err.strerror}"))

    for path in paths:
        if os.path.isdir(path):
            if skip and os.path.realpath(path) == skip:
                continue
            for file in image_files(path, exclude=skip, onerror=unreadable):
                take(file)
        elif os.path.lexists(path):
            take(path)
        else:
            problems.append((path, "no such file or folder"))
    return files, problems


def unique_names(files, reserved=(), taken=None):
    """Output folder names: the files' stems (without leading dots; "image" when
    nothing is left), with _2, _3... added where a name is taken by an earlier file, is
    one of `reserved` (the command's own files), or taken(name) is true (a folder there
    that is not the command's own)."""
    used, names = set(reserved), []
    for path in files:
        stem = os.path.splitext(os.path.basename(path))[0].lstrip(".") or "image"
        name, n = stem, 1
        while name in used or (taken is not None and taken(name)):
            n += 1
            name = f"{stem}_{n}"
        used.add(name)
        names.append(name)
    return names


def face_box(box, scale=FACE_SCALE, shift=FACE_SHIFT):
    """Square crop (x0, y0, side, side) around a detector box (x, y, w, h): side = scale
    times the box's longer side, centred on the box centre moved down by shift * h."""
    x, y, w, h = (float(v) for v in box)
    side = scale * max(w, h)
    cx, cy = x + w / 2.0, y + h / 2.0 + shift * h
    return cx - side / 2.0, cy - side / 2.0, side, side


# What each detector finds: its OpenCV Haar cascade (shipped inside the
# opencv-python-headless wheel) and how a found box is framed (face_box's scale and shift).
# Human faces are framed like the CelebA crops; the cat-face cascade's boxes already
# span the ears to the chin, so cats get a smaller margin and no shift.
DETECTORS = {
    "face": ("haarcascade_frontalface_default.xml", FACE_SCALE, FACE_SHIFT),
    "cat": ("haarcascade_frontalcatface.xml", 1.3, 0.0),
}


class FaceDetector:
    """Faces in a photo by an OpenCV Haar cascade: human faces (kind 'face') or cat faces
    ('cat'), no download."""

    def __init__(self, kind="face"):
        import cv2  # the [reconstruct] extra (tfsym3d.errors.missing_extra says so)
        cascade, self.scale, self.shift = DETECTORS[kind]
        self.kind = kind
        path = os.path.join(cv2.data.haarcascades, cascade)
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise FileNotFoundError(f"{path}: OpenCV's {kind} cascade could not be loaded")
        self.cv2 = cv2

    def all(self, rgb):
        """rgb [H, W, 3] (uint8, as read_samples reads it, or float in [0, 1]) -> every
        box (x, y, w, h) found, in pixels, largest first."""
        if rgb.dtype != np.uint8:
            rgb = images.to_uint8(images.to_float(rgb))
        grey = self.cv2.cvtColor(np.ascontiguousarray(rgb), self.cv2.COLOR_RGB2GRAY)
        side = min(grey.shape)
        found = self.cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5,
                                              minSize=(max(side // 10, 20),) * 2)
        boxes = [tuple(int(v) for v in f) for f in found]
        return sorted(boxes, key=lambda b: -b[2] * b[3])

    def __call__(self, rgb):
        """The largest box (x, y, w, h), or None."""
        boxes = self.all(rgb)
        return boxes[0] if boxes else None

    def crop_box(self, box):
        """The square crop framing a found box (face_box with this kind's framing)."""
        return face_box(box, self.scale, self.shift)


def prepare(path, image_size, detector=None, crop_spec=None):
    """Reads a photo and crops it for the model: float32 [S, S, 3] in [0, 1] (the face
    the detector finds, or without one the config crop `crop_spec`: see
    tfsym3d.io.images.crop_box).

    Raises InputError with a one-line reason when the file cannot be used."""
    image = images.read_samples(path)
    if detector is None:
        return images.prepare(image, image_size, crop_spec)
    found = detector(image)
    if found is None:
        raise InputError(f"no {detector.kind} found")
    return images.prepare(image, image_size, detector.crop_box(found))
