#!/usr/bin/env bash
# Regenerates expected.yaml (or EXPECT=error) for every corpus case with the
# reference kustomize v5.5.0: the pinned binary installed by
# scripts/ci/install-driftless-kustomize.sh, falling back to `kubectl kustomize`.
set -euo pipefail
# Cases with --enable-helm in FLAGS need helm: the pinned one when installed.
helm_dir="${HOME}/.cache/driftless/helm-v3.16.3"
[[ -x "${helm_dir}/helm" ]] && export PATH="${helm_dir}:${PATH}"
here="$(cd "$(dirname "$0")" && pwd)"
pinned="${HOME}/.cache/driftless/kustomize-v5.5.0/kustomize"
if [[ -x "$pinned" ]]; then
  kustomize=("$pinned" build)
elif command -v kubectl >/dev/null; then
  kustomize=(kubectl kustomize)
else
  echo "no kustomize: run scripts/ci/install-driftless-kustomize.sh" >&2
  exit 1
fi
version="$("${kustomize[0]}" version 2>/dev/null | head -1 || true)"
echo "using ${kustomize[*]} (${version})"
for case in "$here"/*/; do
  case="${case%/}"
  name="$(basename "$case")"
  build="$(tr -d '\n' < "$case/BUILD")"
  flags=()
  if [[ -f "$case/FLAGS" ]]; then
    read -r -a flags < "$case/FLAGS"
  fi
  rm -f "$case/expected.yaml" "$case/EXPECT"
  if "${kustomize[@]}" "$case/$build" "${flags[@]}" > "$case/expected.yaml" 2>/dev/null; then
    echo "ok     $name"
  else
    rm -f "$case/expected.yaml"
    echo error > "$case/EXPECT"
    echo "error  $name"
  fi
done
