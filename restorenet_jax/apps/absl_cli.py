"""Running an absl command with a `--help` that lists its own flags.

absl's built-in help prints only the main module's docstring (for a console script, a generated wrapper without
one) and exits with status 1; a user expects the command's description, its flags, and status 0.
"""
from __future__ import annotations

import sys
from typing import Callable

from absl import app, flags


def run_with_help(main: Callable[[list[str]], object], doc: str, flags_module: str) -> None:
    """`app.run(main)`, except that -h/--help prints `doc` and the flags defined in `flags_module`, then exits 0."""
    if any(a in ("-h", "--help", "-help") for a in sys.argv[1:]):
        print(doc + flags.FLAGS.module_help(flags_module).replace(flags_module + ":", "flags:"))
        sys.exit(0)
    app.run(main)
