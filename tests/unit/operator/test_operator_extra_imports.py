"""Every module of recops_operator imports with only what `pip install recops[operator]`
brings: the core dependencies, the operator extra and what those depend on.

A clean virtual environment would take minutes to build; instead a subprocess refuses
every installed distribution outside that closure (test tools such as kmock and jsonpatch,
torch, Ray, MLflow, the engines, the other recops packages) and imports each module.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

from packaging.requirements import Requirement

OTHER_RECOPS_PACKAGES = ("recops_runtime", "recops_trainer", "recops_cli")


def _closure(extras: set[str]) -> set[str]:
    """Distribution names (normalised) that recops with ``extras`` installs."""
    wanted: set[str] = set()
    frontier: list[tuple[str, set[str]]] = [("recops", extras)]
    while frontier:
        name, with_extras = frontier.pop()
        key = name.lower().replace("_", "-")
        if key in wanted and not with_extras:
            continue
        wanted.add(key)
        try:
            requirements = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # an optional dependency that is not installed here
        for text in requirements:
            requirement = Requirement(text)
            marker = requirement.marker
            needed = marker is None or any(
                marker.evaluate({"extra": extra}) for extra in (with_extras or {""})
            )
            if needed:
                frontier.append((requirement.name, set(requirement.extras)))
    return wanted


def test_every_operator_module_imports_with_the_operator_extra_alone() -> None:
    allowed = _closure({"operator"})
    blocked = sorted(
        module
        for module, dists in metadata.packages_distributions().items()
        if not any(d.lower().replace("_", "-") in allowed for d in dists)
    )
    blocked += OTHER_RECOPS_PACKAGES
    assert "kmock" in blocked and "torch" in blocked and "kopf" not in blocked
    script = f"""
import importlib, importlib.abc, pkgutil, sys
BLOCKED = set({json.dumps(blocked)})
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is not installed by recops[operator]")
sys.meta_path.insert(0, Refuse())
import recops_operator
names = [m.name for m in pkgutil.walk_packages(recops_operator.__path__, "recops_operator.")]
for name in names:
    importlib.import_module(name)
print(len(names))
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(proc.stdout.strip()) > 40
