#!/usr/bin/env bash
# The image smoke on the built images, with Docker (`make smoke` after `make images`; the
# `images` job of .github/workflows/ci.yml). The same checks tests/apps/images makes without
# Docker, run with `docker run --network host`:
# - the worker image's CMD processes a burst the producer image sends, and the producer
#   proves every record exists (--wait-results);
# - the producer image's CMD and --standby pass their health command;
# - the cache API image's CMD serves a tag, /healthz and /readyz answer 200;
# - each running container's health command (the manifests' exec probes) exits 0.
# Containers run as the images' own user with a read-only root filesystem and a tmpfs /tmp,
# as the pods do. Needs ports 8000 and 9808 free (the images' CMD ports).
# Redis: REDIS_HOST, REDIS_PORT and REDIS_PASSWORD if REDIS_PORT is set (CI: a service
# container), else a REDIS_IMAGE (redis 7.4.2, by digest) container started here on SMOKE_REDIS_PORT (6390).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/require.sh docker curl

: "${CACHE_API_IMAGE:?set CACHE_API_IMAGE (make smoke sets the three image refs)}"
: "${WORKER_IMAGE:?set WORKER_IMAGE}"
: "${PRODUCER_IMAGE:?set PRODUCER_IMAGE}"
COUNT=${COUNT:-50}
# The stack's in-cluster Redis (components/versions.py), pinned by digest: the same image as the
# CI service container (tests/lint/test_pins.py keeps the two equal).
REDIS_IMAGE=redis:7.4.2@sha256:fbdbaea47b9ae4ecc2082ecdb4e1cea81e32176ffb1dcf643d422ad07427e5d9
RUN_ID=smoke-$$
STARTED=()

log() { printf '\n=== %s %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() { echo "SMOKE FAILED: $*" >&2; exit 1; }
cleanup() {
  local rc=$?
  for name in ${STARTED[@]+"${STARTED[@]}"}; do
    if [ "$rc" != 0 ]; then echo "--- logs of $name ---" >&2; docker logs --tail 60 "$name" >&2 || true; fi
    docker rm -f "$name" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

if [ -z "${REDIS_PORT:-}" ]; then
  REDIS_HOST=127.0.0.1 REDIS_PORT=${SMOKE_REDIS_PORT:-6390} REDIS_PASSWORD=smoke-$RANDOM-$RANDOM
  log "$REDIS_IMAGE on port $REDIS_PORT"
  STARTED+=("$RUN_ID-redis")
  docker run -d --name "$RUN_ID-redis" --network host "$REDIS_IMAGE" \
    redis-server --port "$REDIS_PORT" --requirepass "$REDIS_PASSWORD" --save "" --appendonly no >/dev/null
  for _ in $(seq 1 30); do
    docker exec -e REDISCLI_AUTH="$REDIS_PASSWORD" "$RUN_ID-redis" redis-cli -p "$REDIS_PORT" ping 2>/dev/null \
      | grep -q PONG && break
    sleep 1
  done
fi
export REDIS_HOST=${REDIS_HOST:-127.0.0.1} REDIS_PORT REDIS_PASSWORD=${REDIS_PASSWORD:?set REDIS_PASSWORD} REDIS_TLS=false
COMMON=(--network host --read-only --tmpfs "/tmp:rw,mode=1777"
        -e REDIS_HOST -e REDIS_PORT -e REDIS_PASSWORD -e REDIS_TLS)

start() {  # start NAME IMAGE [ARGS...]: a detached container (the image's CMD unless ARGS)
  local name=$RUN_ID-$1; shift
  STARTED+=("$name")
  docker run -d --name "$name" "${COMMON[@]}" "$@" >/dev/null
}
healthy() {  # healthy NAME COMMAND...: the command exits 0 inside the container within 60 s
  local name=$RUN_ID-$1; shift
  for _ in $(seq 1 60); do
    [ "$(docker inspect -f '{{.State.Running}}' "$name")" = true ] || fail "$name exited"
    if docker exec "$name" "$@" >/dev/null 2>&1; then echo "ok: $name: $*"; return 0; fi
    sleep 1
  done
  docker exec "$name" "$@" || true
  fail "$name: $* never exited 0"
}
http_200() {  # http_200 PATH: GET on the cache API answers 200 within 60 s
  for _ in $(seq 1 60); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:8000$1")" = 200 ] && { echo "ok: GET $1 200"; return 0; }
    sleep 1
  done
  fail "GET $1 did not answer 200"
}

log "worker (CMD) processes a burst of $COUNT sent by the producer image"
start worker -e WORK_SECONDS_MIN=0 -e WORK_SECONDS_MAX=0.05 "$WORKER_IMAGE"
healthy worker python -m apps.worker.healthcheck
docker run --rm "${COMMON[@]}" "$PRODUCER_IMAGE" \
  python -m apps.producer --count "$COUNT" --rate 0 --wait-results 120 | tee "/tmp/$RUN_ID-burst.log"
grep -q "all $COUNT results present" "/tmp/$RUN_ID-burst.log" || fail "the burst's results were not all proven"
healthy worker python -m apps.worker.healthcheck

log "producer (CMD, --standby)"
start producer "$PRODUCER_IMAGE"
healthy producer python -m apps.producer.healthcheck
start standby "$PRODUCER_IMAGE" python -m apps.producer --standby
healthy standby python -m apps.producer.healthcheck

log "cache API (CMD)"
start api "$CACHE_API_IMAGE"
http_200 /readyz
http_200 /healthz
http_200 /github_stats/python
curl -fsS "http://127.0.0.1:8000/github_stats/python?limit=2" | grep -q '^\[{' || fail "/github_stats/python is not a list of records"

log "image smoke passed"
