"""The `metrics` check: every PromQL expression parses and names only series the services export."""

from __future__ import annotations

import json
import re
from collections import defaultdict

import yaml

import deploy_check_rust as rust
from deploy_check_autoscaling import ADAPTER_RULES, adapter_metrics
from deploy_check_k8s import DASHBOARD_DIR, Render

GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$namespace": "ns"}


def promql_metrics(expr: str) -> set[str]:
    """The series an expression selects, from its syntax tree (promql-parser); a
    syntax error raises ValueError."""
    import promql_parser

    for var, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(var, value)
    names: set[str] = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for m in node.matchers.matchers:
                if m.name == "__name__":
                    names.add(m.value)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def check_metrics(renders: list[Render]) -> list[str]:
    errors = []
    known = rust.metric_names()
    used: dict[str, set[str]] = defaultdict(set)

    def parse(expr: str, where: str) -> set[str]:
        try:
            return promql_metrics(expr)
        except ValueError as e:
            errors.append(f"{where}: invalid PromQL ({e}): {expr.strip()}")
            return set()

    for r in renders:
        for pr in r.by_kind["PrometheusRule"]:
            for group in pr["spec"].get("groups") or []:
                for rule in group.get("rules") or []:
                    where = f"alert {rule.get('alert') or rule.get('record')}"
                    for name in parse(str(rule.get("expr", "")), f"{r.name}: {where}"):
                        used[name].add(where)
        for h in r.by_kind["HorizontalPodAutoscaler"]:
            for m in h["spec"].get("metrics") or []:
                if m["type"] == "Pods":
                    used[m["pods"]["metric"]["name"]].add(f"HPA {h['metadata']['name']}")
    board = json.loads((DASHBOARD_DIR / "play-from-chat.json").read_text())
    for p in board.get("panels", []):
        for t in p.get("targets") or []:
            where = f"dashboard panel {p.get('title')!r}"
            for name in parse(t.get("expr", ""), where):
                used[name].add(where)
    for var in board.get("templating", {}).get("list", []):
        q = var.get("definition") or ""
        for name in re.findall(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)", q):
            used[name].add(f"dashboard variable {var.get('name')}")
    for name, series in adapter_metrics().items():
        if not series.startswith("!"):
            used[series].add("prometheus-adapter rule")
    for rule in (yaml.safe_load(ADAPTER_RULES.read_text()).get("rules") or {}).get("custom") or []:
        parse(rule.get("seriesQuery", ""), "prometheus-adapter seriesQuery")
        query = rule.get("metricsQuery", "").replace("<<.Series>>", "s").replace("<<.LabelMatchers>>", 'pod="p"').replace("<<.GroupBy>>", "pod")
        parse(query, "prometheus-adapter metricsQuery")
    if not used:
        errors.append("no metric found in the alerts, dashboard or adapter rule")
    for name in sorted(used):
        if name not in known:
            errors.append(f"metric {name} ({', '.join(sorted(used[name]))}) is not exported by the services")
    return errors
