"""One lab per slot, held with an fcntl lock; a dead run's lab is torn down by whoever takes
its slot next."""

from __future__ import annotations

import contextlib
import fcntl
import json
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tests.harness.cluster.host import NETNS_DIR, LabError
from tests.harness.cluster.lab import ClusterLab
from tests.harness.cluster.layout import LOCK_DIR, SLOTS, NodeSpec, Slot


class Busy(LabError):
    """Every slot asked for is held by another lab."""


@dataclass
class SlotLock:
    """A slot held by this process: an fcntl lock on its lock file, gone when we are."""

    slot: Slot
    handle: IO[str]

    def record(self, lab: ClusterLab) -> None:
        """Write what teardown needs into the lock file, before creating anything."""
        record = {
            "base": str(lab.base),
            "netns_dir_was_there": lab.netns_dir_was_there,
            "nodes": [[spec.name, spec.role] for spec in lab.specs],
        }
        self._write(json.dumps(record) + "\n")

    def clear(self) -> None:
        self._write("")

    def _write(self, text: str) -> None:
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(text)
        self.handle.flush()

    def recalled(self) -> ClusterLab | None:
        """The lab of a run that died before its teardown, from the lock file's text."""
        self.handle.seek(0)
        text = self.handle.read()
        if not text.strip():
            return None
        where = self.slot.lock_file
        try:
            record = json.loads(text)
            base = Path(record["base"])
            was_there = bool(record["netns_dir_was_there"])
            specs = tuple(NodeSpec(name, role) for name, role in record["nodes"])
        except (ValueError, KeyError, TypeError):
            raise LabError(f"{where}: unreadable ({text.strip()!r}); remove it") from None
        if base.parent != Path("/tmp") or not base.name.startswith(f"{self.slot.prefix}-"):
            raise LabError(f"{where}: {base} is not one of this slot's folders; remove it")
        return ClusterLab(self.slot, specs, base, netns_dir_was_there=was_there)

    def clean_stale(self) -> ClusterLab | None:
        """Tear down what a dead run left in this slot; returns that lab, if there was one."""
        stale = self.recalled()
        if stale is not None:
            problems = stale.teardown()
            if problems:
                raise LabError(f"cleaning up the stale lab in {stale.base}: {problems}")
        self.clear()
        return stale


def try_slot(slot: Slot) -> SlotLock | None:
    """The slot's lock, or None when another process holds it."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    handle = slot.lock_file.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return SlotLock(slot, handle)


@contextlib.contextmanager
def claimed_slot(numbers: Sequence[int] = range(SLOTS)) -> Iterator[SlotLock]:
    """The first free slot of `numbers`, after cleaning up what a dead run left there."""
    for number in numbers:
        lock = try_slot(Slot(number))
        if lock is None:
            continue
        with lock.handle:
            lock.clean_stale()
            try:
                yield lock
            finally:
                lock.clear()
        return
    raise Busy(f"every lab slot of {list(numbers)} is held ({LOCK_DIR}/phxlab-*.lock)")


def new_base(slot: Slot) -> Path:
    # Short: containerd's sockets live below it and unix socket paths are limited to 107 bytes.
    return Path(tempfile.mkdtemp(prefix=f"{slot.prefix}-", dir="/tmp"))


@contextlib.contextmanager
def cluster_lab(
    specs: Sequence[NodeSpec], image: str = "", *, slots: Sequence[int] = range(SLOTS)
) -> Iterator[ClusterLab]:
    """A lab of `specs` in the first free slot of `slots`, `image` loaded on every node (none
    if ""), torn down afterwards. Raises Busy when every slot is held (before creating
    anything), LabError when setup fails or teardown leaves anything behind."""
    with claimed_slot(slots) as lock:
        lab = ClusterLab(
            lock.slot, tuple(specs), new_base(lock.slot), netns_dir_was_there=NETNS_DIR.is_dir()
        )
        lock.record(lab)
        failure: BaseException | None = None
        try:
            lab.setup(image)
            yield lab
        except BaseException as exc:
            failure = exc
            raise
        finally:
            problems = lab.teardown()
            left = lab.leftovers()
            if (problems or left) and failure is None:
                raise LabError(f"teardown: problems {problems}; left behind {left}")
            if problems or left:
                print(f"cluster lab teardown: {problems}; left {left}", file=sys.stderr)


class LabKeeper:
    """One lab for many users in turn: `get()` hands it back healthy (every fault undone,
    every node ready), or a fresh one when it cannot be made healthy."""

    def __init__(self, specs: Sequence[NodeSpec], image: str) -> None:
        self.specs = tuple(specs)
        self.image = image
        self.rebuilt = 0
        self.lab: ClusterLab | None = None
        self._stack = contextlib.ExitStack()

    def get(self) -> ClusterLab:
        if self.lab is not None:
            try:
                self.lab.restore()
                return self.lab
            except LabError as exc:
                print(f"lab in {self.lab.base} unhealthy, rebuilt: {exc}", file=sys.stderr)
                self.close()
                self.rebuilt += 1
        self.lab = self._stack.enter_context(cluster_lab(self.specs, self.image))
        return self.lab

    def close(self) -> None:
        self.lab = None
        stack, self._stack = self._stack, contextlib.ExitStack()
        stack.close()


def cleanup_slots() -> list[str]:
    """Tear down what dead runs left in every free slot; one line per slot."""
    lines = []
    for number in range(SLOTS):
        lock = try_slot(Slot(number))
        if lock is None:
            lines.append(f"slot {number}: in use")
            continue
        with lock.handle:
            stale = lock.clean_stale()
        lines.append(f"slot {number}: " + (f"cleaned {stale.base}" if stale else "clean"))
    return lines
