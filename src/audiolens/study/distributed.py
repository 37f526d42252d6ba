"""Data-parallel runs under ``torchrun`` / ``accelerate launch``: which rank this process is, and
the few messages the ranks of a study exchange.

A launcher starts one process per rank and sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``. :func:`world` joins (or, inside a block, starts) the
process group they describe; without a launcher it is a world of one process and every call here
is a no-op. The ranks only exchange small Python objects and barriers, always over gloo (a CPU
backend), so the same code runs next to an NCCL group on GPUs.

Example:
    >>> with world() as w:
    ...     mine = w.shard(list(range(10)))
    >>> (w.rank, w.size, mine)
    (0, 1, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from ..errors import RankError as RankError

T = TypeVar("T")

# Ranks wait at a barrier for the slowest one; a run resumed after one rank was killed leaves
# that rank all the remaining work while the others wait, which can take hours on a large model.
BARRIER_TIMEOUT = timedelta(hours=12)


@dataclass(frozen=True)
class World:
    """This process's place among the ranks of a launch (``rank`` 0..``size`` − 1).

    Example:
        >>> World(rank=1, size=2).shard(["a", "b", "c"])
        ['b']
    """

    rank: int = 0
    size: int = 1
    group: Any = None  # the gloo process group for our messages (None: the default group)

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes shared files and builds tables."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's share of ``items``: item i goes to rank i mod size (deterministic)."""
        return list(items[self.rank :: self.size])

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        if self.distributed:
            import torch.distributed as dist

            dist.barrier(group=self.group)

    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank (a picklable object)."""
        if not self.distributed:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0, group=self.group)
        return box[0]

    def on_main(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0 only while the others wait; its result on every rank.

        An exception on rank 0 is raised there as is and on the other ranks as a
        :class:`RankError` with its message, so no rank is left waiting for the others.
        """
        if not self.distributed:
            return fn()
        outcome: tuple[str, Any] = ("ok", None)
        error: BaseException | None = None
        if self.is_main:
            try:
                outcome = ("ok", fn())
            except BaseException as exc:  # noqa: BLE001 - Ctrl-C too: no rank may wait forever
                error = exc
                outcome = ("error", f"{type(exc).__name__}: {exc}")
        kind, value = self.broadcast(outcome)
        if error is not None:
            raise error
        if kind == "error":
            raise RankError(f"rank 0 failed: {value}")
        return value


def env_world_size() -> int:
    """``WORLD_SIZE`` set by the launcher (1 without one)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main_process() -> bool:
    """Whether this process is rank 0 (always true without a launcher).

    Example:
        >>> is_main_process()
        True
    """
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank() == 0
    except ImportError:  # pragma: no cover - torch always ships torch.distributed on Linux
        pass
    return int(os.environ.get("RANK", "0") or 0) == 0


def local_device() -> str | None:
    """The GPU of this rank on its machine (``cuda:LOCAL_RANK``), or None without CUDA.

    Ranks beyond the number of GPUs share them round robin (a test of two ranks on one GPU).
    """
    import torch

    if not torch.cuda.is_available():
        return None
    local = int(os.environ.get("LOCAL_RANK", "0") or 0)
    return f"cuda:{local % torch.cuda.device_count()}"


_CONTROL: dict[int, Any] = {}  # id of the default group -> our gloo group beside it


def _control_group() -> Any:
    import torch.distributed as dist

    if dist.get_backend() == "gloo":
        return None
    key = id(dist.group.WORLD)
    if key not in _CONTROL:  # new_group is collective: every rank gets here in the same order
        _CONTROL.clear()
        _CONTROL[key] = dist.new_group(backend="gloo", timeout=BARRIER_TIMEOUT)
    return _CONTROL[key]


@contextmanager
def world() -> Iterator[World]:
    """The ranks of this launch for the block.

    Joins a process group that is already initialized (e.g. by ``accelerate``); else, when the
    launcher's ``WORLD_SIZE`` is above 1, starts one from its environment variables (NCCL for
    CUDA tensors and gloo for CPU ones when there is a GPU, gloo alone otherwise) and destroys it
    after the block; else yields a world of one process.
    """
    import torch
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        yield World(dist.get_rank(), dist.get_world_size(), _control_group())
        return
    if env_world_size() <= 1:
        yield World()
        return
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend, timeout=BARRIER_TIMEOUT)
    try:
        yield World(dist.get_rank(), dist.get_world_size(), _control_group())
        # Leave together: a rank that tears its group down while another still sends to it can
        # abort inside gloo's threads ("terminate called without an active exception").
        dist.barrier()
    finally:
        _CONTROL.clear()
        dist.destroy_process_group()


__all__ = [
    "BARRIER_TIMEOUT",
    "RankError",
    "World",
    "env_world_size",
    "is_main_process",
    "local_device",
    "world",
]
