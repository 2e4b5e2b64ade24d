# shellcheck shell=bash
# Sourced by load.sh / watch.sh / e2e: reads STACK's outputs and points kubectl at its cluster.
# target kind: the stack's kubeconfigContext (or KUBE_CONTEXT). target aks: the stack's kubeconfig
# output, written to a private temp file that is removed on exit (it is a secret).
STACK=${STACK:-local}
out() { pulumi stack output "$1" --stack "$STACK"; }
NS=$(out namespace)
# shellcheck disable=SC2034  # KUBECTL is this file's output: the scripts that source it run it
if [ "$(pulumi config get target --stack "$STACK")" = kind ]; then
  CTX=${KUBE_CONTEXT:-$(pulumi config get kubeconfigContext --stack "$STACK" 2>/dev/null || echo kind-redis-keda)}
  KUBECTL=(kubectl --context "$CTX" -n "$NS")
else
  KCFG=$(mktemp); chmod 600 "$KCFG"; trap 'rm -f "$KCFG"' EXIT
  pulumi stack output kubeconfig --show-secrets --stack "$STACK" > "$KCFG"
  KUBECTL=(kubectl --kubeconfig "$KCFG" -n "$NS")
fi
