#!/usr/bin/env bash
# Draw queue length, worker replicas and tasks/s from Prometheus into a PNG (tools/report.py),
# e.g. after `make load`.
#   PROMETHEUS_URL=http://...   a Prometheus you already reach; else port-forward STACK's
#   SINCE=15m                   window ending now; or START= / END= (unix or ISO 8601)
#   OUT=out/report.png  STEP=   RATE_WINDOW=1m
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || { echo "report: $PY missing: run 'make setup'" >&2; exit 2; }
OUT=${OUT:-out/report.png}; RATE_WINDOW=${RATE_WINDOW:-1m}
args=(--out "$OUT" --rate-window "$RATE_WINDOW")
if [ -n "${START:-}" ]; then
  args+=(--start "$START"); [ -z "${END:-}" ] || args+=(--end "$END")
else
  args+=(--since "${SINCE:-15m}")
fi
[ -z "${STEP:-}" ] || args+=(--step "$STEP")

if [ -z "${PROMETHEUS_URL:-}" ]; then
  scripts/require.sh pulumi kubectl
  . scripts/stack_env.sh
  MON_NS=$(out monitoringNamespace); SVC=$(out prometheusService)
  if [ -z "$MON_NS" ]; then
    echo "report: monitoring is off in stack $STACK: pulumi config set monitoring true --stack $STACK && pulumi up --stack $STACK" >&2
    exit 1
  fi
  QUEUE=${QUEUE:-$(pulumi config get queueName --stack "$STACK" 2>/dev/null || echo celery)}
  LOCAL_PORT=${LOCAL_PORT:-19090}
  "${KUBECTL[@]}" -n "$MON_NS" port-forward "svc/$SVC" "$LOCAL_PORT:9090" >/dev/null 2>&1 &
  PF=$!
  trap 'kill "$PF" 2>/dev/null || true; stack_env_cleanup' EXIT
  for _ in $(seq 1 30); do
    (exec 3<>"/dev/tcp/127.0.0.1/$LOCAL_PORT") 2>/dev/null && break
    sleep 1
  done
  PROMETHEUS_URL=http://127.0.0.1:$LOCAL_PORT
  args+=(--namespace "$NS")
fi
"$PY" -m tools.report --prometheus "$PROMETHEUS_URL" --queue "${QUEUE:-celery}" "${args[@]}"
