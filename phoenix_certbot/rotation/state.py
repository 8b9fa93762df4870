"""The state directory: a run lock, pending lineages (deferred hooks) and run history.

Nothing here is secret: fingerprints, times and results only. Every read-modify-write of
state.json and pending.json happens under the run lock (a write outside it is a bug and
raises). A file that cannot be parsed is never read as empty (that would drop a hold and
let the timer undo a manual rollback): it is bad input, exit 2, and under the lock it is
moved aside first, so that the next run starts afresh and the damaged file stays to look at.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from phoenix_certbot.errors import BadInput, LockTimeout, OperationFailed
from phoenix_certbot.fsutil import write_atomic
from phoenix_certbot.rotation.backoff import Backoff, after_failure
from phoenix_certbot.rotation.plan import RecordedState

log = logging.getLogger(__name__)
DEFAULT_LOCK_TIMEOUT_S = 600.0


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _backoff(entry: dict[str, Any]) -> Backoff | None:
    try:
        until = dt.datetime.fromisoformat(str(entry["backoff_until"]))
        return Backoff(str(entry["backoff_leaf"]), int(entry["failures"]), until)
    except (KeyError, TypeError, ValueError):
        return None


class StateCorrupt(BadInput):
    """state.json or pending.json cannot be parsed: nothing is changed."""


_SECTIONS = ("certs", "restarted", "held")  # each a JSON object when present


class StateStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._file = directory / "state.json"
        self._pending = directory / "pending.json"
        self._locked = False

    def _ensure_dir(self) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise OperationFailed(
                f"{self.directory}: cannot create state directory: {exc.strerror}"
            ) from None

    @contextlib.contextmanager
    def locked(self, timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> Iterator[None]:
        """Serialise runs: a second run waits for the first instead of interleaving."""
        import filelock

        self._ensure_dir()
        lock = filelock.FileLock(str(self.directory / "lock"))
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            log.warning(
                "another phoenix-cert run holds %s; waiting up to %.0f s",
                self.directory / "lock",
                timeout_s,
            )
            try:
                lock.acquire(timeout=timeout_s)
            except filelock.Timeout:
                raise LockTimeout(
                    f"{self.directory / 'lock'}: another run still holds the lock "
                    f"after {timeout_s:.0f} s"
                ) from None
        self._locked = True
        try:
            # Damaged files are found before the command changes anything.
            self.read()
            self.pending()
            yield
        finally:
            self._locked = False
            lock.release()

    def _load(self, path: Path) -> dict[str, Any] | None:
        """The JSON object in `path`; None if there is no such file."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except UnicodeDecodeError as exc:
            self._corrupt(path, f"not UTF-8 text: {exc.reason}")
        except ValueError as exc:
            self._corrupt(path, f"not JSON: {exc}")
        except OSError as exc:
            raise OperationFailed(f"{path}: cannot read: {exc.strerror or exc}") from None
        if not isinstance(data, dict):
            self._corrupt(path, f"a JSON {type(data).__name__}, not an object")
        return data

    def _corrupt(self, path: Path, why: str) -> NoReturn:
        if not self._locked:
            raise StateCorrupt(
                f"{path}: unreadable ({why}); nothing changed. The next rotation moves it "
                "aside; or repair it"
            )
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        aside = path.with_name(f"{path.name}.corrupt-{stamp}")
        try:
            path.rename(aside)
        except OSError as exc:
            raise StateCorrupt(
                f"{path}: unreadable ({why}), and cannot be moved aside ({exc.strerror}); "
                "nothing changed: repair or remove it"
            ) from None
        raise StateCorrupt(
            f"{path}: unreadable ({why}); moved aside to {aside.name}, nothing changed. "
            "Holds after `phoenix-cert rollback` and backoffs recorded there are gone: "
            "check `phoenix-cert status` (and hold again with `rollback`) before the next run"
        )

    def _write_json(self, path: Path, data: dict[str, Any]) -> None:
        if not self._locked:
            raise RuntimeError(f"{path} written outside the run lock")  # a bug, not input
        self._ensure_dir()
        write_atomic(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), 0o600)

    # -- history -----------------------------------------------------------------------
    def read(self) -> dict[str, Any]:
        data = self._load(self._file) or {}
        for section in _SECTIONS:
            if not isinstance(data.setdefault(section, {}), dict):
                self._corrupt(self._file, f'"{section}" is not an object')
        if not all(isinstance(entry, dict) for entry in data["certs"].values()):
            self._corrupt(self._file, 'an entry of "certs" is not an object')
        return data

    def _write(self, data: dict[str, Any]) -> None:
        self._write_json(self._file, data)

    def recorded(self) -> RecordedState:
        data = self.read()
        restarted = {tuple(k.split("|", 1)): v for k, v in data["restarted"].items() if "|" in k}
        verified = {
            name: c["verified_leaf"] for name, c in data["certs"].items() if c.get("verified_leaf")
        }
        return RecordedState(restarted=restarted, verified=verified)

    def record_rotation(
        self,
        cert: str,
        leaf_sha256: str,
        result: str,
        *,
        verified: bool,
        restarted_services: tuple[str, ...] = (),
        now: dt.datetime | None = None,
        rollout: str = "",
    ) -> None:
        """`result` "ok" clears the certificate's backoff; "failed" (its rollout was rolled
        back) counts one more failure of `leaf_sha256` and sets when it may be tried again.

        A failure is counted once per `rollout` (the id its intents carry): a run that
        decided a rollback it could not finish records it, and the next run, which
        completes that rollback, finds it counted already."""
        now = now or dt.datetime.now(dt.timezone.utc)
        data = self.read()
        entry = data["certs"].setdefault(cert, {})
        if result != "ok" and rollout and entry.get("failed_rollout") == rollout:
            return
        entry["last_rotation"] = {
            "time": now.isoformat(timespec="seconds"),
            "result": result,
            "sha256": leaf_sha256,
        }
        if result == "ok":
            entry["deployed_leaf"] = leaf_sha256
            if verified:
                entry["verified_leaf"] = leaf_sha256
            for service in restarted_services:
                data["restarted"][f"{cert}|{service}"] = leaf_sha256
            entry["failures"] = 0
            for key in ("backoff_until", "backoff_leaf", "failed_rollout"):
                entry.pop(key, None)
        else:
            backoff = after_failure(_backoff(entry), leaf_sha256, now)
            entry["failures"] = backoff.failures
            entry["backoff_until"] = backoff.until.isoformat(timespec="seconds")
            entry["backoff_leaf"] = backoff.leaf
            if rollout:
                entry["failed_rollout"] = rollout
            else:
                entry.pop("failed_rollout", None)
        self._write(data)

    def backoffs(self) -> dict[str, Backoff]:
        """cert name -> its backoff after failed rollouts (maybe over already)."""
        found = {name: _backoff(entry) for name, entry in self.read()["certs"].items()}
        return {name: b for name, b in found.items() if b is not None}

    def record_verification(
        self, cert: str, results: dict[str, bool], leaf_sha256: str | None = None
    ) -> None:
        data = self.read()
        entry = data["certs"].setdefault(cert, {})
        ok = all(results.values())
        entry["last_verify"] = {"time": _now(), "result": "ok" if ok else "failed", "urls": results}
        if ok and leaf_sha256:
            entry["verified_leaf"] = leaf_sha256
        self._write(data)

    # -- holds after a manual rollback ---------------------------------------------------
    def held(self) -> dict[str, str]:
        """cert name -> leaf SHA-256 on disk when the operator rolled it back."""
        return dict(self.read()["held"])

    def hold(self, cert: str, leaf_sha256: str) -> None:
        data = self.read()
        data["held"][cert] = leaf_sha256
        self._write(data)

    def release(self, cert: str) -> None:
        data = self.read()
        if data["held"].pop(cert, None) is not None:
            self._write(data)

    # -- deferred lineages -------------------------------------------------------------
    def pending(self) -> list[str]:
        data = self._load(self._pending) or {}
        lineages = data.get("lineages", [])
        if not isinstance(lineages, list) or not all(isinstance(x, str) for x in lineages):
            self._corrupt(self._pending, '"lineages" is not a list of paths')
        return list(lineages)

    def add_pending(self, lineage: str) -> None:
        lineages = self.pending()
        if lineage not in lineages:
            lineages.append(lineage)
        self._write_json(self._pending, {"lineages": lineages})

    def clear_pending(self, done: list[str]) -> None:
        left = [x for x in self.pending() if x not in done]
        self._write_json(self._pending, {"lineages": left})
