# shellcheck shell=bash
# Sourced by load.sh / watch.sh / e2e: reads STACK's outputs and points kubectl at its cluster.
# target kind: the stack's kubeconfigContext (or KUBE_CONTEXT). target aks: the stack's kubeconfig
# output, written to a private temp file that is removed on exit (it is a secret). Scripts
# that set their own EXIT trap call stack_env_cleanup from it (a second trap replaces the
# first), and never `exec` while KCFG exists (exec skips the EXIT trap).
STACK=${STACK:-local}
out() { pulumi stack output "$1" --stack "$STACK"; }
KCFG=
stack_env_cleanup() { if [ -n "$KCFG" ]; then rm -f "$KCFG"; fi; }
NS=$(out namespace)
# shellcheck disable=SC2034  # KUBECTL is this file's output: the scripts that source it run it
if [ "$(pulumi config get target --stack "$STACK")" = kind ]; then
  CTX=${KUBE_CONTEXT:-$(pulumi config get kubeconfigContext --stack "$STACK" 2>/dev/null || echo kind-redis-keda)}
  KUBECTL=(kubectl --context "$CTX" -n "$NS")
else
  KCFG=$(mktemp); chmod 600 "$KCFG"; trap stack_env_cleanup EXIT
  pulumi stack output kubeconfig --show-secrets --stack "$STACK" > "$KCFG"
  KUBECTL=(kubectl --kubeconfig "$KCFG" -n "$NS")
fi
