#!/usr/bin/env bash
# Submit COUNT tasks at RATE/s from inside the deployed producer pod (it already has the
# Redis endpoint, password and NetworkPolicy access), then wait until every task's
# result hash exists (bounded by WAIT seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-500}; RATE=${RATE:-0}; WAIT=${WAIT:-900}
. scripts/stack_env.sh
PRODUCER=$(out producerDeploymentName)
echo "load: $COUNT tasks at rate $RATE from deploy/$PRODUCER in namespace $NS"
"${KUBECTL[@]}" exec "deploy/$PRODUCER" -- \
  python -m apps.producer --count "$COUNT" --rate "$RATE" --wait-results "$WAIT"
