"""One service's update and its undo, the steps the engine and the recovery share.

The rule: once a step may have changed something, no exception leaves it. A Docker error,
a timeout, anything, is an unknown outcome: the step reports a failure and `undo` decides
from what swarm shows (`spec_match`), not from what we think happened. Every state the
service passes through is in its intent (`journal`) before swarm sees it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from phoenix_certbot import failpoints
from phoenix_certbot.certs import CertificateMaterial
from phoenix_certbot.errors import OperationFailed
from phoenix_certbot.fsutil import write_atomic
from phoenix_certbot.manifest.model import ObjectKind
from phoenix_certbot.rotation.converge import (
    FAST_POLL_S,
    POLL_S,
    Convergence,
    Verdict,
    crashed_of,
    evaluate,
    never_started,
    pause,
)
from phoenix_certbot.rotation.journal import (
    FileBackup,
    Intent,
    Journal,
    LeafCheck,
    Origin,
    Phase,
)
from phoenix_certbot.rotation.lease import LeaseLost, unfenced
from phoenix_certbot.rotation.outcome import ServiceOutcome, ServiceResult
from phoenix_certbot.rotation.plan import ServiceChange
from phoenix_certbot.rotation.spec_match import Match, SpecMatch, classify
from phoenix_certbot.rotation.watch import Watch
from phoenix_certbot.swarm import model as sm
from phoenix_certbot.swarm.client import NotFound, SpecHandle, SwarmClient, UpdateOutOfSequence

log = logging.getLogger(__name__)
UPDATE_RETRIES = 5  # "update out of sequence": swarm moved the version under us
_OLD = frozenset({Match.BEFORE, Match.RESTORED})

Reporter = Callable[[str], None]


class FileChanged(OperationFailed):
    """A file target holds neither what we wrote nor what was there before."""


@dataclass(frozen=True)
class Forward:
    """Where one service's update ended: converged on the new spec, or not (and why)."""

    intent: Intent
    converged: bool
    detail: str
    conflict: bool = False


def file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


@dataclass
class Steps:
    swarm: SwarmClient
    journal: Journal
    update_timeout_s: float
    report: Reporter
    watch: Watch  # shared by every service waited for at once: one poll for all
    # Before each service update, forward or back: raises LeaseLost once another run holds
    # the swarm lease. That stops the run (the intents stay for the next), so it is the
    # one exception the steps let through.
    fence: Callable[[], None] = unfenced

    # -- journal -----------------------------------------------------------------------
    def intent(
        self,
        change: ServiceChange,
        origin: Origin,
        leaves: Mapping[str, str],
        checks: Sequence[LeafCheck],
        hold: Mapping[str, str],
        state: sm.ServiceState | None = None,
    ) -> Intent:
        """What updating this service will change, from its spec as the plan saw it
        (`state`) or as read now; the previous bytes of its `files` targets are read here,
        before anything is written. The update re-reads the spec, and journals the intent
        again if it moved meanwhile."""
        if state is None:
            state = self.swarm.read_spec(change.service).state
        after = tuple(
            sm.MountSlot(
                m.kind,
                m.target,
                sm.MountRef(m.kind, "", m.new_name, m.target, m.uid, m.gid, m.mode),
            )
            for m in change.mounts
        )
        files = []
        for f in change.files:
            try:
                previous: bytes | None = f.path.read_bytes()
            except FileNotFoundError:
                previous = None
            except OSError as exc:
                raise OperationFailed(f"{f.path}: cannot read: {exc.strerror}") from None
            files.append(FileBackup(f.path, f.mode, f.owner, previous, f.sha256))
        certs = change.changed_certs
        intent = Intent(
            service_id=state.id,
            service=state.name,
            origin=origin,
            phase=Phase.UPDATE,
            leaves=tuple((c, leaves.get(c, "")) for c in certs),
            spec_before=(),
            version_before=0,
            mounts_before=(),
            mounts_after=after,
            force_before=0,
            force_after=0,
            files=tuple(files),
            checks=tuple(c for c in checks if c.cert in certs),
            restarted=change.restart_for,
            hold=tuple((c, leaf) for c, leaf in hold.items() if c in certs),
        )
        return _rebase(intent, state, bump=change.force)

    # -- forward -----------------------------------------------------------------------
    def forward(
        self,
        change: ServiceChange,
        intent: Intent,
        objects: Mapping[tuple[ObjectKind, str], sm.DeployedObject],
        materials: Mapping[str, CertificateMaterial],
    ) -> Forward:
        """Write the files, update the service from a spec read once, wait for swarm."""
        try:
            slots = _with_ids(intent.mounts_after, objects, change.service)
            intent = replace(intent, mounts_after=slots)
            handle = self.swarm.read_spec(intent.service_id)
            intent = self._rebased(intent, handle)
            for f in change.files:
                write_atomic(f.path, materials[f.cert].payload(f.source), f.mode, f.owner)
            if change.files:
                failpoints.hit("files-written")
            intent = self._send(intent, handle)
            failpoints.hit("service-updated")
            self.report(f"{intent.service}: updated, waiting for convergence")
            intent = self._note_version(intent)
            verdict = self.converge(intent, frozenset({Match.AFTER}))
        except LeaseLost:
            raise
        except Exception as exc:  # an unknown outcome: `undo` finds out from swarm
            log.warning("%s: update failed: %s", change.service, exc)
            return Forward(intent, False, f"update failed: {exc}")
        return Forward(
            intent,
            verdict.verdict is Verdict.DONE,
            verdict.message,
            conflict=verdict.verdict is Verdict.CONFLICT,
        )

    def _rebased(self, intent: Intent, handle: SpecHandle) -> Intent:
        """The intent on the spec as read now; journaled again if it moved since."""
        state = handle.state
        rebased = _rebase(intent, state, bump=intent.force_after != intent.force_before)
        if rebased != intent:
            self.journal.write(rebased)
        return rebased

    def _send(self, intent: Intent, handle: SpecHandle) -> Intent:
        """The update, on the spec read once; read again only if swarm says it moved (its
        own status changes move the version too), and journaled again then."""
        for attempt in range(1, UPDATE_RETRIES + 1):
            self.fence()
            try:
                self.swarm.write_mounts(handle, intent.mounts_after, intent.force_after)
                return intent
            except UpdateOutOfSequence:
                if attempt == UPDATE_RETRIES:
                    raise
                log.info(
                    "service %s changed while updating; retrying (%d)", intent.service, attempt
                )
                time.sleep(0.2 * attempt)
                handle = self.swarm.read_spec(intent.service_id)
                intent = self._rebased(intent, handle)
        raise AssertionError("unreachable")  # pragma: no cover

    def _note_version(self, intent: Intent) -> Intent:
        state = self.swarm.service(intent.service_id)
        if classify(state, intent).match is Match.AFTER:
            intent = replace(intent, version_after=state.version)
            self._journal(intent)
        return intent

    def _journal(self, intent: Intent) -> None:
        """Once swarm has our update, a journal that cannot be written (a full disk) must
        not keep us from undoing it: the next run judges by content without it."""
        try:
            self.journal.write(intent)
        except OperationFailed as exc:
            log.warning("%s", exc)

    # -- waiting -----------------------------------------------------------------------
    def converge(
        self, intent: Intent, accept: frozenset[Match] | None, deadline: float | None = None
    ) -> Convergence:
        """Poll until swarm has settled on a spec of ours that `accept` names; stop at once
        if someone else changed the service. `accept` None: whatever spec it has now.

        Bounded by `deadline` (the watch's clock; default: the update timeout from now):
        no poll is due past it, so a poll that hangs overruns it by at most one Docker
        request's own timeout.

        Once per wait, when the spec's new tasks never started (dockerd could not start
        their containers; Engine 20.10 sometimes fails to mount a task's secrets,
        moby/moby#48783), the spec swarm holds is sent again unchanged, as a bare `docker
        service update` does: swarm clears its paused update and starts what is missing.
        If swarm rolled the update back by itself (failure_action: rollback), our update
        is sent again once swarm's rollback is over. The wait then goes on within the same
        deadline."""
        deadline = deadline or self.watch.now() + self.update_timeout_s
        verdict = self._wait(intent, accept, deadline)
        if (
            accept is None
            or verdict.verdict is not Verdict.FAILED
            or not verdict.never_started
            or self.watch.now() >= deadline
        ):
            return verdict
        log.warning(  # a warning, not progress: the timer's journal should show it
            "%s: %s; the container never started, which no certificate causes: sending the "
            "update to swarm again, once",
            intent.service,
            verdict.message,
        )
        if not self._resend(intent, accept, deadline):
            return verdict
        return self._wait(intent, accept, deadline)

    def _resend(self, intent: Intent, accept: frozenset[Match], deadline: float) -> bool:
        """The service's spec as swarm holds it, sent back unchanged (if it is still one
        that `accept` names); or, if swarm rolled our update back by itself, our update
        again once swarm's rollback is over. False if it could not be sent: the failure
        stands."""
        try:
            for attempt in range(1, UPDATE_RETRIES + 1):
                if self.watch.now() >= deadline:
                    return False  # nothing sent that could not be waited for
                handle = self.swarm.read_spec(intent.service_id)
                match = classify(handle.state, intent).match
                again = match is Match.BEFORE and Match.AFTER in accept
                if again and not handle.state.update_state.final:
                    # Swarm rolled our update back itself: our update again once it is done.
                    self.settle(intent.service_id, deadline)
                    continue
                if match not in accept and not again:
                    return True  # moved on meanwhile: the wait tells what to make of it
                self.fence()
                try:
                    if again:
                        self.swarm.write_mounts(handle, intent.mounts_after, intent.force_after)
                    else:
                        self.swarm.write_mounts(handle, (), handle.state.force_update)
                    return True
                except UpdateOutOfSequence:
                    if attempt == UPDATE_RETRIES:
                        raise
                    time.sleep(0.2 * attempt)
        except LeaseLost:
            raise
        except Exception as exc:  # the wait's failure stands; its caller decides
            log.warning("%s: could not send the update again: %s", intent.service, exc)
        return False

    def _wait(
        self, intent: Intent, accept: frozenset[Match] | None, deadline: float
    ) -> Convergence:
        watch = self.watch
        due = watch.now()
        last = Convergence(Verdict.WAITING, "not checked yet")
        for _poll in range(int(self.update_timeout_s / FAST_POLL_S) + 10):
            if watch.now() >= deadline:
                break
            seen = watch.read(intent.service_id, due)
            state = seen.state
            found = classify(state, intent)
            if accept is not None and found.match not in accept:
                return _off_course(found, accept, intent, seen.tasks)
            now = dt.datetime.now(dt.timezone.utc)
            last = evaluate(
                state,
                seen.tasks,
                now,
                swarm_rollback=found.match is Match.BEFORE and intent.phase is Phase.ROLLBACK,
            )
            if last.verdict is not Verdict.WAITING:
                return last
            self.report(f"{intent.service}: {last.message}")
            due = seen.at + pause(state, seen.tasks, now)
            if due >= deadline:
                break
        return Convergence(
            Verdict.FAILED,
            f"not converged within {self.update_timeout_s:g} s: {last.message}",
            last.running,
            last.wanted,
        )

    def settle(self, service_id: str, deadline: float) -> str | None:
        """Wait until swarm's own update state of the service is final (completed,
        rollback_completed, paused or none); the state it is still in at `deadline`."""
        state = self.swarm.service(service_id)
        for _poll in range(int(self.update_timeout_s / POLL_S) + 10):
            if state.update_state.final or time.monotonic() >= deadline:
                break
            self.report(f"{state.name}: swarm update {state.update_state.value}")
            time.sleep(max(0.0, min(POLL_S, deadline - time.monotonic())))
            if time.monotonic() >= deadline:
                break
            state = self.swarm.service(service_id)
        return None if state.update_state.final else state.update_state.value

    # -- undo --------------------------------------------------------------------------
    def undo(self, intent: Intent, why: str) -> tuple[ServiceOutcome, Intent]:
        """Back to the spec before the update (only our mounts and ForceUpdate), and the
        files as they were; verified by swarm's convergence. Never raises."""
        self.report(f"{intent.service}: rolling back ({why})")

        def result(kind: ServiceResult, detail: str) -> tuple[ServiceOutcome, Intent]:
            return ServiceOutcome(
                intent.service, intent.certs, kind, detail, intent.service_id
            ), intent

        # The whole undo, sending and waiting, within one update timeout.
        deadline = self.watch.now() + self.update_timeout_s
        try:
            intent = replace(intent, phase=Phase.ROLLBACK)
            self._journal(intent)
            found, intent = self._restore(intent, deadline)
            if found.match is Match.FOREIGN:
                return result(
                    ServiceResult.CONFLICT,
                    f"{why}; changed by someone else meanwhile ({found.describe()}); left as it is",
                )
            if found.match is Match.GONE:
                return result(ServiceResult.SUPERSEDED, f"{why}; the service no longer exists")
            verdict = self.converge(intent, _OLD, deadline)
        except FileChanged as exc:
            return result(ServiceResult.CONFLICT, f"{why}; {exc}")
        except LeaseLost:
            raise
        except Exception as exc:  # whatever it was, the rollback failed
            log.warning("%s: rollback failed: %s", intent.service, exc)
            return result(ServiceResult.ROLLBACK_FAILED, f"{why}; rollback failed: {exc}")
        if verdict.verdict is Verdict.CONFLICT:
            return result(ServiceResult.CONFLICT, f"{why}; {verdict.message}; left as it is")
        if verdict.verdict is not Verdict.DONE:
            return result(
                ServiceResult.ROLLBACK_FAILED,
                f"{why}; rollback did not converge: {verdict.message}",
            )
        return result(ServiceResult.ROLLED_BACK, why)

    def _restore(self, intent: Intent, deadline: float) -> tuple[SpecMatch, Intent]:
        """Files, then mounts and ForceUpdate as they were, on a spec read once; nothing if
        the service is not on our update (it never landed, swarm rolled it back, or our
        rollback is there already) or if someone else changed it."""
        for attempt in range(1, UPDATE_RETRIES + 1):
            if attempt > 1 and self.watch.now() >= deadline:
                raise OperationFailed(
                    f"not sent within {self.update_timeout_s:g} s: the service kept changing"
                )
            try:
                handle = self.swarm.read_spec(intent.service_id)
            except NotFound:
                restore_files(intent)
                return SpecMatch(Match.GONE), intent
            found = classify(handle.state, intent)
            if found.match is Match.FOREIGN:
                return found, intent
            restore_files(intent)
            if found.match is not Match.AFTER:
                return found, intent
            # Bumped again if the update bumped it: files put back in place are re-read.
            bumped = intent.force_after != intent.force_before
            force = handle.state.force_update + 1 if bumped else intent.force_before
            intent = replace(intent, force_restore=force)
            self._journal(intent)
            self.fence()
            try:
                self.swarm.write_mounts(handle, intent.mounts_before, force)
            except UpdateOutOfSequence:
                if attempt == UPDATE_RETRIES:
                    raise
                time.sleep(0.2 * attempt)
                continue
            failpoints.hit("rollback-updated")
            return SpecMatch(Match.RESTORED), intent
        raise AssertionError("unreachable")  # pragma: no cover


def restore_files(intent: Intent) -> None:
    """Put back each file target that still holds what the rollout wrote."""
    for f in intent.files:
        now = file_sha256(f.path)
        if now == f.previous_sha256:
            continue
        if now != f.written_sha256:
            raise FileChanged(f"{f.path} changed by someone else meanwhile; left as it is")
        if f.previous is None:
            f.path.unlink(missing_ok=True)
        else:
            write_atomic(f.path, f.previous, f.mode, f.owner)


def _rebase(intent: Intent, state: sm.ServiceState, *, bump: bool) -> Intent:
    """The intent's before-state taken from `state` (the spec the update will be sent on)."""
    before = tuple(
        sm.MountSlot(s.kind, s.target, state.mount_at(s.kind, s.target))
        for s in intent.mounts_after
    )
    return replace(
        intent,
        service_id=state.id,
        spec_before=state.spec_parts,
        version_before=state.version,
        mounts_before=before,
        force_before=state.force_update,
        force_after=state.force_update + 1 if bump else state.force_update,
    )


def _with_ids(
    slots: Sequence[sm.MountSlot],
    objects: Mapping[tuple[ObjectKind, str], sm.DeployedObject],
    service: str,
) -> tuple[sm.MountSlot, ...]:
    resolved = []
    for slot in slots:
        assert slot.mount is not None  # noqa: S101 - a rollout always mounts something
        obj = objects.get((slot.kind, slot.mount.object_name))
        if obj is None:
            raise OperationFailed(
                f"{slot.kind.value} {slot.mount.object_name} vanished before the update of "
                f"{service}"
            )
        resolved.append(replace(slot, mount=replace(slot.mount, object_id=obj.id)))
    return tuple(resolved)


def _off_course(
    found: SpecMatch, accept: frozenset[Match], intent: Intent, tasks: Sequence[sm.TaskState]
) -> Convergence:
    if found.match is Match.BEFORE and Match.AFTER in accept:
        # failure_action: rollback. Whether our tasks ever started decides whether the
        # update deserves another try (`Steps.converge`).
        crashed = crashed_of(tasks, lambda t: _runs_after(t, intent))
        if never_started(crashed):
            return Convergence(
                Verdict.FAILED,
                f"swarm rolled the update back (task error: {crashed[-1].error})",
                never_started=True,
            )
        return Convergence(Verdict.FAILED, "swarm rolled the update back")
    if found.match is Match.GONE:
        return Convergence(Verdict.CONFLICT, "the service was removed meanwhile")
    what = found.describe() or "its mounts"
    return Convergence(Verdict.CONFLICT, f"changed by someone else meanwhile: {what}")


def _runs_after(task: sm.TaskState, intent: Intent) -> bool:
    """The task runs the spec of our update: its mounts at our targets, our ForceUpdate."""
    return task.force_update == intent.force_after and all(
        slot.holds(task.mount_at(slot.kind, slot.target)) for slot in intent.mounts_after
    )
