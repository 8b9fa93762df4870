"""Failpoints: named places where the fault tests make this process die, as etcd's gofail does.

`hit(name)` sends SIGKILL to this process when the environment variable
`PHOENIX_CERT_FAILPOINT` (names separated by commas) lists `name`; unset, it costs one
environment lookup. Only tests set it: a kill at each point proves that the next run finishes
or undoes what was left. The points, in the order one rotation passes them:

  journal-written   every intent of the run is durable; nothing in the swarm changed yet
  objects-created   all versions created, before any file write or service update
  files-written     a service's `files` targets written, before its service update
  service-updated   a service update accepted by swarm, before the convergence wait
  rollback-updated  a rollback update accepted by swarm, before its wait
  before-prune      every service settled (updated or rolled back), before old versions go
  before-record     before state.json records the run and the intents are cleared
"""

from __future__ import annotations

import os
import signal

ENV = "PHOENIX_CERT_FAILPOINT"
NAMES = frozenset(
    {
        "journal-written",
        "objects-created",
        "files-written",
        "service-updated",
        "rollback-updated",
        "before-prune",
        "before-record",
    }
)


def hit(name: str) -> None:
    if name not in NAMES:  # a typo would make a fault test pass without killing anything
        raise ValueError(f"unknown failpoint {name!r}")
    wanted = os.environ.get(ENV)
    if wanted and name in {w.strip() for w in wanted.split(",")}:
        os.kill(os.getpid(), signal.SIGKILL)
