"""Command-line conventions every command shares: help that shows defaults, and quiet logs unless asked for more.

It sits in the lowest layer so that any command can use it, including the data layer's benchmark program.

* `HelpFormatter`: argparse help keeping the module docstring's layout and appending "(default: ...)" to every
  option that has a meaningful default and does not state it already.
* `add_verbosity_argument` / `quiet_logs`: the libraries under the commands (absl, orbax, TensorFlow Datasets, jax)
  log at INFO level, which buries a command's own output (a short training run printed hundreds of checkpointing
  lines); by default only their warnings and errors show, and not even those of TFDS' dataset-builder chatter.
  `--verbosity 1` shows INFO, `--verbosity 2` everything.
"""
from __future__ import annotations

import argparse
import logging
import os
from typing import Optional

# Loggers of the libraries the commands use; their INFO lines describe library internals, not the user's work.
LIBRARY_LOGGERS = ("absl", "orbax", "jax", "jax._src", "tensorflow", "tensorflow_datasets", "grain", "etils",
                   "PIL", "urllib3", "h5py")
VERBOSITY_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Raw description/epilog (the docstrings are laid out by hand) and "(default: X)" after each option's help."""

    def _get_help_string(self, action: argparse.Action) -> Optional[str]:
        text = action.help or ""
        if ("default" in text.lower() or action.required or action.default in (None, False, argparse.SUPPRESS)
                or isinstance(action, (argparse._HelpAction, argparse._VersionAction))
                or action.option_strings == []):
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


def add_verbosity_argument(parser: argparse.ArgumentParser) -> None:
    """Adds `--verbosity N` (0: the command's own output and warnings; 1: library INFO logs; 2: debug)."""
    parser.add_argument("--verbosity", "-v", type=int, default=0, choices=sorted(VERBOSITY_LEVELS),
                        help="log detail: 0 = the command's own output and warnings, 1 = + library INFO logs "
                        "(checkpointing, data preparation), 2 = + debug")


class _LibraryChatter(logging.Filter):
    """Drops the warnings TensorFlow Datasets logs through absl about its own workings (e.g. "Using custom data
    configuration" followed by the whole builder config), which say nothing the user can act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or "tensorflow_datasets" not in (record.pathname or "")


_CHATTER = _LibraryChatter()


def quiet_logs(verbosity: int = 0) -> None:
    """Sets the libraries' log levels for `verbosity` (see `add_verbosity_argument`); call before they log.

    Also silences TensorFlow's C++ start-up lines (TF_CPP_MIN_LOG_LEVEL) unless the user set them.
    """
    level = VERBOSITY_LEVELS.get(min(max(verbosity, 0), 2), logging.WARNING)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(level)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbosity >= 2 else "2")
    absl_logger = logging.getLogger("absl")
    if verbosity <= 0:
        absl_logger.addFilter(_CHATTER)
    else:
        absl_logger.removeFilter(_CHATTER)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity({0: "warning", 1: "info", 2: "debug"}[min(max(verbosity, 0), 2)])
    except ImportError:  # absl is a dependency of every command; without it there is nothing to quieten
        pass


def absl_verbosity() -> int:
    """This module's verbosity from absl's own `--verbosity` / `-v` flag of an absl command: 0 unless the user gave
    it (absl's 0 = INFO -> 1, absl's 1 and more = debug -> 2; negative -> 0)."""
    from absl import flags

    flag = flags.FLAGS["verbosity"]
    if not flag.present:
        return 0
    return 0 if flag.value < 0 else (1 if flag.value == 0 else 2)
