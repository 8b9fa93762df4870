"""`python -m tests.harness.cluster up 1|2|3 [IMAGE]` holds a lab until Enter is pressed;
`python -m tests.harness.cluster cleanup` tears down what dead runs left in every free slot."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from tests.harness.cluster.layout import ONE_NODE, THREE_NODES, TWO_NODES
from tests.harness.cluster.slots import cleanup_slots, cluster_lab

USAGE = "usage: python -m tests.harness.cluster (up 1|2|3 [IMAGE] | cleanup)"


def main(argv: Sequence[str]) -> int:
    if list(argv) == ["cleanup"]:
        print("\n".join(cleanup_slots()))
        return 0
    layouts = {"1": ONE_NODE, "2": TWO_NODES, "3": THREE_NODES}
    if len(argv) in {2, 3} and argv[0] == "up" and argv[1] in layouts:
        with cluster_lab(layouts[argv[1]], argv[2] if len(argv) == 3 else "") as lab:
            described = {
                "slot": lab.slot.number,
                "base": str(lab.base),
                "nodes": {node.name: node.host for node in lab.nodes},
                "timings": lab.timings,
            }
            print(json.dumps(described))
            sys.stdout.flush()
            sys.stdin.readline()
        return 0
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
