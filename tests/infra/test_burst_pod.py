"""``make load`` with ``producerReplicas: 0``: the burst runs in a one-off Pod made from the
producer Deployment's template (tools/burst_pod.py). That Pod must be as valid, as locked
down and as reachable to Redis as the producer pods, and run the burst."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.infra.validation import manifests as m
from tests.infra.validation import security
from tests.infra.validation.k8s_schema import validate_k8s_object
from tests.infra.validation.k8s_versions import stack_version
from tests.infra.validation.netpol import Cluster, Endpoint
from tools.burst_pod import burst_pod

BURST = ["python", "-m", "apps.producer", "--count", "500", "--rate", "0", "--wait-results", "900"]


@pytest.mark.parametrize("stack", ["local", "aks"])
def test_burst_pod_is_the_producer_template_running_the_burst(rendered, stack):
    r = rendered(stack, producerReplicas="0")
    deployment = m.find(r.k8s_objects, "Deployment", "platform", "producer")
    assert deployment["spec"]["replicas"] == 0
    pod = burst_pod(deployment, "producer-load-1", BURST)
    assert validate_k8s_object(pod, stack_version(stack)) == []
    # Locked down like the producer: the only rule it does not meet is probes, on purpose (a
    # run-to-completion burst; the producer's probe reads a heartbeat its burst mode never writes).
    before = security.check_pods(r.k8s_objects)
    new = [v for v in security.check_pods([pod, *r.k8s_objects]) if v not in before]
    assert new and {v.rule for v in new} == {"pod.probes"}, new
    (container,) = pod["spec"]["containers"]
    (template,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == BURST and pod["spec"]["restartPolicy"] == "Never"
    assert not {"livenessProbe", "readinessProbe", "ports"} & set(container)
    for same in ("image", "env", "securityContext", "resources", "volumeMounts"):
        assert container[same] == template[same], same
    # The NetworkPolicies treat it as a producer: it reaches Redis on its port.
    cluster = Cluster(r.k8s("NetworkPolicy"))
    me = Endpoint("burst", "platform", pod["metadata"]["labels"])
    port = r.outputs["redisPort"]
    if stack == "local":
        redis_labels = next(o for o in r.k8s("StatefulSet") if o["metadata"]["name"] == "redis")["spec"]["template"]["metadata"]["labels"]
        assert cluster.allowed(me, Endpoint("redis", "platform", redis_labels), port)
    else:
        import ipaddress

        ip = str(next(ipaddress.ip_network(r.config.endpoint_subnet_cidr).hosts()) + 3)
        assert cluster.egress_allowed(me, Endpoint("azure redis", external=True, ip=ip), port)


def test_cli_reads_a_deployment_and_refuses_anything_else(rendered):
    deployment = m.find(rendered("local").k8s_objects, "Deployment", "platform", "producer")
    cmd = [sys.executable, "tools/burst_pod.py", "--name", "p1", "--", *BURST]
    ok = subprocess.run(cmd, input=json.dumps(deployment), capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and json.loads(ok.stdout)["spec"]["containers"][0]["command"] == BURST
    bad = subprocess.run(cmd, input=json.dumps({"kind": "Service"}), capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "expected a Deployment" in bad.stderr
