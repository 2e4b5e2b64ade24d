#!/usr/bin/env bash
# require TOOL...: fail early, with how to install it, when a tool a target needs is missing.
set -euo pipefail
hint() {
  case "$1" in
    docker)  echo "install Docker Engine or Docker Desktop: https://docs.docker.com/get-docker/ (and start it)";;
    kind)    echo "install kind v0.27.0: go install sigs.k8s.io/kind@v0.27.0 (or see https://kind.sigs.k8s.io/docs/user/quick-start/#installation)";;
    kubectl) echo "install kubectl 1.31: https://kubernetes.io/docs/tasks/tools/";;
    pulumi)  echo "install the Pulumi CLI: curl -fsSL https://get.pulumi.com | sh (then: pulumi login --local, or your backend)";;
    go)      echo "install Go >= 1.26 (https://go.dev/doc/install); make toolchain builds every tool from the Go module proxy";;
    az)      echo "install the Azure CLI: https://learn.microsoft.com/cli/azure/install-azure-cli (then: az login)";;
    *)       echo "install $1";;
  esac
}
missing=0
for tool in "$@"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: '$tool' is not on PATH: $(hint "$tool")" >&2
    missing=1
  fi
done
if [ "$missing" = 0 ] && [[ " $* " == *" docker "* ]] && ! docker info >/dev/null 2>&1; then
  echo "error: docker is installed but its engine is not reachable (is the daemon running?)" >&2
  missing=1
fi
exit "$missing"
