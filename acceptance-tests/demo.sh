#!/usr/bin/env bash
# The main job: bring up the local platform — LocalStack standing in for AWS and a real local
# Kubernetes control plane with simulated GPU nodes — build the provider, and apply the golden
# path (examples/golden_path) with the real Terraform CLI in one apply: a GPU pool on EC2, a
# pgvector database, a Feast feature store and a model endpoint on the pool's GPUs wired to both.
# cluster/node_joiner.py joins the pool's instances to the cluster (what their bootstrap does on
# AWS). Leaves everything running; `bash acceptance-tests/demo.sh destroy` tears it all down.
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

mkdir -p "$work/golden_path"
cat >"$work/dev.tfrc" <<RC
provider_installation {
  dev_overrides { "paved/paved" = "$repo/target/debug" }
  direct {}
}
RC
cp "$repo/examples/golden_path/main.tf" "$work/golden_path/main.tf"
export TF_CLI_CONFIG_FILE="$work/dev.tfrc" CHECKPOINT_DISABLE=1 TF_VAR_kubeconfig="$kubeconfig"

joiner_pid="$work/node_joiner.pid"
if [ -f "$joiner_pid" ] && kill -0 "$(cat "$joiner_pid")" 2>/dev/null; then :; else
  nohup "$cache/lsvenv/bin/python" "$here/cluster/node_joiner.py" --kubeconfig "$kubeconfig" \
    --kubectl "$(ls -d "$cache"/k8s/*/bin/kubectl | tail -n 1)" \
    >"$work/node_joiner.log" 2>&1 &
  echo $! >"$joiner_pid"
fi

if [ "${1:-}" = "destroy" ]; then
  (cd "$work/golden_path" && "$tf" destroy -auto-approve)
  kill "$(cat "$joiner_pid")" 2>/dev/null || true
  rm -f "$joiner_pid"
  bash "$here/cluster/down.sh"
  bash "$here/localstack.sh" stop
  exit 0
fi
(cd "$work/golden_path" && "$tf" apply -auto-approve)
echo
echo "Applied against the local platform (LocalStack + local Kubernetes, kubeconfig $kubeconfig)."
echo "Inspect: (cd $work/golden_path && TF_CLI_CONFIG_FILE=$work/dev.tfrc $tf show)"
echo "Tear down: bash acceptance-tests/demo.sh destroy"
