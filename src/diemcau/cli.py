"""The ``diemcau`` command line.

Each package that offers commands has a ``cli`` module with
``register(subparsers)``; every registered command sets ``func`` (returning an
exit code) on its parser. Commands print progress to stderr and results to stdout.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser"]

# Modules whose ``register`` adds subcommands, in the order shown by --help.
COMMAND_MODULES = (
    "diemcau.directory.cli",
    "diemcau.directory.provision_cli",
    "diemcau.accounts.cli",
    "diemcau.api.cli",
    "diemcau.tls.cli",
    "diemcau.media.cli",
    "diemcau.deploy.cli",
    "diemcau.sim.cli",
    "diemcau.command.cli",
    "diemcau.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diemcau",
        description="Command center and online meeting system for every commune-level site.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
