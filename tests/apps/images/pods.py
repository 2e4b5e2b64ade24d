"""Our images' containers as the rendered manifests run them, run in each image's environment.

Derived, not listed: every container (in every pod template of every rendered stack variant)
whose image is one of ours becomes a ``ContainerRun``: its command/args, env, ports and
probes, deduplicated across variants. Running one:
1. the main process starts with the container's argv (``command`` + ``args``, else the
   image's CMD) and env, mapped to this machine (``resolve_env``);
2. every probe (startup, liveness, readiness) must pass within ``PROBE_DEADLINE``, polled
   as the kubelet does: an exec probe's command exits 0 inside the same container (image
   environment, env, /tmp), an httpGet probe's path answers 200, a tcpSocket probe connects;
3. every declared containerPort accepts a connection, and the main process is still up.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from tests.apps.images.flows import remap_ports
from tests.apps.images.image import Image, ImageError
from tests.apps.redis_server import RedisServer, free_port
from tests.infra.validation.manifests import pod_templates

PROBES = ("startupProbe", "livenessProbe", "readinessProbe")
PROBE_DEADLINE = 60.0
_REDIS_HOST = re.compile(r"REDIS(_\w+)?_HOST")
_REDIS_PORT = re.compile(r"REDIS(_\w+)?_PORT")
#: fieldRef paths and the value a pod on this machine would get.
_FIELD_REFS = {"metadata.name": "image-test-pod", "metadata.namespace": "image-test",
               "status.podIP": "127.0.0.1", "spec.nodeName": "image-test-node"}


@dataclass(frozen=True)
class ContainerRun:
    image: str
    where: tuple[str, ...]
    """Every place (variant, object, container) this same container appears."""
    container: dict[str, Any]
    namespace: str | None
    template_labels: dict[str, str] = dataclasses.field(default_factory=dict)
    """The pod template's labels (the first place it appears)."""
    service_account: str = ""
    """The pod's ServiceAccount."""

    @property
    def variant(self) -> str:
        """The first stack variant this container appears in."""
        return self.where[0].split()[0]

    @property
    def id(self) -> str:
        first = self.where[0]
        return f"{self.image.split('/')[-1]}:{first}" + (f"+{len(self.where) - 1}" if len(self.where) > 1 else "")

    @property
    def ports(self) -> dict[str, int]:
        return {str(p.get("name") or p["containerPort"]): int(p["containerPort"])
                for p in self.container.get("ports") or []}

    @property
    def probes(self) -> list[tuple[str, dict[str, Any]]]:
        return [(kind, self.container[kind]) for kind in PROBES if self.container.get(kind)]


def app_containers(rendered_variants: Iterable[tuple[str, list[dict[str, Any]]]], images: set[str]) -> list[ContainerRun]:
    """One ``ContainerRun`` per distinct container of ``images`` in the rendered objects."""
    seen: dict[str, ContainerRun] = {}
    for variant_id, objects in rendered_variants:
        for tpl in pod_templates(objects):
            for field, container in tpl.containers():
                if container.get("image") not in images:
                    continue
                key = json.dumps([container["image"], _runtime(container), tpl.namespace], sort_keys=True)
                where = f"{variant_id} {tpl.owner['kind']}/{tpl.owner['metadata']['name']} {field}/{container['name']}"
                if key in seen:
                    prev = seen[key]
                    seen[key] = ContainerRun(prev.image, prev.where + (where,), prev.container, prev.namespace,
                                             prev.template_labels, prev.service_account)
                else:
                    seen[key] = ContainerRun(container["image"], (where,), container, tpl.namespace,
                                             dict((tpl.template.get("metadata") or {}).get("labels") or {}),
                                             str(tpl.spec.get("serviceAccountName", "")))
    return list(seen.values())


def _runtime(container: dict[str, Any]) -> dict[str, Any]:
    """What decides how the container runs here: not its name or limits, and not the Redis
    endpoint values, which ``resolve_env`` maps to the local server whatever they are."""
    runtime = {k: v for k, v in container.items()
               if k not in ("name", "resources", "securityContext", "imagePullPolicy", "volumeMounts")}
    env = []
    for entry in container.get("env") or []:
        if _REDIS_HOST.fullmatch(entry["name"]) or _REDIS_PORT.fullmatch(entry["name"]) or entry["name"] in (
                "REDIS_TLS", "REDIS_PASSWORD", "REDIS_PASSWORD_FILE"):
            entry = {"name": entry["name"], "value": "<local redis-server>"}
        env.append(entry)
    return {**runtime, "env": env}


def resolve_env(run: ContainerRun, redis: RedisServer, ports: dict[int, int],
                objects: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """The container's env with what points at the cluster pointed at this machine:
    Redis endpoint variables (``REDIS_HOST``, ``REDIS_READ_PORT``, ...) at ``redis``, its
    TLS flag at the server's, a secretKeyRef'd ``REDIS_PASSWORD`` filled with the server's
    password (``REDIS_PASSWORD_FILE``: a local file holding it), a ``*_PORT`` equal to a declared containerPort at the local port standing in for
    it. Anything else that cannot be given a value here raises ``ImageError``."""
    if run.container.get("envFrom"):
        raise ImageError(f"image {run.image} ({run.id}): envFrom is not understood by the image tests")
    out: dict[str, str] = {}
    for entry in run.container.get("env") or []:
        name = entry["name"]
        source = entry.get("valueFrom")
        if source is None:
            value = str(entry.get("value", ""))
        elif "secretKeyRef" in source and name == "REDIS_PASSWORD":
            value = redis.password
        elif "configMapKeyRef" in source:
            value = _config_map_value(run, source["configMapKeyRef"], objects or [])
        elif "fieldRef" in source and source["fieldRef"].get("fieldPath") in _FIELD_REFS:
            value = _FIELD_REFS[source["fieldRef"]["fieldPath"]]
        else:
            raise ImageError(f"image {run.image} ({run.id}): no local value for env {name} from {source}")
        if _REDIS_HOST.fullmatch(name):
            value = "127.0.0.1"
        elif _REDIS_PORT.fullmatch(name):
            value = str(redis.port)
        elif name == "REDIS_TLS":
            value = redis.env["REDIS_TLS"]
        elif name == "REDIS_PASSWORD_FILE":
            value = _password_file(run, value)
        elif name == "REDIS_CA_FILE":
            raise ImageError(f"image {run.image} ({run.id}): REDIS_CA_FILE is not mapped by the image tests")
        elif name.endswith("_PORT") and value.isdigit() and int(value) in ports:
            value = str(ports[int(value)])
        out[name] = value
    return out


def _password_file(run: ContainerRun, path: str) -> str:
    """``REDIS_PASSWORD_FILE`` must point into a volume the container mounts (the redis-auth
    Secret); ``run_container`` puts the server's password there, as the kubelet would."""
    mounts = [m["mountPath"].rstrip("/") + "/" for m in run.container.get("volumeMounts") or []]
    if not any(path.startswith(m) for m in mounts):
        raise ImageError(f"image {run.image} ({run.id}): REDIS_PASSWORD_FILE {path} is in no volume it mounts")
    return path


def mount_password(env: dict[str, str], image: Image, redis: RedisServer) -> None:
    """The mounted Secret's file, under the image's stand-in root (every test server has the
    same password, so parallel runs write the same bytes; atomically)."""
    if "REDIS_PASSWORD_FILE" not in env:
        return
    target = image.host_path(env["REDIS_PASSWORD_FILE"])
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.{os.getpid()}")
    staged.write_text(redis.password)
    os.replace(staged, target)


def _config_map_value(run: ContainerRun, ref: dict[str, Any], objects: list[dict[str, Any]]) -> str:
    for obj in objects:
        meta = obj.get("metadata") or {}
        if obj.get("kind") == "ConfigMap" and meta.get("name") == ref["name"] and meta.get("namespace") == run.namespace:
            return str((obj.get("data") or {})[ref["key"]])
    raise ImageError(f"image {run.image} ({run.id}): ConfigMap {ref['name']} not in the rendered manifests")


def argv_of(run: ContainerRun, image: Image) -> list[str]:
    """What the container runs: ``command`` replaces the image's CMD (our images have no
    ENTRYPOINT); ``args`` alone replace CMD as well."""
    command, args = run.container.get("command"), run.container.get("args")
    if command:
        return [*command, *(args or [])]
    return list(args) if args else list(image.dockerfile.cmd)


#: Where the workload identity webhook projects the pod's federated token.
FEDERATED_TOKEN_FILE = "/var/run/secrets/azure/tokens/azure-identity-token"
#: How long a keyless container is watched staying live and not ready.
UNREADY_WATCH = 8.0


def keyless(env: dict[str, str]) -> bool:
    """The container signs in with an Entra token of its workload identity (aks, Azure Managed Redis)."""
    return env.get("REDIS_SIGN_IN") == "entra"


def webhook_env(run: ContainerRun, image: Image, objects: list[dict[str, Any]]) -> dict[str, str]:
    """What the workload identity webhook adds to a labelled pod: the ServiceAccount's client ID,
    a tenant, the projected token file (written here), and the authority, which here is a
    closed port on this machine: no token can come, and nothing leaves 127.0.0.1."""
    labels = run.template_labels
    if labels.get("azure.workload.identity/use") != "true":
        raise ImageError(f"image {run.image} ({run.id}): REDIS_SIGN_IN=entra in a pod without the workload "
                         "identity label: the webhook would inject nothing")
    sa_name = run.service_account
    accounts = [o for o in objects if o.get("kind") == "ServiceAccount" and o["metadata"]["name"] == sa_name]
    client_id = ((accounts[0]["metadata"].get("annotations") or {}) if accounts else {}).get(
        "azure.workload.identity/client-id")
    if not client_id:
        raise ImageError(f"image {run.image} ({run.id}): ServiceAccount {sa_name!r} has no client-id annotation")
    token = image.host_path(FEDERATED_TOKEN_FILE)
    token.parent.mkdir(parents=True, exist_ok=True)
    token.write_text("a-projected-service-account-token-of-the-image-tests")
    return {"AZURE_CLIENT_ID": str(client_id), "AZURE_TENANT_ID": "00000000-0000-0000-0000-00000000e1d0",
            "AZURE_FEDERATED_TOKEN_FILE": FEDERATED_TOKEN_FILE,
            "AZURE_AUTHORITY_HOST": f"https://127.0.0.1:{free_port()}/"}


def run_container(run: ContainerRun, image: Image, redis: RedisServer,
                  objects: list[dict[str, Any]] | None = None) -> list[str]:
    """Start the container's main process, pass every probe, check its ports. Returns what
    passed, one line each; raises ``ImageError`` naming the image and the container.

    A keyless container (``REDIS_SIGN_IN=entra``) gets no token here (``webhook_env``): it must
    stay live, and say why whenever it is not ready (``_stays_unready``)."""
    local = {port: free_port() for port in {*run.ports.values(), *image.dockerfile.expose}}
    env = resolve_env(run, redis, local, objects)
    if keyless(env):
        env.update(webhook_env(run, image, objects or []))
    mount_password(env, image, redis)
    argv = remap_ports(argv_of(run, image), local)
    label = f"container {run.id}"
    proc = image.start(argv, env, cwd=run.container.get("workingDir"), context=label)
    passed = []
    try:
        for kind, probe in run.probes:
            check = _probe_check(run, image, proc, env, probe, local)
            if kind == "readinessProbe" and keyless(env):  # after liveness has passed
                _stays_unready(proc, check, run)
                passed.append(f"{kind} {_describe(probe)}: up without a token, and saying why when not ready")
                continue
            try:
                proc.wait_for(check, PROBE_DEADLINE, f"{kind} passing", interval=0.5)
            except ImageError as exc:
                raise ImageError(f"{exc}\n--- last {kind} result ---\n{check.last}") from None
            passed.append(f"{kind} {_describe(probe)}")
        for name, port in run.ports.items():
            if not _connects(local[port]):
                raise image.fail(f"{label}: containerPort {port} ({name}) accepts no connection", proc.output())
            passed.append(f"port {port} ({name}) open")
        proc.require_alive(" after its probes passed")
    finally:
        proc.stop()
    return passed


def _stays_unready(proc, check: _Check, run: ContainerRun) -> None:
    """Without a token the container stays up for ``UNREADY_WATCH`` seconds (no crash loop), and
    whenever it is not ready it says why: no token, reason auth (its log or its probe's answer).
    A container that does not ask Redis before it works (the standby producer) may be ready."""
    deadline = time.monotonic() + UNREADY_WATCH
    unready = []
    while time.monotonic() < deadline:
        if not check():
            unready.append(check.last)
        proc.require_alive(" while it waited for a token")
        time.sleep(0.5)
    said = proc.output() + "\n".join(unready)
    if unready and not re.search(r"no Entra token for the workload identity|authentication failed", said):
        raise ImageError(f"container {run.id}: not ready, but never said why:\n{said[-2000:]}")


class _Check:
    """A probe as a predicate for ``Proc.wait_for``; keeps its last result for the failure."""

    def __init__(self, fn):
        self.fn, self.last = fn, ""

    def __call__(self) -> bool:
        ok, self.last = self.fn()
        return ok


def _probe_check(run: ContainerRun, image: Image, proc, env: dict[str, str], probe: dict[str, Any],
                 local: dict[int, int]) -> _Check:
    timeout = float(probe.get("timeoutSeconds", 1))
    if "exec" in probe:
        argv = probe["exec"]["command"]
        image.executable(argv[0])  # not installed: fail now, not after the deadline

        def exec_probe():
            try:
                out = image.run(argv, env, tmp=proc.tmp, timeout=timeout, cwd=run.container.get("workingDir"))
            except ImageError as exc:  # timed out: a failed probe, as for the kubelet
                return False, str(exc)
            output = out.stdout + out.stderr
            if out.returncode != 0 and re.search(r"\b(ModuleNotFoundError|ImportError)\b", output):
                raise image.fail(f"container {run.id}: probe `{' '.join(argv)}` cannot import", output)
            return out.returncode == 0, f"exit {out.returncode}: {output[-1500:]}"

        return _Check(exec_probe)
    if "httpGet" in probe:
        get = probe["httpGet"]
        if get.get("scheme", "HTTP") != "HTTP":
            raise ImageError(f"image {run.image} ({run.id}): httpGet scheme {get['scheme']} is not understood")
        port = local[_port_number(run, get["port"])]
        url = f"http://127.0.0.1:{port}{get.get('path', '/')}"

        def http_probe():
            try:
                response = httpx.get(url, timeout=max(timeout, 1.0))
            except httpx.HTTPError as exc:
                return False, f"GET {url}: {type(exc).__name__}"
            return response.status_code == 200, f"GET {url}: {response.status_code} {response.text[:300]}"

        return _Check(http_probe)
    if "tcpSocket" in probe:
        port = local[_port_number(run, probe["tcpSocket"]["port"])]
        return _Check(lambda: (_connects(port), f"connect 127.0.0.1:{port}"))
    raise ImageError(f"image {run.image} ({run.id}): probe {sorted(probe)} is not understood by the image tests")


def _port_number(run: ContainerRun, port: int | str) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    if port not in run.ports:
        raise ImageError(f"image {run.image} ({run.id}): probe port {port!r} is not a declared containerPort")
    return run.ports[port]


def _connects(port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _describe(probe: dict[str, Any]) -> str:
    if "exec" in probe:
        return "exec " + " ".join(probe["exec"]["command"])
    if "httpGet" in probe:
        return f"GET {probe['httpGet'].get('path', '/')}"
    return json.dumps(probe, sort_keys=True)
