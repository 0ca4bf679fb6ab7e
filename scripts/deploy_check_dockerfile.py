#!/usr/bin/env python3
"""The Dockerfile agrees with the workspace (run by scripts/deploy_check.sh).

Fails when
- a COPY/ADD source (outside `--from=`) does not exist in the repository, or the
  .dockerignore leaves it out of the build context;
- a workspace member's Cargo.toml is not copied (cargo could not load the workspace);
- a binary the Dockerfile names (`target/release/X`, `/usr/local/bin/X`, `--bin X`,
  the ENTRYPOINT) is not a `bin` target of the workspace, a `-p` package is not a
  workspace package, or the runtime stage lacks game-service or im-service;
- a `cargo build` lacks `--release` or `--locked`;
- an EXPOSEd port is not a default port of the services (README's BIND_ADDR
  defaults: 8080 game, 8081 IM) or the metrics port 9090, or one of those is missing;
- the builder's Rust is older than the workspace's rust-version, the runtime is not
  distroless `:nonroot`, or USER is not the numeric 65532:65532.

    python3 scripts/deploy_check_dockerfile.py [Dockerfile]
"""

from __future__ import annotations

import fnmatch
import glob
import pathlib
import re
import shlex
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import deploy_check_rust as rust  # noqa: E402

ROOT = rust.ROOT
METRICS_PORT = 9090
RUNTIME_BINARIES = {"game-service", "im-service"}


def instructions(text: str):
    """(line number, INSTRUCTION, arguments) with continuations joined, comments dropped."""
    out, buf, start = [], "", 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue
        if not buf:
            start = number
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        word, _, rest = buf.partition(" ")
        out.append((start, word.upper(), rest.strip()))
        buf = ""
    return out


def dockerignore_patterns() -> list[tuple[bool, str]]:
    path = ROOT / ".dockerignore"
    if not path.exists():
        return []
    patterns = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        patterns.append((negate, pattern.strip("/")))
    return patterns


def _match(pattern: str, path: str) -> bool:
    if "**" in pattern:
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        regex = regex.replace(r"\?", "[^/]")
        return re.fullmatch(regex, path) is not None
    return fnmatch.fnmatchcase(path, pattern) and path.count("/") == pattern.count("/")


def ignored(path: str, patterns) -> bool:
    """Docker's rule: the last matching pattern wins; a directory's exclusion covers its files."""
    parts = path.strip("/").split("/")
    result = False
    for negate, pattern in patterns:
        for i in range(1, len(parts) + 1):
            if _match(pattern, "/".join(parts[:i])):
                result = not negate
                break
    return result


def readme_default_ports() -> set[int]:
    text = (ROOT / "README.md").read_text()
    row = next((line for line in text.splitlines() if line.startswith("| `BIND_ADDR`")), None)
    if row is None:
        return set()
    return {int(p) for p in re.findall(r"0\.0\.0\.0:(\d+)", row)}


def check(dockerfile: pathlib.Path) -> list[str]:
    errors: list[str] = []
    text = dockerfile.read_text()
    steps = instructions(text)
    patterns = dockerignore_patterns()
    bins = rust.binaries()
    pkgs = set(rust.packages())
    stages: list[dict] = []
    copied: set[str] = set()
    named_bins: set[tuple[int, str]] = set()

    for line, word, args in steps:
        if word == "FROM":
            parts = args.split()
            image = next(p for p in parts if not p.startswith("--"))
            alias = parts[parts.index("AS") + 1] if "AS" in parts else (parts[parts.index("as") + 1] if "as" in parts else None)
            stages.append({"image": image, "alias": alias, "line": line, "user": None, "copies": [], "entrypoint": None})
            continue
        if not stages:
            if word != "ARG":
                errors.append(f"Dockerfile:{line}: {word} before the first FROM")
            continue
        stage = stages[-1]
        if word in ("COPY", "ADD"):
            tokens = shlex.split(args)
            flags = [t for t in tokens if t.startswith("--")]
            rest = [t for t in tokens if not t.startswith("--")]
            if len(rest) < 2:
                errors.append(f"Dockerfile:{line}: {word} needs a source and a destination")
                continue
            sources, dest = rest[:-1], rest[-1]
            stage["copies"].append((flags, sources, dest))
            if any(f.startswith("--from=") for f in flags):
                for src in sources:
                    for m in re.finditer(r"(?:^|/)(?:target/release|out|bin)/([A-Za-z0-9_.-]+)$", src):
                        named_bins.add((line, m.group(1)))
                continue
            for src in sources:
                if re.match(r"^[a-z]+://", src):
                    errors.append(f"Dockerfile:{line}: remote source {src}: use files of the repository")
                    continue
                rel = src[2:] if src.startswith("./") else src
                rel = rel.rstrip("/") or "."
                matches = glob.glob(str(ROOT / rel)) if rel != "." else [str(ROOT)]
                if not matches:
                    errors.append(f"Dockerfile:{line}: COPY source {src!r} does not exist in the repository")
                    continue
                for found in matches:
                    relpath = str(pathlib.Path(found).relative_to(ROOT))
                    copied.add(relpath)
                    if relpath != "." and ignored(relpath, patterns):
                        errors.append(f"Dockerfile:{line}: COPY source {src!r} is excluded by .dockerignore")
        elif word == "RUN":
            for m in re.finditer(r"\bcargo\s+build\b([^&;|]*)", args):
                opts = m.group(1)
                for flag in ("--release", "--locked"):
                    if flag not in opts.split():
                        errors.append(f"Dockerfile:{line}: `cargo build` without {flag}")
                for pkg in re.findall(r"(?:-p|--package)\s+([A-Za-z0-9_-]+)", opts):
                    if pkg not in pkgs:
                        errors.append(f"Dockerfile:{line}: -p {pkg}: not a package of the workspace ({sorted(pkgs)})")
                for name in re.findall(r"--bin\s+([A-Za-z0-9_-]+)", opts):
                    named_bins.add((line, name))
            for name in re.findall(r"target/release/([A-Za-z0-9_-]+)", args):
                named_bins.add((line, name))
        elif word == "USER":
            stage["user"] = (line, args)
        elif word in ("ENTRYPOINT", "CMD"):
            stage["entrypoint" if word == "ENTRYPOINT" else "cmd"] = (line, args)
            for name in re.findall(r"/usr/local/bin/([A-Za-z0-9_-]+)", args):
                named_bins.add((line, name))
        elif word == "EXPOSE":
            stage.setdefault("expose", []).append((line, args))

    if not stages:
        return ["Dockerfile: no FROM"]

    for line, name in sorted(named_bins):
        if name not in bins:
            errors.append(f"Dockerfile:{line}: binary {name!r} is not a bin target of the workspace ({sorted(bins)})")

    # The workspace loads only with every member's manifest.
    for member in rust.member_dirs():
        manifest = str(member / "Cargo.toml")
        if manifest not in copied and str(member) not in copied:
            errors.append(f"Dockerfile: the workspace member {member} is not copied ({manifest}): cargo cannot load the workspace")
    for top in ("Cargo.toml", "Cargo.lock"):
        if top not in copied:
            errors.append(f"Dockerfile: {top} is not copied")

    # Builder toolchain.
    builder = stages[0]
    m = re.match(r"(?:docker\.io/(?:library/)?)?rust:(\d+)\.(\d+)", builder["image"])
    rust_version = max(
        (tuple(int(x) for x in p["rust_version"].split(".")[:2]) for p in rust.metadata()["packages"] if p.get("rust_version")),
        default=(0, 0),
    )
    if not m:
        errors.append(f"Dockerfile:{builder['line']}: the builder should be an official rust:<major>.<minor>-… image, not {builder['image']}")
    elif (int(m.group(1)), int(m.group(2))) < rust_version:
        errors.append(f"Dockerfile:{builder['line']}: {builder['image']} is older than the workspace's rust-version {rust_version}")

    # Runtime stage.
    runtime = stages[-1]
    if not re.fullmatch(r"gcr\.io/distroless/cc-debian\d+:nonroot(@sha256:[0-9a-f]{64})?", runtime["image"]):
        errors.append(f"Dockerfile:{runtime['line']}: the runtime should be gcr.io/distroless/cc-debian12:nonroot, not {runtime['image']}")
    if not runtime["user"] or runtime["user"][1] != "65532:65532":
        errors.append("Dockerfile: the runtime stage must set USER 65532:65532 (numeric, so runAsNonRoot can verify it)")
    installed = set()
    for flags, sources, dest in runtime["copies"]:
        if dest.rstrip("/") == "/usr/local/bin" or dest.startswith("/usr/local/bin/"):
            installed.update(pathlib.PurePosixPath(s).name for s in sources)
            if not dest.endswith("/") and len(sources) == 1:
                installed.add(pathlib.PurePosixPath(dest).name)
    for name in sorted(RUNTIME_BINARIES - installed):
        errors.append(f"Dockerfile: the runtime stage does not install /usr/local/bin/{name}")
    for name in sorted(installed - set(bins)):
        errors.append(f"Dockerfile: /usr/local/bin/{name} is not a bin target of the workspace")

    # Ports.
    allowed = readme_default_ports()
    if not allowed:
        errors.append("README.md: no BIND_ADDR row with default ports in the Configuration table")
    allowed |= {METRICS_PORT}
    exposed = set()
    for line, args in runtime.get("expose", []):
        for token in args.split():
            port = token.split("/")[0]
            if not port.isdigit():
                errors.append(f"Dockerfile:{line}: EXPOSE {token}: not a port number")
                continue
            exposed.add(int(port))
            if int(port) not in allowed:
                errors.append(f"Dockerfile:{line}: EXPOSE {port} is not a default port of the services ({sorted(allowed)})")
    for port in sorted(allowed - exposed):
        errors.append(f"Dockerfile: port {port} (a default port of the services) is not EXPOSEd")
    return errors


def main() -> int:
    dockerfile = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "Dockerfile"
    errors = check(dockerfile)
    for error in errors:
        print(error, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
