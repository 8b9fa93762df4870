"""The cluster lab itself (tests/harness/cluster), against real dockerd in namespaces: labs
side by side, nodes told apart, each fault seen by the swarm and undone, nothing left."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest
from docker.models.services import Service

from tests.harness import cluster
from tests.harness.cluster.cleanup import our_processes
from tests.harness.cluster.host import run, wait_for
from tests.harness.cluster.node import FAULT_TAG
from tests.harness.ports import free_port
from tests.harness.resources import Resources
from tests.harness.swarm import service_tasks
from tests.harness.test_swarm_harness import deploy_standin
from tests.support import pki
from tests.support.tls import served_sha256

pytestmark = pytest.mark.docker

REPO_ROOT = Path(__file__).resolve().parents[2]
DOWN_S = 20.0  # heartbeat 1 s: a silent node is down in ~3 s; slack for a loaded machine
QUORUM_S = 40.0  # a lone manager notices it has no quorum after Raft's election timeout


def api_answers(node: cluster.Node) -> bool:
    """Whether `docker version` gets an answer within 3 s, whatever the lab thinks."""
    try:
        return run(["docker", "-H", node.host, "version"], check=False, timeout=3).returncode == 0
    except cluster.LabError:
        return False


def fault_rules(node: cluster.Node) -> list[str]:
    return [line for line in node.iptables("-S").splitlines() if FAULT_TAG in line]


def test_labs_side_by_side_in_their_own_slots(
    two_node_swarm: cluster.ClusterLab,
    private_swarm: cluster.ClusterLab,
    docker_client: docker.DockerClient,
) -> None:
    labs = (two_node_swarm, private_swarm)
    assert two_node_swarm.slot != private_swarm.slot
    nodes = [node for lab in labs for node in lab.nodes]
    for attribute in ("netns", "address", "hostname", "host"):
        values = [getattr(node, attribute) for node in nodes]
        assert len(set(values)) == len(values), attribute
    # Both answer at once, each in its own swarm.
    swarm_ids = {lab.manager.docker("info", "--format", "{{.Swarm.Cluster.ID}}") for lab in labs}
    assert len(swarm_ids) == 2
    # No lab subnet overlaps a network of the shared dockerd.
    shared = [
        ipaddress.ip_network(config["Subnet"])
        for network in docker_client.networks.list()
        for config in (network.attrs.get("IPAM", {}).get("Config") or [])
        if ":" not in config.get("Subnet", ":")
    ]
    for lab in labs:
        assert not [net for net in shared if net.overlaps(ipaddress.ip_network(lab.slot.subnet))]


def test_each_node_reports_its_own_hostname(three_node_swarm: cluster.ClusterLab) -> None:
    lab = three_node_swarm
    for node in lab.nodes:
        assert node.docker("info", "--format", "{{.Name}}").strip() == node.hostname
    described = json.loads(lab.manager.docker("node", "inspect", *(n.node_id for n in lab.nodes)))
    by_id = {n["ID"]: n for n in described}
    for node in lab.nodes:
        seen = by_id[node.node_id]
        assert seen["Description"]["Hostname"] == node.hostname
        assert seen["Spec"]["Role"] == node.role
        assert seen["Spec"]["Labels"][cluster.NODE_LABEL] == node.name
    assert [n.name for n in lab.managers] == ["mgr", "mgr2"]


def test_stop_and_start_a_worker(three_node_swarm: cluster.ClusterLab) -> None:
    lab, worker = three_node_swarm, three_node_swarm.worker
    with lab.stopped(worker):
        assert not api_answers(worker)
        down = lab.wait_state(worker, "down", DOWN_S)
    assert worker.answers()
    assert lab.node_states()[worker.name] == "ready"
    print(f"\nworker stopped: down after {down:.2f} s")


def test_kill_and_start_a_manager_of_two_loses_then_regains_the_quorum(
    three_node_swarm: cluster.ClusterLab,
) -> None:
    lab = three_node_swarm
    mgr, mgr2 = lab.nodes[0], lab.nodes[1]
    started = time.monotonic()
    with lab.stopped(mgr2, kill=True):
        # mgr alone is one of two managers: no quorum, so it cannot even list the nodes.
        wait_for("mgr without quorum", lambda: not lab.node_states(), QUORUM_S)
        lost = time.monotonic() - started
        assert mgr.answers()
    back = time.monotonic() - started - lost
    assert lab.node_states() == dict.fromkeys(("mgr", "mgr2", "wkr"), "ready")
    print(f"\nmgr2 killed: quorum lost after {lost:.2f} s, all ready {back:.2f} s after restart")


def test_freeze_and_thaw_a_worker(three_node_swarm: cluster.ClusterLab) -> None:
    lab, worker = three_node_swarm, three_node_swarm.worker
    with lab.frozen(worker):
        assert not api_answers(worker)
        down = lab.wait_state(worker, "down", DOWN_S)
    ready = lab.wait_state(worker, "ready", DOWN_S)
    assert worker.answers()
    print(f"\nworker frozen: down after {down:.2f} s, ready {ready:.2f} s after thawing")


@pytest.mark.parametrize("from_host", [False, True])
def test_partition_and_heal_a_worker(three_node_swarm: cluster.ClusterLab, from_host: bool) -> None:
    lab, worker, mgr = three_node_swarm, three_node_swarm.worker, three_node_swarm.manager
    assert lab.reaches(mgr, worker) and lab.reaches(None, worker)
    with lab.partitioned(worker, from_host=from_host):
        assert not lab.reaches(mgr, worker)
        assert not lab.reaches(worker, mgr)
        assert lab.reaches(None, worker) is not from_host
        assert lab.reaches(None, mgr)
        down = lab.wait_state(worker, "down", DOWN_S)
        assert worker.answers()  # its own daemon is fine: only the network is cut
    ready = lab.wait_state(worker, "ready", DOWN_S)
    assert lab.reaches(mgr, worker) and lab.reaches(None, worker)
    assert fault_rules(worker) == []
    print(f"\nworker cut off: down after {down:.2f} s, ready {ready:.2f} s after healing")


def test_port_closed_drops_that_port_only(three_node_swarm: cluster.ClusterLab) -> None:
    lab, mgr, worker = three_node_swarm, three_node_swarm.manager, three_node_swarm.worker
    with lab.port_closed(mgr, 2377, ("tcp", "udp")):
        assert not lab.reaches(None, mgr, 2377)
        assert lab.reaches(None, mgr, 7946)
        rules = fault_rules(mgr)
        for proto in ("tcp", "udp"):
            assert [r for r in rules if "-A INPUT" in r and f"-p {proto}" in r]
            assert [r for r in rules if "-A FORWARD" in r and f"-p {proto}" in r]
    assert lab.reaches(None, mgr, 2377)
    assert fault_rules(mgr) == []
    assert lab.node_states().get(worker.name) == "ready"


def test_faults_are_undone_when_the_test_fails(three_node_swarm: cluster.ClusterLab) -> None:
    lab, worker = three_node_swarm, three_node_swarm.worker
    with pytest.raises(RuntimeError), lab.partitioned(worker), lab.frozen(worker):
        raise RuntimeError("the test failed here")
    assert not worker.frozen and fault_rules(worker) == []
    # Left in place without a context manager: restore() finds them all.
    lab.block_port(worker, 7946, ("tcp", "udp"))
    lab.partition(worker, from_host=True)
    lab.freeze(worker)
    lab.restore()
    assert not worker.frozen and fault_rules(worker) == []
    assert lab.reaches(None, worker)
    assert set(lab.node_states().values()) == {"ready"}


def test_a_killed_dockerd_leaves_its_containers_serving_until_it_restarts(
    private_swarm: cluster.ClusterLab,
) -> None:
    """What the lab's docstring says about SIGKILL, seen from the host with handshakes."""
    lab, node = private_swarm, private_swarm.manager
    resources = Resources(lab.client())
    try:
        leaf = pki.issue(["portainer.example.test"])
        port = free_port()
        service = deploy_standin(resources, lab.image, port, leaf)
        first = wait_running(service)
        assert served_sha256(port, host=node.address) == leaf.sha256

        lab.kill(node)
        assert not api_answers(node)
        # No dockerd, no containerd: the shim keeps the container, and it still serves.
        assert served_sha256(port, host=node.address, timeout=5) == leaf.sha256

        lab.start(node)
        # Back, dockerd stopped the old container; restart_policy "none": no new task.
        wait_for("the old task ended", lambda: task_state(service, first) != "running", 30)
        assert run(["docker", "-H", node.host, "ps", "-q"]).stdout.split() == []
    finally:
        problems = resources.cleanup()
    assert problems == []


def test_stop_lets_dockerd_stop_its_containers(private_swarm: cluster.ClusterLab) -> None:
    lab, node = private_swarm, private_swarm.manager
    resources = Resources(lab.client())
    try:
        leaf = pki.issue(["portainer.example.test"])
        port = free_port()
        wait_running(deploy_standin(resources, lab.image, port, leaf))
        lab.stop(node)
        shims = [p for p in our_processes(lab) if b"containerd-shim" in cmdline(p)]
        assert shims == []
        lab.start(node)
    finally:
        problems = resources.cleanup()
    assert problems == []


def test_a_killed_run_is_cleaned_up_by_the_next() -> None:
    """A lab whose process died without its teardown; `cleanup` tears it down."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    up = subprocess.Popen(
        [sys.executable, "-m", "tests.harness.cluster", "up", "1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO_ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        assert up.stdout is not None
        described = json.loads(up.stdout.readline() or b"null")
    finally:
        os.killpg(up.pid, signal.SIGKILL)  # the run only; its dockerd live in their own sessions
        up.wait(timeout=10)
        for stream in (up.stdin, up.stdout):
            if stream is not None:
                stream.close()
    dead = cluster.ClusterLab(
        cluster.Slot(described["slot"]), cluster.ONE_NODE, Path(described["base"])
    )
    left = dead.leftovers()
    assert any(item.startswith("processes") for item in left), left
    assert any(item.startswith("network namespaces") for item in left), left

    cleaned = run([sys.executable, "-m", "tests.harness.cluster", "cleanup"], timeout=120)
    assert f"slot {dead.slot.number}: cleaned {dead.base}" in cleaned.stdout.splitlines()
    assert dead.leftovers() == []


def test_teardown_leaves_nothing() -> None:
    with cluster.cluster_lab(cluster.ONE_NODE) as lab:
        assert lab.leftovers() != []
        assert lab.node_states() == {"mgr": "ready"}
    assert lab.leftovers() == []
    print(f"\none node, no image: {lab.describe_timings()}")


def test_a_lab_keeper_restores_its_lab_or_builds_a_fresh_one() -> None:
    keeper = cluster.LabKeeper(cluster.ONE_NODE, "")
    try:
        lab = keeper.get()
        node = lab.manager
        lab.freeze(node)
        assert keeper.get() is lab and lab.node_states() == {"mgr": "ready"}
        # Beyond repair: a dockerd that cannot start again.
        lab.kill(node)
        (node.root / "daemon.json").write_text("{not json\n")
        fresh = keeper.get()
        assert fresh is not lab and fresh.base != lab.base and keeper.rebuilt == 1
        assert not lab.base.exists()  # torn down (its slot's names are the fresh lab's now)
        assert fresh.node_states() == {"mgr": "ready"}
    finally:
        keeper.close()
    assert fresh.leftovers() == []


# -- helpers -------------------------------------------------------------------------------------
def wait_running(service: Service) -> str:
    """The id of the service's task once it runs."""
    found: list[str] = []

    def running() -> bool:
        found[:] = [t["ID"] for t in service_tasks(service) if t["Status"]["State"] == "running"]
        return bool(found)

    wait_for("a running task", running, 60)
    return found[0]


def task_state(service: Service, task_id: str) -> str:
    tasks = {t["ID"]: t for t in service_tasks(service)}
    return str(tasks[task_id]["Status"]["State"])


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
