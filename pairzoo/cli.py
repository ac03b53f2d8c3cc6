"""The command line: parse, call the library, print. No logic lives here.

Each group of commands is a module in `pairzoo/commands/`; heavy imports (Keras, TensorFlow)
happen inside the command functions, so `pairzoo --help` and `pairzoo list` start fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading

from pairzoo.commands import COMMAND_MODULES
from pairzoo.commands.common import Parser
from pairzoo.errors import PairzooError


class VersionAction(argparse.Action):
    """`pairzoo --version`: pairzoo, Keras and the backend, read from package metadata (no
    import of Keras or TensorFlow)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show pairzoo's, Keras's and the backend's versions and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from pairzoo.versions import version_line

        print(version_line())  # stdout, as argparse's own version action prints
        parser.exit(0)


def build_parser() -> Parser:
    parser = Parser(prog="pairzoo", description="Pair-comparison networks on MNIST digit "
                    "pairs: train, evaluate, export and compare the zoo.")
    parser.add_argument("--version", action=VersionAction)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=Parser)
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_parsers(commands)
    return parser


@contextlib.contextmanager
def signals_as_interrupts():
    """While a command runs, SIGTERM and SIGHUP raise KeyboardInterrupt, so `kill PID` or a
    closed terminal stops workers and a local Ray instance and writes nothing half-way, as
    Ctrl-C does; their default would end this process at once and leave its workers running.
    Yields the list of signals received (the interrupt itself may reach us re-raised as a plain
    KeyboardInterrupt: Ray's waits do that). Only the main thread can set handlers (in-process
    callers may not be it); a signal the caller ignores (nohup) stays ignored; the caller's
    handlers come back after."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {}

    def interrupt(signum, frame):
        if not received:  # once: a second signal must not cut the cleanup the first started
            received.append(signum)
            raise KeyboardInterrupt(signal.Signals(signum).name)

    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)  # no SIGHUP on Windows
        if signum is not None and signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, interrupt)
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    received: list[int] = []
    try:
        with signals_as_interrupts() as received:
            return args.run(args)
    except PairzooError as e:
        print(f"pairzoo: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if received:  # SIGTERM or SIGHUP: the shell's convention, 128 + the signal's number
            print(f"pairzoo: stopped by {signal.Signals(received[0]).name}", file=sys.stderr)
            return 128 + received[0]
        print("pairzoo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `pairzoo list | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # a bug, not bad input: still one line unless asked for more
        if os.environ.get("PAIRZOO_DEBUG"):
            raise
        first_line = (str(e).strip().splitlines() or [""])[0]
        print(f"pairzoo: internal error: {type(e).__name__}: {first_line} "
              "(set PAIRZOO_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
