"""The local stack's objects on a real API server, through every variant and away again.

What the platform's program registers (tools/render.py) is installed on the sim with the
real helm and kubectl (e2e/stack_objects.py): the API server validates it (schemas, defaults,
CEL rules, Pod Security admission of the restricted namespaces, immutable fields on update),
Helm installs the vendored charts against the server's real version and waits for them.
The variants follow the issue's cycle: the stack as configured, then `workerMode=job`,
`cacheApiReadPath=replica-sidecar`, `monitoring=false`, then back; objects a variant no
longer renders are deleted, as the engine would. At the end everything is taken away in the
engine's reverse order and nothing the stack made may remain.

This proves the API-server half of `pulumi up`; the Pulumi engine half for this Python
program is e2e/test_stack_pulumi.py.
"""

from __future__ import annotations

import pytest

from e2e.stack_objects import Applier, describe, differences, ident
from tools.helm_install import find_helm
from tools.helm_render import releases_of
from tools.render import render_stack

BASE = {"kubeconfigContext": "redis-keda-sim"}
VARIANTS = [
    ("as configured", {}),
    ("job mode, replica sidecar, no monitoring",
     {"workerMode": "job", "cacheApiReadPath": "replica-sidecar", "monitoring": "false"}),
    ("back", {}),
]
# The namespaces the local stack creates: none may outlive the teardown.
STACK_NAMESPACES = ("platform", "keda", "monitoring")


def _render(overrides):
    result = render_stack("local", {**BASE, **overrides})
    return result.k8s_objects, releases_of(result)


def _check_live(applier: Applier, objects) -> list[str]:
    problems = []
    for obj in objects:
        live = applier.live(ident(obj))
        if live is None:
            problems.append(f"{describe(ident(obj))}: not on the server")
            continue
        sent = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
        problems += [f"{describe(ident(obj))} {d}" for d in differences(sent, live)]
    return problems


@pytest.fixture()
def applier(cluster):
    return Applier(cluster, find_helm())


def test_every_variant_installs_updates_and_goes_away(applier, cluster):
    applied: dict = {}
    installed: dict = {}
    dropped_namespaces: set = set()
    for label, overrides in VARIANTS:
        objects, releases = _render(overrides)
        keys = {ident(o): o for o in objects}
        wanted = {(r.name, r.namespace) for r in releases}
        # What the variant no longer has goes first (the engine deletes after it creates, but
        # a release's custom resources must go before the release's CRDs can). A namespace
        # it drops is deleted at the end, once KEDA's release is gone: in the sim nothing
        # serves KEDA's metrics APIService, and while it fails discovery no namespace can be
        # deleted (docs/sim.md); on kind KEDA's metrics server answers.
        for key in reversed([k for k in applied if k not in keys and k[1] != "Namespace"]):
            applier.delete(key)
        dropped_namespaces.update(k for k in applied if k not in keys and k[1] == "Namespace")
        for name, ns in sorted(set(installed) - wanted):
            applier.uninstall_release(name, ns)
        applier.apply_objects([o for o in objects if o["kind"] == "Namespace"])
        for release in releases:
            applier.install_release(release)
        applier.apply_objects([o for o in objects if o["kind"] != "Namespace"])
        applied, installed = keys, {(r.name, r.namespace): r for r in releases}

        problems = _check_live(applier, objects)
        assert not problems, f"variant '{label}': the server's objects differ from the render:\n  " + "\n  ".join(problems)
        assert applier.releases() == set(installed), f"variant '{label}': releases {applier.releases()}"

    # Teardown in the engine's reverse order: the program's objects, the releases, namespaces.
    for key in reversed([k for k in applied if k[1] != "Namespace"]):
        applier.delete(key)
    for name, ns in installed:
        applier.uninstall_release(name, ns)
    for key in sorted(dropped_namespaces | {k for k in applied if k[1] == "Namespace"}):
        applier.delete(key)

    left = []
    for ns in STACK_NAMESPACES:
        if cluster.exists("namespace", ns):
            left.append(f"namespace {ns}")
    for kind in ("scaledobjects.keda.sh", "scaledjobs.keda.sh", "triggerauthentications.keda.sh",
                 "servicemonitors.monitoring.coreos.com", "podmonitors.monitoring.coreos.com",
                 "prometheusrules.monitoring.coreos.com"):
        out = cluster.kubectl("get", kind, "-A", "-o", "name", check=False)
        if out.returncode == 0 and out.stdout.strip():
            left.append(f"{kind}: {out.stdout.split()}")
    secrets = cluster.kubectl("get", "secrets", "-A", "-l", "owner=helm", "-o", "name").stdout.split()
    left += [f"helm release record {s}" for s in secrets]
    for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
        names = cluster.kubectl("get", kind, "-o", "name").stdout.split()
        left += [f"{kind} {n}" for n in names if "keda" in n or "monitoring" in n or "prometheus" in n]
    # Aggregated APIs (served by a Service); the Local ones belong to built-in groups and CRDs.
    aggregated = cluster.get("apiservices")["items"]
    left += [f"apiservice {a['metadata']['name']}" for a in aggregated if a["spec"].get("service")]
    # KEDA's chart ships its CRDs as templates: they go with the release. Helm never deletes
    # a chart's crds/ folder, so kube-prometheus-stack's stay (docs/sim.md); nothing else may.
    crds = [c["metadata"]["name"] for c in cluster.get("crds")["items"]]
    left += [f"CRD {c}" for c in crds if not c.endswith(".monitoring.coreos.com")]
    pvs = cluster.kubectl("get", "pv", "-o", "name").stdout.split()
    left += [f"volume {p}" for p in pvs]
    assert not left, "left behind after the teardown:\n  " + "\n  ".join(left)
