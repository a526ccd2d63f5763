"""Shared command-line plumbing: user errors become one line and a non-zero exit."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from signgen.errors import SignGenError

EXIT_USER_ERROR = 2


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Run ``main(argv)``; a SignGenError prints ``error: ...`` (no traceback) and exits 2."""
    try:
        return main(argv) or 0
    except SignGenError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


class NotBuiltYetError(SignGenError):
    """A command that belongs to a part of signgen that has not landed yet."""


class UsageError(SignGenError):
    """A command line that argparse cannot parse (unknown option, bad value)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are SignGenErrors: ``run_cli`` prints them as one line
    ``error: ...`` and exits 2, like every other user error (plain argparse prints the
    whole usage text first)."""

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)")
