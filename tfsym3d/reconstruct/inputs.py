"""Inputs of `tfsym3d reconstruct`: image files under the paths given, unique output
names, and the crop of each photo (the model's config crop, or a face found by OpenCV's Haar
cascade framed like the CelebA crops). Reading, cropping and resizing are
tfsym3d.io.images', as for every other command."""

import os

import numpy as np

from tfsym3d.io import images
from tfsym3d.io.images import IMAGE_EXTENSIONS, InputError

FACE_SCALE = 1.6  # crop side / detector box side (Haar boxes span brows to mouth)
FACE_SHIFT = 0.1  # crop centre moved down by this fraction of the box (to include the chin)

__all__ = ["FACE_SCALE", "FACE_SHIFT", "FaceDetector", "InputError", "collect_inputs",
           "face_box", "prepare", "unique_names"]


def collect_inputs(paths):
    """Files named directly, and image files under folders (recursive, sorted).

    Returns (files, missing): missing lists the paths that do not exist."""
    files, missing = [], []
    for path in paths:
        if os.path.isdir(path):
            found = []
            for root, dirs, names in os.walk(path):
                dirs.sort()
                found += [os.path.join(root, n) for n in sorted(names)
                          if n.lower().endswith(IMAGE_EXTENSIONS)]
            files += found
        elif os.path.exists(path):
            files.append(path)
        else:
            missing.append(path)
    return files, missing


def unique_names(files):
    """Output folder names: the files' stems, with _2, _3... added where a name is taken."""
    used, names = set(), []
    for path in files:
        stem = os.path.splitext(os.path.basename(path))[0] or "image"
        name, n = stem, 1
        while name in used:
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


class FaceDetector:
    """The largest frontal face in a photo, by the Haar cascade that ships inside the
    opencv-python-headless wheel (no download)."""

    def __init__(self):
        try:
            import cv2
        except ImportError as err:
            raise ImportError("--detect=face needs OpenCV: pip install "
                              "'opencv-python-headless<5'") from err
        path = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise FileNotFoundError(f"{path}: OpenCV's face cascade could not be loaded")
        self.cv2 = cv2

    def __call__(self, rgb):
        """rgb [H, W, 3] (uint8, or float in [0, 1]) -> the largest face (x, y, w, h) in
        pixels, or None."""
        grey = self.cv2.cvtColor(images.to_uint8(rgb) if rgb.dtype != np.uint8 else rgb,
                                 self.cv2.COLOR_RGB2GRAY)
        side = min(grey.shape)
        faces = self.cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5,
                                              minSize=(max(side // 10, 20),) * 2)
        if len(faces) == 0:
            return None
        return tuple(int(v) for v in max(faces, key=lambda f: f[2] * f[3]))


def prepare(path, image_size, detector=None, crop_spec=None):
    """Reads a photo and crops it for the model: float32 [S, S, 3] in [0, 1] (the face
    the detector finds, or without one the config crop `crop_spec`: see
    tfsym3d.io.images.crop_box).

    Raises InputError with a one-line reason when the file cannot be used."""
    image = images.read(path)
    if detector is None:
        return images.prepare(image, image_size, crop_spec)
    found = detector(image)
    if found is None:
        raise InputError("no face found")
    return images.resize(images.crop(image, face_box(found)), image_size).numpy()
