"""The `routes` check: HTTPRoutes send every OpenAPI path to its own service, streams without a timeout."""

from __future__ import annotations

import json
import re

from deploy_check_k8s import ROOT, Render

OPENAPI = {"game-service": ROOT / "openapi/game-service.json", "im-service": ROOT / "openapi/im-service.json"}
STREAM_PATHS = {"/v1/events"}
# Where a service's paths may also be published on the shared host (the gateway
# strips the prefix): both services have /v1/events, so the IM service's is /im/v1/events.
PUBLIC_PREFIXES = {"game-service": [""], "im-service": ["", "/im"]}
# Calls between the two services (`service` tokens): pod to pod inside the cluster (the
# NetworkPolicies admit them), never published by the gateway.
INTERNAL_PATHS = {
    "game-service": {"/v1/lobbies"},
    "im-service": {"/v1/activity", "/v1/presence/changes"},
}


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
                    if path in INTERNAL_PATHS[service]:
                        exposed = [
                            f"{w} rule {i}"
                            for prefix in PUBLIC_PREFIXES[service]
                            for w, i, _, _ in _winners(rules, prefix + sample, method.upper())
                        ]
                        if exposed:
                            errors.append(f"{r.name}: {method.upper()} {path} ({service}) is service to service, yet the gateway routes it: {exposed}")
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
