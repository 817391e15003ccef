"""The user's mistakes as exceptions, each with the exit status it means in every
command (the library raises them and never prints or exits; a command turns one into
its one line and status).

    try:
        cfg = load_config("tiny", ["lam_flip=-1"])
    except UserError as err:
        print(f"tfsym3d train: {err}", file=sys.stderr)
        return err.status   # 2 for a config mistake, in train, evaluate and the rest
"""


# Optional modules -> the extra that installs them (setup.cfg).
EXTRAS = {"tf2onnx": "export", "onnxruntime": "export", "ai_edge_litert": "export",
          "trimesh": "reconstruct", "cv2": "reconstruct", "tensorflow_serving": "serving",
          "grpc": "serving", "torch": "convert"}


def missing_extra(err):
    """For a ModuleNotFoundError of an optional module: the one line saying which extra
    to install; None for any other."""
    top = (getattr(err, "name", None) or "").split(".")[0]
    if not isinstance(err, ModuleNotFoundError) or top not in EXTRAS:
        return None
    return (f"this needs the [{EXTRAS[top]}] extra ({top} is not installed): "
            f"pip install 'tfsym3d[{EXTRAS[top]}]'")


class UserError(ValueError):
    """Something the user gave is wrong (a file, a flag, a value): exit status 1."""

    status = 1


class ConfigError(UserError):
    """A config file, preset name or --set override that is not valid (an unknown key, a
    value out of range, YAML that does not parse): exit status 2, like a bad flag."""

    status = 2
