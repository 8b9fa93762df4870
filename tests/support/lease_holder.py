"""A process that takes a swarm lease and keeps renewing it, for tests to kill.

`python -m tests.support.lease_holder NAME TTL [--foreign]` prints `held RUN` once the
lease is taken, then renews it until killed (at most 120 s). `--foreign` leaves out the
process identity, as a holder on another manager would look to this machine.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import replace

from phoenix_certbot.rotation.lease import SwarmLease, this_run
from phoenix_certbot.swarm.client import SwarmClient

MAX_LIFE_S = 120.0


def main(argv: list[str]) -> int:
    name, ttl = argv[0], float(argv[1])
    holder = this_run()
    if "--foreign" in argv:
        holder = replace(holder, process="")
    lease = SwarmLease(SwarmClient.connect(), name, ttl_s=ttl, holder=holder)
    lease.acquire(timeout_s=30.0)
    print(f"held {holder.run}", flush=True)
    threading.Event().wait(MAX_LIFE_S)
    lease.release()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
