"""The `workloads` check: Deployments, Services, PDBs, ServiceAccounts and NetworkPolicies."""

from __future__ import annotations

import re

import deploy_check_rust as rust
from deploy_check_k8s import Render, container_env, labels_match, pod_labels

SECRETS = {
    "play-from-chat-jwt": {"JWT_SECRET"},
    "play-from-chat-join-token": {"join-token.pem"},
    # optional: a Redis URL with a password (docs/DEPLOY.md, "Redis")
    "play-from-chat-redis": {"REDIS_URL"},
}
JOIN_TOKEN_PATH = "/etc/play-from-chat/join-token/join-token.pem"
APP_UID = 65532


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
        # The services call each other (partners, activity, the presence feed; lobbies
        # launched from a chat): each admits the other's pods on its http port.
        for caller, callee in (("game-service", "im-service"), ("im-service", "game-service")):
            target = next((w for w in r.by_kind["Deployment"] if w["metadata"]["name"] == callee), None)
            if target is None:
                continue
            admitted = any(
                labels_match(p["spec"]["podSelector"], pod_labels(target))
                and any(
                    any(port.get("port") == "http" for port in rule.get("ports") or [])
                    and any((peer.get("podSelector") or {}).get("matchLabels", {}).get("app.kubernetes.io/name") == caller for peer in rule.get("from") or [])
                    for rule in p["spec"].get("ingress") or []
                )
                for p in policies
            )
            if not admitted:
                errors.append(f"{r.name}: no NetworkPolicy admits {caller}'s pods to {callee}'s http port")
    return errors
