"""Argument types for the command line that refuse bad numbers before anything runs.

argparse turns a `ValueError` or `ArgumentTypeError` raised here into its usual
one-line usage error (exit 2), so ``--port 99999`` or ``--capacity 0`` never reach
a socket call or a division.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeAlias

__all__ = ["Subparsers", "bounded_float", "bounded_int", "port"]

# What `ArgumentParser.add_subparsers` returns: each command module's ``register``
# adds its parser to it.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def bounded_int(low: int, high: int | None = None) -> Callable[[str], int]:
    """An int type accepting ``low <= value (<= high)``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low or (high is not None and value > high):
            upper = f" and {high}" if high is not None else " or more"
            word = "between " if high is not None else ""
            raise argparse.ArgumentTypeError(f"{value} is out of range: give {word}{low}{upper}")
        return value

    parse.__name__ = "number"
    return parse


def bounded_float(low: float) -> Callable[[str], float]:
    """A float type accepting ``value >= low`` (and refusing NaN and infinities)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value >= low or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{text} is out of range: give {low:g} or more")
        return value

    parse.__name__ = "number"
    return parse


port = bounded_int(1, 65535)
port.__name__ = "port"
