"""Pod Security Standards, ``restricted`` profile (``latest``, which Kubernetes 1.31 and
1.36 enforce alike), as pure checks over a pod spec: what the API server's PodSecurity
admission refuses in a namespace labelled ``pod-security.kubernetes.io/enforce:
restricted``.

Written control by control from the standard (kubernetes.io, "Pod Security Standards";
the admission's own checks live in the Go module k8s.io/pod-security-admission, which
this machine cannot run): every baseline control, then the restricted ones. A pod that
breaks one is refused at creation; for a Deployment, the ReplicaSet then never gets a pod
and the rollout hangs (Helm's ``--wait``, Pulumi's await, time out).

``pod_violations(spec, metadata)`` returns ``[(control, detail)]``; empty means admitted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from . import manifests as m

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                      "projected", "secret"}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
_CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")


def _containers(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for field in _CONTAINER_FIELDS:
        for c in spec.get(field) or []:
            yield f"{field}[{c.get('name')}]", c


def _sc(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("securityContext") or {}


def pod_violations(spec: dict[str, Any], metadata: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """Every ``restricted`` control the pod breaks, as ``(control, detail)``."""
    out: list[tuple[str, str]] = []
    pod_sc = _sc(spec)
    annotations = (metadata or {}).get("annotations") or {}
    containers = list(_containers(spec))

    # --- baseline
    if (pod_sc.get("windowsOptions") or {}).get("hostProcess") or any(
            (_sc(c).get("windowsOptions") or {}).get("hostProcess") for _, c in containers):
        out.append(("hostProcess", "windowsOptions.hostProcess is true"))
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host):
            out.append(("hostNamespaces", f"{host} is true"))
    for where, c in containers:
        sc = _sc(c)
        if sc.get("privileged"):
            out.append(("privileged", f"{where}: privileged is true"))
        added = set((sc.get("capabilities") or {}).get("add") or [])
        if added - BASELINE_CAPABILITIES:
            out.append(("capabilities.baseline", f"{where}: adds {sorted(added - BASELINE_CAPABILITIES)}"))
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                out.append(("hostPorts", f"{where}: hostPort {port['hostPort']}"))
        if sc.get("procMount") not in (None, "Default"):
            out.append(("procMount", f"{where}: procMount {sc['procMount']}"))
    for vol in spec.get("volumes") or []:
        if "hostPath" in vol:
            out.append(("hostPathVolumes", f"volume {vol.get('name')!r} is a hostPath"))
    for key, value in annotations.items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
                value == "runtime/default" or str(value).startswith("localhost/")):
            out.append(("appArmor", f"annotation {key}={value}"))
    for where, sc in [("pod", pod_sc)] + [(w, _sc(c)) for w, c in containers]:
        apparmor = (sc.get("appArmorProfile") or {}).get("type")
        if apparmor not in (None, "RuntimeDefault", "Localhost"):
            out.append(("appArmor", f"{where}: appArmorProfile.type {apparmor}"))
        se = sc.get("seLinuxOptions") or {}
        if se.get("type", "") not in SELINUX_TYPES or se.get("user") or se.get("role"):
            out.append(("seLinux", f"{where}: seLinuxOptions {se}"))
        if (sc.get("seccompProfile") or {}).get("type") == "Unconfined":
            out.append(("seccomp.baseline", f"{where}: seccompProfile Unconfined"))
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            out.append(("sysctls", f"sysctl {sysctl.get('name')} is not in the safe set"))

    # --- restricted
    for vol in spec.get("volumes") or []:
        kinds = set(vol) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            out.append(("volumeTypes", f"volume {vol.get('name')!r} is {sorted(kinds - RESTRICTED_VOLUMES)}"))
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    for where, c in containers:
        sc = _sc(c)
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(("allowPrivilegeEscalation", f"{where}: allowPrivilegeEscalation is not false"))
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        if non_root is not True:
            out.append(("runAsNonRoot", f"{where}: runAsNonRoot is not true (pod or container)"))
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            out.append(("runAsUser", f"{where}: runAsUser is 0"))
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(("seccomp", f"{where}: seccompProfile.type is {seccomp!r}, not RuntimeDefault or Localhost"))
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(("capabilities", f"{where}: capabilities.drop does not contain ALL"))
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(("capabilities", f"{where}: adds {sorted(set(caps['add']) - {'NET_BIND_SERVICE'})}"))
    if pod_sc.get("runAsUser") == 0:
        out.append(("runAsUser", "pod: runAsUser is 0"))
    return out


def restricted_namespaces(objects: list[dict[str, Any]]) -> set[str]:
    """Namespaces the objects create with ``enforce: restricted``."""
    return {
        m.name(o) for o in m.by_kind(objects, "Namespace")
        if ((o.get("metadata") or {}).get("labels") or {}).get(ENFORCE_LABEL) == "restricted"
    }


def check_templates(templates: list[m.PodTemplate], namespaces: set[str]) -> list[str]:
    """``where: [control] detail`` for every pod template in a restricted namespace that the
    admission would refuse."""
    return [
        f"{pt.where}: [{control}] {detail}"
        for pt in templates if pt.namespace in namespaces
        for control, detail in pod_violations(pt.spec, pt.template.get("metadata"))
    ]
