#!/usr/bin/env bash
# Validates the Kubernetes manifests (part of `make lint`):
# - every overlay under deploy/k8s/overlays is rendered with `kubectl kustomize` and each object
#   checked against the Kubernetes OpenAPI schemas with `kubernetes-validate --strict` (unknown
#   fields are errors; an object without a schema, e.g. a CRD, fails too);
# - the prod Envoy config is checked with `envoy --mode validate`. Envoy reads the certificate
#   files while validating, so a copy with the paths pointing at throwaway self-signed
#   certificates is validated.
# K8S_VERSION picks the schema version (one kubernetes-validate bundles; default 1.32.0).
set -euo pipefail
cd "$(dirname "$0")"

K8S_VERSION=${K8S_VERSION:-1.32.0}
for tool in kubectl kubernetes-validate envoy openssl; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for dir in overlays/*/; do
  overlay=$(basename "$dir")
  rendered="$tmp/$overlay.yaml"
  kubectl kustomize "$dir" >"$rendered"
  objects=$(grep -c '^kind:' "$rendered" || true)
  if ! report=$(kubernetes-validate --strict -k "$K8S_VERSION" "$rendered" 2>&1); then
    grep -v '^INFO ' <<<"$report" >&2
    echo "FAIL $overlay: kubernetes-validate found errors" >&2
    exit 1
  fi
  # kubernetes-validate only warns (exit 0) for an object it has no schema for: fail on those,
  # and make sure every rendered object was checked.
  if grep -q '^WARN ' <<<"$report"; then
    grep '^WARN ' <<<"$report" >&2
    echo "FAIL $overlay: objects without a schema" >&2
    exit 1
  fi
  passed=$(grep -c '^INFO .* passed for resource ' <<<"$report" || true)
  if ((objects == 0 || passed != objects)); then
    echo "FAIL $overlay: $passed of $objects objects validated" >&2
    exit 1
  fi
  echo "ok   $overlay: $objects objects valid against Kubernetes $K8S_VERSION (strict)"
done

# Prod Envoy: TLS for browsers (/etc/envoy/tls) and the client certificate to the gateway
# (/etc/envoy/mtls), both replaced by one self-signed certificate that is also its own CA.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=gateway -addext subjectAltName=DNS:gateway \
  -keyout "$tmp/tls.key" -out "$tmp/tls.crt" 2>/dev/null
cp "$tmp/tls.crt" "$tmp/ca.crt"
sed -e "s#/etc/envoy/tls/#$tmp/#g" -e "s#/etc/envoy/mtls/#$tmp/#g" overlays/prod/envoy.yaml >"$tmp/envoy.prod.yaml"
if grep -v '^ *#' "$tmp/envoy.prod.yaml" | grep -q '/etc/envoy/'; then
  echo "FAIL prod envoy.yaml: a file path outside /etc/envoy/tls and /etc/envoy/mtls" >&2
  exit 1
fi
if ! out=$(envoy --mode validate -c "$tmp/envoy.prod.yaml" --log-level warn 2>&1); then
  echo "$out" >&2
  echo "FAIL prod envoy.yaml: envoy --mode validate" >&2
  exit 1
fi
echo "ok   prod envoy.yaml: envoy --mode validate (throwaway certificates)"
