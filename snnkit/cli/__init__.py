"""The snnkit command line, each subcommand a thin wrapper over the Python API.

One module per command or group of commands: each adds its subcommands to the parser and runs
them from the parsed arguments. The library modules hold no argparse code. :func:`main` is
the one error boundary: every failure ends as ``snnkit <command>: error: <message>``.

Exit status: 0 done; 2 the command line cannot be carried out as given (a bad option, a
missing or unreadable input file, an unusable output path); 1 the work failed (an invalid
network or input, a damaged network file among them, a board or a tool that failed);
130 / 143 stopped by Ctrl-C / SIGTERM (finished work saved where an output was named);
141, quietly, when the reader of stdout
left (``snnkit info net.snn | head``; a command that writes files finishes them first,
its report going nowhere). ``--debug`` adds the Python traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import traceback
import warnings

from .. import __version__
from ..errors import SnnkitError
from . import board, convert, demo, hardware, info, plot, simulate, sweep, train
from .common import Formatter, Parser, UsageError, stdout_closed, stdout_to_devnull

# each adds one subcommand, in the order ``snnkit --help`` lists them
REGISTER = (info.register, simulate.register, plot.register, train.register,
            convert.register, hardware.register_compile, board.register_emulate,
            board.register_deploy, board.register_run, hardware.register_build, sweep.register,
            demo.register)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is so that cleanup runs as for Ctrl-C."""


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``snnkit`` parser and its subcommands' parsers by name."""
    ap = argparse.ArgumentParser(
        prog="snnkit", description=__doc__.split("\n")[0], formatter_class=Formatter,
        epilog="exit status: 0 done, 2 bad command line (option, input file, output path), "
               "1 the work failed, 130 / 143 stopped by Ctrl-C / SIGTERM. "
               "snnkit COMMAND --help for each command.")
    ap.add_argument("--debug", action="store_true",
                    help="on an error, show the Python traceback too")
    ap.add_argument("--version", action="version", version=f"snnkit {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND",
                            parser_class=Parser)
    for register in REGISTER:
        register(sub)
    return ap, dict(sub.choices)


def main(argv=None) -> int:
    """Run ``snnkit ARGS``; return the exit status (see the module's docstring)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    ap, commands = build_parser()
    try:
        args, extra = ap.parse_known_args(argv)
        if extra:  # named by the command they were given to, with its usage
            commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as e:  # --help (0) or a usage error (2), already printed by argparse
        return e.code if isinstance(e.code, int) else 2
    name = f"snnkit {args.command}"
    debug = getattr(args, "debug", False)

    def fail(msg: str, status: int) -> int:
        if debug:
            traceback.print_exc()
        print(f"{name}: error: {msg}", file=sys.stderr, flush=True)
        return status

    with _warnings_as_lines(name), _sigterm_interrupts():
        try:
            return args.func(args)
        except UsageError as e:
            commands[args.command].print_usage(sys.stderr)
            return fail(str(e), 2)
        except SnnkitError as e:
            return fail(str(e), 1)
        except KeyboardInterrupt as e:
            if debug:
                traceback.print_exc()
            sig = "SIGTERM" if isinstance(e, Terminated) else "Ctrl-C"
            print(f"{name}: stopped by {sig}", file=sys.stderr, flush=True)
            return 143 if isinstance(e, Terminated) else 130
        except BrokenPipeError:
            if not stdout_closed():
                return fail("broken pipe", 1)
            # the reader of stdout left (snnkit info net.snn | head): quiet, as cat would be
            stdout_to_devnull()
            return 141
        except OSError as e:
            where = f" {e.filename!r}" if e.filename else ""
            return fail(f"{e.strerror or e}{where}", 1)
        except MemoryError:
            return fail("out of memory (try a smaller batch or fewer steps)", 1)
        except Exception as e:  # noqa: BLE001 - the boundary: a message, never a traceback
            return fail(f"{type(e).__name__}: {e}" + ("" if debug else
                        " (run with --debug for the traceback)"), 1)


@contextlib.contextmanager
def _sigterm_interrupts():
    """SIGTERM raises :class:`Terminated` in the main thread, so a ``kill`` unwinds like
    Ctrl-C: child processes and temporary folders are removed, finished work is saved."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Terminated

    old = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def _warnings_as_lines(name: str):
    """Warnings as ``snnkit CMD: warning: ...`` lines (no file and line of snnkit's code)."""

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{name}: warning: {message}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
