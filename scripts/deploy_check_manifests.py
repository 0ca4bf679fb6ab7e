#!/usr/bin/env python3
"""Checks of the rendered Kubernetes manifests (run by scripts/deploy_check.sh).

    python3 scripts/deploy_check_manifests.py split RENDER.yaml OUTDIR
    python3 scripts/deploy_check_manifests.py CHECK RENDER.yaml...

`split` writes one file per object into OUTDIR/core (kinds of the Kubernetes
schemas, for kubernetes-validate) and OUTDIR/all (everything, for checkov). The
custom resources that the core schemas lack are listed in CRD_KINDS and checked
here instead, field by field.

CHECK is one of
  env          every ConfigMap key and env name of a Deployment is a variable its
               service reads (from the Rust sources); no secret in a ConfigMap
  workloads    Deployments: the image's binary, ports http/metrics matching
               BIND_ADDR/METRICS_BIND_ADDR, probes, grace period > shutdown,
               security context, Secrets by reference only; Services, PDBs,
               ServiceAccounts and NetworkPolicies select and name what exists
  monitoring   ServiceMonitor selects both Services on a port `metrics`;
               PrometheusRule alerts have expr, for, severity, a one-line runbook
               and a section in docs/DEPLOY.md; the dashboard is what its
               generator writes
  routes       HTTPRoutes name existing Services and ports; every OpenAPI path
               reaches its own service through exactly one rule; event streams
               have no request timeout
  autoscaling  HPAs target existing Deployments whose replicas equal minReplicas;
               a Pods metric is served by the prometheus-adapter rule
  metrics      every PromQL expression (alerts, dashboard, adapter rule) parses, and
               every series they and the HPAs name is exported by the services
               (from the Rust sources)

Prints nothing and exits 0 when the check holds; prints each failure and exits 1.
"""

# The checks live in deploy_check_{env,workloads,monitoring,routes,autoscaling,metrics}.py,
# what they share (Render, ROOT, ...) in deploy_check_k8s.py.

from __future__ import annotations

import pathlib
import sys

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from deploy_check_autoscaling import check_autoscaling  # noqa: E402
from deploy_check_env import check_env  # noqa: E402
from deploy_check_k8s import Render  # noqa: E402
from deploy_check_metrics import check_metrics  # noqa: E402
from deploy_check_monitoring import check_monitoring  # noqa: E402
from deploy_check_routes import check_routes  # noqa: E402
from deploy_check_workloads import check_workloads  # noqa: E402

CRD_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
}


def split(render: pathlib.Path, outdir: pathlib.Path) -> int:
    (outdir / "core").mkdir(parents=True, exist_ok=True)
    (outdir / "all").mkdir(parents=True, exist_ok=True)
    objects = [o for o in yaml.safe_load_all(render.read_text()) if o]
    for i, o in enumerate(objects):
        name = f"{i:03d}-{o['kind']}-{o['metadata']['name']}.yaml"
        text = yaml.safe_dump(o, sort_keys=False)
        (outdir / "all" / name).write_text(text)
        if (o["apiVersion"], o["kind"]) not in CRD_KINDS:
            (outdir / "core" / name).write_text(text)
    return 0


CHECKS = {
    "env": check_env,
    "workloads": check_workloads,
    "monitoring": check_monitoring,
    "routes": check_routes,
    "autoscaling": check_autoscaling,
    "metrics": check_metrics,
}


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "split":
        return split(pathlib.Path(argv[1]), pathlib.Path(argv[2]))
    if not argv or argv[0] not in CHECKS or len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    renders = [Render(pathlib.Path(p)) for p in argv[1:]]
    errors = CHECKS[argv[0]](renders)
    for e in errors:
        print(e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
