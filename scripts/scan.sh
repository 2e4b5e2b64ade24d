#!/usr/bin/env bash
# CI gate: render every valid stack x worker mode x cache API read path with
# tools/render.py, then run checkov ONCE over all of them. Exit non-zero on any failed
# check (or if a render fails, or nothing was rendered).
#
#   scripts/scan.sh            # renders into a temp dir, removed afterwards
#   SCAN_OUT=out/scan scripts/scan.sh   # keep the manifests there
#
# The variants come from tools/variants.py, the same list the tests use.
# Skips are annotations on the objects (checkov.io/skipN: CKV_K8S_xx=reason), listed in
# docs/security.md; tests/infra/test_checkov.py checks both.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
CHECKOV=${CHECKOV:-.venv-checkov/bin/checkov}
[ -x "$PY" ] || { echo "scan: $PY missing: run 'make setup'" >&2; exit 2; }
[ -x "$CHECKOV" ] || { echo "scan: $CHECKOV missing: run 'make setup' (checkov has its own venv)" >&2; exit 2; }

if [ -n "${SCAN_OUT:-}" ]; then
  OUT=$SCAN_OUT
  rm -rf "$OUT"
  mkdir -p "$OUT"
else
  OUT=$(mktemp -d "${TMPDIR:-/tmp}/scan.XXXXXX")
  trap 'rm -rf "$OUT"' EXIT
fi
OUT=$(cd "$OUT" && pwd)
case "$OUT" in
  */.*) echo "scan: $OUT is inside a hidden directory; checkov would skip it" >&2; exit 2 ;;
esac

variants=0
while read -r id stack sets; do
  args=()
  for kv in $sets; do args+=(--set "$kv"); done
  "$PY" tools/render.py --stack "$stack" "${args[@]}" --out "$OUT/$id"
  # The charts' objects (OUT/helm) have findings accepted for a reason (docs/security.md);
  # tests/infra/test_checkov.py gates them against that list. This scan is ours only.
  rm -rf "$OUT/$id/helm"
  variants=$((variants + 1))
done < <("$PY" -m tools.variants)

files=$(find "$OUT" -path '*/k8s/*.yaml' | wc -l)
if [ "$variants" -eq 0 ] || [ "$files" -eq 0 ]; then
  echo "scan: nothing rendered ($variants variants, $files manifests)" >&2
  exit 1
fi
echo "scan: checkov over $files manifests of $variants variants in $OUT"
CHECKOV_PARALLELIZATION_TYPE=${CHECKOV_PARALLELIZATION_TYPE:-none} \
  "$CHECKOV" -d "$OUT" --framework kubernetes --skip-download --quiet --compact
echo "scan: no failed checks"
