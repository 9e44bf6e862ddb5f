"""Terraform, checked without downloading providers: formatting, typed and described variables,
and every module input wired (no argument the module does not declare, no required input left
out, no declared input that nothing reads)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 parses the Terraform files")

TERRAFORM = Path(__file__).resolve().parents[3] / "terraform"
MODULE = TERRAFORM / "modules" / "recops-platform"
ROOTS = sorted(p for p in (TERRAFORM / "examples").iterdir() if p.is_dir())
FOLDERS = [MODULE, *ROOTS]
META_ARGUMENTS = {"source", "version", "depends_on", "count", "for_each", "providers"}


def unquote(name: str) -> str:
    return name.strip('"')


def parse(folder: Path) -> dict[str, list[Any]]:
    """Blocks of every .tf file in ``folder``, merged by block type."""
    merged: dict[str, list[Any]] = {}
    for path in sorted(folder.glob("*.tf")):
        with path.open() as f:
            for block_type, blocks in hcl2.load(f).items():
                merged.setdefault(block_type, []).extend(blocks)
    return merged


def named(blocks: list[Any]) -> dict[str, dict[str, Any]]:
    return {unquote(name): body for block in blocks for name, body in block.items()}


def variables(folder: Path) -> dict[str, dict[str, Any]]:
    return named(parse(folder).get("variable", []))


def source_without_variables(folder: Path) -> str:
    text = "\n".join(p.read_text() for p in sorted(folder.glob("*.tf")))
    return re.sub(r'(?ms)^variable\s+"[^"]+"\s*\{.*?^\}', "", text)


def test_terraform_fmt_check() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not installed")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_every_variable_is_typed_and_described(folder: Path) -> None:
    declared = variables(folder)
    assert declared
    for name, body in declared.items():
        assert body.get("type"), f"{folder.name}: variable {name} has no type"
        description = unquote(str(body.get("description", "")))
        assert len(description) > 10, f"{folder.name}: variable {name} has no description"


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_every_declared_variable_is_used(folder: Path) -> None:
    code = source_without_variables(folder)
    unused = [n for n in variables(folder) if not re.search(rf"\bvar\.{n}\b", code)]
    assert not unused, f"{folder.name}: variables nothing reads: {unused}"


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_every_output_is_described(folder: Path) -> None:
    for name, body in named(parse(folder).get("output", [])).items():
        assert len(unquote(str(body.get("description", "")))) > 10, f"output {name}"


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: p.name)
def test_module_calls_are_wired(root: Path) -> None:
    calls = named(parse(root).get("module", []))
    assert calls, f"{root.name} calls no module"
    for name, call in calls.items():
        module = (root / unquote(call["source"])).resolve()
        assert module.is_dir(), f"module {name}: {call['source']} does not exist"
        inputs = variables(module)
        passed = set(call) - META_ARGUMENTS - {"__is_block__"}
        unknown = passed - set(inputs)
        assert not unknown, f"module {name} is given inputs it does not declare: {unknown}"
        required = {n for n, body in inputs.items() if "default" not in body}
        assert required <= passed, f"module {name} misses required inputs {required - passed}"
        outputs = set(named(parse(module).get("output", [])))
        code = "\n".join(p.read_text() for p in root.glob("*.tf"))
        read = set(re.findall(rf"\bmodule\.{name}\.(\w+)", code))
        assert read <= outputs, f"{root.name} reads outputs {name} lacks: {read - outputs}"


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_every_local_read_is_defined(folder: Path) -> None:
    defined = {n for block in parse(folder).get("locals", []) for n in block}
    code = "\n".join(p.read_text() for p in folder.glob("*.tf"))
    read = set(re.findall(r"\blocal\.(\w+)", code))
    assert read <= defined, f"{folder.name}: undefined locals {read - defined}"


def test_module_sets_only_values_the_chart_knows(repo_root: Path) -> None:
    """The values the module passes to the recops chart are keys of its values.schema.json."""
    import json

    schema = json.loads((repo_root / "charts/recops/values.schema.json").read_text())
    recops = parse(MODULE)["locals"]
    values = next(b["recops_module_values"] for b in recops if "recops_module_values" in b)

    def check(tree: dict[str, Any], node: dict[str, Any], path: str) -> None:
        props = node.get("properties", {})
        for key, value in tree.items():
            assert key in props, f"recops chart has no value {path}{key}"
            sub = props[key]
            if "$ref" in sub:
                sub = schema["definitions"][sub["$ref"].rsplit("/", 1)[-1]]
            if isinstance(value, dict):
                check(value, sub, f"{path}{key}.")

    check(values, schema, "")
    # images come from a for-expression; its keys must be the chart's image keys.
    images_expr = next(b["recops_images"] for b in recops if "recops_images" in b)
    for key in schema["properties"]["images"]["properties"]:
        assert f"{key} = " in images_expr


def test_gateway_chart_renders_the_gateway_the_operator_expects(repo_root: Path) -> None:
    helm = pytest.importorskip("helm_python")
    import yaml

    from recops_operator.settings import OperatorSettings

    with helm.Chart.load(str(MODULE / "charts" / "recops-gateway")) as chart:
        manifests = chart.render(
            values={"allowedNamespaces": ["recommenders"]},
            name="recops-gateway",
            namespace="gateway-system",
        )
    objects = [d for text in manifests.values() for d in yaml.safe_load_all(text) if d]
    gateway = next(o for o in objects if o["kind"] == "Gateway")
    gateway_class = next(o for o in objects if o["kind"] == "GatewayClass")
    assert gateway["spec"]["gatewayClassName"] == gateway_class["metadata"]["name"]
    chart_values = yaml.safe_load((repo_root / "charts/recops/values.yaml").read_text())
    default_name = unquote(variables(MODULE)["gateway_name"]["default"])
    assert gateway["metadata"]["name"] == default_name == chart_values["gateway"]["name"]
    assert default_name == OperatorSettings.model_fields["gateway_name"].default
    (listener,) = gateway["spec"]["listeners"]
    assert listener["allowedRoutes"]["kinds"] == [{"kind": "GRPCRoute"}]
    selector = listener["allowedRoutes"]["namespaces"]["selector"]["matchExpressions"][0]
    assert selector["values"] == ["recommenders"]


def test_gateway_chart_lints_clean() -> None:
    helm = pytest.importorskip("helm_python")
    report = helm.lint(str(MODULE / "charts" / "recops-gateway"), strict=True)
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert not problems, problems
