"""Dashboards and alerts query only metrics that really exist.

Two exporters feed them: the runtime (its live prometheus_client registry is read here) and
kube-state-metrics, which turns the status of RecModels, TrainingRuns and Rollouts into metrics
by the config the chart ships (files/kube-state-metrics.yaml; every path in it is checked
against our CRDs). Every PromQL expression is parsed by promtool (Debian's prometheus package)
and each metric it names must come from one of them, so no panel stays empty and no alert waits
for a series that never comes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

Obj = dict[str, Any]
CHART = Path(__file__).resolve().parents[3] / "charts" / "recops"
DASHBOARDS = sorted((CHART / "files" / "dashboards").glob("*.json"))

# Exposition suffixes per metric type (prometheus_client family names drop `_total`).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
    "unknown": ("",),
}
KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
    "atan2",
}
# Grafana's label_values(selector, label): the selector may hold commas inside its braces.
LABEL_VALUES = r"label_values\(\s*((?:[^,(){}]|\{[^}]*\})*?)\s*,[^)]*\)"
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "${__rate_interval}": "5m",
}


def series_names(registry: CollectorRegistry) -> set[str]:
    names = set()
    for family in registry.collect():
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    return names


def runtime_registry() -> CollectorRegistry:
    from recops_runtime.telemetry.series import RuntimeMetrics

    return RuntimeMetrics().registry


def kube_state_metrics_config() -> Obj:
    config: Obj = yaml.safe_load((CHART / "files" / "kube-state-metrics.yaml").read_text())
    return config


def kube_state_metrics_names() -> set[str]:
    """Series kube-state-metrics exports for our config: prefix_name for every metric."""
    return {
        f"{resource['metricNamePrefix']}_{metric['name']}"
        for resource in kube_state_metrics_config()["spec"]["resources"]
        for metric in resource["metrics"]
    }


@pytest.fixture(scope="module")
def exported() -> dict[str, set[str]]:
    """Series names each exporter provides."""
    return {
        "runtime": series_names(runtime_registry()),
        "kube-state-metrics": kube_state_metrics_names(),
    }


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (promtool has checked its syntax already)."""
    expr = re.sub(LABEL_VALUES, r"\1", expr)
    expr = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    # Grouping clauses go whole, so that `sum by (x) (...)` reads as the call `sum (...)`.
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.$:])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", expr):
        name, call = match.group(1), match.group(2)
        if not call and name not in KEYWORDS:
            names.add(name)
    return names


def substitute(expr: str) -> str:
    """Grafana's syntax made PromQL: variables get values, label_values(q, l) becomes q."""
    expr = re.sub(LABEL_VALUES, r"\1", expr)
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return re.sub(r"\$\{?(\w+)\}?", r"\1", expr)


def dashboard_queries(dashboard: Obj) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and query variable."""

    def panels(items: list[Obj]) -> Iterator[Obj]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield f"panel '{panel['title']}' {target['refId']}", target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            yield (
                f"variable {variable['name']}",
                query["query"] if isinstance(query, dict) else query,
            )


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is missing: `make deb-deps` installs Debian's prometheus package")
    return path


def check_syntax(exprs: dict[str, str], tmp_path: Path) -> None:
    """promtool parses every expression (as recording rules of one group)."""
    rules = {
        "groups": [
            {
                "name": "syntax",
                "rules": [
                    {"record": f"check:{i}", "expr": expr} for i, expr in enumerate(exprs.values())
                ],
            }
        ]
    }
    path = tmp_path / "syntax.yaml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_name_extractor_finds_metrics_not_functions_or_labels() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (version, le) (rate(a_bucket{code!~"x|y"}[5m]))) '
        "/ on(version) group_left b_total offset 5m > bool 1e3 and c or vector(0)"
    )
    assert promql_metric_names(expr) == {"a_bucket", "b_total", "c"}
    assert promql_metric_names('label_values(recops_model_info{a="b"}, version)') == {
        "recops_model_info"
    }


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_is_valid_grafana_json(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] == f"recops-{path.stem}" and dashboard["title"].startswith("recops / ")
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert "datasource" in variables
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        if panel["type"] == "row":
            continue
        assert panel["description"], f"panel '{panel['title']}' needs a description"
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], f"panel '{panel['title']}' queries nothing"
        for target in panel["targets"]:
            used = set(re.findall(r"\$\{?(\w+)", target["expr"])) - {"__rate_interval"}
            assert used <= variables, f"panel '{panel['title']}' uses undefined {used - variables}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_queries_name_only_exported_metrics(
    path: Path, exported: dict[str, set[str]], tmp_path: Path
) -> None:
    queries = dict(dashboard_queries(json.loads(path.read_text())))
    check_syntax({w: substitute(q) for w, q in queries.items()}, tmp_path)
    known = set().union(*exported.values())
    for where, query in queries.items():
        missing = promql_metric_names(substitute(query)) - known
        assert not missing, f"{path.name} {where}: nothing exports {sorted(missing)}"


def rendered_rules(render_chart: Callable[..., list[Obj]]) -> Obj:
    (rule,) = [o for o in render_chart() if o["kind"] == "PrometheusRule"]
    spec: Obj = rule["spec"]
    return spec


def test_alerts_pass_promtool_and_name_only_exported_metrics(
    render_chart: Callable[..., list[Obj]], exported: dict[str, set[str]], tmp_path: Path
) -> None:
    spec = rendered_rules(render_chart)
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    known = set().union(*exported.values())
    alerts = {r["alert"]: r["expr"] for g in spec["groups"] for r in g["rules"]}
    for name, expr in alerts.items():
        missing = promql_metric_names(expr) - known
        assert not missing, f"alert {name}: nothing exports {sorted(missing)}"
    # The four alerts: runtime errors and latency, rollout aborted, training failed.
    assert {
        "RecopsRuntimeErrorRateHigh",
        "RecopsRuntimeLatencyHigh",
        "RecopsRolloutAborted",
        "RecopsTrainingFailed",
        "RecopsDriftTriggered",
    } <= set(alerts)


def test_error_alert_counts_the_same_errors_as_rollout_analysis(
    render_chart: Callable[..., list[Obj]],
) -> None:
    from recops_operator.queries import runtime_metrics

    spec = rendered_rules(render_chart)
    expr = next(
        r["expr"]
        for g in spec["groups"]
        for r in g["rules"]
        if r.get("alert") == "RecopsRuntimeErrorRateHigh"
    )
    (codes,) = re.findall(r'code!~"([^"]+)"', expr)
    assert set(codes.split("|")) == set(runtime_metrics.CLIENT_CODES)


def series(name: str, values: str, **labels: str) -> Obj:
    text = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{text}}}", "values": values}


def without_target(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k != "target"}


def test_alerts_fire_for_a_failing_version_and_stay_quiet_for_a_healthy_one(
    render_chart: Callable[..., list[Obj]], tmp_path: Path
) -> None:
    """promtool evaluates the rendered alerts on synthetic series (annotations left out: they
    are text for people, checked for syntax above)."""
    spec = rendered_rules(render_chart)
    for group in spec["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec))
    # Two RecModels of one namespace serve a version "4" each: only the failing one pages.
    good = {
        "namespace": "recs",
        "recops_io_recmodel": "books",
        "version": "4",
        "target": "cpu-onnxruntime",
    }
    bad = {
        "namespace": "recs",
        "recops_io_recmodel": "movies",
        "version": "4",
        "target": "cpu-onnxruntime",
    }
    requests = "recops_requests_total"
    latency = "recops_request_latency_seconds_bucket"
    input_series = [
        series(requests, "0+100x30", code="OK", **good),
        # Client errors are the caller's fault: they do not page.
        series(requests, "0+50x30", code="INVALID_ARGUMENT", **good),
        series(requests, "0+100x30", code="OK", **bad),
        series(requests, "0+10x30", code="INTERNAL", **bad),
        *[series(latency, "0+100x30", le=le, **good) for le in ("0.01", "0.1", "0.25", "+Inf")],
        series(latency, "0+0x30", le="0.01", **bad),
        series(latency, "0+50x30", le="0.1", **bad),
        *[series(latency, "0+100x30", le=le, **bad) for le in ("0.25", "+Inf")],
    ]
    rollout = {"namespace": "recs", "recmodel": "movies", "candidate": "4"}
    run = {"namespace": "recs", "recmodel": "movies", "mode": "train"}
    phase = "recops_rollout_status_phase"
    training = "recops_trainingrun_status_phase"
    input_series += [
        series(phase, "1x30", rollout="movies-v4", phase="Aborted", **rollout),
        series(phase, "0x30", rollout="movies-v4", phase="Progressing", **rollout),
        series(phase, "1x30", rollout="movies-v5", phase="Progressing", **rollout),
        series(training, "1x30", trainingrun="movies-7", phase="Failed", **run),
        series(
            "recops_trainingrun_status_completion_time", "600x30", trainingrun="movies-7", **run
        ),
        series(training, "1x30", trainingrun="movies-8", phase="Succeeded", **run),
        # Failed more than a day before: no longer paging.
        series(training, "1x30", trainingrun="movies-6", phase="Failed", **run),
        series(
            "recops_trainingrun_status_completion_time", "-90000x30", trainingrun="movies-6", **run
        ),
    ]
    # Drift: the runtime raised the trigger for one statistic of the failing RecModel only.
    drifted = {**without_target(bad), "statistic": "popularity_psi"}
    input_series += [
        series("recops_drift_triggered", "1x30", **drifted),
        series("recops_drift_triggered", "0x30", **{**drifted, "statistic": "length_psi"}),
        series(
            "recops_drift_triggered",
            "0x30",
            **{**without_target(good), "statistic": "popularity_psi"},
        ),
    ]
    expected = {
        "RecopsDriftTriggered": {"severity": "warning", **drifted},
        "RecopsRuntimeErrorRateHigh": {"severity": "critical", **without_target(bad)},
        "RecopsRuntimeLatencyHigh": {"severity": "warning", **without_target(bad)},
        "RecopsRolloutAborted": {"severity": "warning", "rollout": "movies-v4", **rollout},
        "RecopsTrainingFailed": {
            "severity": "warning",
            "trainingrun": "movies-7",
            "namespace": "recs",
            "recmodel": "movies",
        },
    }
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": input_series,
                "alert_rule_test": [
                    # Not yet: the condition must hold for the rule's `for` duration first.
                    *[
                        {"eval_time": "3m", "alertname": a, "exp_alerts": []}
                        for a in expected
                        if a.startswith("RecopsRuntime")
                    ],
                    *[
                        {"eval_time": "20m", "alertname": a, "exp_alerts": [{"exp_labels": labels}]}
                        for a, labels in expected.items()
                    ],
                ],
            }
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    result = subprocess.run(
        [promtool(), "test", "rules", "tests.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def schema_at(schema: Obj, path: list[str]) -> Obj | None:
    """The sub-schema at ``path`` (through objects, arrays and maps), or None."""
    node: Obj | None = schema
    for key in path:
        if node is None:
            return None
        if node.get("type") == "array":
            node = node["items"]
        props = node.get("properties")
        if props is not None:
            node = props.get(key)
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return None
    if node is not None and node.get("type") == "array":
        return dict(node["items"])
    return node


def test_kube_state_metrics_config_reads_fields_our_crds_have(repo_root: Path) -> None:
    """A renamed status field would silently empty a panel: every path must exist, and every
    state list must be the field's enum."""
    for resource in kube_state_metrics_config()["spec"]["resources"]:
        gvk = resource["groupVersionKind"]
        crd = yaml.safe_load(
            (repo_root / "crds" / f"{gvk['group']}_{gvk['kind'].lower()}s.yaml").read_text()
        )
        (version,) = [v for v in crd["spec"]["versions"] if v["name"] == gvk["version"]]
        schema = version["schema"]["openAPIV3Schema"]
        where = gvk["kind"]
        for label, path in resource["labelsFromPath"].items():
            assert path[0] == "metadata" or schema_at(schema, path), f"{where} label {label}"
        for metric in resource["metrics"]:
            each = metric["each"]
            spec = each[each["type"][0].lower() + each["type"][1:]]
            base = spec.get("path", [])
            node = schema_at(schema, base) if base else schema
            assert node is not None, f"{where} {metric['name']}: no field {base}"
            for sub in [spec.get("valueFrom"), *spec.get("labelsFromPath", {}).values()]:
                if sub:
                    assert schema_at(node, sub), f"{where} {metric['name']}: no field {base + sub}"
            if each["type"] == "StateSet":
                assert spec["list"] == node["enum"], f"{where} {metric['name']}: states"
            if each["type"] == "Gauge" and "valueFrom" not in spec and "labelFromKey" not in spec:
                assert node.get("type") in {"integer", "number", "string"}, metric["name"]


def test_terraform_gives_kube_state_metrics_the_config_and_access() -> None:
    """The module passes the chart's config to kube-state-metrics and lets it read our kinds."""
    monitoring = (CHART.parents[1] / "terraform/modules/recops-platform/monitoring.tf").read_text()
    assert 'charts/recops/files/kube-state-metrics.yaml")' in monitoring
    kinds = {
        f"{r['groupVersionKind']['kind'].lower()}s"
        for r in kube_state_metrics_config()["spec"]["resources"]
    }
    for kind in kinds:
        assert kind in monitoring, f"kube-state-metrics may not list {kind}"
