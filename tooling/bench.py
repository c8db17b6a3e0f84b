"""`make bench`: offline preview time and the slow-step critical path, dev vs a 50-node stack.

A slow step is a remote command, a Helm release or a Job: the things that take minutes on real
hosts. The critical path is the longest chain of them through the dependency graph; workers join
in parallel, so it must not grow with the number of nodes.
"""

from __future__ import annotations

import functools
import json
import statistics
import sys
import time

from tooling import offline, stackfile

SLOW_TYPES = (
    "command:remote:Command",
    "command:remote:CopyToRemote",
    "command:local:Command",
    "kubernetes:helm.sh/v3:Release",
    "kubernetes:batch/v1:Job",
)
RUNS = 3


def is_slow(reg: offline.Registration) -> bool:
    """A step that waits on the outside world: SSH, Helm, Jobs, or an object Pulumi awaits Ready."""
    annotations = (reg.inputs.get("metadata") or {}).get("annotations") or {}
    return reg.type in SLOW_TYPES or "pulumi.com/waitFor" in annotations


def critical_path(rec: offline.Recording) -> list[str]:
    """The longest chain of slow steps (resource names, first to last) in the graph."""

    @functools.lru_cache(maxsize=None)
    def longest(urn: str) -> tuple[str, ...]:
        best: tuple[str, ...] = ()
        for dep in rec.all_dependencies(urn):
            if dep in rec.resources:
                chain = longest(dep)
                if len(chain) > len(best):
                    best = chain
        reg = rec.resources[urn]
        return best + (reg.name,) if is_slow(reg) else best

    return list(max((longest(urn) for urn in rec.resources), key=len, default=()))


def scaled_config(workers: int, controllers: int = 3, base: tuple[dict[str, str], list[str]] | None = None,
                  disruption_percent: int | None = None) -> tuple[dict[str, str], list[str]]:
    """The dev stack (or `base`) with `controllers` + `workers` nodes on documentation addresses,
    and k0s.workerDisruptionPercent if given."""
    config, secret = base or stackfile.read("dev")
    config = dict(config)
    nodes = [{"name": f"cp-{i + 1}", "address": f"198.51.100.{11 + i}", "role": "controller"}
             for i in range(controllers)]
    nodes += [{"name": f"worker-{i + 1}", "address": f"192.0.2.{11 + i}", "role": "worker"}
              for i in range(workers)]
    config["cluster-bootstrap:nodes"] = json.dumps(nodes)
    if disruption_percent is not None:
        k0s = json.loads(config.get("cluster-bootstrap:k0s", "{}"))
        config["cluster-bootstrap:k0s"] = json.dumps({**k0s, "workerDisruptionPercent": disruption_percent})
    return config, secret


def measure(label: str, config, secret) -> dict:
    times, rec = [], None
    for _ in range(RUNS):
        start = time.perf_counter()
        rec = offline.run("dev", preview=True, config=config, secret_keys=secret)
        times.append(time.perf_counter() - start)
    path = critical_path(rec)
    # counted as `make plan` counts them: the resources a first `pulumi up` creates, not the
    # component resources (layers) that group them
    return {"label": label, "resources": sum(r.custom for r in rec.resources.values()),
            "layers": sum(not r.custom for r in rec.resources.values()),
            "median_s": statistics.median(times), "path": path}


def main() -> int:
    rows = [
        measure("dev (1 node)", *stackfile.read("dev")),
        measure("3 controllers + 2 workers", *scaled_config(2, disruption_percent=100)),
        measure("3 controllers + 47 workers", *scaled_config(47, disruption_percent=100)),
        measure("  … restarting 10% at a time", *scaled_config(47)),
    ]
    print(f"{'stack':<30} {'to create':>9} {'layers':>7} {'preview (median of %d)' % RUNS:>24} {'critical path':>14}")
    for row in rows:
        print(f"{row['label']:<30} {row['resources']:>9} {row['layers']:>7} {row['median_s'] * 1000:>21.0f} ms "
              f"{len(row['path']):>8} steps")
    print("(to create: resources a first `pulumi up` creates, as `make plan` counts them; layers: the "
          "component resources that group them)")
    print()
    for row in rows:
        print(f"{row['label'].strip()}: " + (" → ".join(row["path"]) or "(no slow steps yet)"))
    flat = len(rows[1]["path"]) == len(rows[2]["path"])
    print(f"\nwith every worker restarted at once, the critical path for 50 nodes "
          f"{'equals' if flat else 'DIFFERS FROM'} the one for 5 nodes; restart batches add "
          f"{len(rows[3]['path']) - len(rows[2]['path'])} steps at the default 10%")
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
