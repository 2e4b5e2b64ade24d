"""A one-off Pod that runs a producer burst, built from the producer Deployment's own template.

    kubectl get deploy producer -o json | python tools/burst_pod.py --name producer-load-1 \\
        -- python -m apps.producer --count 500 --rate 0 --wait-results 900 | kubectl apply -f -

``make load`` runs its burst inside the producer pod (``kubectl exec``). With
``producerReplicas: 0`` there is no pod: this Pod takes its place. It keeps the template's
labels (so the NetworkPolicies let it reach Redis), service account, security contexts,
resources, env (Redis endpoint, password file from the mounted Secret) and volumes, and changes only
what a run-to-completion burst needs: the command, ``restartPolicy: Never``, no probes
(the heartbeat they read is written by the long-running modes only) and no ports.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from typing import Any

BURST_COMPONENT = "load"


def burst_pod(deployment: dict[str, Any], name: str, command: list[str]) -> dict[str, Any]:
    if deployment.get("kind") != "Deployment":
        raise ValueError(f"expected a Deployment, got {deployment.get('kind')!r}")
    template = copy.deepcopy(deployment["spec"]["template"])
    spec = template["spec"]
    containers = spec["containers"]
    if len(containers) != 1:
        raise ValueError(f"expected one container in the producer template, got {len(containers)}")
    container = containers[0]
    container["command"] = list(command)
    container.pop("args", None)
    for key in ("livenessProbe", "readinessProbe", "startupProbe", "ports"):
        container.pop(key, None)
    spec["restartPolicy"] = "Never"
    labels = {**(template.get("metadata") or {}).get("labels", {}), "app.kubernetes.io/component": BURST_COMPONENT}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": deployment["metadata"]["namespace"], "labels": labels},
        "spec": spec,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="the Pod's name")
    parser.add_argument("command", nargs="+", help="the burst command (after --)")
    args = parser.parse_args(argv)
    try:
        pod = burst_pod(json.load(sys.stdin), args.name, args.command)
    except (ValueError, KeyError, json.JSONDecodeError) as exc:
        print(f"burst_pod: {exc}", file=sys.stderr)
        return 2
    json.dump(pod, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
