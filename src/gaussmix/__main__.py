"""``python -m gaussmix``: the gaussmix command line.

With no arguments it runs ``gaussmix example`` (fit the built-in wine data,
print the summary, write ``gaussmix-example.png``).
"""

from __future__ import annotations

import sys

from .cli import run


def _main(argv: list[str]) -> None:
    if not argv:
        print("gaussmix: no command given, running 'gaussmix example'; "
              "'gaussmix --help' lists the commands.", file=sys.stderr)
        argv = ["example"]
    run(argv)


if __name__ == "__main__":
    _main(sys.argv[1:])
