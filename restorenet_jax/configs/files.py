"""The one loader of config files, `path/to/file.py[:variant]`, shared by every command (train, evaluate, ...).

A config file defines `get_config(variant="")` returning a ConfigDict; the text after the first ':' is passed as the
variant (as ml_collections' config flags do, so `--config configs/bsd64.py:demo_cctv` means the same to every
command). Every way a file can fail — missing, not Python, raising while it runs, no `get_config`, an unknown
variant — becomes one `ConfigFileError` whose message is a single line naming the file, so that the commands can
print it and exit with status 2 instead of a traceback.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Optional, Sequence


class ConfigFileError(ValueError):
    """A config file (or its variant) cannot be loaded; the message is one line."""


def split_spec(spec: str) -> tuple[str, str | None]:
    """'file.py:variant' -> ('file.py', 'variant'); 'file.py' -> ('file.py', None)."""
    path, sep, variant = str(spec).partition(":")
    return path, (variant if sep else None)


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[-1].strip() if text else e.__class__.__name__


def load_config_file(spec: str) -> Any:
    """`get_config([variant])` of the config file named by `spec` ('path.py' or 'path.py:variant').

    The current directory is importable while the file runs (experiment files build on each other, e.g.
    configs/bsd32.py imports `configs.bsd64`), as under `python -m`.

    Raises:
      ConfigFileError: the file is missing or broken, has no get_config, or refuses the variant.
    """
    path, variant = split_spec(spec)
    if not path:
        raise ConfigFileError("config file name is empty (expected path/to/file.py[:variant])")
    if not Path(path).is_file():
        raise ConfigFileError(f"config file {path} not found")
    name = "_restorenet_config_" + "".join(c if c.isalnum() else "_" for c in Path(path).stem)
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ConfigFileError(f"config file {path} is not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    added = os.getcwd() not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, os.getcwd())
    try:
        module_spec.loader.exec_module(module)
    except Exception as e:  # any error of the user's file: one line, not a traceback
        raise ConfigFileError(f"config file {path} failed to load: {e.__class__.__name__}: {_one_line(e)}") from e
    finally:
        if added:
            sys.path.remove(os.getcwd())
    get_config = getattr(module, "get_config", None)
    if not callable(get_config):
        raise ConfigFileError(f"config file {path} defines no get_config()")
    try:
        config = get_config() if variant is None else get_config(variant)
    except TypeError as e:
        if variant is not None and "argument" in str(e):
            raise ConfigFileError(f"config file {path} takes no variant (got {variant!r})") from e
        raise ConfigFileError(f"{spec}: {_one_line(e)}") from e
    except Exception as e:  # e.g. ValueError("unknown variant 'demoo' of bsd64.py (known: demo, demo_cctv)")
        raise ConfigFileError(f"{spec}: {_one_line(e)}") from e
    if config is None:
        raise ConfigFileError(f"{spec}: get_config() returned nothing")
    return config


def define_config_file_flag(name: str, default: Optional[str], help_string: str):
    """ml_collections' `DEFINE_config_file` (with its `--name.FIELD=VALUE` overrides), reading the file through
    `load_config_file`. Returns the flag holder. Pair it with `exit_on_config_error` before absl parses the flags."""
    from absl import flags
    from ml_collections import config_flags
    from ml_collections.config_flags.config_flags import ConfigFileFlagParser

    class _Parser(ConfigFileFlagParser):
        def parse(self, path):
            config = load_config_file(path)
            if self._lock_config:
                config.lock()
            return config

    holder = config_flags.DEFINE_config_file(name, default, help_string, lock_config=True)
    flags.FLAGS[name].parser = _Parser(name=name, lock_config=True)
    return holder


def flag_value(argv: Sequence[str], name: str) -> Optional[str]:
    """The value given to `--name` (or `-name`, `--name=...`) in `argv`, the last one winning; None if absent."""
    value = None
    for i, arg in enumerate(argv):
        for prefix in (f"--{name}", f"-{name}"):
            if arg == prefix and i + 1 < len(argv):
                value = argv[i + 1]
            elif arg.startswith(prefix + "="):
                value = arg[len(prefix) + 1:]
    return value


def exit_on_config_error(argv: Sequence[str], name: str = "config") -> None:
    """Loads the config file named by `--name` in `argv` once before absl does, so that a missing or broken file or
    an unknown variant ends an absl command with one line and status 2, as every other command's config errors do
    (absl would print a traceback inside a flag-parsing error and exit 1)."""
    spec = flag_value(argv, name)
    if spec is None:
        return
    try:
        load_config_file(spec)
    except ConfigFileError as e:
        print(f"error: --{name}: {e}", file=sys.stderr)
        sys.exit(2)
