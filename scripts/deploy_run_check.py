#!/usr/bin/env python3
"""The manifests run: starts the real binaries exactly as the rendered Deployments say.

    scripts/deploy_run_check.py <bin-dir> <overlay>...    # e.g. target/debug k8s/overlays/dev

For each overlay, renders it with `kubectl kustomize`, then builds a pod
network of network namespaces (one per pod, on a bridge; every Service name
resolves to its pod's address, so `redis:6379` and `im-service:8081` are the
rendered values themselves, and no port of this machine is touched) and

- starts a private Redis pod per node the rendered REDIS_URL names (one
  standalone server, or a three-master cluster);
- starts each Deployment's container command with exactly its environment
  (its ConfigMaps through `envFrom`, its `env`, test secrets for the Secrets it
  references; a mounted Secret is written to a temporary directory and paths
  under its mount point are mapped there: the only rewrite);
- checks its startup, readiness and liveness probes answer 200 on the ports
  they name, that `/metrics` answers on the port the ServiceMonitor scrapes
  and not on the API port, and runs one pairing through the Services;
- checks every metric the PrometheusRule, the dashboard and the autoscaling
  adapter name exists in `/metrics` after that pairing;
- sends SIGTERM and checks the shutdown sequence within the rendered
  `terminationGracePeriodSeconds`: `/readyz` 503 at once while requests are
  still served, then event streams end with a `retry:` within the configured
  jitter, then exit 0.

Needs root (network namespaces), kubectl, redis-server, openssl, and PyYAML
and PyJWT (scripts/deploy_check.sh installs them into .venv).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import jwt
import yaml

HTTP_TIMEOUT = 10.0
NETNS_PREFIX = "pfc-run"


def ensure(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def render(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["kubectl", "kustomize", overlay], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for doc in of_kind(docs, kind):
        if doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind} named {name!r} in the rendered manifests")


# ---------------------------------------------------------------------------
# The pod network: one network namespace per pod on a bridge, in a namespace of
# its own where the checks run, each with a hosts file naming every Service.

SUBNET = "10.77.0"


def redis_topology(url: str) -> tuple[bool, list[tuple[str, int]]]:
    """(cluster?, [(host, port)]) of a REDIS_URL as the services read it."""
    cluster = url.startswith("redis+cluster://")
    rest = re.sub(r"^redis(\+cluster)?://", "", url)
    nodes = []
    for part in rest.split(","):
        part = re.sub(r"^redis://", "", part.strip()).split("/")[0].split("@")[-1]
        host, _, port = part.rpartition(":")
        nodes.append((host, int(port or 6379)))
    return cluster, nodes


def plan_pods(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Pod names and addresses: one per Redis node of REDIS_URL, one per Deployment."""
    cluster, nodes = redis_topology(deployment_env_value(docs, "REDIS_URL"))
    pods = {f"redis-{i}": f"{SUBNET}.{10 + i}" for i in range(len(nodes))}
    deployments = sorted(d["metadata"]["name"] for d in of_kind(docs, "Deployment"))
    pods |= {name: f"{SUBNET}.{20 + i}" for i, name in enumerate(deployments)}
    names: dict[str, str] = {host: pods[f"redis-{i}"] for i, (host, _) in enumerate(nodes)}
    for service in of_kind(docs, "Service"):
        name = service["metadata"]["name"]
        namespace = service["metadata"].get("namespace", "default")
        selector = service["spec"].get("selector") or {}
        target = next((pods[d["metadata"]["name"]] for d in of_kind(docs, "Deployment")
                       if selector and all(d["spec"]["template"]["metadata"]["labels"].get(k) == v
                                           for k, v in selector.items())), pods.get("redis-0"))
        for alias in (name, f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local"):
            names.setdefault(alias, target)
    return {"cluster": cluster, "nodes": nodes, "pods": pods, "names": names}


def run_in_namespace(bin_dir: Path, overlay: str) -> None:
    """Builds the pod network for `overlay`, then re-runs this script inside it."""
    docs = render(overlay)
    plan = plan_pods(docs)
    tag = f"pfc{os.getpid() % 100000}"
    checks = f"{tag}-checks"
    namespaces = [checks] + [f"{tag}-{pod}" for pod in plan["pods"]]
    plan["netns"] = {pod: f"{tag}-{pod}" for pod in plan["pods"]}
    hosts = "127.0.0.1 localhost\n" + "".join(f"{ip} {name}\n" for name, ip in sorted(plan["names"].items()))

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    try:
        for ns in namespaces:
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
            # `ip netns exec` bind-mounts /etc/netns/<name>/hosts over /etc/hosts.
            (Path("/etc/netns") / ns).mkdir(parents=True, exist_ok=True)
            (Path("/etc/netns") / ns / "hosts").write_text(hosts)
        ip("-n", checks, "link", "add", "br0", "type", "bridge")
        ip("-n", checks, "addr", "add", f"{SUBNET}.1/24", "dev", "br0")
        ip("-n", checks, "link", "set", "br0", "up")
        for i, (pod, address) in enumerate(plan["pods"].items()):
            ns, veth = plan["netns"][pod], f"veth{i}"
            ip("-n", checks, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("-n", checks, "link", "set", veth, "master", "br0", "up")
            ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
        subprocess.run(["ip", "netns", "exec", checks, sys.executable, __file__, "--inside", str(bin_dir), overlay,
                        json.dumps(plan)], check=True)
    finally:
        for ns in namespaces:
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
            shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)


def deployment_env_value(docs: list[dict[str, Any]], variable: str) -> str:
    for deployment in of_kind(docs, "Deployment"):
        env = container_env(docs, deployment, {}, Path("/nonexistent"))
        if variable in env:
            return env[variable]
    raise AssertionError(f"no Deployment sets {variable}")


# ---------------------------------------------------------------------------
# Inside the namespace.


def http(method: str, url: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text) if text else None
    except json.JSONDecodeError:
        return status, text


def wait_for(what: str, deadline: float, probe) -> Any:
    last: Any = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
            last = value
        except OSError as err:
            last = err
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within the time allowed (last: {last!r})")


def start_redis(workdir: Path, plan: dict[str, Any], processes: list[subprocess.Popen]) -> None:
    """A Redis pod per node of REDIS_URL, each on the port the URL names; a cluster is
    formed. Each server goes into `processes` as soon as it starts (the caller stops them)."""
    nodes = [(f"redis-{i}", plan["pods"][f"redis-{i}"], port) for i, (_, port) in enumerate(plan["nodes"])]
    for pod, _, port in nodes:
        args = ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(workdir)]
        if plan["cluster"]:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", str(workdir / f"nodes-{pod}.conf")]
        processes.append(subprocess.Popen(["ip", "netns", "exec", plan["netns"][pod], *args],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def cli(address: str, port: int, *args: str) -> str:
        return subprocess.run(["redis-cli", "-h", address, "-p", str(port), *args],
                              capture_output=True, text=True, timeout=10).stdout

    for pod, address, port in nodes:
        wait_for(f"{pod} at {address}:{port}", time.monotonic() + 10, lambda a=address, p=port: cli(a, p, "ping").strip() == "PONG")
    if plan["cluster"]:
        subprocess.run(["redis-cli", "--cluster", "create", *[f"{a}:{p}" for _, a, p in nodes], "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        wait_for("the cluster to agree", time.monotonic() + 30,
                 lambda: all("cluster_state:ok" in cli(a, p, "cluster", "info") for _, a, p in nodes))


def test_secrets(workdir: Path) -> dict[tuple[str, str], bytes]:
    """A value for every (Secret, key) the manifests may reference."""
    key = workdir / "join-token.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True, capture_output=True)
    return {
        ("play-from-chat-jwt", "JWT_SECRET"): secrets.token_urlsafe(48).encode(),
        ("play-from-chat-join-token", "join-token.pem"): key.read_bytes(),
    }


def secret_value(values: dict[tuple[str, str], bytes], name: str, key: str) -> bytes:
    ensure((name, key) in values, f"the manifests reference Secret {name}/{key}, which the docs do not tell operators to create")
    return values[(name, key)]


def container_env(docs: list[dict[str, Any]], deployment: dict[str, Any], values: dict[tuple[str, str], bytes],
                  mounts_dir: Path) -> dict[str, str]:
    """The environment the kubelet would give the Deployment's first container."""
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update({k: str(v) for k, v in named(docs, "ConfigMap", source["configMapRef"]["name"]).get("data", {}).items()})
        elif "secretRef" in source:
            raise AssertionError("envFrom a whole Secret: reference its keys one by one")
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif "configMapKeyRef" in item["valueFrom"]:
            ref = item["valueFrom"]["configMapKeyRef"]
            env[item["name"]] = str(named(docs, "ConfigMap", ref["name"])["data"][ref["key"]])
        elif "secretKeyRef" in item["valueFrom"] and values:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secret_value(values, ref["name"], ref["key"]).decode()
    return env


def mount_secrets(deployment: dict[str, Any], values: dict[tuple[str, str], bytes], workdir: Path,
                  env: dict[str, str]) -> None:
    """Writes each mounted Secret under `workdir` and maps paths under its mount point there."""
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "secret" not in volume:
            continue
        name = volume["secret"]["secretName"]
        target = workdir / "mounts" / deployment["metadata"]["name"] / mount["name"]
        target.mkdir(parents=True, exist_ok=True)
        items = volume["secret"].get("items") or [{"key": k, "path": k} for (n, k) in values if n == name]
        for item in items:
            (target / item["path"]).write_bytes(secret_value(values, name, item["key"]))
        prefix = mount["mountPath"].rstrip("/")
        for key, value in env.items():
            if value == prefix or value.startswith(prefix + "/"):
                env[key] = str(target) + value[len(prefix):]


def port_number(container: dict[str, Any], port: Any) -> int:
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return int(p["containerPort"])
    raise AssertionError(f"container {container['name']} has no port named {port!r}")


class Replica:
    def __init__(self, docs, deployment, bin_dir: Path, values, workdir: Path, plan: dict[str, Any]):
        self.name = deployment["metadata"]["name"]
        self.address = plan["pods"][self.name]
        pod = deployment["spec"]["template"]["spec"]
        self.pod = pod
        self.container = pod["containers"][0]
        command = self.container.get("command") or []
        ensure(len(command) >= 1, f"{self.name}: the container names no command")
        binary = bin_dir / Path(command[0]).name
        ensure(binary.exists(), f"{self.name}: command {command[0]} is no workspace binary ({binary} missing)")
        self.env = container_env(docs, deployment, values, workdir)
        mount_secrets(deployment, values, workdir, self.env)
        self.grace = int(pod.get("terminationGracePeriodSeconds", 30))
        self.log_path = workdir / f"{self.name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        # Exactly the rendered environment: nothing of this script's own.
        # `ip netns exec` execs the binary in the pod's namespace (same pid, same environment).
        self.process = subprocess.Popen(["/usr/sbin/ip", "netns", "exec", plan["netns"][self.name],
                                         str(binary), *command[1:], *self.container.get("args", [])],
                                        env={"PATH": "/usr/bin:/bin", **self.env}, stdin=subprocess.DEVNULL,
                                        stdout=self._log, stderr=subprocess.STDOUT)

    def probe_url(self, probe: str) -> str:
        spec = self.container.get(probe)
        ensure(spec is not None and "httpGet" in spec, f"{self.name}: no httpGet {probe}")
        get = spec["httpGet"]
        return f"http://{self.address}:{port_number(self.container, get['port'])}{get['path']}"

    def check_probes(self) -> None:
        startup = self.container["startupProbe"]
        budget = startup.get("failureThreshold", 3) * startup.get("periodSeconds", 10) + startup.get("initialDelaySeconds", 0)
        url = self.probe_url("startupProbe")
        wait_for(f"{self.name}: startup probe {url}", time.monotonic() + min(budget, 60), lambda: self.alive() and http("GET", url)[0] == 200)
        for probe in ("readinessProbe", "livenessProbe"):
            url = self.probe_url(probe)
            wait_for(f"{self.name}: {probe} {url}", time.monotonic() + 15, lambda u=url: http("GET", u)[0] == 200)

    def alive(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
        return True

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text("utf-8", "replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()


def service_port(docs, service_name: str, port_name: str, replica: Replica) -> int:
    service = named(docs, "Service", service_name)
    for port in service["spec"]["ports"]:
        if port.get("name") == port_name:
            return port_number(replica.container, port.get("targetPort", port["port"]))
    raise AssertionError(f"Service {service_name} has no port named {port_name!r}")


def service_of(docs, replica: Replica) -> dict[str, Any]:
    labels = replica.pod.get("metadata", {}).get("labels") or {}
    for deployment in of_kind(docs, "Deployment"):
        if deployment["metadata"]["name"] == replica.name:
            labels = deployment["spec"]["template"]["metadata"]["labels"]
    for service in of_kind(docs, "Service"):
        selector = service["spec"].get("selector") or {}
        if selector and all(labels.get(k) == v for k, v in selector.items()):
            return service
    raise AssertionError(f"no Service selects {replica.name}")


def check_metrics_port(docs, replicas: dict[str, Replica]) -> dict[str, str]:
    """Each ServiceMonitor endpoint's port answers /metrics; the API port does not. Returns the text per replica."""
    texts = {}
    monitors = of_kind(docs, "ServiceMonitor")
    for name, replica in replicas.items():
        service = service_of(docs, replica)
        endpoint = None
        for monitor in monitors:
            selector = monitor["spec"]["selector"].get("matchLabels", {})
            if all(service["metadata"].get("labels", {}).get(k) == v for k, v in selector.items()):
                endpoint = monitor["spec"]["endpoints"][0]
        if endpoint is None:
            # The overlay has no monitoring: scrape the container port named `metrics`.
            port = port_number(replica.container, "metrics")
            path = "/metrics"
        else:
            port = service_port(docs, service["metadata"]["name"], endpoint["port"], replica)
            path = endpoint.get("path", "/metrics")
        status, text = http("GET", f"http://{replica.address}:{port}{path}")
        ensure(status == 200 and isinstance(text, str) and "_http_requests_total" in text,
               f"{name}: {path} on the scraped port {port} answered {status}")
        api = port_number(replica.container, "http")
        ensure(api != port, f"{name}: metrics share the API port {api}")
        status, _ = http("GET", f"http://{replica.address}:{api}{path}")
        ensure(status == 404, f"{name}: {path} is also served on the API port {api} ({status})")
        texts[name] = f"http://{replica.address}:{port}{path}"
    return texts


def mint(secret: str, user: str, issuer: str, audience: str, scope: str = "player") -> str:
    now = int(time.time())
    return jwt.encode({"sub": user, "iss": issuer, "aud": audience, "scope": scope, "iat": now, "exp": now + 600},
                      secret, algorithm="HS256")


def pairing(im: str, game: str, tokens: dict[str, str]) -> None:
    """One pairing through the Service addresses: chat, invite, accept, join, accept."""
    alice, bob = tokens["alice"], tokens["bob"]
    for token in (alice, bob):
        status, body = http("PUT", f"{im}/v1/presence", token, {"status": "available"})
        ensure(status in (200, 204), f"PUT presence: {status} {body}")
    status, chat = http("POST", f"{im}/v1/conversations", alice, {"participants": ["bob"]})
    ensure(status in (200, 201), f"POST conversations: {status} {chat}")
    for token, text in ((alice, "play?"), (bob, "sure")):
        status, body = http("POST", f"{im}/v1/conversations/{chat['id']}/messages", token, {"text": text})
        ensure(status in (200, 201), f"POST message: {status} {body}")
    status, state = http("POST", f"{game}/v1/connect", alice)
    ensure(status == 200 and (state.get("prompt") or {}).get("kind") == "invite", f"alice's connect: {status} {state}")
    status, state = http("POST", f"{game}/v1/prompts/{state['prompt']['id']}/accept", alice)
    ensure(status == 200, f"alice's accept: {status} {state}")
    status, state = http("POST", f"{game}/v1/connect", bob)
    ensure(status == 200 and (state.get("prompt") or {}).get("kind") == "join", f"bob's connect: {status} {state}")
    status, state = http("POST", f"{game}/v1/prompts/{state['prompt']['id']}/accept", bob)
    ensure(status == 200 and (state.get("session") or {}).get("state") == "active", f"bob's accept: {status} {state}")


METRIC_TOKEN = re.compile(r"\b((?:game|im)_[a-z0-9_]+)")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
QUERY_KEYS = ("expr", "seriesQuery", "metricsQuery")


def queries(value: Any) -> list[str]:
    """The PromQL strings under `expr`, `seriesQuery` or `metricsQuery` anywhere in a JSON/YAML value."""
    if isinstance(value, dict):
        return [q for k, v in value.items() for q in ([v] if k in QUERY_KEYS and isinstance(v, str) else queries(v))]
    if isinstance(value, list):
        return [q for v in value for q in queries(v)]
    return []


def referenced_metrics(docs) -> set[str]:
    """Every game_*/im_* series the alert rules, the dashboard and the adapter rules name."""
    texts = []
    for rule in of_kind(docs, "PrometheusRule"):
        texts += queries(rule["spec"])
    for config in of_kind(docs, "ConfigMap"):
        for raw in (config.get("data") or {}).values():
            try:
                texts += queries(json.loads(raw))
            except json.JSONDecodeError:
                texts += queries(yaml.safe_load(raw)) if any(k in raw for k in QUERY_KEYS) else []
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        texts += [m["pods"]["metric"]["name"] for m in hpa["spec"].get("metrics", []) if m.get("type") == "Pods"]
    # Label values (reason="im_unavailable") are no series.
    return {name for text in texts for name in METRIC_TOKEN.findall(re.sub(r'"[^"]*"', '""', text))}


def check_metric_names(docs, metrics_urls: dict[str, str]) -> int:
    exposed = set()
    for url in metrics_urls.values():
        status, text = http("GET", url)
        ensure(status == 200, f"{url}: {status}")
        exposed |= {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
        exposed |= {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    names = referenced_metrics(docs)
    missing = sorted(n for n in names if n not in exposed and not any(n == e + s for e in exposed for s in HISTOGRAM_SUFFIXES))
    ensure(not missing, f"named by the rules, dashboard or autoscaler but not in /metrics after a pairing: {missing}")
    return len(names)


class Stream:
    """An open event stream, read on a thread: its frames, and whether it ended."""

    def __init__(self, url: str, token: str):
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        self.response = urllib.request.urlopen(request, timeout=120)  # noqa: SIM115
        self.frames: list[str] = []
        self.ended = threading.Event()
        self.error: BaseException | None = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        try:
            while chunk := self.response.read1(65536):
                buffer += chunk
                while b"\n\n" in buffer:
                    frame, buffer = buffer.split(b"\n\n", 1)
                    self.frames.append(frame.decode())
        except BaseException as err:  # noqa: BLE001 - reported by the check
            self.error = err
        self.ended.set()

    def retries(self) -> list[int]:
        return [int(f.split(":", 1)[1]) for f in self.frames if f.startswith("retry:")]


def check_sigterm(replica: Replica, api: str, token: str | None) -> None:
    settings = replica.env
    delay = float(settings.get("SHUTDOWN_DELAY_SECS", "0"))
    jitter_ms = int(settings.get("SHUTDOWN_RECONNECT_JITTER_MS", "5000"))
    ensure(delay >= 1, f"{replica.name}: SHUTDOWN_DELAY_SECS is {delay}: endpoints would still route to a stopped replica")
    stream = Stream(f"{api}/v1/events", token) if token else None
    if stream:
        wait_for("the stream's opening retry", time.monotonic() + 5, lambda: stream.retries() == [1000])
    ready = replica.probe_url("readinessProbe")
    live = replica.probe_url("livenessProbe")
    replica.process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    wait_for(f"{replica.name}: /readyz 503 after SIGTERM", signalled + 1.0, lambda: http("GET", ready)[0] == 503)
    # Still serving while endpoints are being removed.
    ensure(http("GET", live)[0] == 200, f"{replica.name}: liveness failed while draining")
    if token:
        status, _ = http("GET", f"{api}/v1/me", token)
        ensure(status == 200, f"{replica.name}: a request while draining answered {status}")
        ensure(not stream.ended.is_set(), f"{replica.name}: the stream ended before the drain delay")
    if stream:
        ensure(stream.ended.wait(delay + 5), f"{replica.name}: the event stream did not end after the delay")
        ended = time.monotonic() - signalled
        ensure(ended >= delay - 0.2, f"{replica.name}: the stream ended after {ended:.1f}s, before the {delay}s delay")
        ensure(stream.error is None, f"{replica.name}: the stream broke instead of ending: {stream.error!r}")
        last = stream.retries()[-1]
        ensure(len(stream.retries()) == 2 and 1000 <= last <= 1000 + jitter_ms,
               f"{replica.name}: the stream's last retry {stream.retries()} is not within [1000, {1000 + jitter_ms}]")
    try:
        code = replica.process.wait(timeout=max(0.0, replica.grace - (time.monotonic() - signalled)))
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f"{replica.name}: still running {replica.grace}s (the grace period) after SIGTERM") from err
    ensure(code == 0, f"{replica.name}: exit {code} after SIGTERM:\n{replica.log_tail()}")
    print(f"    {replica.name}: readiness 503 at once, stream retry within jitter, exit 0 after {time.monotonic() - signalled:.1f}s (grace {replica.grace}s)")


def inside(bin_dir: Path, overlay: str, plan: dict[str, Any]) -> None:
    docs = render(overlay)
    workdir = Path(tempfile.mkdtemp(prefix="deploy-run-"))
    redis: list[subprocess.Popen] = []
    replicas: dict[str, Replica] = {}
    try:
        start_redis(workdir, plan, redis)
        values = test_secrets(workdir)
        deployments = sorted(of_kind(docs, "Deployment"), key=lambda d: d["metadata"]["name"] != "im-service")
        ensure({d["metadata"]["name"] for d in deployments} == {"im-service", "game-service"},
               f"expected the two Deployments, got {[d['metadata']['name'] for d in deployments]}")
        for deployment in deployments:
            replica = Replica(docs, deployment, bin_dir, values, workdir, plan)
            replicas[replica.name] = replica
            replica.check_probes()
        print(f"    probes answer 200: {', '.join(sorted(replicas))}")
        metrics_urls = check_metrics_port(docs, replicas)
        game_env = replicas["game-service"].env
        im_url = game_env["IM_URL"].rstrip("/")
        game_service = service_of(docs, replicas["game-service"])
        game_url = f"http://{game_service['metadata']['name']}:{game_service['spec']['ports'][0]['port']}"
        secret = game_env["JWT_SECRET"]
        issuer = game_env.get("JWT_ISSUER", "game-platform")
        audience = game_env.get("JWT_AUDIENCE", "game-platform")
        tokens = {user: mint(secret, user, issuer, audience) for user in ("alice", "bob")}
        pairing(im_url, game_url, tokens)
        print(f"    one pairing through {im_url} and {game_url}")
        count = check_metric_names(docs, metrics_urls)
        print(f"    all {count} metrics the rules, dashboard and autoscaler name are exposed" if count else "    (no monitoring component in this overlay)")
        check_sigterm(replicas["game-service"], game_url, tokens["bob"])
        check_sigterm(replicas["im-service"], im_url, None)
    except BaseException:
        for replica in replicas.values():
            print(f"---- {replica.name} log ----\n{replica.log_tail()}", file=sys.stderr)
        raise
    finally:
        for replica in replicas.values():
            replica.stop()
        for process in redis:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    if len(sys.argv) >= 2 and sys.argv[1] == "--inside":
        inside(Path(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4]))
        return 0
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    bin_dir = Path(sys.argv[1]).resolve()
    ensure(os.geteuid() == 0, "needs root for network namespaces (CI runs as root)")
    for overlay in sys.argv[2:]:
        print(f"==> {overlay}: the rendered Deployments run")
        run_in_namespace(bin_dir, overlay)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as failure:
        print(f"deploy run check FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
