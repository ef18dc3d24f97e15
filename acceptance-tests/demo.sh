#!/usr/bin/env bash
# The main job: bring up the local platform (LocalStack standing in for AWS), build the
# provider, and apply the golden-path GPU pool example with the real Terraform CLI.
# Leaves the pool running; `bash acceptance-tests/demo.sh destroy` tears it down.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cache="${PAVED_CACHE:-$HOME/.cache/paved}"
work="$cache/demo"

bash "$here/setup.sh"
bash "$here/localstack.sh" start
(cd "$repo" && cargo build --locked --bin terraform-provider-paved)

mkdir -p "$work"
cat >"$work/dev.tfrc" <<RC
provider_installation {
  dev_overrides { "paved/paved" = "$repo/target/debug" }
  direct {}
}
RC
cp "$repo/examples/gpu_compute_pool/main.tf" "$work/main.tf"
export TF_CLI_CONFIG_FILE="$work/dev.tfrc" CHECKPOINT_DISABLE=1
cd "$work"
if [ "${1:-}" = "destroy" ]; then
  "$cache/bin/terraform" destroy -auto-approve
  bash "$here/localstack.sh" stop
  exit 0
fi
"$cache/bin/terraform" apply -auto-approve
echo
echo "Pool applied against LocalStack. Inspect with: (cd $work && TF_CLI_CONFIG_FILE=$work/dev.tfrc $cache/bin/terraform show)"
echo "Tear down with: bash acceptance-tests/demo.sh destroy"
