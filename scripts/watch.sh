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
    "${KUBECTL[@]}" get deploy "$WORKER" -o jsonpath='{.status.replicas}' | sed 's/^$/0/'
  fi
}
api_count() { "${KUBECTL[@]}" get deploy "$API" -o jsonpath='{.status.replicas}' | sed 's/^$/0/'; }
printf '%-20s %-8s %-8s\n' time worker cache-api
start=$(date +%s)
while :; do
  printf '%-20s %-8s %-8s\n' "$(date +%H:%M:%S)" "$(worker_count)" "$(api_count)"
  if [ "$DURATION" -gt 0 ] && [ $(( $(date +%s) - start )) -ge "$DURATION" ]; then break; fi
  sleep "$INTERVAL"
done
