"""Docker Swarm clusters on one machine, for tests: each node a dockerd in its own network
and UTS namespace. Up to 8 labs run side by side, each in its own slot.

The machine's own dockerd (and its one-node swarm on 127.0.0.1) is never touched. The lab in
slot S (0..7), with nodes i = 0, 1, ... named by their NodeSpec (here "mgr" and "wkr"):

    host  phxS-h 172.16.S.1/24 ──veth── [netns phxS-sw: bridge phxS-br]
                                          ├──veth── [netns phxS-mgr: eth0 172.16.S.2/24]
                                          ├──veth── [netns phxS-wkr: eth0 172.16.S.3/24]
                                          └── ...   node i: eth0 172.16.S.(2+i)/24,
                                                    docker0 172.16.(128+16S+i).1/24

Why 172.16.0.0/16: see layout.py. The bridge sits in its own namespace on purpose: bridged
frames pass br_netfilter, and the host's FORWARD chain (policy DROP, set by the main dockerd)
would drop node-to-node traffic on a bridge in the host namespace. The host only ever sends
to and receives from phxS-h.

Each node runs `nsenter --net=/run/netns/phxS-NAME --uts=ROOT/uts dockerd` with its own
data-root, exec-root (hence its own supervised containerd), pidfile, unix socket, config
file, cgroup parent (phxS-NAME) and docker0 address, all under ROOT = /tmp/phxS-XXXX/NAME.
Its UTS namespace, bound at ROOT/uts so that a restarted dockerd gets it back, has the
hostname phxS-NAME: dockerd reports it as its Name and as the node's Description.Hostname.
The first node (a manager) inits the swarm on its eth0 address with a 1 s dispatcher
heartbeat (a silent node is `down` about 3 s later, not 15 s); the others join it, one at a
time; the stand-in image is copied in with `docker save | docker load`.

Raft: a swarm with two managers (THREE_NODES) needs both for its quorum (2 of 2). With
either stopped, frozen or cut off, the other cannot change anything, not even list nodes.

Slots: slot S is held by an fcntl lock on /run/lock/phxlab-S.lock, whose text says where the
lab lives. A run killed hard leaves that text behind; whoever takes the slot next tears that
lab down first. `python -m tests.harness.cluster cleanup` does it for every free slot.

What happens to a running task when its node's dockerd goes (checked with Engine 20.10):
- SIGTERM (`stop`): dockerd stops every container (5 s shutdown timeout; 3-4 s here) and
  exits; nothing of the node serves any more.
- SIGKILL (`kill`): containerd dies with dockerd (a parent-death signal), but the
  containers' shims, and the containers, run on: a host-mode published port keeps serving.
- The managers call the node `down` 1-3 s later and set its tasks' desired state to
  shutdown (a replicated service gets a replacement elsewhere, if a node fits).
- When dockerd starts again (no live-restore, as here) it stops the containers it finds
  still running (exit 143), even when it was back before the managers noticed; their tasks
  end as failed and the orchestrator starts new ones (a global service's task comes back).
"""

from __future__ import annotations

from tests.harness.cluster.host import LabError
from tests.harness.cluster.lab import HEARTBEAT_S, NODE_LABEL, ClusterLab
from tests.harness.cluster.layout import (
    MANAGER,
    ONE_NODE,
    SLOTS,
    THREE_NODES,
    TWO_NODES,
    WORKER,
    NodeSpec,
    Slot,
    prerequisites_problem,
)
from tests.harness.cluster.node import Node
from tests.harness.cluster.slots import Busy, LabKeeper, claimed_slot, cluster_lab

__all__ = [
    "HEARTBEAT_S",
    "MANAGER",
    "NODE_LABEL",
    "ONE_NODE",
    "SLOTS",
    "THREE_NODES",
    "TWO_NODES",
    "WORKER",
    "Busy",
    "ClusterLab",
    "LabError",
    "LabKeeper",
    "Node",
    "NodeSpec",
    "Slot",
    "claimed_slot",
    "cluster_lab",
    "prerequisites_problem",
]
