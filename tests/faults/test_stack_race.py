"""`docker stack deploy` racing a rotation: the operator redeploys the stack (an environment
change, and the secret names of a `stack-env` taken before the rotation) while phoenix-cert
waits for its update to converge. Shared swarm.

The rule (defect 2): the run notices that someone else updated the service in between and
does not clobber it (no restore over the deploy): exit 4, naming the service. The next run
rotates from there, keeping the deploy's change.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.faults.rig import FaultRig
from tests.faults.runs import poll
from tests.harness.ports import free_port
from tests.rotation.lab import CERT_TARGET, KEY_TARGET, STANDIN_PORT, Standin, served_sha256

pytestmark = pytest.mark.docker

STACK_FILE = f"""\
version: "3.8"
services:
  web:
    image: ${{IMAGE}}
    init: true
    environment:
      BUMP: "${{BUMP}}"
    secrets:
      - source: cert
        target: {CERT_TARGET}
      - source: key
        target: {KEY_TARGET}
        mode: 0400
    ports:
      - target: {STANDIN_PORT}
        published: ${{PORT}}
        mode: host
    stop_grace_period: 2s
    deploy:
      replicas: 1
      update_config: {{parallelism: 1, delay: 0s, failure_action: pause, monitor: 1s,
                      order: stop-first}}
      restart_policy: {{condition: any, delay: 0.5s}}
secrets:
  cert:
    external: true
    name: ${{CERT}}
  key:
    external: true
    name: ${{KEY}}
"""


class Stack:
    def __init__(self, rig: FaultRig) -> None:
        self.rig = rig
        self.name = rig.lab.resources.name("stk")
        self.file = rig.lab.root / "stack.yml"
        self.file.write_text(STACK_FILE)
        self.port = free_port()
        self.cert = rig.lab.resources.create_secret("web-bootstrap-cert", rig.old.cert_pem)
        self.key = rig.lab.resources.create_secret("web-bootstrap-key", rig.old.key_pem)

    def deploy(self, bump: str) -> float:
        """`docker stack deploy` with the bootstrap secret names; returns when it ended."""
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "DOCKER_HOST": self.rig.lab.docker_host,
            "IMAGE": self.rig.lab.image,
            "BUMP": bump,
            "PORT": str(self.port),
            "CERT": str(self.cert.name),
            "KEY": str(self.key.name),
        }
        subprocess.run(
            ["docker", "stack", "deploy", "--resolve-image", "never", "-c", str(self.file),
             self.name],
            env=env, check=True, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return time.time()

    def first_deploy(self, rig: FaultRig) -> Standin:
        self.deploy("1")
        client = rig.lab.client
        (service,) = client.services.list(filters={"name": f"{self.name}_web"})
        rig.lab.resources.track(service)
        for network in client.networks.list(filters={"name": f"{self.name}_default"}):
            rig.lab.resources.track(network)
        resources = rig.lab.resources
        standin = Standin(
            name=str(service.name),
            id=str(service.id),
            port=self.port,
            cert_base=resources.name("web.sslcert"),
            key_base=resources.name("web.sslkey"),
            address=rig.lab.address,
        )
        rig.lab.wait_running(standin)
        assert served_sha256(self.port, address=standin.address) == rig.old.sha256
        return standin

    def bump(self) -> str:
        spec = self.rig.lab.inspect(self.rig.standin)["Spec"]["TaskTemplate"]["ContainerSpec"]
        return str(next(e for e in spec.get("Env", []) if e.startswith("BUMP=")).split("=", 1)[1])


def test_a_stack_deploy_during_the_convergence_wait_is_kept_and_reported(
    rig: FaultRig,
) -> None:
    stack: Stack | None = None

    def deploy(r: FaultRig) -> Standin:
        nonlocal stack
        stack = Stack(r)
        return stack.first_deploy(r)

    rig.setup(deploy=deploy)
    assert stack is not None
    with rig.watch():
        running = rig.start("rotate", "--manifest", str(rig.manifest), "--all",
                            "--verify-timeout", "15")  # fmt: skip
        rig.wait_updating()
        deployed_at = stack.deploy("2")  # the operator's stale `stack-env`, a new BUMP
        raced = running.wait()
        rig.runs.append(raced)
        assert raced.returncode == 4, raced.report
        assert rig.standin.name in raced.stdout + raced.stderr
        assert "Traceback" not in raced.stderr
        # Not clobbered: the deploy's spec stands, mounts and all.
        assert stack.bump() == "2"
        assert set(rig.lab.mounted(rig.standin).values()) == {stack.cert.name, stack.key.name}
        poll("the deploy converged", rig.converged, 90, 0.2)
        recovery = rig.rotate()
        assert recovery.returncode == 0, recovery.report
        # What recovery found is reported, though it is no failure.
        assert f"recovered {rig.standin.name}: superseded" in recovery.stdout, recovery.report
        settled_at = rig.settled(rig.new)
    assert stack.bump() == "2"
    assert rig.updates(recovery.started, recovery.ended) == 1
    rig.conclude("stack-deploy-race", raced, recovery, settled_at,
                 deploy_after_s=round(deployed_at - raced.started, 1))  # fmt: skip
