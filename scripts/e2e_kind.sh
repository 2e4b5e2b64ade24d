#!/usr/bin/env bash
# End-to-end on kind: build the images, `pulumi preview` and `pulumi up` a throwaway copy of the local stack
# with the policy pack (policy/)
# on a local backend, push a burst of tasks, assert the worker scales 0 -> N -> 0 and
# that every task's record exists, assert the cache API answers, draw the run from
# Prometheus (`make report`, REPORT_OUT), then `pulumi destroy` and assert nothing is left behind. Needs Docker, kind, kubectl and the Pulumi CLI.
# Used by the `e2e-kind` job of .github/workflows/ci.yml; runnable by hand the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/require.sh docker kind kubectl pulumi

log() { printf '\n=== %s %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() { echo "E2E FAILED: $*" >&2; exit 1; }

COUNT=${COUNT:-200}
STACK=e2e                                   # a copy of stacks/Pulumi.local.yaml (gitignored)
# Its own cluster, never the dev cluster `make kind-up` makes (redis-keda): cleanup deletes it.
KIND_CLUSTER=${KIND_CLUSTER:-redis-keda-e2e}
[ "$KIND_CLUSTER" != redis-keda ] || fail "KIND_CLUSTER=redis-keda is the dev cluster of make kind-up; the e2e run deletes its cluster: pick another name"
if kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
  fail "kind cluster '$KIND_CLUSTER' already exists; the e2e run creates and deletes its own: delete it or set KIND_CLUSTER"
fi
export KUBE_CONTEXT="kind-${KIND_CLUSTER}"
export PULUMI_CONFIG_PASSPHRASE=${PULUMI_CONFIG_PASSPHRASE:-e2e-throwaway-passphrase}
export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$(mktemp -d)}
export PULUMI_SKIP_UPDATE_CHECK=true

cleanup() {
  log "cleanup"
  kill "${BURST_PID:-}" "${PF_PID:-}" 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] || kind delete cluster --name "$KIND_CLUSTER" || true
  rm -f stacks/Pulumi.e2e.yaml
}
trap cleanup EXIT

log "images + kind cluster"
make images
make kind-up KIND_CLUSTER="$KIND_CLUSTER"

log "pulumi up (stack $STACK, backend $PULUMI_BACKEND_URL)"
cp stacks/Pulumi.local.yaml stacks/Pulumi.e2e.yaml
pulumi stack init "$STACK" --secrets-provider passphrase
pulumi config set --stack "$STACK" kubeconfigContext "$KUBE_CONTEXT"
pulumi config set --stack "$STACK" producerRate 0          # only the burst below submits tasks
# The policy pack (policy/): its own pinned venv, then a preview and the up gated by it
# (a mandatory violation fails both).
[ -x policy/venv/bin/python ] || { python3 -m venv policy/venv && policy/venv/bin/pip install -q -r policy/requirements.txt; }
log "pulumi preview --policy-pack policy"
pulumi preview --stack "$STACK" --policy-pack policy
pulumi up --stack "$STACK" --yes --skip-preview --policy-pack policy

. scripts/stack_env.sh
MODE=$(out workerMode); WORKER=$(out workerDeploymentName); PRODUCER=$(out producerDeploymentName)
API_SVC=$(out cacheApiServiceName)
[ "$MODE" = deployment ] || fail "the e2e job expects workerMode=deployment in stacks/Pulumi.local.yaml"
# Kubernetes omits .status.replicas at 0: jsonpath prints nothing, so default it here.
replicas() { local n; n=$("${KUBECTL[@]}" get deploy "$WORKER" -o jsonpath='{.status.replicas}'); echo "${n:-0}"; }
# Each check runs replicas() again on every try (a `test "$(replicas)"` argument would be
# expanded once, when wait_for is called).
replicas_eq() { [ "$(replicas)" -eq "$1" ]; }
replicas_ge() { [ "$(replicas)" -ge "$1" ]; }
WAIT_INTERVAL=${WAIT_INTERVAL:-5}
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2; local start; start=$(date +%s)
  until "$@"; do
    [ $(( $(date +%s) - start )) -lt "$limit" ] || fail "timed out after ${limit}s waiting for: $what"
    sleep "$WAIT_INTERVAL"
  done
  echo "ok: $what ($(( $(date +%s) - start ))s)"
}

log "worker starts at zero replicas"
wait_for "${WAIT_ZERO:-180}" "worker at 0 replicas" replicas_eq 0

log "burst of $COUNT tasks"
BURST_START=$(date +%s)
"${KUBECTL[@]}" exec "deploy/$PRODUCER" -- \
  python -m apps.producer --count "$COUNT" --rate 0 --wait-results 900 > /tmp/e2e-burst.log 2>&1 &
BURST_PID=$!
wait_for "${WAIT_UP:-300}" "KEDA scales the worker up from 0" replicas_ge 1
max=0
while kill -0 "$BURST_PID" 2>/dev/null; do r=$(replicas); [ "$r" -gt "$max" ] && max=$r; sleep "$WAIT_INTERVAL"; done
wait "$BURST_PID" || { cat /tmp/e2e-burst.log; fail "not every task's record exists (see the producer's output above)"; }
BURST_PID=
cat /tmp/e2e-burst.log
echo "ok: all $COUNT task records exist; worker peaked at $max replicas"

log "worker scales back to zero"
wait_for "${WAIT_DOWN:-900}" "worker back to 0 replicas" replicas_eq 0

log "cache API answers"
"${KUBECTL[@]}" port-forward "svc/$API_SVC" 18000:8000 >/dev/null 2>&1 &
PF_PID=$!
TAG=$(basename "$(find apps/cache_api/dataset -name '*.json' -print -quit)" .json)
wait_for 60 "/readyz is 200" curl -fsS -o /dev/null http://127.0.0.1:18000/readyz
body=$(curl -fsS "http://127.0.0.1:18000/github_stats/${TAG}?limit=3")
echo "$body" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert isinstance(d, list) and len(d) == 3 and "stars" in d[0], d' \
  || fail "GET /github_stats/${TAG} did not return a JSON list of 3 repos: $body"
status=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:18000/github_stats/no-such-tag-e2e)
[ "$status" = 404 ] || fail "unknown tag answered $status, expected 404"
kill "$PF_PID"; PF_PID=
echo "ok: cache API serves ${TAG}"

log "report: queue length, worker replicas and tasks/s from Prometheus (make report)"
STACK=$STACK START=$(( BURST_START - 60 )) OUT=${REPORT_OUT:-out/e2e-report.png} bash scripts/report.sh \
  || fail "make report drew no data (is Prometheus scraping the platform?)"

log "pulumi destroy leaves nothing behind"
pulumi destroy --stack "$STACK" --yes --skip-preview
left=$(pulumi stack export --stack "$STACK" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["deployment"].get("resources") or []))')
[ "$left" = 0 ] || fail "the stack still holds $left resources after destroy"
for ns in "$NS" keda monitoring; do
  wait_for 180 "namespace $ns deleted" bash -c "! kubectl --context $KUBE_CONTEXT get namespace $ns >/dev/null 2>&1"
done
if kubectl --context "$KUBE_CONTEXT" get crd scaledobjects.keda.sh >/dev/null 2>&1; then
  fail "KEDA's CRDs are still installed after destroy"
fi
pulumi stack rm "$STACK" --yes
log "E2E PASSED"
