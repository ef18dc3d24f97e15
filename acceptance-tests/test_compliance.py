"""Compliance by default, end to end with the real CLIs on the local control plane: a model
endpoint goes through create, canary, promote, a failed canary that is rolled back, a drift
correction and delete, with the audit trail shipped to an HTTP collector and lineage to an
OpenLineage receiver that is down for the first part of the run.

- the audit file holds exactly one intent and one result per change, each valid against
  docs/audit.schema.json, naming the requester and both actors' Kubernetes user; the collector
  receives every record (at least once);
- every Kubernetes object the change applied carries the requester and the change's request id;
- the OpenLineage events validate against the OpenLineage 2-0-2 spec and its facets
  (acceptance-tests/schemas/openlineage), one START and one COMPLETE/FAIL per rollout, run IDs
  equal to the audit request ids, the FAIL carrying the rollback's error; they arrive once the
  receiver is up;
- no test secret appears in the file, the spools or what the receivers got.
"""
import json
import socket
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import referencing
import referencing.jsonschema

REPO = Path(__file__).resolve().parent.parent
OL = REPO / "acceptance-tests" / "schemas" / "openlineage"
SECRET = "paved-collector-token-51c0e7"
REQUESTER = "user:default/ada.lovelace"
KUBE_USER = "paved-admin"
CHANGE_URL = "https://git.example.com/platform/infra/pull/42"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """An HTTP endpoint that records every POST body; start() and stop() model an outage."""

    def __init__(self, port):
        self.port, self.bodies, self.headers, self.server = port, [], [], None
        self.url = f"http://127.0.0.1:{port}/api/v1/lineage"

    def start(self):
        me = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("content-length", 0))
                me.bodies.append(self.rfile.read(n).decode())
                me.headers.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(201)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def lines(self):
        return [json.loads(l) for b in self.bodies for l in b.splitlines() if l.strip()]


def lineage_validator():
    """The spec and the facets paved uses, resolved by their $id as a lineage backend would."""
    resources = []
    for f in [*OL.glob("*.json"), *(REPO / "docs" / "lineage").glob("*.json")]:
        doc = json.loads(f.read_text())
        resources.append((doc["$id"], referencing.Resource.from_contents(doc)))
    registry = referencing.Registry().with_resources(resources)
    spec = json.loads((OL / "OpenLineage.json").read_text())
    assert spec["$id"] == "https://openlineage.io/spec/2-0-2/OpenLineage.json"
    run_event = jsonschema.Draft202012Validator({"$ref": spec["$id"] + "#/$defs/RunEvent"}, registry=registry,
                                                format_checker=jsonschema.FormatChecker())

    def check(event):
        run_event.validate(event)
        # Standard facets against their own schemas (the core spec checks only the base facet).
        facets = [*event["run"].get("facets", {}).values(), *event["job"].get("facets", {}).values()]
        for d in event.get("inputs", []):
            facets += d.get("facets", {}).values()
        for facet in facets:
            url = facet["_schemaURL"]
            # paved's own facets are published in docs/lineage/ and checked the same way.
            if url.startswith(("https://openlineage.io/spec/facets/", "https://paved.dev/spec/facets/")):
                jsonschema.Draft202012Validator({"$ref": url}, registry=registry).validate(facet)
    return check


def by_request(records):
    out = defaultdict(list)
    for r in records:
        out[r["request_id"]].append(r)
    return out


def test_golden_path_changes_are_audited_and_traced(example, cluster, tmp_path):
    audit_file = tmp_path / "trail" / "paved.jsonl"
    lineage_file = tmp_path / "lineage" / "events.jsonl"
    audit_file.parent.mkdir()
    collector, marquez = Receiver(free_port()), Receiver(free_port())
    collector.start()  # the SIEM is up; the lineage backend is down until later
    env = {
        "PAVED_AUDIT_FILE": str(audit_file),
        "PAVED_AUDIT_URL": collector.url.replace("/api/v1/lineage", "/ingest"),
        "PAVED_AUDIT_HEADERS": json.dumps({"Authorization": f"Bearer {SECRET}"}),
        "PAVED_REQUESTER": REQUESTER,
        "PAVED_CHANGE_URL": CHANGE_URL,
        "PAVED_LINEAGE_URL": marquez.url,
        "PAVED_LINEAGE_FILE": str(lineage_file),
        "PAVED_LINEAGE_NAMESPACE": "ml-platform",
    }
    tf = example("model_endpoint", extra_env=env)
    kc = ("-var", f"kubeconfig={cluster.kubeconfig}")
    promote = (*kc, "-var", "model_version=v2", "-var", "image=registry.local/model-server:2")
    try:
        tf.apply(*kc)
        dep = cluster.get("deployment", "llm")
        ann = dep["metadata"]["annotations"]
        assert ann["paved.dev/requested-by"] == REQUESTER and ann["paved.dev/change-url"] == CHANGE_URL, ann
        for kind in ("service", "hpa", "pdb", "networkpolicy", "serviceaccount"):
            a = cluster.get(kind, "llm")["metadata"]["annotations"]
            assert a["paved.dev/requested-by"] == REQUESTER, (kind, a)
            assert a["paved.dev/audit-request-id"] == ann["paved.dev/audit-request-id"], (kind, a)
        tf.apply(*kc, "-var", "canary_percent=20")
        tf.apply(*promote)
        code, out = tf.run("apply", "-auto-approve", *promote, "-var", "canary_percent=20",
                           "-var", "canary_version=v3", "-var", "canary_image=registry.local/fail-readiness:3",
                           check=False)
        assert code == 1 and "rolled back" in out, out
        # Out of band: the next apply puts the spec back.
        cluster.run("set", "image", "deployment/llm", "server=registry.local/model-server:hotfix")
        tf.apply(*promote)
        # The lineage backend comes back; the next run ships what waited in the spool.
        marquez.start()
        tf.run("destroy", "-auto-approve", *promote)
        assert tf.plan_exitcode(*promote)[0] == 2
    finally:
        collector.stop()
        marquez.stop()

    records = [json.loads(l) for l in audit_file.read_text().splitlines()]
    schema = json.loads((REPO / "docs" / "audit.schema.json").read_text())
    for r in records:
        jsonschema.validate(r, schema)
    changes = by_request(records)
    actions = [v[0]["action"] for v in changes.values()]
    assert actions == ["create", "update", "update", "update", "update", "delete"], actions
    for rid, v in changes.items():
        assert [r["phase"] for r in v] == ["intent", "result"], v
        assert v[0]["requester"] == REQUESTER and v[0]["team"] == "search", v[0]
        # Who the kube-apiserver says paved is (SelfSubjectReview): the kubeconfig's user.
        assert v[1]["actor"].get("kubernetes") == KUBE_USER, v[1]
    results = [v[1]["result"] for v in changes.values()]
    assert results == ["succeeded", "succeeded", "succeeded", "failed", "succeeded", "succeeded"], results
    failed = list(changes.values())[3][1]
    assert "rolled back" in failed["error"], failed
    # The collector got every record at least once, with its token, which the trail never holds.
    shipped = {(r["request_id"], r["phase"]) for r in collector.lines()}
    assert shipped == {(r["request_id"], r["phase"]) for r in records}
    assert all(h.get("authorization") == f"Bearer {SECRET}" for h in collector.headers)
    assert all(h.get("content-type") == "application/x-ndjson" for h in collector.headers)

    # Lineage: the same runs in the file and at the receiver, valid, one START and one end each.
    check = lineage_validator()
    in_file = [json.loads(l) for l in lineage_file.read_text().splitlines()]
    received = marquez.lines()
    assert {(e["run"]["runId"], e["eventType"]) for e in received} == \
        {(e["run"]["runId"], e["eventType"]) for e in in_file}
    runs = defaultdict(list)
    for e in in_file:
        check(e)
        runs[e["run"]["runId"]].append(e)
    assert set(runs) == {rid for rid, v in changes.items() if v[0]["action"] != "delete"}
    ends = []
    for rid, evs in runs.items():
        kinds = [e["eventType"] for e in evs]
        assert kinds[0] == "START" and len(kinds) == 2 and kinds[1] in ("COMPLETE", "FAIL"), kinds
        ends.append(kinds[1])
        job = evs[0]["job"]
        assert job["namespace"] == "ml-platform" and job["name"] == "paved_model_endpoint.default/llm", job
        model = evs[0]["inputs"][0]
        assert (model["namespace"], model["name"]) == ("s3://models", "llm-7b"), model
        assert model["facets"]["version"]["datasetVersion"] == "sha256:4f1c8e0d2b7a"
        env_facet = job["facets"]["paved_environment"]
        assert env_facet["cudaVersion"] == "12.2" and env_facet["poolId"] == "gp-local", env_facet
        assert job["facets"]["ownership"]["owners"] == [{"name": "team:search", "type": "TEAM"}]
        assert evs[0]["run"]["facets"]["paved_change"]["requester"] == REQUESTER
    assert ends == ["COMPLETE", "COMPLETE", "COMPLETE", "FAIL", "COMPLETE"], ends
    fail = [evs[1] for evs in runs.values() if evs[1]["eventType"] == "FAIL"][0]
    assert "rolled back" in fail["run"]["facets"]["errorMessage"]["message"], fail
    canary_run = list(runs.values())[1][0]
    assert canary_run["job"]["facets"]["paved_environment"]["canaryVersion"] == "v2"

    # The secret reached the collector's header only: not the trail, the events, or the spools.
    for f in [*audit_file.parent.iterdir(), *lineage_file.parent.iterdir()]:
        assert SECRET not in f.read_text(errors="replace"), f
    assert SECRET not in "".join(collector.bodies + marquez.bodies)
