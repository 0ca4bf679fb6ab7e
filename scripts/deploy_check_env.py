"""The `env` check: ConfigMap keys and env names are variables the services read, no secret in a ConfigMap."""

from __future__ import annotations

import re

import deploy_check_rust as rust
from deploy_check_k8s import Render, container_env


def check_env(renders: list[Render]) -> list[str]:
    errors = []
    bins = rust.binaries()
    for r in renders:
        for d, c, binary in r.app_deployments():
            where = f"{r.name}: Deployment {d['metadata']['name']} container {c['name']}"
            if binary not in bins:
                if c.get("image", "").startswith("ghcr.io/play-from-chat/"):
                    errors.append(f"{where}: command {c.get('command')} is not a binary of the workspace")
                continue
            reads = rust.env_vars(bins[binary])
            env, errs = container_env(r, c)
            errors += [f"{where}: {e}" for e in errs]
            for src in c.get("envFrom") or []:
                cm = r.get("ConfigMap", (src.get("configMapRef") or {}).get("name", ""))
                for key in sorted((cm or {}).get("data") or {}):
                    if key not in reads:
                        errors.append(f"{where}: ConfigMap {cm['metadata']['name']} key {key} is not a variable {binary} reads")
                    if re.search(r"SECRET|PASSWORD|PRIVATE", key):
                        errors.append(f"{where}: ConfigMap key {key} looks secret: reference a Secret instead")
                for key, value in ((cm or {}).get("data") or {}).items():
                    if re.search(r"://[^/@\s]*:[^/@\s]*@", str(value)):
                        errors.append(f"{where}: ConfigMap {key} carries credentials in its URL: use a Secret")
            for e in c.get("env") or []:
                if e["name"] not in reads:
                    errors.append(f"{where}: env {e['name']} is not a variable {binary} reads")
    return errors
