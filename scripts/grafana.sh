#!/usr/bin/env bash
# Port-forward STACK's Grafana to localhost:PORT (default 3000) and say how to log in.
# The admin password is a secret stack output: this prints the command that shows it,
# never the password itself. Ctrl-C stops the port-forward.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-3000}
. scripts/stack_env.sh
MON_NS=$(out monitoringNamespace); SVC=$(out grafanaService)
if [ -z "$MON_NS" ]; then
  echo "grafana: monitoring is off in stack $STACK: pulumi config set monitoring true --stack $STACK && pulumi up --stack $STACK" >&2
  exit 1
fi
echo "Grafana:   http://localhost:$PORT   (dashboard: redis-keda-platform)"
echo "user:      admin"
echo "password:  pulumi stack output grafanaAdminPassword --show-secrets --stack $STACK"
echo "(port-forward to svc/$SVC in namespace $MON_NS; Ctrl-C to stop)"
"${KUBECTL[@]}" -n "$MON_NS" port-forward "svc/$SVC" "$PORT:80"
