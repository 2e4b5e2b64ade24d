#!/usr/bin/env bash
# make sim-up / sim-down / sim-status: a local Kubernetes control plane with no Docker.
#
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (built by
# `make toolchain` into .tools/bin) run inside a network namespace this script creates, so
# every address the cluster uses (the node address, pod IPs, Service IPs) lives only there.
# The host reaches the API server through one forward on 127.0.0.1 (socat), written into
# .tools/sim/kubeconfig as the context `redis-keda-sim`.
#
# kwok plays the kubelets: it registers nothing itself, but keeps the Nodes this script
# creates Ready and moves every pod scheduled to them through Pending -> Running -> Ready
# (its "fast" stages); no container runs. Its volume stages provision PersistentVolumes for
# claims of the default StorageClass `kwok-volume`, so a StatefulSet's PVC binds as on kind.
# docs/sim.md lists where this differs from a kind node.
#
#   scripts/sim.sh up       start (idempotent: a healthy sim is left as it is)
#   scripts/sim.sh down     stop every process, delete the namespace and .tools/sim
#   scripts/sim.sh status   exit 0 when the API server answers and every node is Ready
#
# Environment: SIM_API_PORT (host port of the API server; default: a free port),
# SIM_NETNS (default redis-keda-sim), TOOLS_DIR (default .tools).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=${TOOLS_DIR:-$ROOT/.tools}
BIN=$TOOLS/bin
SIM=$TOOLS/sim
NS=${SIM_NETNS:-redis-keda-sim}
CONTEXT=redis-keda-sim
NODE_IP=10.200.0.1          # the sim's node address (on the namespace's loopback device)
SERVICE_CIDR=10.96.0.0/16   # as kind's default
POD_CIDR=10.244.0.0/16      # as kind's default
API_IN_NS=6443
KUBECTL=("$BIN/kubectl" --kubeconfig "$SIM/kubeconfig")

die() { echo "sim: error: $*" >&2; exit 1; }
say() { echo "sim: $*"; }

require() {
  local missing=() b
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler kwok kubectl; do
    [[ -x "$BIN/$b" ]] || missing+=("$b")
  done
  [[ ${#missing[@]} -eq 0 ]] || die "not built: ${missing[*]}; run 'make toolchain' first"
  [[ -d "$TOOLS/share/kwok/stages" ]] || die "kwok's stages are missing; run 'make toolchain' first"
  local t; for t in ip socat openssl; do
    command -v "$t" >/dev/null 2>&1 || die "$t not found; install it (Debian: apt-get install iproute2 socat openssl)"
  done
  [[ "$(id -u)" == 0 ]] || die "creating a network namespace needs root (run as root or with sudo)"
}

running() { # running NAME: its recorded pid is alive
  local pid; pid=$(cat "$SIM/pids/$1" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null
}

status() {
  [[ -f "$SIM/kubeconfig" ]] || return 1
  local p; for p in etcd kube-apiserver kube-controller-manager kube-scheduler kwok forward; do
    running "$p" || return 1
  done
  "${KUBECTL[@]}" get --raw /readyz >/dev/null 2>&1 || return 1
  local not_ready
  not_ready=$("${KUBECTL[@]}" get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null | grep -v '=True$' || true)
  [[ -z "$not_ready" ]]
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# pki: one CA for everything (clients, serving, service accounts' issuer), one for the
# front proxy (aggregated APIs such as KEDA's metrics server).
cert() { # cert NAME CN O SANS(comma list or "") CA
  local name=$1 cn=$2 o=$3 sans=$4 ca=$5 ext
  openssl genrsa -out "$SIM/pki/$name.key" 2048 2>/dev/null
  openssl req -new -key "$SIM/pki/$name.key" -subj "/CN=$cn${o:+/O=$o}" -out "$SIM/pki/$name.csr" 2>/dev/null
  ext="basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth"
  [[ -z "$sans" ]] || ext+="
subjectAltName=$sans"
  openssl x509 -req -in "$SIM/pki/$name.csr" -CA "$SIM/pki/$ca.crt" -CAkey "$SIM/pki/$ca.key" \
    -CAcreateserial -days 30 -out "$SIM/pki/$name.crt" -extfile <(echo "$ext") 2>/dev/null
  rm -f "$SIM/pki/$name.csr"
}

make_pki() {
  mkdir -p "$SIM/pki"
  local ca
  for ca in ca front-proxy-ca; do
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=redis-keda-sim-$ca" \
      -keyout "$SIM/pki/$ca.key" -out "$SIM/pki/$ca.crt" 2>/dev/null
  done
  cert apiserver kube-apiserver "" \
    "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:$NODE_IP,IP:10.96.0.1" ca
  cert admin kubernetes-admin system:masters "" ca
  cert controller-manager system:kube-controller-manager "" "" ca
  cert scheduler system:kube-scheduler "" "" ca
  cert front-proxy-client front-proxy-client "" "" front-proxy-ca
  openssl genrsa -out "$SIM/pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$SIM/pki/sa.key" -pubout -out "$SIM/pki/sa.pub" 2>/dev/null
}

kubeconfig() { # kubeconfig FILE SERVER CERT
  local file=$1 server=$2 who=$3
  KUBECONFIG=$file "$BIN/kubectl" config set-cluster $CONTEXT --server="$server" \
    --certificate-authority="$SIM/pki/ca.crt" --embed-certs=true >/dev/null
  KUBECONFIG=$file "$BIN/kubectl" config set-credentials "$who" \
    --client-certificate="$SIM/pki/$who.crt" --client-key="$SIM/pki/$who.key" --embed-certs=true >/dev/null
  KUBECONFIG=$file "$BIN/kubectl" config set-context $CONTEXT --cluster=$CONTEXT --user="$who" >/dev/null
  KUBECONFIG=$file "$BIN/kubectl" config use-context $CONTEXT >/dev/null
  chmod 600 "$file"
}

start() { # start NAME CMD...: in the namespace, its own session, logged, pid recorded
  local name=$1; shift
  ip netns exec "$NS" setsid "$@" >"$SIM/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$SIM/pids/$name"
}

wait_for() { # wait_for WHAT SECONDS CMD...
  local what=$1 limit=$2 i; shift 2
  for ((i = 0; i < limit * 4; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  die "$what not ready after ${limit}s; see $SIM/logs/"
}

nodes() {
  local name role taints
  for name in $CONTEXT-control-plane $CONTEXT-worker; do
    role=""; taints="[]"
    if [[ $name == *control-plane ]]; then
      role='node-role.kubernetes.io/control-plane: ""'
      taints='[{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}]'
    fi
    "${KUBECTL[@]}" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $name
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: $name
    type: kwok
    $role
spec:
  taints: $taints
status:
  allocatable: {cpu: "4", memory: 8Gi, pods: "110", ephemeral-storage: 100Gi}
  capacity: {cpu: "4", memory: 8Gi, pods: "110", ephemeral-storage: 100Gi}
  nodeInfo:
    architecture: amd64
    operatingSystem: linux
    kubeletVersion: $("$BIN/kube-apiserver" --version | awk '{print $2}')
    containerRuntimeVersion: "kwok"
EOF
  done
}

up() {
  require
  if status; then say "already up ($(grep -m1 server: "$SIM/kubeconfig" | awk '{print $2}'))"; return 0; fi
  [[ ! -d "$SIM" ]] || { say "a stale sim is here; removing it first"; down; }
  local t0=$SECONDS port=${SIM_API_PORT:-$(free_port)}
  mkdir -p "$SIM/logs" "$SIM/pids" "$SIM/etcd"
  ip netns add "$NS"
  ip netns exec "$NS" ip link set lo up
  # The node address on the namespace's loopback device: no dummy or veth device is needed
  # (a sandbox may have neither), and nothing outside the namespace can reach it.
  ip netns exec "$NS" ip addr add "$NODE_IP/32" dev lo
  make_pki
  kubeconfig "$SIM/admin.kubeconfig" "https://127.0.0.1:$API_IN_NS" admin
  kubeconfig "$SIM/controller-manager.kubeconfig" "https://127.0.0.1:$API_IN_NS" controller-manager
  kubeconfig "$SIM/scheduler.kubeconfig" "https://127.0.0.1:$API_IN_NS" scheduler
  kubeconfig "$SIM/kubeconfig" "https://127.0.0.1:$port" admin

  start etcd "$BIN/etcd" --name sim --data-dir "$SIM/etcd" --unsafe-no-fsync \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster sim=http://127.0.0.1:2380 --log-level warn
  local P=$SIM/pki
  start kube-apiserver "$BIN/kube-apiserver" --etcd-servers http://127.0.0.1:2379 \
    --bind-address 0.0.0.0 --secure-port $API_IN_NS --advertise-address $NODE_IP \
    --service-cluster-ip-range $SERVICE_CIDR --authorization-mode Node,RBAC \
    --client-ca-file "$P/ca.crt" --tls-cert-file "$P/apiserver.crt" --tls-private-key-file "$P/apiserver.key" \
    --service-account-key-file "$P/sa.pub" --service-account-signing-key-file "$P/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --requestheader-client-ca-file "$P/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$P/front-proxy-client.crt" --proxy-client-key-file "$P/front-proxy-client.key" \
    --enable-aggregator-routing=true --allow-privileged=true
  # The forward: host 127.0.0.1:$port -> the namespace's API server.
  setsid socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" \
    "EXEC:ip netns exec $NS socat STDIO TCP\:127.0.0.1\:$API_IN_NS" >"$SIM/logs/forward.log" 2>&1 </dev/null &
  echo $! >"$SIM/pids/forward"
  wait_for "kube-apiserver" 90 "${KUBECTL[@]}" get --raw /readyz

  start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig "$SIM/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$SIM/controller-manager.kubeconfig" --authorization-kubeconfig "$SIM/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
    --service-account-private-key-file "$P/sa.key" --root-ca-file "$P/ca.crt" \
    --cluster-signing-cert-file "$P/ca.crt" --cluster-signing-key-file "$P/ca.key" \
    --service-cluster-ip-range $SERVICE_CIDR --allocate-node-cidrs=false
  start kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$SIM/scheduler.kubeconfig" \
    --authentication-kubeconfig "$SIM/scheduler.kubeconfig" --authorization-kubeconfig "$SIM/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false
  local f; for f in "$TOOLS"/share/kwok/stages/*.yaml; do echo "---"; cat "$f"; done >"$SIM/kwok-stages.yaml"
  start kwok "$BIN/kwok" --kubeconfig "$SIM/admin.kubeconfig" --config "$SIM/kwok-stages.yaml" \
    --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --cidr $POD_CIDR --node-ip $NODE_IP --node-lease-duration-seconds 40 --server-address ""
  "${KUBECTL[@]}" apply -f "$TOOLS/share/kwok/storage-class.yaml" >/dev/null
  nodes
  wait_for "nodes" 60 status
  say "up in $((SECONDS - t0)) s: $("${KUBECTL[@]}" version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])'), nodes $("${KUBECTL[@]}" get nodes -o name | tr '\n' ' ')"
  say "kubeconfig: ${SIM#"$ROOT"/}/kubeconfig (context $CONTEXT)"
}

down() {
  local name pid pids=()
  for name in kwok kube-scheduler kube-controller-manager forward kube-apiserver etcd; do
    pid=$(cat "$SIM/pids/$name" 2>/dev/null) || continue
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    pids+=("$pid")
  done
  local i
  for ((i = 0; i < 40; i++)); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive == 0 ]] && break
    sleep 0.25
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; done
  # Anything still in the namespace (a process this script did not record) goes too.
  if ip netns list 2>/dev/null | grep -qw "$NS"; then
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$NS"
  fi
  rm -rf "$SIM"
  say "down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) if status; then say "up"; else say "not up"; exit 1; fi ;;
  *) echo "usage: scripts/sim.sh up|down|status" >&2; exit 2 ;;
esac
