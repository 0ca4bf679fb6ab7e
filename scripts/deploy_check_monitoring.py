"""The `monitoring` check: ServiceMonitor, PrometheusRule alerts and their runbooks, the dashboard."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from deploy_check_k8s import DASHBOARD_DIR, ROOT, Render, labels_match

DEPLOY_DOC = ROOT / "docs/DEPLOY.md"


def check_monitoring(renders: list[Render]) -> list[str]:
    errors = []
    doc = DEPLOY_DOC.read_text() if DEPLOY_DOC.exists() else ""
    headings = {m.group(1).strip() for m in re.finditer(r"(?m)^#{2,4}\s+`?([A-Za-z0-9]+)`?\s*$", doc)}
    seen_monitoring = False
    for r in renders:
        monitors, rules = r.by_kind["ServiceMonitor"], r.by_kind["PrometheusRule"]
        if not monitors and not rules:
            continue
        seen_monitoring = True
        for m in monitors:
            where = f"{r.name}: ServiceMonitor {m['metadata']['name']}"
            spec = m["spec"]
            if m["apiVersion"] != "monitoring.coreos.com/v1":
                errors.append(f"{where}: apiVersion must be monitoring.coreos.com/v1")
            ns_sel = spec.get("namespaceSelector") or {}
            selected = [
                s for s in r.by_kind["Service"]
                if labels_match(spec.get("selector") or {}, s["metadata"].get("labels") or {})
                and (not ns_sel or ns_sel.get("any") or s["metadata"].get("namespace") in ns_sel.get("matchNames", []))
            ]
            names = {s["metadata"]["name"] for s in selected}
            if not {"game-service", "im-service"} <= names:
                errors.append(f"{where}: selects Services {sorted(names)}, must select game-service and im-service")
            if not spec.get("endpoints"):
                errors.append(f"{where}: no endpoints")
            for ep in spec.get("endpoints") or []:
                if ep.get("port") != "metrics" or ep.get("path", "/metrics") != "/metrics":
                    errors.append(f"{where}: endpoint must scrape port `metrics` path /metrics, found {ep}")
                for s in selected:
                    if ep.get("port") not in [p.get("name") for p in s["spec"]["ports"]]:
                        errors.append(f"{where}: Service {s['metadata']['name']} has no port named {ep.get('port')}")
        if monitors and not rules:
            errors.append(f"{r.name}: a ServiceMonitor without a PrometheusRule")
        alerts_seen = set()
        for pr in rules:
            where = f"{r.name}: PrometheusRule {pr['metadata']['name']}"
            for group in pr["spec"].get("groups") or []:
                for rule in group.get("rules") or []:
                    if "alert" not in rule:
                        continue
                    name = rule["alert"]
                    w = f"{where} alert {name}"
                    if name in alerts_seen:
                        errors.append(f"{w}: defined twice")
                    alerts_seen.add(name)
                    if not str(rule.get("expr", "")).strip():
                        errors.append(f"{w}: no expr")
                    if not re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))):
                        errors.append(f"{w}: `for` missing or not a duration")
                    if (rule.get("labels") or {}).get("severity") not in ("critical", "warning", "info"):
                        errors.append(f"{w}: labels.severity must be critical, warning or info")
                    ann = rule.get("annotations") or {}
                    runbook = ann.get("runbook") or (ann.get("runbook_url") if ann.get("description") else None)
                    if not runbook or "\n" in str(runbook).strip():
                        errors.append(f"{w}: needs a one-line annotations.runbook (or runbook_url + description)")
                    if not ann.get("summary"):
                        errors.append(f"{w}: needs annotations.summary")
                    if name not in headings:
                        errors.append(f"{w}: docs/DEPLOY.md has no runbook section titled {name}")
                    elif runbook and f"#{name.lower()}" not in str(runbook):
                        errors.append(f"{w}: runbook should point at docs/DEPLOY.md#{name.lower()}")
        dashboards = [c for c in r.by_kind["ConfigMap"] if (c["metadata"].get("labels") or {}).get("grafana_dashboard") == "1"]
        if monitors and not dashboards:
            errors.append(f"{r.name}: no ConfigMap labelled grafana_dashboard: \"1\"")
        for cm in dashboards:
            for key, text in (cm.get("data") or {}).items():
                try:
                    board = json.loads(text)
                except json.JSONDecodeError as e:
                    errors.append(f"{r.name}: dashboard {key}: not JSON ({e})")
                    continue
                panels = [p for p in board.get("panels", []) if p.get("type") != "row"]
                if not panels or any(not p.get("targets") for p in panels):
                    errors.append(f"{r.name}: dashboard {key}: every panel needs a query")
    if not seen_monitoring:
        errors.append("no render holds the monitoring component")
    generator = DASHBOARD_DIR / "make_dashboard.py"
    drift = subprocess.run([sys.executable, str(generator), "--check"], capture_output=True, text=True)
    if drift.returncode != 0:
        errors.append(drift.stderr.strip() or "the dashboard JSON drifted from its generator")
    return errors
