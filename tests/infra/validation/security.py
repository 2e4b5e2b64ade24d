"""The hardening rules, as pure functions over rendered objects.

Every ``check_*`` function returns a list of :class:`Violation` (object, rule, detail);
an empty list means the rule holds. Rule ids are stable and listed in
``docs/security.md``.

Roles are found from the infra/app contract (``docs/contract.md``), not from names or
labels the infra code happens to choose: a pod is a Redis client if a container sets
``REDIS_HOST``; the worker is what a ScaledObject/ScaledJob scales; the cache API sets
``DATASET_DIR``; the producer sets ``CELERY_QUEUE`` and is not the worker. In-cluster
Redis is what the Service named by ``REDIS_HOST`` selects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import manifests as m
from .netpol import Cluster, Endpoint, is_select_all

TOKEN_REASON_ANNOTATION = "redis-keda-platform/automount-service-account-token-reason"
SECRET_ENV_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE_KEY|ACCESS_KEY|API_KEY|(^|_)AUTH($|_)", re.I)
APP_IMAGE_MARK = "redis-keda-platform/"
CACHE_API_PORT = 8000
DNS_PORT = 53
PULL_POLICIES = {"Always", "IfNotPresent", "Never"}
KUBE_DNS = Endpoint("kube-dns", "kube-system", {"k8s-app": "kube-dns"})


@dataclass(frozen=True)
class Violation:
    obj: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.obj}: [{self.rule}] {self.detail}"


# --------------------------------------------------------------------------- pods


def _sc(d: dict[str, Any] | None) -> dict[str, Any]:
    return (d or {}).get("securityContext") or {}


def _effective(pod_sc: dict[str, Any], c_sc: dict[str, Any], key: str) -> Any:
    return c_sc[key] if key in c_sc else pod_sc.get(key)


def image_problem(image: Any) -> str | None:
    """Why an image reference is not pinned, or ``None`` if it is."""
    if not isinstance(image, str) or not image.strip():
        return "image is empty"
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {image!r} has no tag (pin it by tag or digest)"
    if last.rsplit(":", 1)[1] in ("", "latest"):
        return f"image {image!r} uses the 'latest' tag"
    return None


def _service_account_token_ok(pt: m.PodTemplate, objects: list[dict[str, Any]]) -> bool:
    spec = pt.spec
    if spec.get("automountServiceAccountToken") is False:
        return True
    if "automountServiceAccountToken" not in spec:
        sa_name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        sa = m.find(objects, "ServiceAccount", pt.namespace, sa_name)
        if sa is not None and sa.get("automountServiceAccountToken") is False:
            return True
    reason = m.annotations(pt.owner).get(TOKEN_REASON_ANNOTATION) or (
        (pt.template.get("metadata") or {}).get("annotations") or {}
    ).get(TOKEN_REASON_ANNOTATION)
    return bool(reason and reason.strip())


def _is_redis_image(image: Any) -> bool:
    name = str(image or "").rsplit("/", 1)[-1].split("@")[0].split(":")[0]
    return name in ("redis", "redis-stack-server", "valkey")


def _writable_dirs(container: dict[str, Any]) -> list[str]:
    """Directories a process of ours must be able to write (root FS is read-only)."""
    image = str(container.get("image", ""))
    if APP_IMAGE_MARK in image:
        return ["/tmp"]
    if _is_redis_image(image):
        # `--dir X` may sit in its own argv entries or inside a `sh -c "..."` string.
        line = " ".join(str(a) for a in (container.get("command") or []) + (container.get("args") or []))
        match = re.search(r"--dir[ =]+[\"']?([^\s\"';]+)", line)
        return [match.group(1) if match else container.get("workingDir") or "/data"]
    return []


def check_pods(objects: list[dict[str, Any]]) -> list[Violation]:
    """Every container of every pod template: the locked-down pod rules."""
    out: list[Violation] = []
    for pt in m.pod_templates(objects):
        spec = pt.spec
        pod_sc = _sc(spec)

        def v(rule: str, detail: str, where: str = pt.where) -> None:
            out.append(Violation(where, rule, detail))

        if not spec.get("containers"):
            v("pod.containers", "pod template has no containers")
        if not _service_account_token_ok(pt, objects):
            v(
                "pod.serviceAccountToken",
                "automountServiceAccountToken must be false (pod spec or its ServiceAccount), "
                f"or the object needs a {TOKEN_REASON_ANNOTATION} annotation saying why",
            )
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(host):
                v("pod.hostNamespaces", f"{host} is true")
        volumes = {vol.get("name"): vol for vol in spec.get("volumes") or []}
        for vol in volumes.values():
            if "hostPath" in vol:
                v("pod.hostPath", f"volume {vol.get('name')!r} is a hostPath")
        for field, c in pt.containers():
            cname = f"{field}[{c.get('name')}]"
            c_sc = _sc(c)
            if _effective(pod_sc, c_sc, "runAsNonRoot") is not True:
                v("pod.runAsNonRoot", f"{cname}: runAsNonRoot is not true (pod or container securityContext)")
            if _effective(pod_sc, c_sc, "runAsUser") == 0:
                v("pod.runAsNonRoot", f"{cname}: runAsUser is 0")
            if c_sc.get("readOnlyRootFilesystem") is not True:
                v("pod.readOnlyRootFilesystem", f"{cname}: securityContext.readOnlyRootFilesystem is not true")
            caps = c_sc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []):
                v("pod.capabilities", f"{cname}: capabilities.drop does not contain ALL")
            if caps.get("add"):
                v("pod.capabilities", f"{cname}: capabilities.add {caps['add']!r}")
            if c_sc.get("allowPrivilegeEscalation") is not False:
                v("pod.allowPrivilegeEscalation", f"{cname}: allowPrivilegeEscalation is not false")
            if c_sc.get("privileged"):
                v("pod.privileged", f"{cname}: privileged is true")
            seccomp = (c_sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
            if seccomp != "RuntimeDefault":
                v("pod.seccomp", f"{cname}: seccompProfile.type is {seccomp!r}, not RuntimeDefault")
            res = c.get("resources") or {}
            for kind in ("requests", "limits"):
                missing = [r for r in ("cpu", "memory") if r not in (res.get(kind) or {})]
                if missing:
                    v("pod.resources", f"{cname}: resources.{kind} lacks {', '.join(missing)}")
            if pt.long_running and field == "containers":
                for probe in ("livenessProbe", "readinessProbe"):
                    if not c.get(probe):
                        v("pod.probes", f"{cname}: no {probe}")
            problem = image_problem(c.get("image"))
            if problem:
                v("pod.image", f"{cname}: {problem}")
            if c.get("imagePullPolicy") not in PULL_POLICIES:
                v("pod.imagePullPolicy", f"{cname}: imagePullPolicy not set (got {c.get('imagePullPolicy')!r})")
            mounts = {vm.get("mountPath"): vm for vm in c.get("volumeMounts") or []}
            for directory in _writable_dirs(c):
                vm = mounts.get(directory)
                vol = volumes.get(vm.get("name")) if vm else None
                writable = vol is not None and not vm.get("readOnly") and (
                    "emptyDir" in vol or "persistentVolumeClaim" in vol or "ephemeral" in vol
                )
                if not writable and not (pt.owner.get("kind") == "StatefulSet" and vm and _is_claim(pt.owner, vm.get("name"))):
                    v(
                        "pod.writableDirs",
                        f"{cname}: read-only root filesystem but {directory} is not a writable "
                        "emptyDir/PVC mount",
                    )
    return out


def _is_claim(statefulset: dict[str, Any], volume_name: str | None) -> bool:
    claims = (statefulset.get("spec") or {}).get("volumeClaimTemplates") or []
    return any((c.get("metadata") or {}).get("name") == volume_name for c in claims)


# --------------------------------------------------------------------------- secrets


_LITERAL_PASSWORD_FLAG = re.compile(r"--(requirepass|masterauth)(?:[ =]|$)")


def _secret_file_problem(pt: m.PodTemplate, container: dict[str, Any], path: str, secrets: dict) -> str | None:
    """Why ``path`` (a ``*_FILE`` variable's value) is not a key of a rendered Secret mounted
    read-only by the container, or None."""
    volumes = {v.get("name"): v for v in pt.spec.get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        directory = str(mount.get("mountPath", "")).rstrip("/") + "/"
        if not path.startswith(directory):
            continue
        source = (volumes.get(mount.get("name")) or {}).get("secret")
        if source is None:
            return f"points into volume {mount.get('name')!r}, which is not a Secret"
        if not mount.get("readOnly"):
            return f"points into Secret volume {mount.get('name')!r}, mounted writable"
        secret = secrets.get((pt.namespace, source.get("secretName")))
        if secret is None:
            return f"reads Secret {source.get('secretName')!r}, which is not rendered in {pt.namespace}"
        name = path[len(directory):]
        items = source.get("items")
        keys = [i.get("key") for i in items if i.get("path") == name] if items else [name]
        if not keys or keys[0] not in m.secret_keys(secret):
            return f"reads a key that Secret {source.get('secretName')!r} does not have"
        return None
    return "is a literal value in no mounted Secret; use valueFrom.secretKeyRef or a Secret volume"


def check_secrets(objects: list[dict[str, Any]]) -> list[Violation]:
    """The Redis password only in a Secret: pods via secretKeyRef, KEDA via a TriggerAuthentication."""
    out: list[Violation] = []
    secrets = {(m.namespace(s), m.name(s)): s for s in m.by_kind(objects, "Secret")}
    for pt in m.pod_templates(objects):
        for field, c in pt.containers():
            cname = f"{field}[{c.get('name')}]"
            for env in c.get("env") or []:
                env_name = str(env.get("name", ""))
                value_from = env.get("valueFrom") or {}
                if SECRET_ENV_NAME.search(env_name) and env_name.endswith("_FILE") and "value" in env:
                    # A path, not the secret: it must be a key of a Secret the container mounts.
                    problem = _secret_file_problem(pt, c, str(env["value"]), secrets)
                    if problem:
                        out.append(Violation(pt.where, "secrets.envLiteral", f"{cname}: env {env_name} {problem}"))
                elif SECRET_ENV_NAME.search(env_name):
                    if "value" in env:
                        out.append(Violation(pt.where, "secrets.envLiteral", f"{cname}: env {env_name} is a literal value; use valueFrom.secretKeyRef"))
                    elif "secretKeyRef" not in value_from:
                        out.append(Violation(pt.where, "secrets.envLiteral", f"{cname}: env {env_name} does not come from a Secret (secretKeyRef)"))
                ref = value_from.get("secretKeyRef")
                if ref:
                    secret = secrets.get((pt.namespace, ref.get("name")))
                    if secret is None and not ref.get("optional"):
                        out.append(Violation(pt.where, "secrets.reference", f"{cname}: env {env_name} reads Secret {ref.get('name')!r}, which is not rendered in {pt.namespace}"))
                    elif secret is not None and ref.get("key") not in m.secret_keys(secret):
                        out.append(Violation(pt.where, "secrets.reference", f"{cname}: env {env_name} reads key {ref.get('key')!r} that Secret {ref.get('name')!r} does not have"))
            for env_from in c.get("envFrom") or []:
                if "configMapRef" in env_from:
                    cm = m.find(objects, "ConfigMap", pt.namespace, (env_from["configMapRef"] or {}).get("name"))
                    for key in ((cm or {}).get("data") or {}):
                        if SECRET_ENV_NAME.search(key):
                            out.append(Violation(pt.where, "secrets.envLiteral", f"{cname}: env {key} comes from a ConfigMap"))
            args = " ".join(str(a) for a in (c.get("command") or []) + (c.get("args") or []))
            if _is_redis_image(c.get("image")) and "requirepass" not in args:
                out.append(Violation(pt.where, "secrets.redisAuth", f"{cname}: Redis server without requirepass (anyone reaching the port is in)"))
            for match in _LITERAL_PASSWORD_FLAG.finditer(args):
                rest = args[match.end():].lstrip().split(" ", 1)[0]
                if not rest.startswith(("$(", "$", '"$')):
                    out.append(Violation(pt.where, "secrets.commandLiteral", f"{cname}: --{match.group(1)} takes a literal, not an env var from a Secret"))
    for cm in m.by_kind(objects, "ConfigMap"):
        for key in (cm.get("data") or {}):
            if SECRET_ENV_NAME.search(key):
                out.append(Violation(m.ref(cm), "secrets.configMap", f"key {key!r} looks secret; keep it in a Secret"))
    out += _check_trigger_auth(objects, secrets)
    return out


def _check_trigger_auth(objects: list[dict[str, Any]], secrets: dict) -> list[Violation]:
    out: list[Violation] = []
    for obj in objects:
        if obj.get("kind") not in ("ScaledObject", "ScaledJob"):
            continue
        for i, trig in enumerate((obj.get("spec") or {}).get("triggers") or []):
            if not str(trig.get("type", "")).startswith("redis"):
                continue
            where = f"{m.ref(obj)} trigger[{i}]"
            auth_ref = trig.get("authenticationRef") or {}
            if not auth_ref.get("name"):
                out.append(Violation(where, "secrets.triggerAuth", "redis trigger without authenticationRef: KEDA must read the password through a TriggerAuthentication"))
                continue
            kind = auth_ref.get("kind", "TriggerAuthentication")
            auth = m.find(objects, kind, None if kind.startswith("Cluster") else m.namespace(obj), auth_ref["name"])
            if auth is None:
                out.append(Violation(where, "secrets.triggerAuth", f"{kind} {auth_ref['name']!r} is not rendered"))
                continue
            spec = auth.get("spec") or {}
            targets = {t.get("parameter"): t for t in spec.get("secretTargetRef") or []}
            if "password" not in targets:
                out.append(Violation(m.ref(auth), "secrets.triggerAuth", "no secretTargetRef for parameter 'password'"))
            for param in ("password",):
                if param in {e.get("parameter") for e in spec.get("env") or []}:
                    out.append(Violation(m.ref(auth), "secrets.triggerAuth", f"{param!r} comes from a container env, not a secretTargetRef"))
            auth_ns = m.namespace(auth) if not kind.startswith("Cluster") else None
            for t in targets.values():
                secret = secrets.get((auth_ns or m.namespace(obj), t.get("name")))
                if secret is None:
                    out.append(Violation(m.ref(auth), "secrets.reference", f"secretTargetRef {t.get('parameter')!r} reads Secret {t.get('name')!r}, which is not rendered"))
                elif t.get("key") not in m.secret_keys(secret):
                    out.append(Violation(m.ref(auth), "secrets.reference", f"secretTargetRef {t.get('parameter')!r} reads key {t.get('key')!r} that Secret {t.get('name')!r} does not have"))
    return out


# --------------------------------------------------------------------------- namespaces, services


def check_namespaces(objects: list[dict[str, Any]]) -> list[Violation]:
    """Namespaced objects say where they live, and it is not ``default``."""
    out = []
    for obj in objects:
        if obj.get("kind") in m.CLUSTER_SCOPED_KINDS:
            continue
        ns = m.namespace(obj)
        if not ns or ns == "default":
            out.append(Violation(m.ref(obj), "namespace.explicit", f"namespace is {ns!r}; put it in the app namespace"))
    return out


def check_services(objects: list[dict[str, Any]], allowed_types: Iterable[str] = ("ClusterIP",)) -> list[Violation]:
    """No NodePort/LoadBalancer (or externalIPs) unless the stack config asks for that type."""
    allowed = set(allowed_types)
    out = []
    for svc in m.by_kind(objects, "Service"):
        spec = svc.get("spec") or {}
        svc_type = spec.get("type", "ClusterIP")
        if svc_type not in allowed:
            out.append(Violation(m.ref(svc), "service.type", f"type {svc_type} exposes the service outside the cluster (allowed here: {sorted(allowed)})"))
        if spec.get("externalIPs"):
            out.append(Violation(m.ref(svc), "service.type", "externalIPs set"))
        if svc_type not in ("NodePort", "LoadBalancer") and any("nodePort" in p for p in spec.get("ports") or []):
            out.append(Violation(m.ref(svc), "service.type", "nodePort set on a non-NodePort service"))
    return out


# --------------------------------------------------------------------------- network policy


@dataclass
class Roles:
    """Pods by role, as network endpoints (see module docstring)."""

    worker: list[Endpoint]
    producer: list[Endpoint]
    cache_api: list[Endpoint]
    redis: list[Endpoint]
    all_pods: list[Endpoint]
    redis_port: int | None
    redis_external: bool
    app_namespaces: set[str]
    problems: list[str]


def _endpoint(pt: m.PodTemplate) -> Endpoint:
    ports = {}
    for _, c in pt.containers(include_init=False):
        for p in c.get("ports") or []:
            if p.get("name") and p.get("containerPort"):
                ports[p["name"]] = int(p["containerPort"])
    return Endpoint(m.ref(pt.owner), pt.namespace, dict(pt.labels), ports)


def _env_literal(pt: m.PodTemplate, var: str) -> str | None:
    for _, c in pt.containers(include_init=False):
        env = m.container_env(c).get(var)
        if env and "value" in env:
            return str(env["value"])
    return None


def _sets_env(pt: m.PodTemplate, var: str) -> bool:
    return any(var in m.container_env(c) for _, c in pt.containers(include_init=False))


def find_roles(objects: list[dict[str, Any]]) -> Roles:
    templates = m.pod_templates(objects)
    problems: list[str] = []
    worker_refs = set()
    for obj in objects:
        if obj.get("kind") == "ScaledJob":
            worker_refs.add(m.ref(obj))
        elif obj.get("kind") == "ScaledObject":
            target = (obj.get("spec") or {}).get("scaleTargetRef") or {}
            worker_refs.add(f"{target.get('kind', 'Deployment')} {m.namespace(obj)}/{target.get('name')}")
    clients = [pt for pt in templates if _sets_env(pt, "REDIS_HOST")]
    worker = [_endpoint(pt) for pt in clients if m.ref(pt.owner) in worker_refs]
    cache_api = [_endpoint(pt) for pt in clients if _sets_env(pt, "DATASET_DIR")]
    producer = [
        _endpoint(pt)
        for pt in clients
        if _sets_env(pt, "CELERY_QUEUE") and m.ref(pt.owner) not in worker_refs and not _sets_env(pt, "DATASET_DIR")
    ]
    redis: list[Endpoint] = []
    redis_port: int | None = None
    redis_external = False
    hosts = {_env_literal(pt, "REDIS_HOST") for pt in clients} - {None}
    ports = {_env_literal(pt, "REDIS_PORT") for pt in clients} - {None}
    if len(hosts) != 1 or len(ports) != 1:
        if clients:
            problems.append(f"cannot tell the Redis endpoint: REDIS_HOST values {sorted(hosts)}, REDIS_PORT values {sorted(ports)}")
    else:
        host, port = hosts.pop(), ports.pop()
        redis_port = int(port) if port.isdigit() else None
        labels = host.split(".")
        client_ns = next((pt.namespace for pt in clients), None)
        svc_ns = labels[1] if len(labels) > 1 else client_ns
        svc = m.find(objects, "Service", svc_ns, labels[0])
        if svc is None:
            redis_external = True
        else:
            selector = (svc.get("spec") or {}).get("selector") or {}
            for pt in templates:
                if pt.namespace == m.namespace(svc) and selector and all(pt.labels.get(k) == v for k, v in selector.items()):
                    redis.append(_endpoint(pt))
            for p in (svc.get("spec") or {}).get("ports") or []:
                if redis_port is not None and int(p.get("port", -1)) == redis_port:
                    target = p.get("targetPort", p.get("port"))
                    if isinstance(target, int) or str(target).isdigit():
                        redis_port = int(target)
                    elif redis:
                        redis_port = redis[0].named_ports.get(target, redis_port)
            if not redis:
                problems.append(f"Service {m.ref(svc)} (REDIS_HOST={host}) selects no rendered pod")
    return Roles(
        worker, producer, cache_api, redis, [_endpoint(pt) for pt in templates], redis_port, redis_external,
        {pt.namespace for pt in templates if pt.namespace}, problems,
    )


#: Labels of KEDA's operator pod for synthetic fixtures (tests/infra/test_validators.py);
#: the rendered stacks pass the labels the chart really gives it (tests/infra/test_security.py
#: takes them from the helm render and checks these are among them).
DEFAULT_KEDA_LABELS = {"app": "keda-operator", "app.kubernetes.io/name": "keda-operator"}


def check_network_policies(objects: list[dict[str, Any]], keda_namespace: str = "keda",
                           keda_labels: dict[str, str] | None = None) -> list[Violation]:
    """Default deny, DNS egress, Redis only from its clients (+ KEDA), cache API on its port."""
    policies = m.by_kind(objects, "NetworkPolicy")
    ns_labels = {m.name(ns): (ns.get("metadata") or {}).get("labels") or {} for ns in m.by_kind(objects, "Namespace")}
    cluster = Cluster(policies, ns_labels)
    roles = find_roles(objects)
    out: list[Violation] = []

    def v(obj: str, rule: str, detail: str) -> None:
        out.append(Violation(obj, rule, detail))

    for problem in roles.problems:
        v("network", "netpol.roles", problem)
    for role, pods in (("worker", roles.worker), ("producer", roles.producer), ("cache API", roles.cache_api)):
        if not pods:
            v("network", "netpol.roles", f"no {role} pod found (by the env contract)")

    # default deny per app namespace
    for ns in sorted(roles.app_namespaces):
        deny = [
            p for p in policies
            if m.namespace(p) == ns
            and is_select_all((p.get("spec") or {}).get("podSelector"))
            and {"Ingress", "Egress"} <= set((p.get("spec") or {}).get("policyTypes") or [])
            and not (p.get("spec") or {}).get("ingress")
            and not (p.get("spec") or {}).get("egress")
        ]
        if not deny:
            v(f"namespace {ns}", "netpol.defaultDeny", "no default-deny NetworkPolicy (podSelector {}, policyTypes [Ingress, Egress], no rules)")
        stranger = Endpoint("a pod with no role", ns, {"test.invalid/stranger": "yes"})
        outsider = Endpoint("a pod in another namespace", "other-ns", {"test.invalid/outsider": "yes"})
        if cluster.ingress_allowed(outsider, stranger, 8080):
            v(f"namespace {ns}", "netpol.defaultDeny", "an unlabelled pod accepts ingress from another namespace")
        if cluster.egress_allowed(stranger, outsider, 443):
            v(f"namespace {ns}", "netpol.defaultDeny", "an unlabelled pod may open egress to another namespace")

    # DNS for every pod of ours
    for pod in roles.all_pods:
        for proto in ("UDP", "TCP"):
            if not cluster.egress_allowed(pod, KUBE_DNS, DNS_PORT, proto):
                v(pod.name, "netpol.dns", f"egress to kube-dns (kube-system, k8s-app=kube-dns) on {proto} 53 is blocked")

    clients = [("worker", p) for p in roles.worker] + [("producer", p) for p in roles.producer] + [("cache API", p) for p in roles.cache_api]
    port = roles.redis_port
    if roles.redis and port is not None:
        keda = Endpoint("KEDA operator", keda_namespace, dict(DEFAULT_KEDA_LABELS if keda_labels is None else keda_labels))
        for redis in roles.redis:
            for role, pod in clients:
                if not cluster.allowed(pod, redis, port):
                    v(pod.name, "netpol.redis", f"{role} cannot reach Redis ({redis.name}) on {port}")
                if cluster.ingress_allowed(pod, redis, port + 1):
                    v(redis.name, "netpol.redis", f"Redis accepts {role} traffic on port {port + 1}, not only {port}")
            if not cluster.ingress_allowed(keda, redis, port):
                v(redis.name, "netpol.redis", f"KEDA's operator (namespace {keda_namespace}) cannot reach Redis on {port}")
            for ns in sorted(roles.app_namespaces):
                for intruder in (
                    Endpoint("a pod with no role", ns, {"test.invalid/stranger": "yes"}),
                    Endpoint("a pod in another namespace", "other-ns", {}),
                ):
                    if cluster.ingress_allowed(intruder, redis, port):
                        v(redis.name, "netpol.redis", f"Redis accepts ingress from {intruder.name} ({intruder.namespace})")
    elif roles.redis_external and port is not None:
        azure_redis = Endpoint("the external Redis", external=True)
        anywhere = Endpoint("an arbitrary public address", external=True, ip="203.0.113.7")
        for role, pod in clients:
            if not cluster.egress_allowed(pod, azure_redis, port):
                v(pod.name, "netpol.redis", f"{role} has no egress to the external Redis on {port}")
            if cluster.egress_allowed(pod, anywhere, port):
                v(pod.name, "netpol.redis", f"{role} may reach any address on {port}: narrow the egress to the "
                  "Redis private endpoint's subnet")
    elif clients:
        v("network", "netpol.redis", "Redis endpoint/port not found: cannot check who reaches it")

    for api in roles.cache_api:
        sources = [
            Endpoint("a pod with no role", api.namespace, {"test.invalid/stranger": "yes"}),
            Endpoint("a pod in another namespace", "other-ns", {}),
        ]
        # A caller: any pod (cacheApiCallers: cluster), or one labelled as a client (labelled).
        caller = Endpoint("a labelled caller", "other-ns", {"redis-keda-platform/cache-api-client": "true"})
        if not any(cluster.ingress_allowed(s, api, CACHE_API_PORT) for s in [*sources, caller]):
            v(api.name, "netpol.cacheApi", f"the cache API accepts no ingress on port {CACHE_API_PORT}")
        for s in sources:
            for other_port in (6379, 9000):
                if cluster.ingress_allowed(s, api, other_port):
                    v(api.name, "netpol.cacheApi", f"the cache API accepts ingress from {s.name} on port {other_port}, not only {CACHE_API_PORT}")
    return out


# --------------------------------------------------------------------------- Azure, outputs


def _props(resource: dict[str, Any]) -> dict[str, Any]:
    return resource.get("properties") or resource.get("inputs") or {}


MANAGED_REDIS_CLUSTER = "azure-native:redisenterprise:RedisEnterprise"
MANAGED_REDIS_DATABASE = "azure-native:redisenterprise:Database"
# Azure Managed Redis database settings a Celery broker + KEDA need (rule ids below).
_MANAGED_DB_RULES = {
    "clientProtocol": ("Encrypted", "azure.managedRedis.tls"),
    "clusteringPolicy": ("NoCluster", "azure.managedRedis.clustering"),
    "evictionPolicy": ("NoEviction", "azure.managedRedis.eviction"),
    "accessKeysAuthentication": ("Enabled", "azure.managedRedis.accessKeys"),
}


def check_azure(resources: list[dict[str, Any]]) -> list[Violation]:
    """Azure Redis (either service) TLS-only; AKS with RBAC and a network policy engine; no admin creds."""
    out: list[Violation] = []
    redis = [r for r in resources if str(r.get("type", "")).endswith(":Redis") and ":redis:" in str(r.get("type", ""))]
    aks = [r for r in resources if str(r.get("type", "")).endswith(":ManagedCluster")]
    for r in resources:
        where, p = f"{r.get('type')} {r.get('name')}", _props(r)
        if r.get("type") == MANAGED_REDIS_CLUSTER:
            if p.get("minimumTlsVersion") != "1.2":
                out.append(Violation(where, "azure.managedRedis.tls", f"minimumTlsVersion must be '1.2', got {p.get('minimumTlsVersion')!r}"))
            if p.get("publicNetworkAccess") not in ("Enabled", "Disabled"):
                out.append(Violation(where, "azure.redis.publicNetworkAccess", f"publicNetworkAccess must be set explicitly from config, got {p.get('publicNetworkAccess')!r}"))
        elif r.get("type") == MANAGED_REDIS_DATABASE:
            for key, (expected, rule) in _MANAGED_DB_RULES.items():
                if p.get(key) != expected:
                    out.append(Violation(where, rule, f"{key} must be {expected!r}, got {p.get(key)!r}"))
    for r in redis:
        where, p = f"{r.get('type')} {r.get('name')}", _props(r)
        if p.get("enableNonSslPort") is not False:
            out.append(Violation(where, "azure.redis.nonSslPort", f"enableNonSslPort must be false, got {p.get('enableNonSslPort')!r}"))
        if p.get("minimumTlsVersion") != "1.2":
            out.append(Violation(where, "azure.redis.tls", f"minimumTlsVersion must be '1.2', got {p.get('minimumTlsVersion')!r}"))
        if p.get("publicNetworkAccess") not in ("Enabled", "Disabled"):
            out.append(Violation(where, "azure.redis.publicNetworkAccess", f"publicNetworkAccess must be set explicitly from config, got {p.get('publicNetworkAccess')!r}"))
    for r in aks:
        where, p = f"{r.get('type')} {r.get('name')}", _props(r)
        if p.get("enableRBAC") is not True:
            out.append(Violation(where, "azure.aks.rbac", f"enableRBAC must be true, got {p.get('enableRBAC')!r}"))
        policy = (p.get("networkProfile") or {}).get("networkPolicy")
        if policy not in ("azure", "calico", "cilium"):
            out.append(Violation(where, "azure.aks.networkPolicy", f"networkProfile.networkPolicy must name an engine, got {policy!r}"))
    for r in resources:
        type_ = str(r.get("type", ""))
        if "admincredentials" in type_.lower() or ("credential" in type_.lower() and "admin" in str(r.get("name", "")).lower()):
            out.append(Violation(f"{r.get('type')} {r.get('name')}", "azure.aks.adminCredentials", "admin credentials are read"))
    return out


KEDA_CHART_VERSION = "2.20.2"
KEDA_COMPONENTS = ("operator", "metricServer", "webhooks")


def check_keda_release(other_resources: list[dict[str, Any]]) -> list[Violation]:
    """The KEDA Helm release: pinned chart, and its three pods locked down through values.

    The chart's pods are not in the rendered manifests (Helm renders them in the
    cluster), so their hardening is checked on the release's ``values``.
    """
    releases = [
        r for r in other_resources
        if "helm" in str(r.get("type", "")).lower() and (_props(r).get("chart") == "keda" or "keda" in str(_props(r).get("chart", "")))
    ]
    if len(releases) != 1:
        return [Violation("KEDA release", "keda.release", f"expected one KEDA Helm release, found {len(releases)}")]
    r = releases[0]
    where, p = f"{r.get('type')} {r.get('name')}", _props(r)
    out = []
    if p.get("version") != KEDA_CHART_VERSION:
        out.append(Violation(where, "keda.release", f"chart version {p.get('version')!r}, expected {KEDA_CHART_VERSION!r}"))
    values = p.get("values") or {}
    for comp in KEDA_COMPONENTS:
        c_sc = ((values.get("securityContext") or {}).get(comp)) or {}
        pod_sc = ((values.get("podSecurityContext") or {}).get(comp)) or {}
        res = ((values.get("resources") or {}).get(comp)) or {}
        problems = []
        if _effective(pod_sc, c_sc, "runAsNonRoot") is not True:
            problems.append("runAsNonRoot")
        if c_sc.get("readOnlyRootFilesystem") is not True:
            problems.append("readOnlyRootFilesystem")
        if c_sc.get("allowPrivilegeEscalation") is not False:
            problems.append("allowPrivilegeEscalation false")
        if "ALL" not in ((c_sc.get("capabilities") or {}).get("drop") or []):
            problems.append("capabilities drop ALL")
        if (c_sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.append("seccomp RuntimeDefault")
        if not all(k in (res.get(kind) or {}) for kind in ("requests", "limits") for k in ("cpu", "memory")):
            problems.append("cpu/memory requests and limits")
        if problems:
            out.append(Violation(where, "keda.release", f"values for {comp} lack: {', '.join(problems)}"))
    return out


def check_outputs(outputs: dict[str, Any], secret_names: Iterable[str]) -> list[Violation]:
    """Kubeconfig-like and password-like stack outputs must be secret; no admin kubeconfig."""
    secret = set(secret_names)
    out = []
    for key in outputs:
        low = key.lower()
        if "admin" in low and ("kubeconfig" in low or "credential" in low):
            out.append(Violation(f"output {key}", "outputs.adminCredentials", "admin credentials exported"))
        if any(s in low for s in ("kubeconfig", "password", "secret", "key", "token", "connectionstring")) and key not in secret:
            out.append(Violation(f"output {key}", "outputs.secret", "looks secret but is not marked secret"))
    return out


# --------------------------------------------------------------------------- secret values


def _strings(value: Any, path: tuple = ()) -> Iterable[tuple[tuple, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, path + (i,))


def _dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path) or "<root>"


def check_redaction_markers(objects: list[dict[str, Any]], markers: Iterable[str]) -> list[Violation]:
    """No secret (shown redacted by the renderer) inside a non-Secret Kubernetes object.

    The renderer replaces secret values with a marker; a marker outside a Secret's
    ``data``/``stringData`` means a secret flowed into a plain field (an env literal,
    a ConfigMap, trigger metadata...), where the cluster stores it in clear.
    """
    markers = tuple(markers)
    out = []
    for obj in objects:
        for path, text in _strings(obj):
            if obj.get("kind") == "Secret" and path[:1] in (("data",), ("stringData",)):
                continue
            if any(mk in text for mk in markers):
                out.append(Violation(m.ref(obj), "secrets.inPlainField", f"{_dotted(path)} holds a secret value"))
    return out


def check_secret_values(resources: Iterable[Any], secret_values: Iterable[str]) -> list[Violation]:
    """Every secret value sits at a path the program marked secret.

    ``resources``: recorded registrations with ``type``, ``name``, ``inputs`` (secrets
    unwrapped) and ``secret_paths``. A known secret value (the mocks' password, access
    keys, kubeconfig) at any other path is an unmarked secret. In a Kubernetes object
    other than a Secret it is a violation even when marked: the cluster stores it in clear.
    """
    needles = [s for s in secret_values if s]
    out = []
    for r in resources:
        marked = [tuple(p) for p in r.secret_paths]
        is_k8s = str(r.type).startswith("kubernetes:") and not str(r.type).startswith("kubernetes:helm")
        for path, text in _strings(r.inputs):
            if not any(n in text for n in needles):
                continue
            where = f"{r.type} {r.name}"
            if is_k8s and (r.inputs.get("kind") != "Secret" or path[:1] not in (("data",), ("stringData",))):
                out.append(Violation(where, "secrets.inPlainField", f"{_dotted(path)} holds a secret value outside a Secret's data"))
            elif not any(path[: len(p)] == p for p in marked):
                out.append(Violation(where, "secrets.unmarked", f"{_dotted(path)} holds a secret value that is not marked secret"))
    return out


def check_output_values(outputs: dict[str, Any], secret_outputs: Iterable[str], secret_values: Iterable[str]) -> list[Violation]:
    """A stack output holding a secret value must be marked secret."""
    marked = set(secret_outputs)
    needles = [s for s in secret_values if s]
    out = []
    for key, value in outputs.items():
        if key in marked:
            continue
        for path, text in _strings(value, (key,)):
            if any(n in text for n in needles):
                out.append(Violation(f"output {key}", "outputs.secret", f"{_dotted(path)} holds a secret value, not marked secret"))
    return out


def check_all(objects: list[dict[str, Any]], *, keda_namespace: str = "keda", service_types: Iterable[str] = ("ClusterIP",)) -> list[Violation]:
    return (
        check_pods(objects)
        + check_secrets(objects)
        + check_namespaces(objects)
        + check_services(objects, service_types)
        + check_network_policies(objects, keda_namespace)
    )
