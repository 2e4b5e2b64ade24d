#!/usr/bin/env bash
# Create the kind cluster for the `local` stack, install metrics-server (the cache API's
# HPA scales on CPU and needs the resource metrics API), and load the app images.
# Idempotent: re-running keeps the existing cluster and reloads the images.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/require.sh docker kind kubectl

CLUSTER=${KIND_CLUSTER:-redis-keda}
CONTEXT="kind-${CLUSTER}"
METRICS_SERVER_VERSION=${METRICS_SERVER_VERSION:-v0.7.2}
IMAGES=${IMAGES:?IMAGES (space-separated image refs) must be set; use make kind-up}

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  echo "kind-up: cluster '$CLUSTER' exists, keeping it"
else
  kind create cluster --name "$CLUSTER" --config deploy/kind/cluster.yaml --wait 180s
fi

echo "kind-up: metrics-server ${METRICS_SERVER_VERSION}"
kubectl --context "$CONTEXT" apply -f \
  "https://github.com/kubernetes-sigs/metrics-server/releases/download/${METRICS_SERVER_VERSION}/components.yaml"
# kind's kubelets serve self-signed certificates: metrics-server must not verify them.
if ! kubectl --context "$CONTEXT" -n kube-system get deployment metrics-server \
      -o jsonpath='{.spec.template.spec.containers[0].args}' | grep -q -- '--kubelet-insecure-tls'; then
  kubectl --context "$CONTEXT" -n kube-system patch deployment metrics-server --type=json \
    -p '[{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--kubelet-insecure-tls"}]'
fi
kubectl --context "$CONTEXT" -n kube-system rollout status deployment/metrics-server --timeout=180s

for image in $IMAGES; do
  if ! docker image inspect "$image" >/dev/null 2>&1; then
    echo "kind-up: image $image is not built; run 'make images' first" >&2
    exit 1
  fi
  kind load docker-image --name "$CLUSTER" "$image"
done
echo "kind-up: ready (kubectl context ${CONTEXT})"
