"""The ``gaussmix`` command line: the group, its error handling and its commands.

Every subcommand reads ``.csv``/``.tsv``, ``.npy`` or ``.parquet`` files (see
:mod:`gaussmix.files.tables`) and writes outputs atomically, so a failed command
never leaves a partial file. Expected errors (a missing or unreadable file, a
bad column, a model file that is not a gaussmix model, inconsistent sizes, a
missing optional dependency) are reported by :class:`GaussmixGroup` as one
line on standard error, ``gaussmix <command>: error: <what and how to fix>``,
in command-line terms (:func:`gaussmix.cli.errors.error_message`), with exit
status 2; ``--debug`` (anywhere on the command line, or ``GAUSSMIX_DEBUG=1``)
shows the traceback instead. Commands added to :data:`main` later get the
same handling.

The commands live in their own modules: :mod:`.fit` (fit, example),
:mod:`.apply` (predict, score, plot), :mod:`.impute`, :mod:`.sample` and
:mod:`.select`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import click

from .._version import __version__
from .errors import EXPECTED_ERRORS, error_message

__all__ = ["EXPECTED_ERRORS", "GaussmixGroup", "error_message", "main", "run"]

DEBUG_KEY = "gaussmix.debug"


def _debug_from_environment() -> bool:
    value = os.environ.get("GAUSSMIX_DEBUG", "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


class GaussmixGroup(click.Group):
    """A click group that turns expected errors into one line and status 2.

    ``--debug`` is accepted anywhere before ``--`` (also after the subcommand)
    and re-raises the error for its traceback.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        cut = args.index("--") if "--" in args else len(args)
        if "--debug" in args[:cut]:
            ctx.meta[DEBUG_KEY] = True
            args = [a for i, a in enumerate(args) if i >= cut or a != "--debug"]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EXPECTED_ERRORS as exc:
            if ctx.meta.get(DEBUG_KEY) or _debug_from_environment():
                raise
            command = ctx.invoked_subcommand or ctx.info_name or "gaussmix"
            click.echo(f"gaussmix {command}: error: {error_message(exc)}", err=True)
            ctx.exit(2)


@click.group(
    cls=GaussmixGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="""\b
Examples:
  gaussmix example                          fit built-in data, draw a figure
  gaussmix fit data.csv -k 3 -o model.npz   fit and save a model
  gaussmix select data.csv -o best.npz      choose K and covariance by BIC
  gaussmix predict model.npz data.csv -o labels.csv
  gaussmix impute model.npz data.csv -o filled.csv   fill empty cells
  gaussmix plot model.npz data.csv -o mixture.png
  gaussmix fit --help                       options of one command

\b
Data files: .csv/.tsv (header detected), .npy, .parquet (pip install
'gaussmix[io]'). Figures need matplotlib (pip install 'gaussmix[plot]').""",
)
@click.option("--debug", is_flag=True,
              help="Show the full traceback of errors (also GAUSSMIX_DEBUG=1).")
@click.version_option(__version__, "-V", "--version", prog_name="gaussmix")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Gaussian mixture models fitted by EM, from the shell.

    Fit a mixture to a table of numbers, then label, score, impute, sample
    and plot with the saved model. Errors print one line and exit with status 2.
    """
    if debug:
        ctx.meta[DEBUG_KEY] = True


def _register_commands() -> None:
    """Add the commands, which live in their own modules."""
    from .apply import plot_command, predict_command, score_command
    from .fit import example_command, fit_command
    from .impute import impute_command
    from .sample import sample_command
    from .select import select_command

    for command in (fit_command, predict_command, score_command, impute_command,
                    sample_command, plot_command, example_command, select_command):
        main.add_command(command)


_register_commands()


def run(argv: Sequence[str] | None = None) -> None:
    """Run the command line (``argv`` defaults to ``sys.argv[1:]``)."""
    main.main(args=list(argv) if argv is not None else None, prog_name="gaussmix")
