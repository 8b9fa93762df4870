"""Fixtures shared by every test: one swarm, one Pebble and one stand-in image per session.

When Docker, Pebble or certbot is missing, tests that need them are skipped, except under
CI=true, where that is a failure: a green CI run must have run them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import docker
import docker.errors
import pytest
import requests

from phoenix_certbot.rotation.lease import LEASE_ENV
from tests.harness import cluster
from tests.harness.certbot_runner import CERTBOT, Certbot
from tests.harness.pebble import PEBBLE, Pebble, PebbleError, PebbleProcess
from tests.harness.ports import free_port as allocate_port
from tests.harness.resources import Resources, remove_config_named
from tests.rotation.lab import Lab

REPO_ROOT = Path(__file__).resolve().parent.parent
STANDIN_BUILD = REPO_ROOT / "tests" / "harness" / "standin" / "build.sh"
PROVISION_HINT = "run `bash tests/harness/provision.sh` (as root) first"
# Files and folders of a working tree that a release is not built from.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "*.egg-info", "build", "dist", "__pycache__", ".*_cache", "tests", "bench"
)


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it under CI=true where every test must really run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: missing test dependencies are failures)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _marker_requirements(request: pytest.FixtureRequest) -> None:
    # A marked test gets its dependency checked even if it does not ask for the fixture.
    if request.node.get_closest_marker("docker"):
        request.getfixturevalue("docker_client")
    if request.node.get_closest_marker("pebble"):
        request.getfixturevalue("pebble")


def _socket_problem() -> str | None:
    """Why the engine's unix socket cannot be reached, or None.

    Checked before the SDK connects because the SDK leaks its socket when the connect fails,
    and `filterwarnings = error` turns that ResourceWarning into a crash of the whole run.
    """
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return None
    path = host.removeprefix("unix://")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(path)
    except OSError as exc:
        return f"cannot connect to {path}: {exc}"
    return None


@pytest.fixture(scope="session", autouse=True)
def session_lease() -> Iterator[str]:
    """Runs in this session (and the processes it starts) take a swarm lease of their own,
    never the production one: other sessions on the shared daemon must not queue behind
    ours. Removed at the end if a run created it."""
    name = f"phxtest-{secrets.token_hex(4)}-lease"
    before = os.environ.get(LEASE_ENV)
    os.environ[LEASE_ENV] = name
    yield name
    if before is None:
        os.environ.pop(LEASE_ENV, None)
    else:
        os.environ[LEASE_ENV] = before
    if _socket_problem() is None:
        remove_config_named(name)


@pytest.fixture
def lease_name(
    docker_client: docker.DockerClient, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A swarm lease name for this test alone, also given to the runs it starts (through
    the environment); the lease is removed afterwards."""
    name = f"phxtest-{secrets.token_hex(4)}-lease"
    monkeypatch.setenv(LEASE_ENV, name)
    yield name
    remove_config_named(name)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A Docker SDK client for an engine that is an active swarm manager."""
    problem = _socket_problem()
    if problem:
        unavailable(f"Docker Engine unreachable: {problem}; {PROVISION_HINT}")
    try:
        client = docker.from_env(timeout=60)
        swarm = client.info().get("Swarm", {})
    except (docker.errors.DockerException, requests.RequestException) as exc:
        unavailable(f"Docker Engine unreachable: {exc}; {PROVISION_HINT}")
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        client.close()
        unavailable(f"this Docker Engine is not an active swarm manager; {PROVISION_HINT}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def standin_image(docker_client: docker.DockerClient) -> str:
    """Name of the Portainer stand-in image, built now if its tag is missing."""
    try:
        result = subprocess.run(
            ["bash", str(STANDIN_BUILD)], capture_output=True, text=True, timeout=300, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        unavailable(f"cannot build the stand-in image: {exc}")
    lines = result.stdout.split()
    if result.returncode != 0 or not lines:
        unavailable(f"cannot build the stand-in image: {result.stderr.strip()}")
    return lines[-1]


@pytest.fixture
def resources(docker_client: docker.DockerClient) -> Iterator[Resources]:
    """Registers what a test creates and removes exactly that afterwards, services first.

    `resources.prefix` is unique to the test (`phxtest-<8 hex>-`); `resources.name(suffix)`
    prefixes a name; `create_secret/create_config/create_network/create_service` create and
    register; `track(obj)` registers an object made another way.
    """
    tracker = Resources(docker_client)
    yield tracker
    problems = tracker.cleanup()
    if problems:
        pytest.fail("could not remove test resources: " + "; ".join(problems), pytrace=False)


@pytest.fixture
def free_port() -> int:
    """A free TCP port to publish a service on in host mode; connect to it on 127.0.0.1."""
    return allocate_port()


@pytest.fixture(scope="session")
def pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """Pebble on free loopback ports, challenges always valid. Free ports, not Pebble's
    usual 14000/15000: another test session or the demo may run on the same machine."""
    if not PEBBLE.is_file():
        unavailable(f"{PEBBLE} is missing (apt-get install pebble); {PROVISION_HINT}")
    process = PebbleProcess(
        tmp_path_factory.mktemp("pebble"),
        listen=f"127.0.0.1:{allocate_port()}",
        management=f"127.0.0.1:{allocate_port()}",
    )
    try:
        server = process.start()
    except (OSError, PebbleError) as exc:
        unavailable(f"cannot start Pebble: {exc}")
    yield server
    process.stop()


def certbot_for(pebble: Pebble, base: Path, executable: Path = CERTBOT) -> Certbot:
    """A certbot aimed at the session's Pebble, with its folders under `base`."""
    if not executable.is_file():
        unavailable(f"{executable} is missing; {PROVISION_HINT}")
    return Certbot(
        base=base,
        server=pebble.directory_url,
        ca_bundle=pebble.listener_ca_path,
        http_port=allocate_port(),
        executable=executable,
    )


@pytest.fixture
def certbot(pebble: Pebble, tmp_path: Path) -> Certbot:
    """The venv's certbot aimed at the session's Pebble, with its folders under tmp_path."""
    return certbot_for(pebble, tmp_path / "certbot")


@pytest.fixture
def lab(
    docker_client: docker.DockerClient, resources: Resources, standin_image: str, tmp_path: Path
) -> Iterator[Lab]:
    """Stand-in services, lineages and manifests for one test (tests/rotation/lab.py);
    what the tool created is handed to `resources` to remove."""
    lab = Lab(docker_client, resources, standin_image, tmp_path)
    yield lab
    lab.close()
    lab.track_created()  # runs before `resources` cleans up: it was set up first


# -- cluster labs (tests/harness/cluster): swarms of dockerd in network namespaces ----------
LAB_FIXTURES = ("private_swarm", "two_node_swarm", "three_node_swarm")


def pytest_itemcollected(item: pytest.Item) -> None:
    """Every test of a cluster lab runs in one xdist worker (`--dist loadgroup`): each
    session-scoped lab is then started once, not once per worker, and a test that asks for
    two labs finds them there (a machine has 8 slots; one group per lab took them all when
    other sessions ran too). Marked as each test is collected: xdist reads the marks in its
    own pytest_collection_modifyitems."""
    fixtures = set(getattr(item, "fixturenames", ()))
    if fixtures & set(LAB_FIXTURES) or item.path.name == "test_cluster_lab.py":
        item.add_marker(pytest.mark.xdist_group("cluster-lab"))


@contextlib.contextmanager
def _keeper(
    what: str, specs: tuple[cluster.NodeSpec, ...], image: str
) -> Iterator[cluster.LabKeeper]:
    """A LabKeeper for `specs`; skipped without root or tools (a failure under CI=true), and
    when every slot is held. Setup and teardown errors are errors; so is anything left."""
    problem = cluster.prerequisites_problem()
    if problem:
        unavailable(problem)
    keeper = cluster.LabKeeper(specs, image)
    try:
        yield keeper
    finally:
        lab = keeper.lab
        keeper.close()
        if lab is not None:
            print(f"\n{what} (slot {lab.slot.number}): {lab.describe_timings()}")  # with -s


def _first_lab(keeper: cluster.LabKeeper) -> cluster.ClusterLab:
    try:
        return keeper.get()
    except cluster.Busy as exc:  # raised before anything is created
        unavailable(str(exc))


@pytest.fixture(scope="session")
def two_node_swarm(standin_image: str) -> Iterator[cluster.ClusterLab]:
    """A manager and a worker (`.manager`, `.worker`), each a dockerd in its own network
    namespace, the stand-in image on both; the machine's own swarm is not involved. Shared
    by the session: a test that faults it must undo that (the lab's context managers do)."""
    with _keeper("two-node swarm", cluster.TWO_NODES, standin_image) as keeper:
        yield _first_lab(keeper)


@pytest.fixture(scope="session")
def three_node_swarm(standin_image: str) -> Iterator[cluster.ClusterLab]:
    """Two managers ("mgr", "mgr2": a Raft quorum needs both) and a worker ("wkr"), the
    stand-in image on each. Shared by the session, like two_node_swarm."""
    with _keeper("three-node swarm", cluster.THREE_NODES, standin_image) as keeper:
        yield _first_lab(keeper)


@pytest.fixture(scope="session")
def _private_swarm_keeper(standin_image: str) -> Iterator[cluster.LabKeeper]:
    with _keeper("private swarm", cluster.ONE_NODE, standin_image) as keeper:
        yield keeper


@pytest.fixture
def private_swarm(_private_swarm_keeper: cluster.LabKeeper) -> cluster.ClusterLab:
    """A one-node swarm of its own (`.manager`), the stand-in image loaded, for a test to
    stop, kill, freeze or cut off: each test gets it healthy (every fault undone, the node
    ready), or a fresh one if it could not be made healthy."""
    return _first_lab(_private_swarm_keeper)


def run_step(command: Sequence[str], what: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """One step of building or installing the package: fail the test with its output."""
    try:
        result = subprocess.run(
            list(command), capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        unavailable(f"{what}: {exc}")
    if result.returncode != 0:
        output = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        pytest.fail(f"{what} failed ({result.returncode}):\n{output}")
    return result


@dataclass(frozen=True)
class Built:
    wheel: Path
    sdist: Path
    seconds: float


@dataclass(frozen=True)
class Installed:
    """phoenix-certbot installed into a venv, and how long that took."""

    venv: Path
    seconds: float

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """`python -m build`: the sdist, then the wheel built from that sdist.

    The build runs on a copy of the source tree (what `git ls-files` would ship, roughly),
    so it neither writes into the working tree nor picks up a stale egg-info or build/.
    """
    base = tmp_path_factory.mktemp("packaging")
    source = base / "source"
    shutil.copytree(REPO_ROOT, source, ignore=_NOT_SOURCE, symlinks=True)
    started = time.monotonic()
    run_step(
        [sys.executable, "-m", "build", "--outdir", str(base / "dist"), str(source)],
        "python -m build",
        timeout=600,
    )
    seconds = time.monotonic() - started
    (wheel,) = (base / "dist").glob("*.whl")
    (sdist,) = (base / "dist").glob("*.tar.gz")
    return Built(wheel=wheel, sdist=sdist, seconds=seconds)


@pytest.fixture(scope="module")
def module_lab(
    docker_client: docker.DockerClient,
    standin_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Lab]:
    """A lab shared by the tests of one module, for setup that they do not change."""
    tracker = Resources(docker_client)
    lab = Lab(docker_client, tracker, standin_image, tmp_path_factory.mktemp("lab"))
    try:
        yield lab
    finally:
        lab.close()
        lab.track_created()
        problems = tracker.cleanup()
        if problems:
            pytest.fail("could not remove test resources: " + "; ".join(problems), pytrace=False)
