"""The user's mistakes as exceptions, each with the exit status it means in every
command (the library raises them and never prints or exits; a command turns one into
its one line and status).

    try:
        cfg = load_config("tiny", ["lam_flip=-1"])
    except UserError as err:
        print(f"tfsym3d train: {err}", file=sys.stderr)
        return err.status   # 2 for a config mistake, in train, evaluate and the rest
"""


class UserError(ValueError):
    """Something the user gave is wrong (a file, a flag, a value): exit status 1."""

    status = 1


class ConfigError(UserError):
    """A config file, preset name or --set override that is not valid (an unknown key, a
    value out of range, YAML that does not parse): exit status 2, like a bad flag."""

    status = 2
