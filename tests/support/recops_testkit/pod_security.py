"""A checker of the Kubernetes Pod Security Standard "restricted" profile, field by field
(https://kubernetes.io/docs/concepts/security/pod-security-standards/: the baseline
controls, then the restricted ones), over every pod template a set of objects holds,
including the head, worker and submitter pods inside a RayJob.

``hardening_problems`` adds what the project asks beyond the standard (issue 27): a
read-only root filesystem, emptyDirs with a size limit, ephemeral-storage requests and
limits, and no service-account token in pods that do not call the API.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Obj = dict[str, Any]

# Restricted: the only volume types allowed.
ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
# Fields of a pod spec that are not volumes' type keys.
_VOLUME_META = {"name"}


def pod_templates(obj: Obj) -> Iterator[tuple[str, Obj]]:
    """``(where, pod spec)`` of every pod ``obj`` would create."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    name = f"{kind}/{(obj.get('metadata') or {}).get('name')}"
    if kind == "Pod":
        yield name, spec
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        yield name, spec["template"]["spec"]
    elif kind == "CronJob":
        yield name, spec["jobTemplate"]["spec"]["template"]["spec"]
    elif kind == "RayJob":
        cluster = spec.get("rayClusterSpec") or {}
        yield f"{name} head", cluster["headGroupSpec"]["template"]["spec"]
        for group in cluster.get("workerGroupSpecs") or []:
            yield f"{name} workers {group.get('groupName')}", group["template"]["spec"]
        if spec.get("submissionMode", "K8sJobMode") == "K8sJobMode":
            submitter = spec.get("submitterPodTemplate")
            if submitter is None:
                # KubeRay's default submitter pod sets no security context.
                yield f"{name} submitter (KubeRay's default)", {"containers": [{"name": "x"}]}
            else:
                yield f"{name} submitter", submitter["spec"]


def _containers(pod: Obj) -> list[Obj]:
    return [
        *(pod.get("initContainers") or []),
        *(pod.get("containers") or []),
        *(pod.get("ephemeralContainers") or []),
    ]


def restricted_problems(pod: Obj) -> list[str]:
    """Every way ``pod`` (a pod spec) fails the "restricted" profile; empty when it passes."""
    problems: list[str] = []
    psc: Obj = pod.get("securityContext") or {}
    # Baseline: host namespaces, host paths, sysctls, pod-level SELinux and seccomp.
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(host):
            problems.append(f"{host} is true")
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - _VOLUME_META
        if not kinds <= ALLOWED_VOLUMES:
            problems.append(f"volume {volume['name']}: type {sorted(kinds)} is not allowed")
    for sysctl in psc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            problems.append(f"sysctl {sysctl.get('name')} is not safe")
    problems += _selinux("pod", psc)
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    if pod_seccomp == "Unconfined":
        problems.append("pod seccompProfile is Unconfined")
    if psc.get("runAsUser") == 0:
        problems.append("pod runAsUser is 0")
    containers = _containers(pod)
    if not containers:
        problems.append("no containers")
    for c in containers:
        where = f"container {c.get('name')}"
        sc: Obj = c.get("securityContext") or {}
        if sc.get("privileged"):
            problems.append(f"{where}: privileged")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"{where}: hostPort {port['hostPort']}")
        if sc.get("procMount", "Default") != "Default":
            problems.append(f"{where}: procMount {sc['procMount']}")
        problems += _selinux(where, sc)
        # Restricted.
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation is not false")
        non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        if non_root is not True:
            problems.append(f"{where}: runAsNonRoot is not true (pod or container)")
        if sc.get("runAsUser") == 0:
            problems.append(f"{where}: runAsUser is 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}: seccompProfile is {seccomp!r}, not RuntimeDefault")
        caps: Obj = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problems.append(f"{where}: capabilities do not drop ALL")
        added = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            problems.append(f"{where}: adds capabilities {sorted(added)}")
    return problems


def _selinux(where: str, sc: Obj) -> list[str]:
    opts: Obj = sc.get("seLinuxOptions") or {}
    problems = []
    if opts.get("type", "") not in SELINUX_TYPES:
        problems.append(f"{where}: seLinuxOptions.type {opts['type']}")
    if opts.get("user") or opts.get("role"):
        problems.append(f"{where}: seLinuxOptions user or role set")
    return problems


def hardening_problems(pod: Obj, calls_api: bool = False) -> list[str]:
    """What the project asks beyond the standard (see the module docstring)."""
    problems: list[str] = []
    if not calls_api and pod.get("automountServiceAccountToken") is not False:
        problems.append("the service-account token is mounted")
    for volume in pod.get("volumes") or []:
        if "emptyDir" in volume and not (volume["emptyDir"] or {}).get("sizeLimit"):
            problems.append(f"emptyDir {volume['name']} has no sizeLimit")
    for c in _containers(pod):
        where = f"container {c.get('name')}"
        if (c.get("securityContext") or {}).get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: root filesystem is writable")
        res: Obj = c.get("resources") or {}
        for part in ("requests", "limits"):
            if "ephemeral-storage" not in (res.get(part) or {}):
                problems.append(f"{where}: no ephemeral-storage {part[:-1]}")
    return problems
