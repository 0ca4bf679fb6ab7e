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

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys
from collections import defaultdict

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import deploy_check_rust as rust  # noqa: E402

ROOT = rust.ROOT
CRD_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
}
SECRETS = {
    "play-from-chat-jwt": {"JWT_SECRET"},
    "play-from-chat-join-token": {"join-token.pem"},
    # optional: a Redis URL with a password (docs/DEPLOY.md, "Redis")
    "play-from-chat-redis": {"REDIS_URL"},
}
JOIN_TOKEN_PATH = "/etc/play-from-chat/join-token/join-token.pem"
APP_UID = 65532
DASHBOARD_DIR = ROOT / "k8s/components/monitoring/dashboards"
ADAPTER_RULES = ROOT / "k8s/components/autoscaling/prometheus-adapter-rules.yaml"
DEPLOY_DOC = ROOT / "docs/DEPLOY.md"
OPENAPI = {"game-service": ROOT / "openapi/game-service.json", "im-service": ROOT / "openapi/im-service.json"}
STREAM_PATHS = {"/v1/events"}
# Where a service's paths may also be published on the shared host (the gateway
# strips the prefix): both services have /v1/events, so the IM service's is /im/v1/events.
PUBLIC_PREFIXES = {"game-service": [""], "im-service": ["", "/im"]}


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


# ---------------------------------------------------------------------------- env


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


# ---------------------------------------------------------------------- workloads


def _port_of(addr: str | None) -> int | None:
    m = re.search(r":(\d+)$", addr or "")
    return int(m.group(1)) if m else None


def check_workloads(renders: list[Render]) -> list[str]:
    errors = []
    bins = rust.binaries()
    for r in renders:
        if r.by_kind["Secret"]:
            errors.append(f"{r.name}: renders Secret objects {[s['metadata']['name'] for s in r.by_kind['Secret']]}: Secrets are created by the operator, never committed")
        for o in r.objects:
            if o["kind"] != "Namespace" and not o["metadata"].get("namespace"):
                errors.append(f"{r.name}: {o['kind']} {o['metadata']['name']} has no namespace")
            labels = o["metadata"].get("labels") or {}
            if labels.get("app.kubernetes.io/part-of") != "play-from-chat":
                errors.append(f"{r.name}: {o['kind']} {o['metadata']['name']} lacks label app.kubernetes.io/part-of: play-from-chat")
        app = [(d, c, b) for d, c, b in r.app_deployments() if b in bins]
        if {b for _, _, b in app} != {"game-service", "im-service"}:
            errors.append(f"{r.name}: expected Deployments running game-service and im-service, found {sorted({b for _, _, b in app if b})}")
        for d, c, binary in app:
            name = d["metadata"]["name"]
            where = f"{r.name}: Deployment {name}"
            spec, pod = d["spec"], d["spec"]["template"]["spec"]
            env, _ = container_env(r, c)
            if c["command"] != [f"/usr/local/bin/{binary}"]:
                errors.append(f"{where}: command should be [/usr/local/bin/{binary}] (the image's path), not {c['command']}")
            if not c.get("image", "").startswith("ghcr.io/play-from-chat/play-from-chat:"):
                errors.append(f"{where}: image {c.get('image')} is not ghcr.io/play-from-chat/play-from-chat:<tag>")
            ports = {p.get("name"): p for p in c.get("ports") or []}
            bind, metrics = _port_of(env.get("BIND_ADDR")), _port_of(env.get("METRICS_BIND_ADDR"))
            if "http" not in ports or ports["http"]["containerPort"] != bind:
                errors.append(f"{where}: port `http` must be BIND_ADDR's port {bind}, found {ports.get('http')}")
            if "metrics" not in ports or ports["metrics"]["containerPort"] != metrics:
                errors.append(f"{where}: port `metrics` must be METRICS_BIND_ADDR's port {metrics}, found {ports.get('metrics')}")
            for probe, path in (("startupProbe", "/healthz"), ("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
                get = (c.get(probe) or {}).get("httpGet") or {}
                if get.get("path") != path or get.get("port") != "http":
                    errors.append(f"{where}: {probe} must GET {path} on port http, found {c.get(probe)}")
            # Grace: the service's worst case is delay + timeout + 1 s (ending the streams).
            delay = int(env.get("SHUTDOWN_DELAY_SECS", "0"))
            timeout = int(env.get("SHUTDOWN_TIMEOUT_SECS", "10"))
            grace = pod.get("terminationGracePeriodSeconds", 30)
            if grace <= delay + timeout + 1:
                errors.append(f"{where}: terminationGracePeriodSeconds {grace} must exceed SHUTDOWN_DELAY_SECS {delay} + SHUTDOWN_TIMEOUT_SECS {timeout} + 1")
            if "SHUTDOWN_DELAY_SECS" not in env or delay < 1:
                errors.append(f"{where}: SHUTDOWN_DELAY_SECS must be set (≥ 1) so endpoints drop the pod before it stops serving")
            if (c.get("lifecycle") or {}).get("preStop", {}).get("exec"):
                errors.append(f"{where}: a preStop exec cannot run: the image has no shell")
            rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
            if rolling.get("maxUnavailable") != 0 or rolling.get("maxSurge") != 1:
                errors.append(f"{where}: strategy must be RollingUpdate maxUnavailable 0, maxSurge 1")
            psc, csc = pod.get("securityContext") or {}, c.get("securityContext") or {}
            for key, want in (("runAsNonRoot", True), ("runAsUser", APP_UID), ("runAsGroup", APP_UID)):
                if psc.get(key) != want and csc.get(key) != want:
                    errors.append(f"{where}: securityContext.{key} must be {want}")
            if ((csc.get("seccompProfile") or psc.get("seccompProfile")) or {}).get("type") != "RuntimeDefault":
                errors.append(f"{where}: seccompProfile must be RuntimeDefault")
            if csc.get("readOnlyRootFilesystem") is not True or csc.get("allowPrivilegeEscalation") is not False:
                errors.append(f"{where}: readOnlyRootFilesystem true and allowPrivilegeEscalation false are required")
            if (csc.get("capabilities") or {}).get("drop") != ["ALL"]:
                errors.append(f"{where}: capabilities must drop [ALL]")
            for kind in ("cpu", "memory"):
                for part in ("requests", "limits"):
                    if kind not in (c.get("resources") or {}).get(part, {}):
                        errors.append(f"{where}: resources.{part}.{kind} missing")
            volumes = {v["name"]: v for v in pod.get("volumes") or []}
            mounts = {m["mountPath"]: m for m in c.get("volumeMounts") or []}
            if "/tmp" not in mounts or "emptyDir" not in volumes.get(mounts["/tmp"]["name"], {}):
                errors.append(f"{where}: /tmp must be an emptyDir (the root filesystem is read-only)")
            # Secrets: by reference only, with the documented names and keys.
            for e in c.get("env") or []:
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref and ref.get("key") not in SECRETS.get(ref.get("name"), set()):
                    errors.append(f"{where}: env {e['name']} references secret {ref.get('name')}/{ref.get('key')}, not one of {SECRETS}")
                if e.get("value") is not None and re.search(r"SECRET|PASSWORD", e["name"]):
                    errors.append(f"{where}: env {e['name']} has a literal value: reference a Secret")
            jwt = next((e for e in c.get("env") or [] if e["name"] == "JWT_SECRET"), None)
            if not jwt or (jwt.get("valueFrom") or {}).get("secretKeyRef", {}).get("name") != "play-from-chat-jwt":
                errors.append(f"{where}: JWT_SECRET must come from secretKeyRef play-from-chat-jwt/JWT_SECRET")
            if binary == "game-service":
                path = env.get("JOIN_TOKEN_KEY_FILE")
                mount = next((m for p, m in mounts.items() if path and path.startswith(p.rstrip("/") + "/")), None)
                volume = volumes.get(mount["name"]) if mount else None
                secret = (volume or {}).get("secret", {})
                key = path.rsplit("/", 1)[-1] if path else None
                if path != JOIN_TOKEN_PATH or not mount or not mount.get("readOnly") or secret.get("secretName") != "play-from-chat-join-token":
                    errors.append(f"{where}: JOIN_TOKEN_KEY_FILE must be {JOIN_TOKEN_PATH} in a read-only mount of Secret play-from-chat-join-token")
                elif secret.get("items") and key not in [i["path"] for i in secret["items"]]:
                    errors.append(f"{where}: the join-token Secret volume does not project {key}")
            if pod.get("automountServiceAccountToken") is not False:
                errors.append(f"{where}: automountServiceAccountToken must be false")
            sa = r.get("ServiceAccount", pod.get("serviceAccountName", "default"))
            if not sa or sa.get("automountServiceAccountToken") is not False:
                errors.append(f"{where}: ServiceAccount {pod.get('serviceAccountName')} missing or mounts its token")
            keys = {t.get("topologyKey") for t in pod.get("topologySpreadConstraints") or []}
            if not {"kubernetes.io/hostname", "topology.kubernetes.io/zone"} <= keys:
                errors.append(f"{where}: topologySpreadConstraints must cover kubernetes.io/hostname and topology.kubernetes.io/zone")
            # Service, PDB, NetworkPolicy select this Deployment's pods.
            labels = pod_labels(d)
            if not labels_match(spec["selector"], labels):
                errors.append(f"{where}: its selector does not match its own pod labels")
            services = [s for s in r.by_kind["Service"] if s["spec"].get("selector") and labels_match({"matchLabels": s["spec"]["selector"]}, labels)]
            if not services:
                errors.append(f"{where}: no Service selects its pods")
            for s in services:
                for p in s["spec"]["ports"]:
                    if p.get("targetPort") not in ports and p.get("targetPort") not in [q["containerPort"] for q in ports.values()]:
                        errors.append(f"{r.name}: Service {s['metadata']['name']} port {p['name']} targets {p.get('targetPort')}, which {name} does not expose")
                    if p["name"] in ports and p["port"] != ports[p["name"]]["containerPort"]:
                        errors.append(f"{r.name}: Service {s['metadata']['name']} port {p['name']} is {p['port']}, the container's is {ports[p['name']]['containerPort']}")
            pdbs = [p for p in r.by_kind["PodDisruptionBudget"] if labels_match(p["spec"]["selector"], labels)]
            replicas = spec.get("replicas", 1)
            hpa = next((h for h in r.by_kind["HorizontalPodAutoscaler"] if h["spec"]["scaleTargetRef"]["name"] == name), None)
            floor = hpa["spec"].get("minReplicas", 1) if hpa else replicas
            if len(pdbs) != 1:
                errors.append(f"{where}: {len(pdbs)} PodDisruptionBudgets select its pods, want 1")
            for p in pdbs:
                if "minAvailable" in p["spec"] and int(p["spec"]["minAvailable"]) >= min(replicas, floor):
                    errors.append(f"{r.name}: PDB {p['metadata']['name']} minAvailable {p['spec']['minAvailable']} with {min(replicas, floor)} replicas blocks every drain")
        # NetworkPolicies: a default deny over the app's pods, and each pod allowed by name.
        policies = r.by_kind["NetworkPolicy"]
        deny = [p for p in policies if not p["spec"].get("ingress") and "Ingress" in p["spec"].get("policyTypes", [])]
        for kind in ("Deployment", "StatefulSet"):
            for w in r.by_kind[kind]:
                labels = pod_labels(w)
                if not any(labels_match(p["spec"]["podSelector"], labels) for p in deny):
                    errors.append(f"{r.name}: {kind} {w['metadata']['name']}: no default-deny ingress NetworkPolicy selects its pods")
                if not any(p["spec"].get("ingress") and labels_match(p["spec"]["podSelector"], labels) for p in policies):
                    errors.append(f"{r.name}: {kind} {w['metadata']['name']}: no NetworkPolicy admits any traffic to its pods")
        for p in policies:
            for rule in p["spec"].get("ingress") or []:
                for peer in rule.get("from") or []:
                    if "ipBlock" in peer:
                        errors.append(f"{r.name}: NetworkPolicy {p['metadata']['name']}: ipBlock peers are not expected")
                    if "namespaceSelector" in peer and not (peer["namespaceSelector"].get("matchLabels") or {}).get("kubernetes.io/metadata.name"):
                        errors.append(f"{r.name}: NetworkPolicy {p['metadata']['name']}: select namespaces by kubernetes.io/metadata.name")
                    if rule.get("ports") is None:
                        errors.append(f"{r.name}: NetworkPolicy {p['metadata']['name']}: an ingress rule without ports admits every port")
                for port in rule.get("ports") or []:
                    if port.get("port") == "metrics":
                        names = [(peer.get("namespaceSelector") or {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") for peer in rule.get("from") or []]
                        if names != ["monitoring"]:
                            errors.append(f"{r.name}: NetworkPolicy {p['metadata']['name']}: the metrics port must be admitted from namespace monitoring only")
    return errors


# --------------------------------------------------------------------- monitoring


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


# ------------------------------------------------------------------------- routes


def _route_matches(match: dict, path: str, method: str) -> bool:
    m = match.get("path") or {"type": "PathPrefix", "value": "/"}
    if match.get("method") and match["method"] != method:
        return False
    value = m.get("value", "/")
    if m.get("type", "PathPrefix") == "Exact":
        return path == value
    if m.get("type") == "PathPrefix":
        value = value.rstrip("/")
        return path == value or path.startswith(value + "/") or value == ""
    return re.fullmatch(value, path) is not None


def _precedence(match: dict) -> tuple:
    """Gateway API precedence among matching rules: an Exact path over a prefix, the
    longer prefix first, then a match that names the method."""
    m = match.get("path") or {"type": "PathPrefix", "value": "/"}
    return (m.get("type", "PathPrefix") == "Exact", len(m.get("value", "/")), bool(match.get("method")))


def _winners(rules: list, path: str, method: str) -> list:
    """The rules that take `path`: those matching it with the highest precedence (one, unless
    two tie, which the check reports)."""
    ranked = []
    for where, i, rule, backend in rules:
        best = [_precedence(m) for m in rule.get("matches") or [{}] if _route_matches(m, path, method)]
        if best:
            ranked.append((max(best), (where, i, rule, backend)))
    if not ranked:
        return []
    top = max(rank for rank, _ in ranked)
    return [hit for rank, hit in ranked if rank == top]


def _rewritten(rule: dict, path: str, method: str) -> str:
    """The path the backend receives for `path`, after the rule's URLRewrite filter if any."""
    for f in rule.get("filters") or []:
        if f.get("type") != "URLRewrite":
            continue
        rewrite = (f.get("urlRewrite") or {}).get("path") or {}
        if rewrite.get("type") == "ReplaceFullPath":
            return rewrite.get("replaceFullPath", "/")
        if rewrite.get("type") == "ReplacePrefixMatch":
            for m in rule.get("matches") or []:
                if _route_matches(m, path, method) and (m.get("path") or {}).get("type", "PathPrefix") == "PathPrefix":
                    prefix = m["path"]["value"].rstrip("/")
                    return rewrite.get("replacePrefixMatch", "/").rstrip("/") + path[len(prefix):] or "/"
    return path


def check_routes(renders: list[Render]) -> list[str]:
    errors = []
    seen = False
    for r in renders:
        routes = r.by_kind["HTTPRoute"]
        if not routes:
            continue
        seen = True
        rules = []
        for route in routes:
            where = f"{r.name}: HTTPRoute {route['metadata']['name']}"
            if route["apiVersion"] != "gateway.networking.k8s.io/v1":
                errors.append(f"{where}: apiVersion must be gateway.networking.k8s.io/v1")
            parents = route["spec"].get("parentRefs") or []
            if not parents or any(not p.get("name") or p.get("kind", "Gateway") != "Gateway" for p in parents):
                errors.append(f"{where}: parentRefs must name a Gateway")
            for i, rule in enumerate(route["spec"].get("rules") or []):
                backends = rule.get("backendRefs") or []
                if len(backends) != 1:
                    errors.append(f"{where} rule {i}: expected one backendRef, found {len(backends)}")
                for b in backends:
                    svc = r.get("Service", b.get("name"))
                    if b.get("kind", "Service") != "Service" or svc is None:
                        errors.append(f"{where} rule {i}: backendRef {b.get('name')} is not a Service of the render")
                    elif b.get("port") not in [p["port"] for p in svc["spec"]["ports"] if p["name"] == "http"]:
                        errors.append(f"{where} rule {i}: Service {b['name']} has no http port {b.get('port')}")
                    for bad in ("/metrics",):
                        if any(_route_matches(m, bad, "GET") for m in rule.get("matches") or [{}]):
                            errors.append(f"{where} rule {i}: routes {bad} to the outside")
                rules.append((where, i, rule, backends[0]["name"] if backends else None))
        for service, doc in OPENAPI.items():
            for path, ops in json.loads(doc.read_text())["paths"].items():
                if not path.startswith("/v1/"):
                    continue
                sample = re.sub(r"\{[^}]+\}", "x", path)
                for method in ops:
                    if method.upper() not in ("GET", "POST", "PUT", "DELETE", "PATCH"):
                        continue
                    # Reachable at one of the service's public paths: exactly one rule
                    # matches it, sends it to the service, and rewrites it back to the path.
                    failures = []
                    for prefix in PUBLIC_PREFIXES[service]:
                        public = prefix + sample
                        hits = _winners(rules, public, method.upper())
                        if len(hits) != 1:
                            failures.append(f"{r.name}: {method.upper()} {prefix}{path} ({service}) matches {len(hits)} route rules of the same precedence, want exactly 1: {[f'{w} rule {i}' for w, i, _, _ in hits]}")
                            continue
                        where, i, rule, backend = hits[0]
                        if backend != service:
                            failures.append(f"{r.name}: {method.upper()} {prefix}{path} is routed to {backend}, not {service}")
                            continue
                        arrives = _rewritten(rule, public, method.upper())
                        if arrives != sample:
                            failures.append(f"{where} rule {i}: {method.upper()} {prefix}{path} reaches {service} as {arrives}, not {path}")
                            continue
                        failures = []
                        break
                    if failures:
                        errors.extend(failures)
                        continue
                    timeout = str((rule.get("timeouts") or {}).get("request", ""))
                    if path in STREAM_PATHS:
                        m = re.fullmatch(r"(\d+)(ms|s|m|h)", timeout)
                        secs = int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)] if m else None
                        if not (secs == 0 or (secs is not None and secs >= 3600)):
                            errors.append(f"{where} rule {i}: the event stream {path} needs timeouts.request \"0s\" (or ≥ 1h), found {timeout or 'none'}")
                    elif not timeout:
                        errors.append(f"{where} rule {i}: set timeouts.request for {path}")
    if not seen:
        errors.append("no render holds the gateway component")
    return errors


# -------------------------------------------------------------------- autoscaling


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


# ------------------------------------------------------------------------ metrics

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


# --------------------------------------------------------------------------- main


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
