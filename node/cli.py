"""The ``waystation`` command line.

Each sub-command lives in its own module under ``waystation.commands`` and exposes
``register(subparsers)``; modules are discovered at start-up, so adding a command never means
editing a central list. A command's handler is stored as ``func`` on its parser and receives the
parsed ``argparse.Namespace``; it returns the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

from waystation import __version__, commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="waystation",
        description="A delay-tolerant store-and-forward BPv7 bundle node.",
    )
    parser.add_argument("--version", action="version", version=f"waystation {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (repeatable)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse cannot match an optional positional that follows options
    # (`send DEST --report delivery TEXT`): give such a leftover word to ``text``.
    if (
        extra
        and len(extra) == 1
        and not extra[0].startswith("-")
        and getattr(args, "text", 0) is None
    ):
        args.text = extra[0]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: one readable line, the traceback only when asked for
        if args.verbose:
            raise
        print(
            f"waystation: internal error: {type(exc).__name__}: {exc} (run with -v for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
