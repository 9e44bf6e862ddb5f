"""A rendered pod's container as a `podman run` (or `docker run`) command line.

The image tier runs each image the way the kubelet would run the container the operator
or the chart renders: its command and arguments, environment, user and group, read-only
root filesystem, dropped capabilities, and its volumes: emptyDirs become tmpfs mounts,
claims, ConfigMaps and Secrets become host folders the test provides, and the termination
message file is a host file. Resource limits are left out: the host's cgroups are not a
kubelet's.

Containers share the host's network (servers on 127.0.0.1). A pod owns its ports, the host
does not: ``ports`` moves a container port the pod declares to a free host port, in the
command, arguments and environment alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Obj = dict[str, Any]
_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}
TERMINATION_LOG = "/dev/termination-log"


def quantity_bytes(quantity: str) -> int:
    """A Kubernetes quantity ("64Mi", "20Gi", "1000") in bytes."""
    match = re.fullmatch(r"(\d+)([KMGT]i|[kMG])?", quantity)
    if match is None:
        raise ValueError(f"unsupported quantity {quantity!r}")
    return int(match[1]) * _UNITS.get(match[2] or "", 1)


@dataclass(frozen=True)
class PodVolumes:
    """Host folders standing in for what a cluster provides, by the name the pod uses."""

    claims: Mapping[str, Path] = field(default_factory=dict)
    config_maps: Mapping[str, Path] = field(default_factory=dict)
    secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


def pod_spec(obj: Obj) -> Obj:
    """The pod spec of a Deployment, Job or Pod."""
    spec: Obj = obj["spec"]
    return spec if obj["kind"] == "Pod" else spec["template"]["spec"]


def container(spec: Obj, name: str | None = None) -> Obj:
    found: list[Obj] = [c for c in spec["containers"] if name in (None, c["name"])]
    if not found:
        raise KeyError(f"no container {name!r}")
    return found[0]


def _moved(text: str, ports: Mapping[int, int]) -> str:
    for inside, outside in ports.items():
        text = re.sub(rf"(?<![\d.]){inside}(?!\d)", str(outside), text)
    return text


def _mount(volume: Obj, mount: Obj, volumes: PodVolumes) -> list[str]:
    path = mount["mountPath"]
    if "emptyDir" in volume:
        # Kubernetes' emptyDir is writable by anyone and allows exec (Ray starts programs
        # from its session folder under /tmp), unlike podman's default tmpfs options.
        options = "rw,exec,mode=1777"
        if limit := volume["emptyDir"].get("sizeLimit"):
            options += f",size={quantity_bytes(limit)}"
        return ["--tmpfs", f"{path}:{options}"]
    if claim := volume.get("persistentVolumeClaim"):
        host = volumes.claims[claim["claimName"]]
        read_only = mount.get("readOnly") or claim.get("readOnly")
    elif config_map := volume.get("configMap"):
        host, read_only = volumes.config_maps[config_map["name"]], True
    else:
        raise ValueError(f"volume {volume['name']!r}: kind not supported by the image tier")
    if sub := mount.get("subPath"):
        host = host / sub
    return ["-v", f"{host}:{path}{':ro' if read_only else ''}"]


def run_args(
    spec: Obj,
    image: str,
    volumes: PodVolumes,
    termination_log: Path,
    *,
    container_name: str | None = None,
    ports: Mapping[int, int] | None = None,
    extra_args: Sequence[str] = (),
    podman: bool = True,
) -> list[str]:
    """The arguments after ``run`` that start ``container_name`` of the pod ``spec``.

    ``extra_args`` are appended to the container's own arguments (what a test adds, such
    as the emulated API server's address). ``termination_log`` must exist and be writable.
    """
    c = container(spec, container_name)
    moves = ports or {}
    pod_sc: Obj = spec.get("securityContext", {})
    sc: Obj = {**pod_sc, **c.get("securityContext", {})}
    args = ["--pull", "never", "--network", "host", "--no-healthcheck"]
    if "runAsUser" in sc:
        args += ["--user", f"{sc['runAsUser']}:{sc.get('runAsGroup', sc['runAsUser'])}"]
    if "fsGroup" in pod_sc:
        args += ["--group-add", str(pod_sc["fsGroup"])]
    if sc.get("readOnlyRootFilesystem"):
        # podman's --read-only adds tmpfs on /tmp, /var/tmp and /run; a pod gets none.
        args += ["--read-only"] + (["--read-only-tmpfs=false"] if podman else [])
    for cap in sc.get("capabilities", {}).get("drop", []):
        args += ["--cap-drop", cap]
    if sc.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    for source in c.get("envFrom", []):
        ref = source.get("secretRef")
        if ref is None or ref["name"] not in volumes.secrets:
            raise ValueError(f"envFrom {source}: provide it in PodVolumes.secrets")
        for key, value in volumes.secrets[ref["name"]].items():
            args += ["--env", f"{key}={value}"]
    for env in c.get("env", []):
        if "value" not in env:
            raise ValueError(f"env {env['name']}: only plain values are supported")
        args += ["--env", f"{env['name']}={_moved(str(env['value']), moves)}"]
    by_name = {v["name"]: v for v in spec.get("volumes", [])}
    for mount in c.get("volumeMounts", []):
        args += _mount(by_name[mount["name"]], mount, volumes)
    path = c.get("terminationMessagePath", TERMINATION_LOG)
    args += ["-v", f"{termination_log}:{path}"]
    # Kubernetes: command replaces the image's ENTRYPOINT, args its CMD.
    command = [_moved(str(a), moves) for a in c.get("command", [])]
    rest = [_moved(str(a), moves) for a in c.get("args", [])] + list(extra_args)
    if command:
        args += ["--entrypoint", command[0], image, *command[1:], *rest]
    else:
        args += [image, *rest]
    return args
