"""What the Rust side provides, read from the workspace: its binaries and packages
(`cargo metadata`), the environment variables each service reads and the
Prometheus series it exports (from the sources). Used by deploy_check_*.py.

    python3 scripts/deploy_check_rust.py     # prints what it found, for debugging
"""

from __future__ import annotations

import functools
import json
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Calls that read one environment variable by name, and at which argument.
BASE_READERS = {"env_or": {0}, "env_opt": {0}, "var": {0}, "var_os": {0}, "remove_var": set(), "set_var": set()}
# tracing-subscriber's EnvFilter reads RUST_LOG without naming it.
IMPLICIT = {
    r"\bEnvFilter::(?:try_)?from_default_env\b": "RUST_LOG",
    r"\.from_env_lossy\(\)": "RUST_LOG",
    r"\bEnvFilter::builder\(\)": "RUST_LOG",
}
# Series that third-party exporters provide (alerts may use them).
EXTERNAL_METRICS = {
    "kube_deployment_status_replicas_unavailable",
    "kube_deployment_status_replicas_available",
    "kube_deployment_spec_replicas",
    "kube_pod_status_ready",
    "kube_pod_container_status_restarts_total",
    "up",
}


@functools.lru_cache(maxsize=None)
def metadata() -> dict:
    out = subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version", "1"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def packages() -> dict[str, dict]:
    return {p["name"]: p for p in metadata()["packages"]}


def binaries() -> dict[str, str]:
    """Binary name -> package name, for every `bin` target of the workspace."""
    found = {}
    for package in metadata()["packages"]:
        for target in package["targets"]:
            if "bin" in target["kind"]:
                found[target["name"]] = package["name"]
    return found


def member_dirs() -> list[pathlib.Path]:
    """Every workspace member's directory, relative to the root."""
    members = set(metadata()["workspace_members"])
    return sorted(
        pathlib.Path(p["manifest_path"]).parent.relative_to(ROOT)
        for p in metadata()["packages"]
        if p["id"] in members
    )


def closure(package: str) -> list[str]:
    """The package and the workspace packages it depends on (normal dependencies), transitively."""
    pkgs = packages()
    seen: list[str] = []
    todo = [package]
    while todo:
        name = todo.pop()
        if name in seen or name not in pkgs:
            continue
        seen.append(name)
        for dep in pkgs[name]["dependencies"]:
            if dep.get("path") and dep["kind"] in (None, "normal"):
                todo.append(dep["name"])
    return seen


def _sources(package: str) -> list[pathlib.Path]:
    src = pathlib.Path(packages()[package]["manifest_path"]).parent / "src"
    return sorted(p for p in src.rglob("*.rs") if p.name != "tests.rs" and "tests" not in p.relative_to(src).parts)


def _strip(text: str) -> str:
    """Comments out, and `#[cfg(test)]` items (test modules) cut."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"(?m)//.*$", "", text)
    out = []
    i = 0
    for m in re.finditer(r"#\[cfg\(test\)\]", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        j = m.end()
        brace = text.find("{", j)
        semi = text.find(";", j)
        if brace == -1 or (semi != -1 and semi < brace):
            i = semi + 1 if semi != -1 else len(text)
            continue
        depth, k = 0, brace
        while k < len(text):
            if text[k] == "{":
                depth += 1
            elif text[k] == "}":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        i = k + 1
    out.append(text[i:])
    return "".join(out)


def _args(text: str, open_paren: int) -> list[str]:
    """The top-level arguments of the call whose `(` is at open_paren."""
    depth, start, args, k = 0, open_paren + 1, [], open_paren
    in_str = False
    while k < len(text):
        c = text[k]
        if in_str:
            if c == "\\":
                k += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                args.append(text[start:k].strip())
                break
        elif c == "," and depth == 1:
            args.append(text[start:k].strip())
            start = k + 1
        k += 1
    return [a for a in args if a]


def _calls(text: str, name: str):
    for m in re.finditer(r"(?<![A-Za-z0-9_])" + re.escape(name) + r"\s*(?:::<[^>]*>)?\s*\(", text):
        yield _args(text, m.end() - 1)


def _functions(text: str):
    """(name, [parameter names], body) of every fn in text."""
    for m in re.finditer(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)\s*(?:<[^>{]*>)?\s*\(", text):
        params = _args(text, m.end() - 1)
        names = [re.sub(r"^mut\s+", "", p.split(":")[0].strip()) for p in params]
        brace = text.find("{", m.end())
        if brace == -1:
            continue
        depth, k = 0, brace
        while k < len(text):
            if text[k] == "{":
                depth += 1
            elif text[k] == "}":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        yield m.group(1), names, text[brace : k + 1]


def _literal(arg: str, consts: dict[str, str]) -> str | None:
    m = re.fullmatch(r'"([A-Z][A-Z0-9_]*)"', arg)
    if m:
        return m.group(1)
    ident = arg.split("::")[-1].lstrip("&").strip()
    return consts.get(ident)


@functools.lru_cache(maxsize=None)
def env_vars(package: str) -> frozenset[str]:
    """Environment variables the package (with its workspace dependencies) reads."""
    texts = [_strip(p.read_text()) for name in closure(package) for p in _sources(name)]
    joined = "\n".join(texts)
    consts = dict(re.findall(r'\bconst\s+([A-Z][A-Z0-9_]*)\s*:\s*&(?:\'static\s+)?str\s*=\s*"([A-Z][A-Z0-9_]*)"', joined))
    readers = {k: set(v) for k, v in BASE_READERS.items()}
    # A helper taking a name and handing it to a reader is a reader too (positive(),
    # pem_key(), ...): found by following parameters into reader calls, to a fixpoint.
    changed = True
    while changed:
        changed = False
        for fname, params, body in _functions(joined):
            for reader, positions in list(readers.items()):
                for args in _calls(body, reader):
                    for pos in positions:
                        if pos < len(args) and args[pos] in params:
                            index = params.index(args[pos])
                            # methods: `self` is not an argument at the call site
                            if params and params[0] in ("self", "&self", "&mut self"):
                                index -= 1
                            if index >= 0 and index not in readers.setdefault(fname, set()):
                                readers[fname].add(index)
                                changed = True
    names = set()
    for reader, positions in readers.items():
        for args in _calls(joined, reader):
            for pos in positions:
                if pos < len(args):
                    lit = _literal(args[pos], consts)
                    if lit:
                        names.add(lit)
    for pattern, name in IMPLICIT.items():
        if re.search(pattern, joined):
            names.add(name)
    return frozenset(names)


@functools.lru_cache(maxsize=None)
def metric_names() -> frozenset[str]:
    """Series the services export: their own metric names, the HTTP series of the
    Prometheus middleware (`{ns}_http_requests_total`, `{ns}_http_requests_duration_seconds`)
    for each namespace given to service_kit::ops::metrics*, and histogram suffixes."""
    names = set()
    for service in ("game-service", "im-service"):
        text = "\n".join(_strip(p.read_text()) for name in closure(service) for p in _sources(name))
        own = set(re.findall(r'"((?:game|im|redis)_[a-z0-9_]+)"', text))
        names.update(own)
        # The HTTP middleware (actix-web-prom's PrometheusMetricsBuilder) names its
        # series after the namespace the service hands down: a short literal passed
        # to a call in the service's own sources that prefixes its own series.
        if "PrometheusMetricsBuilder" in text:
            local = "\n".join(_strip(p.read_text()) for p in _sources(service))
            for ns in set(re.findall(r'\(\s*"([a-z][a-z0-9]*)"\s*[,)]', local)):
                if any(n.startswith(ns + "_") for n in own):
                    names.update({f"{ns}_http_requests_total", f"{ns}_http_requests_duration_seconds"})
    expanded = set(names)
    for name in names:
        if not name.endswith(("_total", "_bucket", "_sum", "_count")):
            expanded.update({name + "_bucket", name + "_sum", name + "_count"})
    return frozenset(expanded | EXTERNAL_METRICS)


if __name__ == "__main__":
    print("binaries:", binaries())
    print("members:", [str(d) for d in member_dirs()])
    for svc in ("game-service", "im-service"):
        print(svc, "closure:", closure(svc))
        print(svc, "env:", sorted(env_vars(svc)))
    print("metrics:", sorted(n for n in metric_names() if not n.endswith(("_bucket", "_sum", "_count"))))
    sys.exit(0)
