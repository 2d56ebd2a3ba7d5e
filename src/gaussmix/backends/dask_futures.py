"""Passes over rows persisted on a ``distributed.Client``, on their futures.

When the rows of a :class:`~gaussmix.backends.dask.DaskSource` are persisted
on the active client as they are fitted (whole rows per block, float32 or
float64), a pass needs no Dask graph: :func:`submit_pass` submits tasks on the
blocks' futures with ``Client.submit``, with no graph to build, optimise or
materialise per iteration. It keeps the fixed cost of an EM iteration low:

- **one task per worker and tree node**: the blocks of each node of the
  reduction tree (``split_every`` consecutive blocks) are split by the worker
  that holds them (asked once per fit), and one task on that worker maps the
  chunk function over its blocks, in block order. A node held by one worker
  is added there; the values of a node spread over several workers are added
  in block order by a node task (or in the client, for the last level). The
  additions are exactly those of the graph path's tree (block order, then
  tree level), whatever the placement, so fits do not depend on it.
- **the chunk function in each task** (a few K x d x d arrays of parameters):
  no task waits for a transfer of the parameters from another worker.
- **one message per pass**: the client sends its messages to the scheduler in
  batches, at most one every 10 ms, so the tasks of a pass go in one message
  (a task per worker in separate messages started 10 ms apart), and the last
  pass's values are released after it: released as that pass ended, they
  opened a batch window that held the next pass's tasks back (its first task
  started 15-17 ms after the iteration's start in 5 of 8 iterations, against
  3-7 ms; task stream, 2026-11-29).
- **the last level in the client**: at most ``split_every`` values are
  gathered and added in the client, one round trip fewer than a root task.
- **rows checked once**: the first pass checks every block (finite values,
  features); persisted blocks do not change, so later passes skip the check.
- **weights next to their rows**: the scaled weights are computed once per
  fit, each block on the worker holding its rows.

A task that could not run on the worker planned for it (the worker was lost;
Dask recomputed its blocks elsewhere from their lineage) still gives the
same values; the blocks' placement is asked again for the next pass.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .._optional import require

T = TypeVar("T")

__all__ = ["PersistedBlocks", "active_client", "submit_pass"]


def _distributed() -> Any:
    return require("distributed", "dask", "fitting Dask arrays")


def active_client(X: Any) -> Any:
    """The ``distributed.Client`` that ``dask.compute`` would run ``X`` on, or None."""
    dask = require("dask", "dask", "fitting Dask arrays")
    get = dask.base.get_scheduler(collections=[X])
    client = getattr(get, "__self__", None)
    return client if isinstance(client, _distributed().Client) else None


def block_futures(array: Any, client: Any) -> list[Any] | None:
    """The futures on ``client`` of ``array``'s blocks in order, when all its
    blocks are persisted as they are; else None."""
    dask = require("dask", "dask", "fitting Dask arrays")
    futures = {f.key: f for f in _distributed().futures_of(array) if f.client is client}
    keys = list(dask.core.flatten(array.__dask_keys__()))
    if not all(key in futures for key in keys):
        return None
    return [futures[key] for key in keys]


@dataclass
class PersistedBlocks:
    """A source's persisted blocks on ``client``: futures of the rows (and of
    the scaled weights), the worker holding each block, whether they were
    checked."""

    client: Any
    rows: list[Any]
    row_counts: Sequence[int]
    weights: Any = None  # the scaled weights as a Dask array, or None
    weight_futures: list[Any] | None = None
    holders: list[str] = field(default_factory=list)
    checked: bool = False
    held: Any = None  # the last pass's futures, released by the next pass

    def placement(self) -> list[str]:
        """The worker holding each block (asked once, and again after a task
        ran elsewhere); the weights are computed next to their rows, once."""
        if not self.holders:
            where = self.client.who_has(self.rows)
            self.holders = [sorted(where[f.key])[0] if where[f.key] else ""
                            for f in self.rows]
        if self.weights is not None and self.weight_futures is None:
            self.weight_futures = self._colocated_weights()
        return self.holders

    def _colocated_weights(self) -> list[Any]:
        blocks = self.weights.to_delayed().ravel().tolist()
        futures: list[Any] = [None] * len(blocks)
        for worker in set(self.holders):
            mine = [i for i, h in enumerate(self.holders) if h == worker]
            computed = self.client.compute([blocks[i] for i in mine],
                                           workers=[worker] if worker else None,
                                           allow_other_workers=True)
            for i, future in zip(mine, computed, strict=True):
                futures[i] = future
        return futures


Parts = list[tuple[list[int], Any]]  # a node's (positions in it, future of their values)


def submit_pass(func: Callable[[Any], T], blocks: PersistedBlocks, n_features: int,
                chunk_size: int | None, split_every: int, missing: str | None = None
                ) -> T:
    """``func`` over every chunk of the persisted blocks, values added in block
    order in a tree of ``split_every`` values per node; the sum. The first
    pass checks the rows (NaN as ``missing`` says, see
    :func:`~gaussmix.engine.chunk_checks.check_chunk`)."""
    client = blocks.client
    name = f"gaussmix-pass-{uuid.uuid4().hex}"
    nodes = _submit_nodes(func, blocks, n_features, chunk_size, split_every, name,
                          missing)
    blocks.held = nodes  # the last pass's released only now (module notes)
    if len(nodes) <= split_every:  # the client adds the parts of each node
        gathered = client.gather([[f for _, f in parts] for parts in nodes])
        moved, total = _sum_moved([
            _merge_parts([positions for positions, _ in parts], values)
            for parts, values in zip(nodes, gathered, strict=True)])
    else:
        level = [_node_future(client, parts, f"{name}-node-{j}")
                 for j, parts in enumerate(nodes)]
        depth = 0
        while len(level) > split_every:
            depth += 1
            level = [client.submit(_sum_moved, level[i:i + split_every], pure=False,
                                   key=f"{name}-sum-{depth}-{i}")
                     for i in range(0, len(level), split_every)]
        blocks.held = (nodes, level)
        moved, total = _sum_moved(client.gather(level))
    blocks.checked = True
    if moved:
        blocks.holders = []  # ask again where the blocks are
    return total


def _submit_nodes(func: Callable[[Any], Any], blocks: PersistedBlocks, n_features: int,
                  chunk_size: int | None, split_every: int, name: str,
                  missing: str | None = None) -> list[Parts]:
    """One task per worker and node of ``split_every`` consecutive blocks, all
    submitted in one message (see :func:`_submit_together`)."""
    from .dask import _Bound, block_names

    holders, bound = blocks.placement(), _Bound(func)
    names = block_names(blocks.row_counts)
    weights = blocks.weight_futures or [None] * len(holders)
    leaves = [i for i, rows in enumerate(blocks.row_counts) if rows]
    tasks: list[tuple[str, str, tuple[Any, ...]]] = []  # (key, worker, arguments)
    nodes: list[list[tuple[list[int], str]]] = []  # (positions, key) of each part
    for j in range(0, len(leaves), split_every):
        node, parts = leaves[j:j + split_every], []  # type: list[int], list[Any]
        for worker in dict.fromkeys(holders[i] for i in node):
            positions = [p for p, i in enumerate(node) if holders[i] == worker]
            mine = [node[p] for p in positions]
            key = f"{name}-{j // split_every}-{len(parts)}"
            tasks.append((key, worker, (
                bound, [blocks.rows[i] for i in mine], [weights[i] for i in mine],
                n_features, chunk_size, not blocks.checked, len(mine) == len(node),
                worker, missing, [names[i] for i in mine])))
            parts.append((positions, key))
        nodes.append(parts)
    futures = _submit_together(blocks.client, _apply_blocks, tasks)
    return [[(positions, futures[key]) for positions, key in parts] for parts in nodes]


def _submit_together(client: Any, func: Callable[..., Any],
                     tasks: list[tuple[str, str, tuple[Any, ...]]]) -> dict[str, Any]:
    """``func(*arguments)`` of every task as one message to the scheduler,
    each task preferring its worker ('' for none); the futures by key.

    Why one message: a client batches its messages to the scheduler, at most
    one batch every 10 ms; a task submitted just after another (one per
    worker) waited for the next batch, and its worker started that much later.
    """
    dask = require("dask", "dask", "fitting Dask arrays")
    keys = [key for key, _, _ in tasks]
    anywhere = sorted({worker for _, worker, _ in tasks if worker})
    where = _Preferred({key: [worker] for key, worker, _ in tasks if worker}, anywhere)
    columns = [list(column) for column in zip(*(args for _, _, args in tasks), strict=True)]
    restrict = {"workers": where, "allow_other_workers": True} if anywhere else {}
    with dask.annotate(**restrict):
        futures = client.map(func, *columns, key=keys, pure=False)
    return dict(zip(keys, futures, strict=True))


@dataclass(frozen=True)
class _Preferred:
    """The workers a task prefers, by key (an annotation the scheduler calls
    with each key of a message): its block's holder, else any holder."""

    workers: dict[str, list[str]]
    anywhere: list[str]

    def __call__(self, key: Any) -> list[str]:
        return self.workers.get(key, self.anywhere)


def _node_future(client: Any, parts: Parts, key: str) -> Any:
    """A node's value as one future: its only part's, or a task adding its parts."""
    if len(parts) == 1 and parts[0][0] == list(range(len(parts[0][0]))):
        return parts[0][1]
    return client.submit(_merge_parts, [p for p, _ in parts], [f for _, f in parts],
                         key=key, pure=False)


def _apply_blocks(bound: Any, rows: list[Any], weights: list[Any], n_features: int,
                  size: int | None, check: bool, whole: bool, planned: str,
                  missing: str | None = None, wheres: list[str] | None = None
                  ) -> tuple[bool, Any]:
    """The chunk function's value of each block (their sum when ``whole``: the
    blocks are a whole tree node), and whether this ran away from ``planned``."""
    from .dask import A_BLOCK, _block_values, _sum

    wheres = wheres or [A_BLOCK] * len(rows)
    values = [_block_values(bound, X, w, n_features, size, check, missing, where)
              for X, w, where in zip(rows, weights, wheres, strict=True)]
    try:
        moved = _distributed().get_worker().address != planned
    except ValueError:  # not on a worker (a test's synchronous run)
        moved = False
    return moved, _sum(values) if whole else values


def _merge_parts(positions: list[list[int]], parts: list[tuple[bool, Any]]
                 ) -> tuple[bool, Any]:
    """A node's value from its parts' values, added in block order."""
    from .dask import _sum

    if len(parts) == 1 and positions[0] == list(range(len(positions[0]))):
        return parts[0]  # the whole node: already added by its task
    values: dict[int, Any] = {}
    for where, (_, part) in zip(positions, parts, strict=True):
        values.update(zip(where, part, strict=True))
    return any(m for m, _ in parts), _sum([values[p] for p in sorted(values)])


def _sum_moved(values: Sequence[tuple[bool, T]]) -> tuple[bool, T]:
    from .dask import _sum

    return any(m for m, _ in values), _sum([v for _, v in values])
