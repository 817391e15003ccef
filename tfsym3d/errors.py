"""The user's mistakes as exceptions, each with the exit status it means in every
command. The library raises them (or ValueError / FileNotFoundError naming the file) and
never prints or exits; only the dispatcher (tfsym3d.cli) turns one into its one line
and status:

    try:
        cfg = load_config("tiny", ["lam_flip=-1"])
    except UserError as err:
        print(f"tfsym3d train: {err}", file=sys.stderr)
        return err.status   # 2 for a config mistake, in train, evaluate and the rest

What the library has to say while it works (a skipped file, a resumed run) goes to the
`tfsym3d` logger (logging.getLogger(__name__) in each module): warnings reach a Python
user through logging's last resort, and the dispatcher shows every line, prefixed with
the command's name.
"""

import errno

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


class UsageError(UserError):
    """A command given wrongly (a required flag missing, arguments it does not take, a flag
    value out of range): exit status 2, as absl's flag parser gives for a bad flag."""

    status = 2


class ConfigError(UserError):
    """A config file, preset name or --set override that is not valid (an unknown key, a
    value out of range, YAML that does not parse): exit status 2, like a bad flag."""

    status = 2


def no_space(err):
    """Whether an exception (an OSError, or TensorFlow's ResourceExhaustedError from a
    write) says the disk is full; a short write (numpy's 'N requested and M written')
    counts."""
    return (isinstance(err, OSError) and err.errno == errno.ENOSPC) \
        or "No space left on device" in str(err) \
        or (isinstance(err, OSError) and "requested and" in str(err))


def one_line(err, limit=300):
    """`Kind: first line of the message` of an exception, at most `limit` characters."""
    text = str(err).strip()
    first = text.splitlines()[0] if text else ""
    line = f"{type(err).__name__}: {first}" if first else type(err).__name__
    return line if len(line) <= limit else line[:limit - 3] + "..."
