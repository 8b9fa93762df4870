"""What every fault test needs: a stand-in serving the old leaf, a lineage with the new one,
decoys, the tool as its own process, and the five checks each row makes.

A row sets up a `FaultRig`, watches the service (`rig.watch()`) through the fault and the
next run, and then calls `rig.verdict(...)` (the invariant over the whole probe trace),
`rig.settled(...)` (converged, serving the expected leaf, no open intent) and
`rig.clean(...)` (no foreign object touched, no key bytes leaked). `rig.record(...)` prints
the row's numbers and, with PHOENIX_FAULTS_REPORT=<file>, appends them there as JSON lines
(docs/reliability.md quotes a real run).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docker.types import SecretReference, ServiceMode

from tests.faults.runs import RUN_TIMEOUT_S, Run, Running, poll
from tests.rotation.lab import (
    BASE_LABEL,
    MANAGED_LABEL,
    SAN,
    SHARED_DOCKER_HOST,
    Lab,
    Lineage,
    Standin,
    served_sha256,
    spec_updates,
)
from tests.support import pki
from tests.support.foreign import ForeignObjects
from tests.support.invariant import Verdict, Window
from tests.support.leaks import KeyLeaks
from tests.support.prober import ServiceWatch
from tests.support.stall_proxy import StallingProxy

FAILPOINT_ENV = "PHOENIX_CERT_FAILPOINT"
LEASE_ENV = "PHOENIX_CERT_LEASE"  # the swarm lease of this test session (tests/conftest.py)
REPORT_ENV = "PHOENIX_FAULTS_REPORT"
SETTLE_S = 90.0
# Swarm's UpdateStatus.State values that mean "still moving"; anything else (completed,
# rollback_completed, or no update at all) is final.
MOVING = frozenset({"updating", "rollback_started", "paused", "rollback_paused"})


@dataclass
class FaultRig:
    lab: Lab
    old: pki.Issued = field(init=False)  # what the service serves before the run
    lineage: Lineage = field(init=False)  # on disk: the new leaf
    standin: Standin = field(init=False)
    manifest: Path = field(init=False)
    runs: list[Run] = field(default_factory=list)
    decoys: set[str] = field(default_factory=set)
    _before: ForeignObjects | None = None
    _watch: ServiceWatch | None = None
    # Every request the tool sends passes here (recorded): what it changed, for clean().
    proxy: StallingProxy | None = None
    _recorded: bool = False
    keys: list[bytes] = field(default_factory=list)  # private keys that must not leak
    # The valid leaves (SHA-256), old and new; a row whose leaves come from elsewhere
    # (certbot) sets them itself.
    old_leaf: str = ""
    new_leaf: str = ""

    @property
    def new(self) -> pki.Issued:
        return self.lineage.leaf

    @property
    def valid(self) -> dict[str, str]:
        return {self.old_leaf: "old", self.new_leaf: "new"}

    @property
    def state_dir(self) -> Path:
        return self.lab.state_dir

    # -- setup -----------------------------------------------------------------------------
    def setup(
        self,
        *,
        env: Mapping[str, str] | None = None,
        refuse_new: bool = False,
        failure_action: str = "pause",
        entry: Callable[[FaultRig], dict[str, Any]] | None = None,
        update_timeout_s: int = 30,
        docker_timeout_s: float | None = None,
        deploy: Callable[[FaultRig], Standin] | None = None,
        constraints: Sequence[str] = (),
    ) -> FaultRig:
        """A stand-in serving the old leaf, a lineage with the new one, the manifest, the
        decoys, and the snapshot of every foreign object. `refuse_new`: the stand-in fails
        at start with the new leaf (a certificate the service rejects)."""
        self.old = pki.issue([SAN], self.lab.ca)
        self.lineage = self.lab.lineage("web")
        environment = dict(env or {})
        if refuse_new:
            environment["STANDIN_FAIL_IF_CERT_SHA256"] = self.new.sha256
        if deploy is None:
            self.standin = self.lab.deploy(
                "web",
                self.old,
                env=environment,
                failure_action=failure_action,  # type: ignore[arg-type]
                constraints=constraints,
            )
        else:
            self.standin = deploy(self)
        certificate = entry(self) if entry else self.lab.entry("web", [self.standin])
        self.manifest = self.lab.manifest(
            [certificate], update_timeout_s=update_timeout_s, docker_timeout_s=docker_timeout_s
        )
        self.keys = [self.old.key_pem, self.new.key_pem]
        self.old_leaf, self.new_leaf = self.old.sha256, self.new.sha256
        self._add_decoys()
        self._before = self.foreign()
        self.proxy = StallingProxy(self.lab.docker_host.removeprefix("unix://")).start()
        return self

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.close()

    def _add_decoys(self) -> None:
        """Objects named like the tool's, and one with its labels, none in the manifest."""
        resources = self.lab.resources
        lookalike = resources.create_secret("web.sslcert_000000000000", b"not the tool's")
        labelled = self.lab.client.secrets.create(
            name=resources.name("other.sslcert_111111111111"),
            data=b"the tool's labels, another base",
            labels={**resources.labels, MANAGED_LABEL: "true", BASE_LABEL: "other.sslcert"},
        )
        labelled.reload()
        resources.track(labelled)
        decoy = resources.create_service(
            self.lab.image,
            "decoy",
            mode=ServiceMode("replicated", replicas=0),
            secrets=[SecretReference(str(lookalike.id), str(lookalike.name), filename="x.pem")],
        )
        self.decoys = {str(lookalike.name), str(labelled.name), resources.name("decoy")}
        del decoy

    def mine(self, name: str) -> bool:
        """Objects of this test the tool may change: all with its prefix but the decoys,
        and this session's swarm lease."""
        ours = name.startswith(self.lab.resources.prefix) and name not in self.decoys
        return ours or name == os.environ.get(LEASE_ENV)

    def foreign(self) -> ForeignObjects:
        shared = self.lab.docker_host == SHARED_DOCKER_HOST

        def unstable(name: str) -> bool:
            # On the shared daemon other sessions change their objects as they please: only
            # the decoys are compared there (the request audit covers the rest).
            return shared and name not in self.decoys

        return ForeignObjects.take(self.lab.api, self.mine, unstable)

    # -- running the tool ----------------------------------------------------------------------
    def env(self, failpoint: str | None = None, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.pop(FAILPOINT_ENV, None)
        env["DOCKER_HOST"] = self.proxy.docker_host if self.proxy else self.lab.docker_host
        if failpoint:
            env[FAILPOINT_ENV] = failpoint
        env.update(extra)
        return env

    def start(
        self, *args: str, failpoint: str | None = None, env: Mapping[str, str] | None = None
    ) -> Running:
        return Running([*args], env if env is not None else self.env(failpoint))

    def run(
        self,
        *args: str,
        failpoint: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = RUN_TIMEOUT_S,
    ) -> Run:
        run = self.start(*args, failpoint=failpoint, env=env).wait(timeout)
        self.runs.append(run)
        return run

    def rotate(self, failpoint: str | None = None, *extra: str) -> Run:
        return self.run("rotate", "--manifest", str(self.manifest), "--all", *extra,
                        failpoint=failpoint)  # fmt: skip

    # -- watching --------------------------------------------------------------------------
    def watch(self) -> ServiceWatch:
        self._watch = ServiceWatch(self.standin.url, SAN, self.lab.docker_host, self.standin.id)
        return self._watch

    def verdict(self, allowed: Sequence[Window] = ()) -> Verdict:
        assert self._watch is not None, "watch() first"
        return self._watch.verdict(self.valid, allowed)

    def update_state(self) -> str:
        status = self.lab.inspect(self.standin).get("UpdateStatus") or {}
        return str(status.get("State", ""))

    def wait_updating(self, timeout: float = 30.0) -> float:
        """Wait until swarm is rolling out an update of the service (the convergence wait
        of a run has begun); returns when."""
        return poll(
            f"{self.standin.name} updating", lambda: self.update_state() == "updating", timeout
        )

    def updates(self, since: float, until: float) -> int:
        """Spec writes of the service between two wall-clock times (docker events)."""
        return spec_updates(self.lab.events(since, until), self.standin.name)

    def status(self) -> dict[str, Any]:
        """`phoenix-cert status --json`, per certificate name."""
        run = self.run("status", "--manifest", str(self.manifest), "--json")
        assert run.returncode == 0, run.report
        self.runs.pop()  # a look, not a run of the matrix
        return {c["name"]: c for c in json.loads(run.stdout)["certificates"]}

    # -- the checks ------------------------------------------------------------------------
    def returned_settled(self, run: Run) -> None:
        """A run that ended normally returned only once swarm's update state was final."""
        state = self.update_state()
        assert state not in MOVING, f"{run.args[0]} returned while the update was {state}"

    def undone(self, recovery: Run) -> float:
        """The next run completed the rollback that the faulted run had decided (an
        unknown outcome counts as a failed one): exit 1, swarm settled on the old leaf, one
        failure on the certificate's record and a backoff. Returns when settled."""
        assert recovery.returncode == 1, recovery.report
        self.returned_settled(recovery)
        at = self.settled(self.old)
        status = self.status()["web"]
        failures, until = status["failures"], status["backoff_until"]
        assert (failures, bool(until)) == (1, True), f"failures {failures}, backoff until {until}"
        return at

    def converged(self) -> bool:
        raw = self.lab.inspect(self.standin)
        if self.update_state() in MOVING:
            return False
        wanted = raw["Spec"]["TaskTemplate"]
        running = [
            t
            for t in self.lab.tasks(self.standin)
            if t["DesiredState"] == "running" and t["Status"]["State"] == "running"
        ]
        replicas = raw["Spec"]["Mode"].get("Replicated", {}).get("Replicas", 1)
        return len(running) == replicas and all(
            t["Spec"].get("ContainerSpec", {}).get("Secrets")
            == wanted.get("ContainerSpec", {}).get("Secrets")
            and t["Spec"].get("ForceUpdate", 0) == wanted.get("ForceUpdate", 0)
            for t in running
        )

    def settled(self, leaf: pki.Issued | str) -> float:
        """The service converged on its current spec, serves `leaf` (or that SHA-256), and
        no intent is open in state_dir. Returns when it was first seen converged."""
        wanted = leaf if isinstance(leaf, str) else leaf.sha256
        at = poll(f"{self.standin.name} converged", self.converged, SETTLE_S, 0.2)
        served = served_sha256(self.standin.port, address=self.standin.address)
        label = self.valid.get(served, served[:12])
        assert served == wanted, f"serves {label}, not {self.valid.get(wanted, wanted[:12])}"
        assert open_intents(self.state_dir) == []
        return at

    def clean(self, outputs: Iterable[Run] | None = None) -> None:
        """No foreign object touched; no key bytes in any output, readable file or config."""
        assert self._before is not None and self.proxy is not None
        touched = self._before.changes(self.foreign())
        sent = [(method, path) for _, method, path in self.proxy.requests]
        touched += self._before.touched(sent, self.mine)
        assert touched == [], f"foreign objects touched: {touched}"
        texts: dict[str, str] = {}
        for index, run in enumerate(self.runs if outputs is None else outputs):
            texts[f"run {index} stdout"] = run.stdout
            texts[f"run {index} stderr"] = run.stderr
        leaks = KeyLeaks(self.keys).everywhere(
            outputs=texts, root=self.lab.root, api=self.lab.api, prefix=self.lab.resources.prefix
        )
        assert leaks == [], f"key bytes found in: {leaks}"

    def conclude(
        self,
        row: str,
        fault: Run,
        recovery: Run,
        settled_at: float,
        *,
        allowed: Sequence[Window] = (),
        **numbers: float | int | str,
    ) -> Verdict:
        """The checks every row ends with (the invariant over the whole trace, nothing
        foreign touched, no key leaked), then its numbers: the exit codes, the faulted
        run's seconds, and the recovery time, from the start of the faulted run until the
        next run has ended with the service settled."""
        verdict = self.verdict(allowed)
        assert verdict.ok, verdict.explain()
        self.clean()
        self.record(
            row,
            verdict,
            exit=fault.returncode,
            next_exit=recovery.returncode,
            run_s=round(fault.seconds, 1),
            recovery_s=round(max(recovery.ended, settled_at) - fault.started, 1),
            **numbers,
        )
        return verdict

    def record_failed(self, test: str) -> None:
        """What a row that failed before `conclude` measured all the same (its runs' exit
        codes, the trace), marked as failed: the table shows what happened."""
        if self._recorded or self._watch is None or not self.runs:
            return
        first, last = self.runs[0], self.runs[-1]
        self.record(
            "failed",
            self.verdict(),
            test=test,
            exit=first.returncode,
            next_exit=last.returncode if len(self.runs) > 1 else "-",
            run_s=round(first.seconds, 1),
            recovery_s="-",
            result="FAILED",
        )

    def record(self, row: str, verdict: Verdict, **numbers: float | int | str) -> None:
        self._recorded = True
        current = os.environ.get("PYTEST_CURRENT_TEST", "")
        line = {
            "row": row,
            "test": current.split("::", 1)[-1].rsplit(" (", 1)[0].split("@", 1)[0],
            "invariant": "held" if verdict.ok else f"broken ({len(verdict.violations)} probes)",
            "longest_without_valid_s": round(verdict.summary.longest_without_valid_s, 2),
            "probes": verdict.summary.probes,
            **numbers,
        }
        print(f"\n{row}: {json.dumps(line)}\n  {verdict.summary.line()}")
        target = os.environ.get(REPORT_ENV)
        if target:
            with Path(target).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(line) + "\n")


def open_intents(state_dir: Path) -> list[str]:
    """Intents the engine left open in `state_dir` (its journal), as file names."""
    journal = state_dir / "journal"
    if not journal.is_dir():
        return []
    return sorted(p.name for p in journal.iterdir() if p.is_file() and not p.name.startswith("."))
