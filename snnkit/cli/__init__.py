"""The ``snnkit`` command line, each subcommand a thin wrapper over the Python API.

One module per command or group of commands: each adds its subcommands to the parser and runs
them from the parsed arguments. The library modules hold no argparse code.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import SnnkitError
from . import board, convert, demo, hardware, info, simulate, sweep, train
from .common import UsageError

# each adds one subcommand, in the order ``snnkit --help`` lists them
REGISTER = (info.register, simulate.register, train.register, convert.register,
            hardware.register_compile, board.register_emulate, board.register_deploy,
            board.register_run, hardware.register_build, sweep.register, demo.register)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``snnkit`` parser and its subcommands' parsers by name."""
    ap = argparse.ArgumentParser(prog="snnkit", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in REGISTER:
        register(sub)
    return ap, dict(sub.choices)


def main(argv=None) -> int:
    """Run ``snnkit ARGS``; return the exit status (2 for a usage error or a snnkit error)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    ap, commands = build_parser()
    args = ap.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as e:
        commands[args.command].error(str(e))  # exits with status 2, as argparse does
    except SnnkitError as e:
        print(f"snnkit {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
