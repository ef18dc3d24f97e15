#!/usr/bin/env bash
# The main job: bring up the local platform — LocalStack standing in for AWS and a real local
# Kubernetes control plane with simulated GPU nodes — build the provider, and apply the golden
# paths with the real Terraform CLI: a GPU training pool (examples/gpu_compute_pool) and a model
# endpoint on the GPU nodes (examples/model_endpoint).
# Leaves both running; `bash acceptance-tests/demo.sh destroy` tears everything down.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cache="${PAVED_CACHE:-$HOME/.cache/paved}"
work="$cache/demo"
tf="$cache/bin/terraform"

bash "$here/setup.sh"
bash "$here/localstack.sh" start
kubeconfig="$(bash "$here/cluster/up.sh" | tail -n 1)"
(cd "$repo" && cargo build --locked --bin terraform-provider-paved)

mkdir -p "$work/pool" "$work/endpoint"
cat >"$work/dev.tfrc" <<RC
provider_installation {
  dev_overrides { "paved/paved" = "$repo/target/debug" }
  direct {}
}
RC
cp "$repo/examples/gpu_compute_pool/main.tf" "$work/pool/main.tf"
cp "$repo/examples/model_endpoint/main.tf" "$work/endpoint/main.tf"
export TF_CLI_CONFIG_FILE="$work/dev.tfrc" CHECKPOINT_DISABLE=1 TF_VAR_kubeconfig="$kubeconfig"

if [ "${1:-}" = "destroy" ]; then
  (cd "$work/endpoint" && "$tf" destroy -auto-approve)
  (cd "$work/pool" && "$tf" destroy -auto-approve)
  bash "$here/cluster/down.sh"
  bash "$here/localstack.sh" stop
  exit 0
fi
(cd "$work/pool" && "$tf" apply -auto-approve)
(cd "$work/endpoint" && "$tf" apply -auto-approve)
echo
echo "Applied against the local platform (LocalStack + local Kubernetes, kubeconfig $kubeconfig)."
echo "Inspect: (cd $work/pool && TF_CLI_CONFIG_FILE=$work/dev.tfrc $tf show)"
echo "Tear down: bash acceptance-tests/demo.sh destroy"
