"""The command line: parse, call the library, print. No logic lives here.

Each group of commands is a module in `pairzoo/commands/`; heavy imports (Keras, TensorFlow)
happen inside the command functions, so `pairzoo --help` and `pairzoo list` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except PairzooError as e:
        print(f"pairzoo: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
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
