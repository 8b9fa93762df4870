"""`python -m bench [--quick] [--record FILE] [NAME ...]`: run all or the named benchmarks.

Names: fanout, window, startup, restarts, latency, scale (`all`; default: fanout, window,
startup). Each prints a table and a RATIO line; Docker resources are created under a
`phxbench-<hex>-` prefix and removed afterwards, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import docker
import docker.errors

from bench import fanout, latency, restarts, scale, startup, window
from bench.common import BenchError, Output, compile_tool, environment
from bench.swarm_env import UpdatePolicy, standin_image
from phoenix_certbot.rotation.lease import LEASE_ENV
from tests.harness.resources import remove_config_named

NAMES = ("fanout", "window", "startup", "restarts", "latency", "scale")
# What `make bench` runs: the goals of the scale issue, within 10 minutes on 2 cores. The
# others (`latency` is the fan-out's one-certificate-per-service variant) run by name, or
# all of them with `all` (about 20 minutes).
DEFAULT = ("fanout", "window", "startup")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default {' '.join(DEFAULT)}; `all`): {', '.join(NAMES)}",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller sizes for a smoke run (K=1,2; one window pair; scale 50/20; 5 repetitions)",
    )
    parser.add_argument(
        "--monitor",
        type=float,
        default=5.0,
        metavar="S",
        help="UpdateConfig monitor period of every service (default 5, Docker's)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        metavar="N",
        help="repetitions for startup (default 10, quick 5) and scale (3, quick 2)",
    )
    parser.add_argument(
        "--record",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write what was printed, as markdown, to FILE",
    )
    return parser


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C


def main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in (*NAMES, "all")]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    names = list(NAMES) if "all" in args.names else args.names or list(DEFAULT)
    signal.signal(signal.SIGTERM, _interrupt)
    out = Output()
    try:
        client = docker.from_env(timeout=30)
        try:
            version = client.version()
            engine = f"Docker Engine {version.get('Version')} (API {version.get('ApiVersion')})"
            swarm = client.info().get("Swarm") or {}
        finally:
            client.close()
    except docker.errors.DockerException as exc:
        print(f"bench: Docker unreachable: {exc} (run `make provision`)", file=sys.stderr)
        return 3
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        print("bench: this engine is not a swarm manager (run `make provision`)", file=sys.stderr)
        return 3
    env = environment(engine)
    env["bytecode"] = compile_tool()
    for key, value in env.items():
        print(f"{key}: {value}")
    image = standin_image()
    policy = UpdatePolicy(monitor_s=args.monitor)
    repeat = args.repeat
    runners: dict[str, Callable[[], None]] = {
        "fanout": lambda: fanout.run(out, image, policy, (1, 2) if args.quick else (1, 8, 32)),
        "window": lambda: window.run(out, image, policy, 1 if args.quick else 5),
        "startup": lambda: startup.run(out, image, policy, repeat or (5 if args.quick else 10)),
        "restarts": lambda: restarts.run(out, image, policy),
        "latency": lambda: latency.run(out, image, policy, (1, 2) if args.quick else (1, 4, 8)),
        "scale": lambda: scale.run(
            out, image, policy, quick=args.quick, repeat=repeat or (2 if args.quick else 3)
        ),
    }
    failed: list[str] = []
    # The runs take a swarm lease of their own, never the production one: on a shared
    # daemon they must neither queue behind other people's runs nor hold theirs up.
    lease = f"phxbench-{secrets.token_hex(4)}-lease"
    os.environ[LEASE_ENV] = lease
    try:
        for name in names:
            try:
                runners[name]()
            except BenchError as exc:
                out.line(f"FAILED {name}: {exc}")
                failed.append(name)
            except Exception:  # one broken benchmark must not hide the others' figures
                out.line(f"FAILED {name}:\n{traceback.format_exc()}")
                failed.append(name)
    except KeyboardInterrupt:
        print(
            "\nbench: interrupted; resources of the interrupted benchmark were removed",
            file=sys.stderr,
        )
        return 130
    finally:
        _remove_config(lease)
        if args.record:
            out.record(args.record, env, argv)
    return 1 if failed else 0


def _remove_config(name: str) -> None:
    """The lease our runs made, if they made it (it is called exactly `name`)."""
    try:
        remove_config_named(name, timeout_s=30)
    except docker.errors.DockerException as exc:
        print(f"bench: could not remove the config {name}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
