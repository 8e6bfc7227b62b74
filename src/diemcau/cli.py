"""The ``diemcau`` command line.

Each package that offers commands has a ``cli`` module with
``register(subparsers)``; every registered command sets ``func`` (returning an
exit code) on its parser. Commands print progress to stderr and results to stdout.

Whatever goes wrong ends in one line on stderr and a non-zero exit, never a
traceback: a refused input (a domain error, an unsupported database URL), a store
that cannot be opened, a file that cannot be read or written. Anything else is a
bug: it is reported in one line too, and ``DIEMCAU_DEBUG=1`` shows its traceback.
While a command runs, its log lines follow the same rule (`diemcau.logs`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from diemcau import logs
from diemcau.errors import DomainError
from diemcau.store.reach import StoreUnavailable

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


def _fail(message: str) -> int:
    print(f"diemcau: error: {message}", file=sys.stderr)
    return 1


def _os_error(exc: OSError) -> str:
    """``path: reason``, the way Unix tools name a file they cannot use."""
    what = exc.strerror or str(exc) or type(exc).__name__
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    return f"{' -> '.join(names)}: {what}" if names else what


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; every failure becomes one line on stderr and exit 1."""
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except StoreUnavailable as exc:
        return _fail(exc.message)
    except DomainError as exc:
        return _fail(exc.message)
    except OSError as exc:
        return _fail(_os_error(exc))
    except Exception as exc:
        if os.environ.get("DIEMCAU_DEBUG"):
            traceback.print_exc()
        detail = str(exc).strip().splitlines()
        return _fail(
            f"unexpected {type(exc).__name__}: {detail[0] if detail else ''} "
            "(a bug: DIEMCAU_DEBUG=1 shows where)"
        )
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure()
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
