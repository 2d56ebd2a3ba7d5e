"""Progress of a selection: a live rich bar, one line per candidate, a callback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .result import Candidate


class Reporter:
    """Progress of a selection: a rich bar and/or one line per candidate."""

    def __init__(self, n_seed: int, n_fit: int, verbose: int, progress: bool,
                 callback: Callable[[Candidate], Any] | None = None) -> None:
        self.verbose, self.progress, self.callback = verbose, progress, callback
        self.n_seed, self.n_fit, self.done = n_seed, n_fit, 0
        self._bar: Any = None

    def __enter__(self) -> None:
        if self.progress:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=Console(stderr=True), transient=False)
            self._bar.start()
            self._seed = self._bar.add_task("initialising", total=self.n_seed)
            self._fit = self._bar.add_task("fitting", total=self.n_fit)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def seeded(self, k: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._seed)

    def shared_pass(self, n_iter: int, going: int) -> None:
        """After a shared EM pass of candidates fitted in lockstep (whose rows
        all arrive at the end): how many of their runs still iterate."""
        what = f"shared EM pass {n_iter}: {going} run(s) still iterating"
        if self._bar is not None:
            self._bar.update(self._fit, description=f"fitting in lockstep ({what})")
        if self.verbose:
            print(f"[{what}]", flush=True)

    def fitted(self, row: Candidate) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.update(self._fit, advance=1, description=(
                f"fitting (last: K={row.n_components} {row.covariance_type})"))
        if self.callback is not None:
            self.callback(row)
        if self.verbose:
            status = row.error or (
                f"bic {row.bic:.6g}  aic {row.aic:.6g}  icl {row.icl:.6g}  "
                f"iter {row.n_iter}{'' if row.converged else ' (not converged)'}")
            print(f"[{self.done}/{self.n_fit}] K={row.n_components} "
                  f"{row.covariance_type}: {status}  ({row.time:.2f}s)", flush=True)
