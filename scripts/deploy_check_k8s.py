"""The rendered manifests as the deploy_check_*.py checks read them: Render and shared helpers."""

from __future__ import annotations

import pathlib
from collections import defaultdict

import yaml

import deploy_check_rust as rust

ROOT = rust.ROOT
DASHBOARD_DIR = ROOT / "k8s/components/monitoring/dashboards"


class Render:
    def __init__(self, path: pathlib.Path):
        self.name = path.stem
        self.objects = [o for o in yaml.safe_load_all(path.read_text()) if o]
        self.by_kind: dict[str, list[dict]] = defaultdict(list)
        for o in self.objects:
            self.by_kind[o["kind"]].append(o)

    def get(self, kind: str, name: str) -> dict | None:
        return next((o for o in self.by_kind[kind] if o["metadata"]["name"] == name), None)

    def app_deployments(self):
        """(deployment, container, binary) for each container started from the image's binaries."""
        for d in self.by_kind["Deployment"]:
            for c in d["spec"]["template"]["spec"].get("containers", []):
                command = c.get("command") or []
                binary = pathlib.PurePosixPath(command[0]).name if command else None
                yield d, c, binary


def labels_match(selector: dict, labels: dict) -> bool:
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def pod_labels(d: dict) -> dict:
    return d["spec"]["template"]["metadata"].get("labels") or {}


def container_env(r: Render, c: dict) -> tuple[dict[str, str], list[str]]:
    """The container's environment: ConfigMaps via envFrom, then env (value or a reference)."""
    env: dict[str, str] = {}
    errors = []
    for src in c.get("envFrom") or []:
        if "configMapRef" in src:
            cm = r.get("ConfigMap", src["configMapRef"]["name"])
            if cm is None:
                errors.append(f"envFrom names ConfigMap {src['configMapRef']['name']!r}, which the render lacks")
                continue
            env.update({k: str(v) for k, v in (cm.get("data") or {}).items()})
        elif "secretRef" in src:
            errors.append(f"envFrom secretRef {src['secretRef'].get('name')}: name each secret variable with secretKeyRef instead")
    for e in c.get("env") or []:
        env[e["name"]] = e.get("value", "<from " + next(iter(e.get("valueFrom", {"?": 0}))) + ">")
    return env, errors
