"""paved_vector_db end to end: the real Terraform CLI and provider against the local control
plane (kube-apiserver, controller-manager with hostPath volume provisioning, scheduler, kwok
nodes). Every check reads the cluster through the API, not only Terraform's state."""
import base64
import json
import time

from conftest import Terraform, plan_summary

KINDS = ["statefulsets", "pods", "services", "secrets", "configmaps", "networkpolicies", "jobs", "cronjobs",
         "poddisruptionbudgets", "persistentvolumeclaims"]


def objects(cluster, db):
    return {k: [i["metadata"]["name"] for i in cluster.get(k, selector=f"paved.dev/vector-db={db}")["items"]] for k in KINDS}


def secret(cluster, name, key):
    return base64.b64decode(cluster.get("secret", name)["data"][key]).decode()


def test_lifecycle(example, cluster):
    tf = example("vector_db")
    kc = ("-var", f"kubeconfig={cluster.kubeconfig}")
    tf.run("validate")
    # Plans need no cluster.
    code, out = tf.plan_exitcode("-var", "kubeconfig=/nonexistent")
    assert code == 2 and plan_summary(out) == (2, 0, 0), out

    tf.apply(*kc)
    faq, docs = tf.state("paved_vector_db.faq"), tf.state("paved_vector_db.docs")
    assert faq["status"] == "Ready" and docs["status"] == "Ready", (faq["status"], docs["status"])
    assert faq["image"] == "pgvector/pgvector:0.8.0-pg16" and faq["port"] == 5432
    assert docs["endpoint"] == "docs.default.svc.cluster.local" and docs["port"] == 6333
    # The generated credentials are what the Secrets hold, and differ per database.
    assert len(faq["api_key"]) == 32 and faq["api_key"] != docs["api_key"]
    assert secret(cluster, "faq-credentials", "api-key") == faq["api_key"]
    assert secret(cluster, "faq-credentials", "uri").startswith("postgresql://paved:")
    # Credentials are sensitive: never printed by Terraform.
    _, shown = tf.run("show")
    assert faq["api_key"] not in shown and "(sensitive value)" in shown

    sts = cluster.get("statefulset", "docs")
    assert sts["status"]["readyReplicas"] == 3
    pod = sts["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["QDRANT__SERVICE__API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "docs-credentials", "key": "api-key"}
    assert env["QDRANT__CLUSTER__ENABLED"]["value"] == "true"
    assert sts["metadata"]["labels"]["backstage.io/kubernetes-id"] == "docs"
    assert sts["metadata"]["labels"]["paved.dev/team"] == "search"
    # Volumes were really provisioned and bound, one per replica.
    claims = cluster.get("pvc", selector="paved.dev/vector-db=docs")["items"]
    assert sorted(c["metadata"]["name"] for c in claims) == ["data-docs-0", "data-docs-1", "data-docs-2"]
    assert all(c["status"]["phase"] == "Bound" for c in claims)
    assert cluster.get("pvc", "data-faq-0")["spec"]["resources"]["requests"]["storage"] == "1Gi"
    # Ingress only from the team's (and listed teams') pods.
    np = cluster.get("networkpolicy", "docs")
    expr = np["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]
    assert expr == {"key": "paved.dev/team", "operator": "In", "values": ["search", "ranking"]}
    # Collections: one completed bootstrap Job per database; the backup CronJob for faq.
    for db in ("faq", "docs"):
        jobs = cluster.get("jobs", selector=f"paved.dev/vector-db={db},paved.dev/role=bootstrap")["items"]
        assert len(jobs) == 1 and jobs[0]["status"]["succeeded"] == 1, jobs
    assert cluster.get("cronjob", "faq-backup")["spec"]["schedule"] == "0 3 * * *"
    assert cluster.get("pdb", "docs")["spec"]["maxUnavailable"] == 1

    assert tf.plan_exitcode(*kc)[0] == 0

    # Immutable volume claims: a new size is a replacement in the plan, not an apply failure.
    code, out = tf.plan_exitcode(*kc, "-var", "storage_size=2Gi")
    assert code == 2 and "forces replacement" in out and plan_summary(out) == (1, 0, 1), out
    # An existing collection's dimension never changes.
    code, out = tf.run("plan", *kc, "-var", "docs_dimension=1024", check=False)
    assert code == 1 and "Collection dimension cannot change" in out and "768" in out, out

    # Scale the qdrant cluster down in place: no PDB for a single replica.
    tf.apply(*kc, "-var", "qdrant_replicas=1")
    assert cluster.get("statefulset", "docs")["spec"]["replicas"] == 1
    assert cluster.get("pdb", "docs") is None
    one = ("-var", "qdrant_replicas=1")
    assert tf.plan_exitcode(*kc, *one)[0] == 0

    # Drift: a deleted Secret makes the database Degraded; apply restores it with the same key.
    key = tf.state("paved_vector_db.faq")["api_key"]
    cluster.run("delete", "secret", "faq-credentials")
    code, out = tf.plan_exitcode(*kc, *one)
    assert code == 2 and "Degraded: Secret faq-credentials is missing" in out, out
    tf.apply(*kc, *one)
    assert secret(cluster, "faq-credentials", "api-key") == key
    assert tf.plan_exitcode(*kc, *one)[0] == 0
    # Drift: an out-of-band image change shows in the plan and apply reverts it.
    cluster.run("set", "image", "statefulset/docs", "qdrant=qdrant/qdrant:v1.13.6-unprivileged")
    code, out = tf.plan_exitcode(*kc, *one)
    assert code == 2 and "qdrant/qdrant:v1.13.6-unprivileged" in out, out
    tf.apply(*kc, *one)
    assert cluster.get("statefulset", "docs")["spec"]["template"]["spec"]["containers"][0]["image"].endswith("v1.15.5-unprivileged")

    # Import by namespace/name gives back the same state; the next plan is empty.
    before = tf.state("paved_vector_db.faq")
    tf.run("state", "rm", "paved_vector_db.faq")
    tf.run("import", *kc, *one, "paved_vector_db.faq", "default/faq")
    after = tf.state("paved_vector_db.faq")
    assert {k: v for k, v in after.items() if k != "timeouts"} == {k: v for k, v in before.items() if k != "timeouts"}
    tf.run("apply", "-refresh-only", "-auto-approve", *kc, *one)
    assert tf.plan_exitcode(*kc, *one)[0] == 0

    # Deleted out of band: the plan re-creates it.
    cluster.run("delete", "statefulset", "faq", "--wait=true")
    code, out = tf.plan_exitcode(*kc, *one)
    assert code == 2 and plan_summary(out) == (1, 0, 0), out
    tf.apply(*kc, *one)
    assert tf.plan_exitcode(*kc, *one)[0] == 0

    # Destroy waits until every object is gone, volume claims and their volumes included.
    tf.run("destroy", "-auto-approve", *kc, *one)
    for db in ("faq", "docs"):
        assert all(v == [] for v in objects(cluster, db).values()), objects(cluster, db)
    # Volumes are reclaimed by the controller-manager after their claims go (asynchronously).
    deadline = time.monotonic() + 30
    while True:
        pvs = [p["metadata"]["name"] for p in cluster.get("pv", ns="default")["items"]
               if p["spec"].get("claimRef", {}).get("name", "").startswith(("data-faq", "data-docs"))]
        if not pvs or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert pvs == [], pvs


TEAMS_TF = """
terraform {
  required_providers {
    paved = {
      source = "paved/paved"
    }
  }
}

variable "kubeconfig" {
  type = string
}

variable "allowed_teams" {
  type    = list(string)
  default = ["tc-ranking", "tc-vision"]
}

provider "paved" {
  default_team    = "tc-search"
  default_project = "rag"
  kubernetes {
    config_path = var.kubeconfig
  }
}

resource "paved_vector_db" "kb" {
  name             = "kb"
  engine           = "pgvector"
  allowed_teams    = var.allowed_teams
  team_credentials = true
  rotation_days    = 30

  storage {
    size = "1Gi"
  }

  collection {
    name      = "kb"
    dimension = 3
  }
}
"""

TEAM_SELECTOR = "paved.dev/vector-db=kb,paved.dev/role=team-credential,paved.dev/vector-db-namespace=default"


def team_secrets(cluster):
    """Every team Secret of the database, in any namespace: {namespace/name: secret}."""
    out = cluster.run("get", "secrets", "-A", "-l", TEAM_SELECTOR, "-o", "json").stdout
    return {f'{s["metadata"]["namespace"]}/{s["metadata"]["name"]}': s for s in json.loads(out)["items"]}


def decoded(s, key):
    return base64.b64decode(s["data"][key]).decode()


def test_team_credentials(tmp_path, cli, cluster):
    """Each team gets its own PostgreSQL role and Secret in its namespace; an old credential is
    rotated, a removed team's Secret is deleted, destroy removes them all."""
    for ns in ("tc-search", "tc-ranking", "tc-vision"):
        p = cluster.run("create", "namespace", ns, check=False)
        assert p.returncode == 0 or "AlreadyExists" in p.stderr, p.stderr
    (tmp_path / "main.tf").write_text(TEAMS_TF)
    tf = Terraform(tmp_path, cli)
    kc = ("-var", f"kubeconfig={cluster.kubeconfig}")
    want = {t: f"{t}/kb-{t}-credentials" for t in ("tc-search", "tc-ranking", "tc-vision")}

    try:
        tf.apply(*kc)
        kb = tf.state("paved_vector_db.kb")
        assert kb["status"] == "Ready" and kb["team_secrets"] == want, kb
        found = team_secrets(cluster)
        assert sorted(found) == sorted(want.values()), sorted(found)
        passwords = {}
        for team, ref in want.items():
            s = found[ref]
            labels = s["metadata"]["labels"]
            assert labels["paved.dev/team"] == "tc-search" and labels["paved.dev/project"] == "rag"
            assert labels["paved.dev/credential-team"] == team
            assert decoded(s, "username") == f"team_{team}" and decoded(s, "database") == "paved"
            assert decoded(s, "endpoint") == "kb.default.svc.cluster.local"
            access = "read-write" if team == "tc-search" else "read-only"
            assert s["metadata"]["annotations"]["paved.dev/access"] == access
            passwords[team] = decoded(s, "password")
            assert len(passwords[team]) == 32
        assert len(set(passwords.values())) == 3
        # PostgreSQL gets verifiers, never a password: the Secret in the database's namespace.
        roles = cluster.get("secret", "kb-team-roles")
        verifiers = {k: base64.b64decode(v).decode() for k, v in roles["data"].items()}
        assert sorted(verifiers) == sorted(f"team_{t}" for t in want)
        assert all(v.startswith("SCRAM-SHA-256$4096:") for v in verifiers.values())
        assert not any(p in v for p in passwords.values() for v in verifiers.values())
        jobs = cluster.get("jobs", selector="paved.dev/vector-db=kb,paved.dev/role=team-roles")["items"]
        assert len(jobs) == 1 and jobs[0]["status"]["succeeded"] == 1, jobs
        # No team password reaches the state or Terraform's output.
        _, state = tf.run("show", "-json")
        assert not any(p in state for p in passwords.values())
        assert tf.plan_exitcode(*kc)[0] == 0

        # Rotation: a credential older than rotation_days plans a change; apply issues a new one.
        cluster.run("annotate", "--overwrite", "secret", "-n", "tc-ranking", "kb-tc-ranking-credentials",
                    "paved.dev/issued-at=2020-01-01T00:00:00Z")
        code, out = tf.plan_exitcode(*kc)
        assert code == 2 and "tc-ranking" in out and plan_summary(out) == (0, 1, 0), out
        tf.apply(*kc)
        found = team_secrets(cluster)
        rotated = found[want["tc-ranking"]]
        assert decoded(rotated, "password") != passwords["tc-ranking"]
        assert rotated["metadata"]["annotations"]["paved.dev/issued-at"] > "2026"
        assert decoded(found[want["tc-search"]], "password") == passwords["tc-search"]
        jobs = cluster.get("jobs", selector="paved.dev/vector-db=kb,paved.dev/role=team-roles")["items"]
        assert len(jobs) == 1 and jobs[0]["status"]["succeeded"] == 1, jobs
        assert tf.plan_exitcode(*kc)[0] == 0

        # Removing a team from allowed_teams deletes its Secret (the roles Job drops its role).
        one = ("-var", 'allowed_teams=["tc-ranking"]')
        code, out = tf.plan_exitcode(*kc, *one)
        assert code == 2 and plan_summary(out) == (0, 1, 0), out
        tf.apply(*kc, *one)
        assert sorted(team_secrets(cluster)) == [want["tc-ranking"], want["tc-search"]]
        roles = cluster.get("secret", "kb-team-roles")
        assert sorted(roles["data"]) == ["team_tc-ranking", "team_tc-search"]
        assert tf.state("paved_vector_db.kb")["team_secrets"] == {t: want[t] for t in ("tc-search", "tc-ranking")}
        assert tf.plan_exitcode(*kc, *one)[0] == 0

        # A team Secret deleted out of band is Degraded and issued again.
        cluster.run("delete", "secret", "-n", "tc-search", "kb-tc-search-credentials")
        code, out = tf.plan_exitcode(*kc, *one)
        assert code == 2 and "Secret tc-search/kb-tc-search-credentials is missing" in out, out
        tf.apply(*kc, *one)
        assert want["tc-search"] in team_secrets(cluster)
        assert tf.plan_exitcode(*kc, *one)[0] == 0

        # Destroy removes every team Secret in every namespace.
        tf.run("destroy", "-auto-approve", *kc, *one)
        assert team_secrets(cluster) == {}
        assert all(v == [] for v in objects(cluster, "kb").values()), objects(cluster, "kb")
    finally:
        # Leaves nothing behind for the next run after a failed assertion (a no-op otherwise).
        tf.run("destroy", "-auto-approve", *kc, check=False)
