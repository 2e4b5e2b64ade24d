#!/usr/bin/env bash
# Submit COUNT tasks at RATE/s from inside the deployed producer pod (it already has the
# Redis endpoint, password and NetworkPolicy access), then wait until every task's
# result hash exists (bounded by WAIT seconds). With producerReplicas: 0 there is no such
# pod: the burst runs in a one-off Pod made from the producer Deployment's own template
# (tools/burst_pod.py), deleted afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-500}; RATE=${RATE:-0}; WAIT=${WAIT:-900}
. scripts/stack_env.sh
PRODUCER=$(out producerDeploymentName)
BURST=(python -m apps.producer --count "$COUNT" --rate "$RATE" --wait-results "$WAIT")
READY=$("${KUBECTL[@]}" get deploy "$PRODUCER" -o jsonpath='{.status.readyReplicas}')
if [ "${READY:-0}" -ge 1 ]; then
  echo "load: $COUNT tasks at rate $RATE from deploy/$PRODUCER in namespace $NS"
  # not `exec`: that would skip the EXIT trap that removes the aks kubeconfig (stack_env.sh)
  "${KUBECTL[@]}" exec "deploy/$PRODUCER" -- "${BURST[@]}"
  exit $?
fi

POD="$PRODUCER-load-$(date +%s)"
echo "load: deploy/$PRODUCER has no ready pod (producerReplicas: 0?); running the burst in pod $POD"
cleanup() {
  "${KUBECTL[@]}" delete pod "$POD" --ignore-not-found --wait=false >/dev/null || true
  stack_env_cleanup
}
trap cleanup EXIT
"${KUBECTL[@]}" get deploy "$PRODUCER" -o json \
  | .venv/bin/python tools/burst_pod.py --name "$POD" -- "${BURST[@]}" \
  | "${KUBECTL[@]}" apply -f -
deadline=$(( $(date +%s) + WAIT + 300 )); followed=0
while :; do
  phase=$("${KUBECTL[@]}" get pod "$POD" -o jsonpath='{.status.phase}' 2>/dev/null || true)
  case "$phase" in
    Succeeded|Failed) break ;;
    Running) "${KUBECTL[@]}" logs -f "$POD" || true; followed=1 ;;
  esac
  [ "$(date +%s)" -lt "$deadline" ] || { echo "load: pod $POD did not finish in time" >&2; exit 1; }
  sleep 2
done
[ "$followed" = 1 ] || "${KUBECTL[@]}" logs "$POD" || true
[ "$phase" = Succeeded ] || { echo "load: the burst failed (pod $POD: $phase)" >&2; exit 1; }
