"""The `autoscaling` check: HPA targets, and the custom metrics the prometheus-adapter rule serves."""

from __future__ import annotations

import re

import yaml

from deploy_check_k8s import ROOT, Render

ADAPTER_RULES = ROOT / "k8s/components/autoscaling/prometheus-adapter-rules.yaml"


def adapter_metrics() -> dict[str, str]:
    """Custom metric name -> series it comes from, per the prometheus-adapter rules."""
    data = yaml.safe_load(ADAPTER_RULES.read_text()) or {}
    served = {}
    for rule in (data.get("rules") or {}).get("custom") or []:
        m = re.match(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)", rule.get("seriesQuery", ""))
        series = m.group(1) if m else ""
        name = (rule.get("name") or {}).get("as") or series
        overrides = (rule.get("resources") or {}).get("overrides") or {}
        if (overrides.get("pod") or {}).get("resource") != "pod" or (overrides.get("namespace") or {}).get("resource") != "namespace":
            served[name] = "!no pod/namespace resource overrides"
        else:
            served[name] = series
    return served


def check_autoscaling(renders: list[Render]) -> list[str]:
    errors = []
    seen = False
    served = adapter_metrics()
    for r in renders:
        for h in r.by_kind["HorizontalPodAutoscaler"]:
            seen = True
            where = f"{r.name}: HPA {h['metadata']['name']}"
            ref = h["spec"]["scaleTargetRef"]
            target = r.get(ref["kind"], ref["name"])
            if target is None:
                errors.append(f"{where}: targets {ref['kind']} {ref['name']}, which the render lacks")
                continue
            if target["spec"].get("replicas", 1) != h["spec"].get("minReplicas", 1):
                errors.append(f"{where}: Deployment replicas {target['spec'].get('replicas')} should equal minReplicas {h['spec'].get('minReplicas')}")
            kinds = {m["type"] for m in h["spec"].get("metrics") or []}
            if "Resource" not in kinds:
                errors.append(f"{where}: no CPU (Resource) metric")
            for m in h["spec"].get("metrics") or []:
                if m["type"] == "Resource":
                    c = target["spec"]["template"]["spec"]["containers"][0]
                    if m["resource"]["name"] not in (c.get("resources") or {}).get("requests", {}):
                        errors.append(f"{where}: utilization of {m['resource']['name']} needs a request on the container")
                if m["type"] == "Pods":
                    name = m["pods"]["metric"]["name"]
                    if name not in served:
                        errors.append(f"{where}: Pods metric {name} is not served by {ADAPTER_RULES.relative_to(ROOT)}")
                    elif served[name].startswith("!"):
                        errors.append(f"{where}: adapter rule for {name}: {served[name][1:]}")
        if r.get("HorizontalPodAutoscaler", "game-service") and not any(
            m["type"] == "Pods" and m["pods"]["metric"]["name"] == "game_event_streams_open"
            for m in r.get("HorizontalPodAutoscaler", "game-service")["spec"].get("metrics") or []
        ):
            errors.append(f"{r.name}: the game-service HPA does not scale on game_event_streams_open")
    if not seen:
        errors.append("no render holds the autoscaling component")
    return errors
