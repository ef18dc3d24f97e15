#!/usr/bin/env bash
# smoke.sh — end-to-end check of a cluster started by up.sh (run up.sh first).
# Works in a throwaway namespace (paved-smoke) that it deletes at the end, and ends
# with a "N passed, N failed" line; exits non-zero when a check failed.
#   * the 4 simulated nodes are Ready; GPU nodes advertise nvidia.com/gpu: 4 and are tainted
#   * a 2-replica Deployment requesting nvidia.com/gpu: 1 (toleration + nodeSelector on
#     paved.dev/accelerator) becomes Available, its pods on paved-gpu-*
#   * a pod asking for 5 GPUs stays Pending (Unschedulable: the extended resource counts)
#   * a Deployment whose image contains "fail-readiness" never becomes Available and gets
#     Progressing=False/ProgressDeadlineExceeded; a pod labelled paved.dev/simulate=unready
#     is Running with Ready=False
#   * a rolling update of the GPU Deployment to a fail-readiness image gets stuck
#     (ProgressDeadlineExceeded) while the old replicas stay available
#   * server-side apply (field manager recorded, conflict detected), NetworkPolicy,
#     PodDisruptionBudget (policy/v1), HPA (autoscaling/v2), watch (kubectl, raw HTTP, streaming list),
#     ServiceAccount tokens and the kube-root-ca.crt ConfigMap
set -uo pipefail

PAVED_CACHE="${PAVED_CACHE:-$HOME/.cache/paved}"
C="$PAVED_CACHE/cluster"
export KUBECONFIG="$C/kubeconfig"
KUBECTL="$(ls -d "$PAVED_CACHE"/k8s/*/bin/kubectl 2>/dev/null | sort -V | tail -n1)"
[[ -x "$KUBECTL" && -f "$KUBECONFIG" ]] || { echo "smoke.sh: run up.sh first" >&2; exit 1; }
NS=paved-smoke
k() { "$KUBECTL" -n "$NS" "$@"; }

passed=0; failed=0
ok()   { echo "ok:   $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() { local what="$1"; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }

t0=$SECONDS
"$KUBECTL" delete namespace "$NS" --ignore-not-found --wait=true --timeout=60s >/dev/null
"$KUBECTL" create namespace "$NS" >/dev/null
# The ServiceAccount controller must create $NS/default before pods can be admitted.
for _ in $(seq 1 40); do k get serviceaccount default >/dev/null 2>&1 && break; sleep 0.25; done

# ---- nodes -----------------------------------------------------------------------
check "4 nodes Ready" "$KUBECTL" wait --for=condition=Ready node/paved-cpu-0 node/paved-cpu-1 node/paved-gpu-0 node/paved-gpu-1 --timeout=30s
gpu_alloc="$("$KUBECTL" get node paved-gpu-0 -o jsonpath='{.status.allocatable.nvidia\.com/gpu}')"
check "paved-gpu-0 allocatable nvidia.com/gpu=4 (got '$gpu_alloc')" test "$gpu_alloc" = 4
taint="$("$KUBECTL" get node paved-gpu-1 -o jsonpath='{range .spec.taints[*]}{.key}={.value}:{.effect}{" "}{end}')"
check "paved-gpu-1 tainted nvidia.com/gpu=present:NoSchedule (got '$taint')" grep -q "nvidia.com/gpu=present:NoSchedule" <<<"$taint"

# ---- GPU deployment becomes Available on GPU nodes -------------------------------
k apply -f - >/dev/null <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: model-server
spec:
  replicas: 2
  progressDeadlineSeconds: 30
  selector:
    matchLabels: {app: model-server}
  template:
    metadata:
      labels: {app: model-server}
    spec:
      nodeSelector:
        paved.dev/accelerator: nvidia-a10g
      tolerations:
      - key: nvidia.com/gpu
        operator: Exists
        effect: NoSchedule
      containers:
      - name: server
        image: registry.local/model-server:1
        resources:
          limits:
            nvidia.com/gpu: 1
EOF
t=$SECONDS
check "GPU deployment Available" k wait --for=condition=Available deployment/model-server --timeout=60s
echo "      (Available after $((SECONDS - t))s)"
nodes="$(k get pods -l app=model-server -o jsonpath='{range .items[*]}{.spec.nodeName}{" "}{end}')"
only_gpu_nodes() { [[ -n "$1" ]] || return 1; local n; for n in $1; do [[ "$n" == paved-gpu-* ]] || return 1; done; }
check "GPU pods on paved-gpu-* nodes (got '$nodes')" only_gpu_nodes "$nodes"
ready="$(k get deployment model-server -o jsonpath='{.status.readyReplicas}/{.status.availableReplicas}')"
check "GPU deployment ready/available 2/2 (got $ready)" test "$ready" = 2/2

# ---- a pod asking for more GPUs than a node has stays Pending --------------------
k apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: too-many-gpus
spec:
  nodeSelector: {paved.dev/accelerator: nvidia-a10g}
  tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
  containers:
  - name: c
    image: registry.local/model-server:1
    resources: {limits: {nvidia.com/gpu: 5}}
EOF
check "pod requesting 5 GPUs is Unschedulable" k wait --for=jsonpath='{.status.conditions[?(@.type=="PodScheduled")].reason}'=Unschedulable pod/too-many-gpus --timeout=30s

# ---- simulated readiness failure -------------------------------------------------
k apply -f - >/dev/null <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: broken
spec:
  replicas: 2
  progressDeadlineSeconds: 10
  selector:
    matchLabels: {app: broken}
  template:
    metadata:
      labels: {app: broken}
    spec:
      containers:
      - name: server
        image: registry.local/model-server:fail-readiness
EOF
t=$SECONDS
check "fail-readiness deployment gets ProgressDeadlineExceeded" \
  k wait --for=jsonpath='{.status.conditions[?(@.type=="Progressing")].reason}'=ProgressDeadlineExceeded deployment/broken --timeout=60s
echo "      (ProgressDeadlineExceeded after $((SECONDS - t))s)"
avail="$(k get deployment broken -o jsonpath='{.status.conditions[?(@.type=="Available")].status}/{.status.availableReplicas}')"
check "fail-readiness deployment not Available (Available condition/availableReplicas: '$avail')" test "$avail" = "False/"
states="$(k get pods -l app=broken -o jsonpath='{range .items[*]}{.status.phase}/{.status.conditions[?(@.type=="Ready")].status}{" "}{end}')"
check "fail-readiness pods Running/Ready=False (got '$states')" test "$states" = "Running/False Running/False "

k apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: unready-by-label
  labels: {paved.dev/simulate: unready}
spec:
  containers:
  - name: c
    image: registry.local/model-server:1
EOF
check "paved.dev/simulate=unready pod Running" k wait --for=jsonpath='{.status.phase}'=Running pod/unready-by-label --timeout=30s
sleep 2
rs="$(k get pod unready-by-label -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')"
check "paved.dev/simulate=unready pod stays Ready=False (got '$rs')" test "$rs" = False

# ---- server-side apply -----------------------------------------------------------
ssa_v1="$(mktemp)"; ssa_v2="$(mktemp)"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa-demo\ndata:\n  key: "v1"\n' >"$ssa_v1"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa-demo\ndata:\n  key: "v2"\n' >"$ssa_v2"
check "server-side apply (create)" k apply --server-side --field-manager=paved-smoke -f "$ssa_v1"
mgr="$(k get configmap ssa-demo --show-managed-fields -o jsonpath='{range .metadata.managedFields[*]}{.manager}:{.operation}{" "}{end}')"
check "managedFields has paved-smoke:Apply (got '$mgr')" grep -q "paved-smoke:Apply" <<<"$mgr"
conflict="$(k apply --server-side --field-manager=other-manager -f "$ssa_v2" 2>&1)"
check "SSA conflict reported for a second manager" grep -qi conflict <<<"$conflict"
check "SSA --force-conflicts takes ownership" k apply --server-side --field-manager=other-manager --force-conflicts -f "$ssa_v2"
rm -f "$ssa_v1" "$ssa_v2"

# ---- NetworkPolicy, PDB, HPA -----------------------------------------------------
check "NetworkPolicy + PodDisruptionBudget + HPA autoscaling/v2 created" k apply -f - <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: model-server
spec:
  podSelector: {matchLabels: {app: model-server}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector: {matchLabels: {role: client}}
    ports: [{protocol: TCP, port: 8080}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: model-server
spec:
  minAvailable: 1
  selector: {matchLabels: {app: model-server}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: model-server
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: model-server}
  minReplicas: 2
  maxReplicas: 4
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}
EOF
pdb="$(k get pdb model-server -o jsonpath='{.status.currentHealthy}/{.status.expectedPods}' 2>/dev/null)"
for _ in $(seq 1 20); do [[ "$pdb" == 2/2 ]] && break; sleep 0.5; pdb="$(k get pdb model-server -o jsonpath='{.status.currentHealthy}/{.status.expectedPods}')"; done
check "PDB status computed by the disruption controller: healthy 2/2 (got '$pdb')" test "$pdb" = 2/2

# ---- a rolling update to a failing image gets stuck, the old pods keep serving ---
k patch deployment model-server --type=merge \
  -p '{"spec":{"progressDeadlineSeconds":10,"template":{"spec":{"containers":[{"name":"server","image":"registry.local/model-server:2-fail-readiness"}]}}}}' >/dev/null
check "rollout to a fail-readiness image gets ProgressDeadlineExceeded" \
  k wait --for=jsonpath='{.status.conditions[?(@.type=="Progressing")].reason}'=ProgressDeadlineExceeded deployment/model-server --timeout=60s
st="$(k get deployment model-server -o jsonpath='{.status.availableReplicas}/{.status.updatedReplicas}/{.status.conditions[?(@.type=="Available")].status}')"
check "stuck rollout: 2 old replicas still available, 1 updated, Available=True (got '$st')" test "$st" = "2/1/True"

# ---- watch -----------------------------------------------------------------------
wlog="$(mktemp)"
timeout 20 "$KUBECTL" -n "$NS" get configmaps --watch-only --output-watch-events >"$wlog" 2>&1 &
wpid=$!
sleep 1.5
k create configmap watched --from-literal=a=1 >/dev/null
k patch configmap watched --type=merge -p '{"data":{"a":"2"}}' >/dev/null
k delete configmap watched >/dev/null
for _ in $(seq 1 20); do grep -q DELETED "$wlog" && break; sleep 0.25; done
kill "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null
events="$(awk '$1 != "EVENT" {print $1}' "$wlog" | tr '\n' ' ')"
check "kubectl watch saw ADDED MODIFIED DELETED (got '$events')" test "$events" = "ADDED MODIFIED DELETED "
raw="$(curl -sS --max-time 3 --cacert "$C/pki/ca.crt" --cert "$C/pki/admin.crt" --key "$C/pki/admin.key" \
  "$("$KUBECTL" config view --minify -o jsonpath='{.clusters[0].cluster.server}')/api/v1/namespaces/$NS/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=1" 2>&1)"
check "raw HTTP watch streams events" grep -q '"type":"ADDED"' <<<"$raw"
rm -f "$wlog"
# Streaming list (WatchList, kube-rs watcher::Config::streaming_lists()): initial ADDED
# events, then a BOOKMARK marked k8s.io/initial-events-end.
raw="$(curl -sS --max-time 3 --cacert "$C/pki/ca.crt" --cert "$C/pki/admin.crt" --key "$C/pki/admin.key" \
  "$("$KUBECTL" config view --minify -o jsonpath='{.clusters[0].cluster.server}')/api/v1/namespaces/$NS/pods?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1" 2>&1)"
check "streaming list (sendInitialEvents) ends with initial-events-end bookmark" grep -q 'k8s.io/initial-events-end' <<<"$raw"

# ---- ServiceAccounts: token issued by the apiserver, accepted back; root CA published ----
tok="$(k create token default --duration=10m 2>/dev/null)"
server="$("$KUBECTL" config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
who="$(curl -sS --max-time 5 --cacert "$C/pki/ca.crt" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
  -d '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}' "$server/apis/authentication.k8s.io/v1/selfsubjectreviews" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["userInfo"]["username"])' 2>&1)"
check "ServiceAccount token authenticates (got '$who')" test "$who" = "system:serviceaccount:$NS:default"
check "kube-root-ca.crt published in the namespace" bash -c "'$KUBECTL' -n $NS get configmap kube-root-ca.crt >/dev/null"

# ---- cleanup ---------------------------------------------------------------------
check "namespace deleted (namespace controller + kwok pod deletion)" \
  "$KUBECTL" delete namespace "$NS" --wait=true --timeout=90s
echo "smoke.sh: $((SECONDS - t0))s"
echo "$passed passed, $failed failed"
((failed == 0))
