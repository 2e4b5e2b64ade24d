#!/usr/bin/env bash
# Print the worker's and the cache API's replica counts every INTERVAL seconds
# (for DURATION seconds, default: until Ctrl-C). Job mode counts KEDA's active Jobs.
set -euo pipefail
cd "$(dirname "$0")/.."
INTERVAL=${INTERVAL:-5}; DURATION=${DURATION:-0}
. scripts/stack_env.sh
MODE=$(out workerMode); SCALED=$(out workerScaledObjectName); API=$(out cacheApiDeploymentName)
WORKER=$(out workerDeploymentName || true)
worker_count() {
  if [ "$MODE" = job ]; then
    "${KUBECTL[@]}" get jobs -l "scaledjob.keda.sh/name=$SCALED" \
      -o jsonpath='{range .items[?(@.status.active)]}{.metadata.name}{"\n"}{end}' | grep -c . || true
  else
    replicas_of "$WORKER"
  fi
}
# Kubernetes omits .status.replicas at 0: jsonpath prints nothing, so default it here.
replicas_of() { local n; n=$("${KUBECTL[@]}" get deploy "$1" -o jsonpath='{.status.replicas}'); echo "${n:-0}"; }
api_count() { replicas_of "$API"; }
printf '%-20s %-8s %-8s\n' time worker cache-api
start=$(date +%s)
while :; do
  printf '%-20s %-8s %-8s\n' "$(date +%H:%M:%S)" "$(worker_count)" "$(api_count)"
  if [ "$DURATION" -gt 0 ] && [ $(( $(date +%s) - start )) -ge "$DURATION" ]; then break; fi
  sleep "$INTERVAL"
done
