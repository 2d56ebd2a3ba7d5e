"""Progress of EM fits: a live display (rich) fed by the estimator's callback.

:class:`EMProgress` is a context manager that is also the ``callback`` of
:class:`gaussmix.GaussianMixture`. It shows one line per initialisation
(restart) with a bar over ``max_iter``, the iteration, the current mean
log-likelihood and its change:

>>> from gaussmix import GaussianMixture
>>> from gaussmix.cli.progress import EMProgress
>>> with EMProgress(n_init=3, max_iter=100) as progress:  # doctest: +SKIP
...     GaussianMixture(3, n_init=3, callback=progress).fit(X)

Modes: ``"live"`` redraws the display in place (for a terminal), ``"lines"``
prints one plain line per iteration (for logs, when asked for without a
terminal), ``"off"`` shows nothing. :func:`choose_mode` picks one the way the
command line does: off with ``quiet``, live on a terminal, lines when
``force`` is given without a terminal, else off.
"""

from __future__ import annotations

import math
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Self

Mode = Literal["live", "lines", "off"]

__all__ = ["EMProgress", "choose_mode"]


def choose_mode(console: Console, *, quiet: bool = False, force: bool = False) -> Mode:
    """Live on a terminal, plain lines when forced elsewhere, off when quiet."""
    if quiet:
        return "off"
    if console.is_terminal:
        return "live"
    return "lines" if force else "off"


def _format_change(change: float) -> str:
    return f"{change:+.3e}" if math.isfinite(change) else "-"


class EMProgress:
    """Display EM iterations and restarts; pass the instance as ``callback``.

    Parameters
    ----------
    n_init : int
        Number of initialisations the fit will run.
    max_iter : int
        The estimator's ``max_iter`` (length of each bar).
    mode : {'live', 'lines', 'off'} or None, default=None
        None chooses ``'live'`` on a terminal, else ``'off'``.
    console : rich.console.Console, optional
        Where to draw; default a console on standard error.
    label : str, default=""
        Prefix of every line, e.g. the model being fitted.
    """

    def __init__(
        self,
        n_init: int = 1,
        max_iter: int = 100,
        *,
        mode: Mode | None = None,
        console: Console | None = None,
        label: str = "",
    ) -> None:
        self.console = console if console is not None else Console(stderr=True)
        self.mode: Mode = mode if mode is not None else choose_mode(self.console)
        self.n_init = n_init
        self.max_iter = max_iter
        self.label = label
        self.updates = 0
        self._progress: Progress | None = None
        self._tasks: dict[int, TaskID] = {}

    # -- context manager -----------------------------------------------------
    def __enter__(self) -> Self:
        if self.mode == "live":
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TextColumn("iterations"),
                TextColumn("log-likelihood [bold]{task.fields[loglik]}"),
                TextColumn("change {task.fields[change]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._finish_task()
            self._progress.stop()
            self._progress = None

    # -- callback ------------------------------------------------------------
    def __call__(self, info: dict[str, Any]) -> None:
        """Record one EM iteration (the estimator's callback)."""
        self.updates += 1
        init, iteration = int(info["init"]), int(info["iteration"])
        loglik, change = float(info["lower_bound"]), float(info["change"])
        max_iter = int(info.get("max_iter", self.max_iter))
        if self.mode == "lines":
            self.console.print(
                f"{self._describe(init)}  iteration {iteration}/{max_iter}  "
                f"log-likelihood {loglik:.6f}  change {_format_change(change)}",
                highlight=False, soft_wrap=True,
            )
        elif self._progress is not None:
            task = self._task(init, max_iter)
            self._progress.update(
                task, completed=iteration, loglik=f"{loglik:.6f}",
                change=_format_change(change),
            )

    def _describe(self, init: int) -> str:
        prefix = f"{self.label} " if self.label else ""
        return f"{prefix}restart {init + 1}/{self.n_init}"

    def _task(self, init: int, max_iter: int) -> TaskID:
        assert self._progress is not None
        if init not in self._tasks:
            self._finish_task()
            self._tasks[init] = self._progress.add_task(
                self._describe(init), total=max_iter, loglik="-", change="-"
            )
        return self._tasks[init]

    def _finish_task(self) -> None:
        """Shrink the last bar to where its run stopped (converged early)."""
        if self._progress is None or not self._tasks:
            return
        last = self._tasks[max(self._tasks)]
        task = next(t for t in self._progress.tasks if t.id == last)
        self._progress.update(last, total=max(task.completed, 1))
