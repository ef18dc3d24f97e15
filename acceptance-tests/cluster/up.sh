#!/usr/bin/env bash
# up.sh — starts a real, local Kubernetes control plane on 127.0.0.1 (no Docker, no kubelet):
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, and kwok, which
#   simulates the nodes (2 CPU, 2 GPU) and the pods scheduled onto them.
# Binaries come from build.sh (built once into $PAVED_CACHE/k8s/<version>/bin, then cached).
# Certificates, kubeconfigs, pidfiles, logs and etcd's data go under $PAVED_CACHE/cluster/.
#
# Idempotent: when everything is already up and healthy it only prints the kubeconfig
# path; a component whose process is gone is started again. Prints the admin
# kubeconfig path ($PAVED_CACHE/cluster/kubeconfig) on stdout as its last line.
# See README.md beside this file (env vars, simulated readiness failure, GPU nodes).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
PAVED_CACHE="${PAVED_CACHE:-$HOME/.cache/paved}"
C="$PAVED_CACHE/cluster"
PKI="$C/pki"
APISERVER_PORT="${PAVED_K8S_APISERVER_PORT:-6443}"
ETCD_PORT="${PAVED_K8S_ETCD_PORT:-2379}"
ETCD_PEER_PORT="${PAVED_K8S_ETCD_PEER_PORT:-2380}"
KCM_PORT="${PAVED_K8S_KCM_PORT:-10257}"
SCHED_PORT="${PAVED_K8S_SCHEDULER_PORT:-10259}"
TIMEOUT="${PAVED_K8S_TIMEOUT:-120}"
SERVICE_CIDR="10.96.0.0/16"      # a config value only: no traffic goes there
SERVICE_IP="10.96.0.1"
POD_CIDR="10.244.0.1/16"          # kwok writes pod IPs from it into pod status; no traffic
SERVER="https://127.0.0.1:$APISERVER_PORT"
KUBECONFIG_OUT="$C/kubeconfig"

die() { echo "up.sh: $*" >&2; exit 1; }
log() { echo "up.sh: [$((SECONDS - t_start))s] $*" >&2; }

t_start=$SECONDS
BIN="$(bash "$here/build.sh")" || die "build.sh failed"
KUBECTL="$BIN/kubectl"
mkdir -p "$C" "$PKI"
exec 9>"$C/.up.lock"   # one up.sh at a time; a second one waits, then finds the cluster up
flock 9

# ---- process helpers -------------------------------------------------------------
# A component is "running" when its pidfile names a live process whose executable is
# our binary (so a reused pid never counts, and down.sh never kills a stranger).
running() { # running <name>
  local pidf="$C/$1.pid" pid exe
  [[ -f "$pidf" ]] || return 1
  pid="$(cat "$pidf")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
  [[ "$exe" == "$BIN/$1" ]]
}

start() { # start <name> <args...>: background, own session, pidfile + log under $C
  local name="$1"; shift
  if running "$name"; then return 0; fi
  log "starting $name (log: $C/$name.log)"
  [[ -f "$C/$name.log" ]] && mv -f "$C/$name.log" "$C/$name.log.1"   # keep the previous run's log
  setsid "$BIN/$name" "$@" >"$C/$name.log" 2>&1 </dev/null 9>&- &   # 9>&-: not the lock
  echo $! >"$C/$name.pid"
}

port_free_or_ours() { # port_free_or_ours <name> <port>
  running "$1" && return 0
  if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then
    die "port 127.0.0.1:$2 (for $1) is in use by another process; set PAVED_K8S_*_PORT (see README.md)"
  fi
}

wait_for() { # wait_for <what> <name-for-log> <command...>: retry until ok or TIMEOUT
  local what="$1" name="$2"; shift 2
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if [[ -n "$name" ]] && ! running "$name"; then
      tail -n 40 "$C/$name.log" >&2 || true
      die "$name exited while waiting for $what (log: $C/$name.log)"
    fi
    if ((SECONDS >= deadline)); then
      [[ -n "$name" ]] && { tail -n 40 "$C/$name.log" >&2 || true; }
      die "timed out after ${TIMEOUT}s waiting for $what"
    fi
    sleep 0.5
  done
}

CURL_ADMIN=(curl -fsS --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key")
apiserver_ready() { [[ "$("${CURL_ADMIN[@]}" "$SERVER/readyz" 2>/dev/null)" == "ok" ]]; }
etcd_healthy() { curl -fsS --max-time 5 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_OUT" "$@"; }

NODE_NAMES=(paved-cpu-0 paved-cpu-1 paved-gpu-0 paved-gpu-1)
nodes_ready() {
  local out
  out="$(kc get nodes "${NODE_NAMES[@]}" -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null)" || return 1
  [[ "$(grep -c '=True$' <<<"$out")" == "${#NODE_NAMES[@]}" ]]
}

# ---- fast path: already up -------------------------------------------------------
all_running() { local n; for n in etcd kube-apiserver kube-controller-manager kube-scheduler kwok; do running "$n" || return 1; done; }
# The kube-apiserver's own audit log (tests read it to see paved and the users it impersonates).
AUDIT_POLICY="$C/audit-policy.yaml"
AUDIT_LOG="$C/kube-apiserver-audit.log"
audited() { grep -qa -- "--audit-policy-file" "/proc/$(cat "$C/kube-apiserver.pid" 2>/dev/null)/cmdline" 2>/dev/null; }
if [[ -f "$KUBECONFIG_OUT" ]] && all_running && apiserver_ready && nodes_ready && audited; then
  log "cluster already up: $SERVER"
  echo "$KUBECONFIG_OUT"
  exit 0
fi

# Every port must be free or held by our own running process before anything starts.
port_free_or_ours etcd "$ETCD_PORT"
port_free_or_ours etcd "$ETCD_PEER_PORT"
port_free_or_ours kube-apiserver "$APISERVER_PORT"
port_free_or_ours kube-controller-manager "$KCM_PORT"
port_free_or_ours kube-scheduler "$SCHED_PORT"

# ---- certificates (openssl) ------------------------------------------------------
# CA "ca" signs the apiserver's serving cert and the client certs of the admin and of
# each component (the apiserver trusts them through --client-ca-file); the controller-
# manager also signs CSRs with it. "front-proxy-ca" signs only front-proxy-client
# (requestheader authentication, used by the aggregation layer). Kept across
# down/up, so the kubeconfig stays valid; remade when missing or expiring within a day.
cert_ok() { [[ -f "$PKI/$1.crt" && -f "$PKI/$1.key" ]] && openssl x509 -checkend 86400 -noout -in "$PKI/$1.crt" >/dev/null 2>&1; }

make_ca() { # make_ca <name> <CN>
  openssl genrsa -out "$PKI/$1.key" 2048 2>/dev/null
  chmod 600 "$PKI/$1.key"
  openssl req -x509 -new -key "$PKI/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,digitalSignature,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$PKI/$1.crt" 2>/dev/null
}

make_leaf() { # make_leaf <name> <subject> <extensions (openssl config lines)> [<CA name>]
  local name="$1" subj="$2" ext="$3" ca="${4:-ca}"
  openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" >"$PKI/$name.ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
    -days 825 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
  chmod 600 "$PKI/$name.key"
}

CLIENT_EXT="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"

regen_all=0
if ! cert_ok ca; then
  log "generating CA and certificates in $PKI"
  rm -f "$PKI"/*
  make_ca ca paved-local-ca
  make_ca front-proxy-ca paved-local-front-proxy-ca
  regen_all=1
fi
if ((regen_all)) || ! cert_ok apiserver; then
  make_leaf apiserver "/CN=kube-apiserver" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
fi
if ((regen_all)) || ! cert_ok admin; then
  make_leaf admin "/O=system:masters/CN=paved-admin" "$CLIENT_EXT"
fi
if ((regen_all)) || ! cert_ok kube-controller-manager; then
  make_leaf kube-controller-manager "/CN=system:kube-controller-manager" "$CLIENT_EXT"
fi
if ((regen_all)) || ! cert_ok kube-scheduler; then
  make_leaf kube-scheduler "/CN=system:kube-scheduler" "$CLIENT_EXT"
fi
if ((regen_all)) || ! cert_ok kwok; then
  make_leaf kwok "/CN=paved:kwok" "$CLIENT_EXT"     # bound to cluster-admin below
fi
if ((regen_all)) || ! cert_ok front-proxy-client; then   # aggregation layer / requestheader authn
  make_leaf front-proxy-client "/CN=front-proxy-client" "$CLIENT_EXT" front-proxy-ca
fi
if ((regen_all)) || [[ ! -f "$PKI/sa.key" || ! -f "$PKI/sa.pub" ]]; then
  openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  chmod 600 "$PKI/sa.key"
fi

# ---- kubeconfigs (certificates embedded, so each file stands alone) --------------
b64() { base64 -w0 <"$1"; }
write_kubeconfig() { # write_kubeconfig <file> <user> <cert name>
  local tmp="$1.tmp"
  cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: paved-local
  cluster:
    server: $SERVER
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(b64 "$PKI/$3.crt")
    client-key-data: $(b64 "$PKI/$3.key")
contexts:
- name: paved-local
  context:
    cluster: paved-local
    user: $2
    namespace: default
current-context: paved-local
EOF
  chmod 600 "$tmp"
  mv -f "$tmp" "$1"
}
write_kubeconfig "$KUBECONFIG_OUT" paved-admin admin
write_kubeconfig "$C/kube-controller-manager.kubeconfig" system:kube-controller-manager kube-controller-manager
write_kubeconfig "$C/kube-scheduler.kubeconfig" system:kube-scheduler kube-scheduler
write_kubeconfig "$C/kwok.kubeconfig" paved:kwok kwok

# ---- etcd ------------------------------------------------------------------------
start etcd \
  --name=paved \
  --data-dir="$C/etcd-data" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="paved=http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster-state=new \
  --unsafe-no-fsync \
  --log-level=warn
wait_for "etcd /health" etcd etcd_healthy

# ---- kube-apiserver --------------------------------------------------------------
# Writes at Metadata level (who, as whom, what, result); reads, events and leases are skipped.
cat > "$AUDIT_POLICY" <<'POLICY'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  verbs: ["get", "list", "watch"]
- level: None
  resources:
  - group: ""
    resources: ["events"]
  - group: "events.k8s.io"
    resources: ["events"]
  - group: "coordination.k8s.io"
    resources: ["leases"]
- level: Metadata
POLICY
if running kube-apiserver && ! audited; then
  # Started by an older up.sh without the audit log: restart it (etcd keeps the state).
  log "restarting kube-apiserver with the audit log"
  kill "$(cat "$C/kube-apiserver.pid")"
  for _ in $(seq 300); do running kube-apiserver || break; sleep 0.1; done
  if running kube-apiserver; then kill -9 "$(cat "$C/kube-apiserver.pid")"; sleep 1; fi
fi
start kube-apiserver \
  --audit-policy-file="$AUDIT_POLICY" \
  --audit-log-path="$AUDIT_LOG" \
  --audit-log-maxsize=50 \
  --audit-log-maxbackup=2 \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=127.0.0.1 \
  --advertise-address=127.0.0.1 \
  --secure-port="$APISERVER_PORT" \
  --cert-dir="$PKI" \
  --tls-cert-file="$PKI/apiserver.crt" \
  --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" \
  --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User \
  --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$PKI/front-proxy-client.crt" \
  --proxy-client-key-file="$PKI/front-proxy-client.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" \
  --service-account-signing-key-file="$PKI/sa.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --authorization-mode=Node,RBAC \
  --enable-admission-plugins=NodeRestriction \
  --allow-privileged=true \
  --endpoint-reconciler-type=none \
  --profiling=false \
  --v=1
wait_for "kube-apiserver $SERVER/readyz" kube-apiserver apiserver_ready

# ---- controller-manager, scheduler, kwok ----------------------------------------
start kube-controller-manager \
  --kubeconfig="$C/kube-controller-manager.kubeconfig" \
  --authentication-kubeconfig="$C/kube-controller-manager.kubeconfig" \
  --authorization-kubeconfig="$C/kube-controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 \
  --secure-port="$KCM_PORT" \
  --cert-dir="$C/kcm-certs" \
  --controllers='*' \
  --use-service-account-credentials=true \
  --service-account-private-key-file="$PKI/sa.key" \
  --root-ca-file="$PKI/ca.crt" \
  --cluster-signing-cert-file="$PKI/ca.crt" \
  --cluster-signing-key-file="$PKI/ca.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --cluster-name=paved-local \
  --leader-elect=false \
  --enable-hostpath-provisioner=true \
  --profiling=false \
  --v=1

start kube-scheduler \
  --kubeconfig="$C/kube-scheduler.kubeconfig" \
  --authentication-kubeconfig="$C/kube-scheduler.kubeconfig" \
  --authorization-kubeconfig="$C/kube-scheduler.kubeconfig" \
  --bind-address=127.0.0.1 \
  --secure-port="$SCHED_PORT" \
  --cert-dir="$C/scheduler-certs" \
  --leader-elect=false \
  --profiling=false \
  --v=1

# kwok's identity may do anything (it writes node and pod status, leases, deletes pods).
kc create clusterrolebinding paved-kwok --clusterrole=cluster-admin --user=paved:kwok \
  --dry-run=client -o yaml | kc apply -f - >/dev/null

# kwok also reads ~/.kwok/kwok.yaml when it exists: give it a HOME of its own.
mkdir -p "$C/kwok-home"
cp -f "$here/kwok.yaml" "$C/kwok.yaml"
HOME="$C/kwok-home" start kwok \
  --kubeconfig="$C/kwok.kubeconfig" \
  --config="$C/kwok.yaml" \
  --manage-all-nodes=false \
  --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --node-ip=127.0.0.1 \
  --node-lease-duration-seconds=40 \
  --cidr="$POD_CIDR"

# The simulated nodes (kubectl apply: creates the missing ones, leaves existing ones alone).
kc apply -f "$here/nodes.yaml" >/dev/null
# Storage: the controller-manager's built-in hostPath provisioner (--enable-hostpath-provisioner)
# binds every PersistentVolumeClaim, so StatefulSets with volume claim templates really run.
kc apply -f "$here/storage.yaml" >/dev/null

CURL_K=(curl -fsS -k --max-time 5)
wait_for "kube-controller-manager /healthz" kube-controller-manager "${CURL_K[@]}" "https://127.0.0.1:$KCM_PORT/healthz"
wait_for "kube-scheduler /healthz" kube-scheduler "${CURL_K[@]}" "https://127.0.0.1:$SCHED_PORT/healthz"
log "controller-manager and scheduler healthy"

# ---- cluster objects -------------------------------------------------------------
# Pods can only be created once the ServiceAccount controller made default/default.
wait_for "serviceaccount default/default" kube-controller-manager kc get serviceaccount default -n default
log "serviceaccount default/default exists"
wait_for "nodes ${NODE_NAMES[*]} Ready (kwok)" kwok nodes_ready

log "cluster up in $((SECONDS - t_start))s: $SERVER (kubectl: $KUBECTL)"
echo "$KUBECONFIG_OUT"
