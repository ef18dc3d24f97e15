"""The local Compute Engine API's own tests (acceptance-tests/gce/server.py).

Fidelity to Google's wire format: every request the server received and every answer it
gave during these tests (its request log) is validated against Google's discovery document
compute.v1.json (schemas, formats, enums, required fields, `kind` constants), and the real
`gcloud` CLI drives a template + regional group round trip against it.

Semantics: operations PENDING -> RUNNING -> DONE, requestId de-duplication, immutable and
in-use templates, groups reconciling to their target size (resize DONE before the
instances exist), stockouts and quota in listErrors / listManagedInstances, machine-type
fallback, Spot preemption, out-of-band changes, injected faults.

Each test gets its own in-process server on an ephemeral 127.0.0.1 port with fast timings.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "gce"))

import discovery  # noqa: E402
import server as gce  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
P = "paved-test"
FAST = {"op_pending_s": 0.05, "op_running_s": 0.2, "instance_boot_s": 0.4, "instance_delete_s": 0.2,
        "create_retry_s": 0.3, "repair_delay_s": 0.3, "tick_s": 0.02, "wait_max_s": 10}


@pytest.fixture(scope="session")
def doc():
    path = os.environ.get("PAVED_GCE_DISCOVERY")
    if not path:
        path = subprocess.run(["bash", str(HERE / "gce.sh"), "discovery"], check=True, capture_output=True,
                              text=True).stdout.strip().splitlines()[-1]
    return discovery.load(Path(path))


@pytest.fixture(scope="session")
def validator(doc):
    return discovery.Validator(doc)


@pytest.fixture(scope="session")
def methods_by_id(doc):
    return {m.id: m for m in discovery.methods(doc)}


def check_error_body(body) -> list[str]:
    """Google's JSON error format: {"error": {"code": int, "message": str,
    "errors": [{"message", "domain", "reason"}]}}."""
    errs = []
    if not isinstance(body, dict) or set(body) != {"error"}:
        return [f"error body is not {{'error': ...}}: {body!r}"[:200]]
    e = body["error"]
    if not isinstance(e.get("code"), int) or not isinstance(e.get("message"), str):
        errs.append(f"error.code/message missing: {e!r}"[:200])
    for item in e.get("errors") or [None]:
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("message", "domain", "reason")):
            errs.append(f"error.errors[] item malformed: {item!r}"[:200])
    extra = set(e) - {"code", "message", "errors", "status", "details"}
    if extra:
        errs.append(f"error has unknown members {extra}")
    return errs


def validate_log(entries, validator, methods_by_id) -> list[str]:
    problems = []
    for e in entries:
        where = f"#{e['seq']} {e['http']} {e['path']}"
        m = methods_by_id.get(e["method"])
        if m is None:
            if e["status"] < 400:
                problems.append(f"{where}: answered {e['status']} without a discovery method")
            problems += [f"{where}: {x}" for x in check_error_body(e["response"])]
            continue
        if m.request and e["request"] is not None and e["status"] != 400:
            problems += [f"{where} request: {x}" for x in validator.validate(e["request"], m.request, method_id=m.id)]
        if e["status"] >= 400:
            problems += [f"{where} error: {x}" for x in check_error_body(e["response"])]
        elif m.response:
            problems += [f"{where} response: {x}" for x in validator.validate(e["response"], m.response)]
        elif e["response"] not in ({}, None):
            problems.append(f"{where}: {m.id} has no response schema but answered {e['response']!r}"[:200])
    return problems


class Api:
    def __init__(self, base: str):
        self.base = base

    def call(self, method: str, path: str, body=None, **query):
        q = "&".join(f"{k}={urllib.parse.quote(str(v))}" for k, v in query.items())
        url = f"{self.base}/compute/v1/projects/{path}" + (f"?{q}" if q else "")
        return self.raw(method, url, body)

    def raw(self, method: str, url: str, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def ok(self, method, path, body=None, **query):
        st, out = self.call(method, path, body, **query)
        assert st == 200, (st, out)
        return out

    def control(self, path: str, body=None):
        st, out = self.raw("POST" if body is not None else "GET", f"{self.base}/_test/{path}", body)
        assert st == 200, (st, out)
        return out

    def wait_op(self, op):
        scope = op["selfLink"].split("/projects/")[1].rsplit("/operations/", 1)[0]
        out = self.ok("POST", f"{scope}/operations/{op['name']}/wait")
        assert out["status"] == "DONE", out
        return out

    def do(self, method, path, body=None, **query):
        op = self.ok(method, path, body, **query)
        assert op["kind"] == "compute#operation"
        done = self.wait_op(op)
        assert "error" not in done, done
        return done


import urllib.parse  # noqa: E402


def wait_until(pred, timeout=15.0, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@pytest.fixture
def srv(doc, validator, methods_by_id):
    s = gce.Server("127.0.0.1", 0, doc, FAST).start()
    try:
        yield s
    finally:
        entries = list(s.world.log)
        s.stop()
    problems = validate_log(entries, validator, methods_by_id)
    assert not problems, "messages that do not match compute.v1.json:\n" + "\n".join(problems[:30])
    assert entries, "the test sent no request"


@pytest.fixture
def api(srv):
    return Api(srv.base_url)


def template_body(name, machine_type="g2-standard-4", spot=False, accel=None, labels=None, **sched):
    props = {
        "machineType": machine_type,
        "disks": [{"boot": True, "autoDelete": True, "initializeParams": {
            "sourceImage": "projects/deeplearning-platform-release/global/images/family/common-cu128-ubuntu-2204-nvidia-570",
            "diskSizeGb": "100"}}],
        "networkInterfaces": [{"network": "global/networks/default"}],
        "scheduling": {"onHostMaintenance": "TERMINATE", **sched},
        "labels": labels or {"paved-team": "ml", "paved-pool": "p1"},
        "metadata": {"items": [{"key": "startup-script", "value": "#!/bin/sh\necho hi\n"}]},
    }
    if spot:
        props["scheduling"].update({"provisioningModel": "SPOT", "automaticRestart": False, "instanceTerminationAction": "DELETE"})
    if accel:
        props["guestAccelerators"] = [{"acceleratorType": accel[0], "acceleratorCount": accel[1]}]
    return {"name": name, "description": "paved test", "properties": props}


def igm_body(name, template, size, zones=("us-central1-a", "us-central1-b", "us-central1-c"), shape="EVEN", **extra):
    return {"name": name, "baseInstanceName": name, "targetSize": size,
            "versions": [{"instanceTemplate": f"global/instanceTemplates/{template}", "name": "v1"}],
            "distributionPolicy": {"targetShape": shape, "zones": [{"zone": f"zones/{z}"} for z in zones]}, **extra}


def members(api, name, region="us-central1"):
    out = api.ok("POST", f"{P}/regions/{region}/instanceGroupManagers/{name}/listManagedInstances")
    return out.get("managedInstances", [])


def running(api, name, region="us-central1"):
    return [m for m in members(api, name, region) if m.get("instanceStatus") == "RUNNING" and m["currentAction"] == "NONE"]


def make_group(api, name="pool", size=2, template="t1", tbody=None, **kw):
    api.do("POST", f"{P}/global/instanceTemplates", tbody or template_body(template))
    api.do("POST", f"{P}/regions/us-central1/instanceGroupManagers", igm_body(name, template, size, **kw))


# ---- the validator itself ------------------------------------------------------------
def test_validator_accepts_google_shaped_messages(validator):
    op = {"kind": "compute#operation", "id": "4218421012331238612", "name": "operation-1-abc", "status": "RUNNING",
          "operationType": "compute.instanceGroupManagers.insert", "progress": 0, "insertTime": "2026-12-01T10:00:00.000-08:00",
          "targetId": "123", "targetLink": "https://www.googleapis.com/compute/v1/projects/p/regions/r/instanceGroupManagers/g",
          "error": {"errors": [{"code": "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS", "message": "x", "errorDetails": [
              {"errorInfo": {"reason": "resource_availability", "domain": "compute.googleapis.com",
                             "metadatas": {"zone": "us-central1-b", "vmType": "n1-standard-4"}}},
              {"help": {"links": [{"description": "d", "url": "https://cloud.google.com"}]}},
              {"localizedMessage": {"locale": "en-US", "message": "m"}}]}]}}
    assert validator.validate(op, "Operation") == []
    tmpl = {"name": "t", "properties": {"machineType": "n1-standard-4", "guestAccelerators": [
        {"acceleratorType": "nvidia-tesla-t4", "acceleratorCount": 1}], "scheduling": {"provisioningModel": "SPOT"}}}
    assert validator.validate(tmpl, "InstanceTemplate", method_id="compute.instanceTemplates.insert") == []


@pytest.mark.parametrize("value,schema,needle", [
    ({"kind": "compute#operation", "bogus": 1}, "Operation", "unknown field 'bogus'"),
    ({"status": "FINISHED"}, "Operation", "not in enum"),
    ({"id": 12}, "Operation", "expected string"),
    ({"id": "12a"}, "Operation", "uint64"),
    ({"progress": "10"}, "Operation", "expected integer"),
    ({"progress": 2**40}, "Operation", "int32"),
    ({"kind": "compute#instance"}, "Operation", "expected 'compute#operation'"),
    ({"fingerprint": "not base64!"}, "InstanceGroupManager", "base64"),
    ({"targetSize": True}, "InstanceGroupManager", "expected integer"),
    ({"versions": {"instanceTemplate": "x"}}, "InstanceGroupManager", "expected array"),
    ({"properties": {"machineType": "n1-standard-1", "labels": {"a": 1}}}, "InstanceTemplate", "expected string"),
])
def test_validator_rejects(validator, value, schema, needle):
    errs = validator.validate(value, schema)
    assert any(needle in e for e in errs), errs


def test_validator_required_fields(validator):
    errs = validator.validate({"properties": {}}, "InstanceTemplate", method_id="compute.instanceTemplates.insert")
    assert any("'name'" in e for e in errs) and any("'machineType'" in e for e in errs), errs
    errs = validator.validate({"name": "g"}, "InstanceGroupManager", method_id="compute.regionInstanceGroupManagers.insert")
    assert any("'targetSize'" in e for e in errs), errs


def test_routes_are_the_discovery_flat_paths(doc):
    ms = {m.key: m for m in discovery.methods(doc)}
    for key in gce.HANDLERS:
        assert key in ms, f"handler {key} is not a discovery method"
    m = ms["regionInstanceGroupManagers.resize"]
    assert m.flat_path == "projects/{project}/regions/{region}/instanceGroupManagers/{instanceGroupManager}/resize"
    assert m.regex.match("projects/p/regions/us-central1/instanceGroupManagers/g/resize").groupdict() == {
        "project": "p", "region": "us-central1", "instanceGroupManager": "g"}


# ---- wire behaviour ----------------------------------------------------------------------
def test_rejects_unknown_fields_params_and_methods(api):
    body = template_body("t1")
    body["properties"]["machineTyp"] = "x"
    st, out = api.call("POST", f"{P}/global/instanceTemplates", body)
    assert st == 400 and "unknown field 'machineTyp'" in out["error"]["message"], out
    st, out = api.call("GET", f"{P}/zones/us-central1-a/machineTypes", bogus="1")
    assert st == 400 and "bogus" in out["error"]["message"]
    st, out = api.call("POST", f"{P}/regions/us-central1/instanceGroupManagers/g/resize")  # size is required
    assert st == 400 and "size" in out["error"]["message"]
    st, out = api.call("POST", f"{P}/zones/us-central1-a/instances", {"name": "vm"})
    assert st == 501 and out["error"]["errors"][0]["reason"] == "notImplemented"
    st, out = api.call("PUT", f"{P}/global/instanceTemplates/t1", {"name": "t1"})  # templates have no update
    assert st == 404
    st, out = api.call("GET", f"{P}/global/instanceTemplates/nope")
    assert st == 404 and out["error"]["errors"][0] == {
        "message": f"The resource 'projects/{P}/global/instanceTemplates/nope' was not found",
        "domain": "global", "reason": "notFound"}


def test_catalog(api):
    mts = api.ok("GET", f"{P}/zones/us-central1-a/machineTypes")["items"]
    a2 = next(m for m in mts if m["name"] == "a2-highgpu-1g")
    assert a2["accelerators"] == [{"guestAcceleratorType": "nvidia-tesla-a100", "guestAcceleratorCount": 1}]
    f_types = {m["name"] for m in api.ok("GET", f"{P}/zones/us-central1-f/machineTypes")["items"]}
    assert "g2-standard-4" not in f_types and "n1-standard-4" in f_types
    accs = {a["name"] for a in api.ok("GET", f"{P}/zones/us-central1-f/acceleratorTypes")["items"]}
    assert "nvidia-tesla-t4" in accs and "nvidia-l4" not in accs
    page = api.ok("GET", f"{P}/zones/us-central1-a/machineTypes", maxResults=5)
    assert len(page["items"]) == 5 and page["nextPageToken"]
    page2 = api.ok("GET", f"{P}/zones/us-central1-a/machineTypes", maxResults=5, pageToken=page["nextPageToken"])
    assert {m["name"] for m in page2["items"]}.isdisjoint({m["name"] for m in page["items"]})
    zones = api.ok("GET", f"{P}/zones", filter='region eq ".*/us-central1"')["items"]
    assert sorted(z["name"] for z in zones) == ["us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"]
    st, _ = api.call("GET", f"{P}/zones/us-central1-f/machineTypes/g2-standard-4")
    assert st == 404


def test_operation_lifecycle_and_template_visibility(api, srv):
    srv.world.config["op_running_s"] = 0.5
    op = api.ok("POST", f"{P}/global/instanceTemplates", template_body("t1"))
    assert op["status"] in ("PENDING", "RUNNING") and op["operationType"] == "compute.instanceTemplates.insert"
    assert op["targetLink"].endswith(f"/projects/{P}/global/instanceTemplates/t1")
    st, _ = api.call("GET", f"{P}/global/instanceTemplates/t1")
    assert st == 404, "a template is visible only once its insert is DONE"
    seen = set()
    wait_until(lambda: seen.add(api.ok("GET", f"{P}/global/operations/{op['name']}")["status"]) or "DONE" in seen, what="DONE")
    assert "RUNNING" in seen
    done = api.ok("POST", f"{P}/global/operations/{op['name']}/wait")
    assert done["status"] == "DONE" and done["progress"] == 100 and "endTime" in done
    t = api.ok("GET", f"{P}/global/instanceTemplates/t1")
    assert t["properties"]["scheduling"]["onHostMaintenance"] == "TERMINATE"
    assert t["properties"]["labels"] == {"paved-team": "ml", "paved-pool": "p1"}
    st, out = api.call("POST", f"{P}/global/instanceTemplates", template_body("t1"))
    assert st == 409 and out["error"]["errors"][0]["reason"] == "alreadyExists"
    # Wrong scope: a global operation is not a region's.
    st, _ = api.call("GET", f"{P}/regions/us-central1/operations/{op['name']}")
    assert st == 404


def test_wait_returns_before_done_when_the_operation_outlasts_it(api, srv):
    srv.world.config.update(op_running_s=3.0, wait_max_s=0.3)
    op = api.ok("POST", f"{P}/global/instanceTemplates", template_body("t1"))
    t0 = time.time()
    out = api.ok("POST", f"{P}/global/operations/{op['name']}/wait")
    assert out["status"] != "DONE" and time.time() - t0 < 2.5


def test_request_id_deduplicates(api, srv):
    rid = str(uuid.uuid4())
    a = api.ok("POST", f"{P}/global/instanceTemplates", template_body("t1"), requestId=rid)
    b = api.ok("POST", f"{P}/global/instanceTemplates", template_body("t1"), requestId=rid)
    assert a["name"] == b["name"] and a["id"] == b["id"]
    api.wait_op(a)
    c = api.ok("POST", f"{P}/global/instanceTemplates", template_body("t1"), requestId=rid)
    assert c["name"] == a["name"] and c["status"] == "DONE" and "error" not in c
    st, out = api.call("POST", f"{P}/global/instanceTemplates", template_body("t2"), requestId="not-a-uuid")
    assert st == 400 and "UUID" in out["error"]["message"]
    st, _ = api.call("POST", f"{P}/global/instanceTemplates", template_body("t2"), requestId=str(uuid.UUID(int=0)))
    assert st == 400
    # A lost answer: the write is applied, the client sees 503 and retries with the same id.
    api.control("faults", {"method": "regionInstanceGroupManagers.insert", "status": 503, "when": "after"})
    rid = str(uuid.uuid4())
    st, out = api.call("POST", f"{P}/regions/us-central1/instanceGroupManagers", igm_body("g", "t1", 1), requestId=rid)
    assert st == 503 and out["error"]["errors"][0]["reason"] == "backendError"
    op = api.ok("POST", f"{P}/regions/us-central1/instanceGroupManagers", igm_body("g", "t1", 1), requestId=rid)
    api.wait_op(op)
    groups = api.ok("GET", f"{P}/regions/us-central1/instanceGroupManagers")["items"]
    assert [g["name"] for g in groups] == ["g"]
    # Without a requestId the retry is a second write, refused.
    st, out = api.call("POST", f"{P}/regions/us-central1/instanceGroupManagers", igm_body("g", "t1", 1))
    assert st == 409


def test_injected_faults(api):
    api.control("faults", {"method": "compute.zones.list", "status": 429, "count": 2})
    for _ in range(2):
        st, out = api.call("GET", f"{P}/zones")
        assert st == 429 and out["error"]["errors"][0] == {"message": "Rate Limit Exceeded", "domain": "usageLimits",
                                                            "reason": "rateLimitExceeded"}
    assert api.call("GET", f"{P}/zones")[0] == 200
    api.control("faults", {"method": "*", "status": 503})
    assert api.call("GET", f"{P}/regions")[0] == 503
    assert api.call("GET", f"{P}/regions")[0] == 200


def test_group_reconciles_over_time_and_resize_is_done_first(api, srv):
    make_group(api, size=3)
    g = api.ok("GET", f"{P}/regions/us-central1/instanceGroupManagers/pool")
    assert g["targetSize"] == 3 and g["status"]["isStable"] is False
    wait_until(lambda: len(running(api, "pool")) == 3, what="3 running")
    ms = members(api, "pool")
    assert sorted(m["instance"].split("/zones/")[1].split("/")[0] for m in ms) == ["us-central1-a", "us-central1-b", "us-central1-c"]
    assert all(m["version"]["instanceTemplate"].endswith("/global/instanceTemplates/t1") for m in ms)
    wait_until(lambda: api.ok("GET", f"{P}/regions/us-central1/instanceGroupManagers/pool")["status"]["isStable"], what="stable")
    inst = api.ok("GET", ms[0]["instance"].split("/projects/")[1])
    assert inst["labels"] == {"paved-team": "ml", "paved-pool": "p1"}
    assert inst["machineType"].endswith("/machineTypes/g2-standard-4")
    assert any(i["key"] == "created-by" and i["value"].endswith("/instanceGroupManagers/pool") for i in inst["metadata"]["items"])
    srv.world.config["instance_boot_s"] = 2.0
    done = api.do("POST", f"{P}/regions/us-central1/instanceGroupManagers/pool/resize", size=5)
    assert done["operationType"] == "compute.regionInstanceGroupManagers.resize"
    g = api.ok("GET", f"{P}/regions/us-central1/instanceGroupManagers/pool")
    assert g["targetSize"] == 5 and len(running(api, "pool")) == 3, "resize is DONE before the new instances exist"
    assert g["currentActions"]["creating"] == 2
    wait_until(lambda: len(running(api, "pool")) == 5, what="5 running")
    api.do("POST", f"{P}/regions/us-central1/instanceGroupManagers/pool/resize", size=1)
    wait_until(lambda: len(members(api, "pool")) == 1, what="shrunk to 1")
    agg = api.ok("GET", f"{P}/aggregated/instances")["items"]
    assert sum(len(v.get("instances", [])) for v in agg.values()) == 1


def test_template_in_use_cannot_be_deleted_and_group_delete_waits_for_instances(api, srv):
    make_group(api, size=2)
    st, out = api.call("DELETE", f"{P}/global/instanceTemplates/t1")
    assert st == 400 and out["error"]["errors"][0]["reason"] == "resourceInUseByAnotherResource"
    assert f"projects/{P}/regions/us-central1/instanceGroupManagers/pool" in out["error"]["message"]
    wait_until(lambda: len(running(api, "pool")) == 2)
    srv.world.config.update(instance_delete_s=1.0)
    op = api.ok("DELETE", f"{P}/regions/us-central1/instanceGroupManagers/pool")
    time.sleep(0.5)
    assert api.ok("GET", f"{P}/regions/us-central1/operations/{op['name']}")["status"] == "RUNNING"
    g = api.ok("GET", f"{P}/regions/us-central1/instanceGroupManagers/pool")
    assert g["currentActions"]["deleting"] == 2
    st, out = api.call("POST", f"{P}/regions/us-central1/instanceGroupManagers/pool/resize", size=3)
    assert st == 400 and out["error"]["errors"][0]["reason"] == "resourceNotReady"
    api.wait_op(op)
    assert api.call("GET", f"{P}/regions/us-central1/instanceGroupManagers/pool")[0] == 404
    assert "items" not in api.ok("GET", f"{P}/zones/us-central1-a/instances")
    api.do("DELETE", f"{P}/global/instanceTemplates/t1")
    assert api.call("GET", f"{P}/global/instanceTemplates/t1")[0] == 404


def test_stockout_is_reported_and_retried(api):
    api.control("capacity", {"zone": "us-central1-b", "machineType": "g2-standard-4", "available": 0})
    make_group(api, size=3)
    wait_until(lambda: len(running(api, "pool")) == 2, what="2 running outside the stocked-out zone")

    def errors():
        return api.ok("GET", f"{P}/regions/us-central1/instanceGroupManagers/pool/listErrors").get("items", [])
    items = wait_until(errors, what="listErrors")
    e = items[0]
    assert e["error"]["code"] == "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS"
    assert "us-central1-b" in e["error"]["message"] and "1 nvidia-l4" in e["error"]["message"]
    assert e["instanceActionDetails"]["action"] == "CREATING" and "/zones/us-central1-b/" in e["instanceActionDetails"]["instance"]
    stuck = [m for m in members(api, "pool") if m["currentAction"] == "CREATING"]
    assert len(stuck) == 1 and "instanceStatus" not in stuck[0]
    err = stuck[0]["lastAttempt"]["errors"]["errors"][0]
    assert err["code"] == "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS"
    info = err["errorDetails"][0]["errorInfo"]
    assert info["reason"] == "resource_availability" and info["metadatas"]["zone"] == "us-central1-b"
    assert set(info["metadatas"]["zonesAvailable"].split(",")) == {"us-central1-a", "us-central1-c"}
    n = len(errors())
    time.sleep(1.0)
    assert len(errors()) > n, "the group keeps retrying"
    api.control("capacity", {"zone": "us-central1-b", "machineType": "g2-standard-4", "available": None})
    wait_until(lambda: len(running(api, "pool")) == 3, what="capacity back")


def test_stockout_plain_code_and_balanced_shape_moves_zone(api):
    api.control("capacity", {"zone": "us-central1-a", "machineType": "*", "available": 0, "code": "ZONE_RESOURCE_POOL_EXHAUSTED"})
    make_group(api, size=3, shape="BALANCED")
    wait_until(lambda: len(running(api, "pool")) == 3, what="3 running in b and c")
    zones = [m["instance"].split("/zones/")[1].split("/")[0] for m in members(api, "pool")]
    assert "us-central1-a" not in zones
    items = api.ok("GET", f"{P}/regions/us-central1/instanceGroupManagers/pool/listErrors").get("items", [])
    assert items and items[-1]["error"]["code"] == "ZONE_RESOURCE_POOL_EXHAUSTED"
    assert items[-1]["error"]["message"].startswith(f"The zone 'projects/{P}/zones/us-central1-a' does not have enough resources")


def test_quota_exceeded(api):
    api.control("quota", {"region": "us-central1", "metric": "NVIDIA_L4_GPUS", "limit": 2})
    make_group(api, size=3)
    wait_until(lambda: len(running(api, "pool")) == 2)
    e = wait_until(lambda: api.ok("GET", f"{P}/regions/us-central1/instanceGroupManagers/pool/listErrors").get("items"))[0]
    assert e["error"]["code"] == "QUOTA_EXCEEDED" and "NVIDIA_L4_GPUS" in e["error"]["message"]
    q = {x["metric"]: x for x in api.ok("GET", f"{P}/regions/us-central1")["quotas"]}
    assert q["NVIDIA_L4_GPUS"]["limit"] == 2.0 and q["NVIDIA_L4_GPUS"]["usage"] == 2.0


def test_flexibility_policy_falls_back_across_machine_types(api):
    api.control("capacity", {"machineType": "a2-highgpu-1g", "available": 0})
    flex = {"instanceSelections": {"first": {"rank": 1, "machineTypes": ["a2-highgpu-1g"]},
                                   "second": {"rank": 2, "machineTypes": ["g2-standard-8"]}}}
    make_group(api, size=2, tbody=template_body("t1", "a2-highgpu-1g"), instanceFlexibilityPolicy=flex)
    wait_until(lambda: len(running(api, "pool")) == 2)
    ms = members(api, "pool")
    assert {m["propertiesFromFlexibilityPolicy"]["machineType"] for m in ms} == {"g2-standard-8"}


def test_gpu_rules_at_instance_creation(api):
    # N1 + guestAccelerators with live migration: the group cannot create it.
    tb = template_body("t1", "n1-standard-4", accel=("nvidia-tesla-t4", 1), onHostMaintenance="MIGRATE")
    make_group(api, size=1, tbody=tb)
    e = wait_until(lambda: api.ok("GET", f"{P}/regions/us-central1/instanceGroupManagers/pool/listErrors").get("items"))[0]
    assert e["error"]["code"] == "UNSUPPORTED_OPERATION" and "live migration" in e["error"]["message"]
    # A T4 on N1 with TERMINATE works, in a zone that has T4s.
    api.do("POST", f"{P}/global/instanceTemplates", template_body("t2", "n1-standard-4", accel=("nvidia-tesla-t4", 1)))
    api.do("PATCH", f"{P}/regions/us-central1/instanceGroupManagers/pool",
           {"versions": [{"instanceTemplate": f"global/instanceTemplates/t2", "name": "v2"}]})
    wait_until(lambda: len(running(api, "pool")) == 1)
    inst = api.ok("GET", members(api, "pool")[0]["instance"].split("/projects/")[1])
    assert inst["guestAccelerators"][0]["acceleratorType"].endswith("/acceleratorTypes/nvidia-tesla-t4")
    st, out = api.call("POST", f"{P}/global/instanceTemplates", template_body("t3", "n1-standard-4", accel=("nvidia-h200", 1)))
    assert st == 400
    st, out = api.call("POST", f"{P}/global/instanceTemplates", template_body("t3", labels={"Paved:Team": "ml"}))
    assert st == 400 and "Label" in out["error"]["message"]


def test_patch_versions_rolls_out_in_place(api):
    make_group(api, size=2)
    wait_until(lambda: len(running(api, "pool")) == 2)
    before = {m["name"] for m in members(api, "pool")}
    api.do("POST", f"{P}/global/instanceTemplates", template_body("t2", "g2-standard-8"))
    api.do("PATCH", f"{P}/regions/us-central1/instanceGroupManagers/pool",
           {"versions": [{"instanceTemplate": f"global/instanceTemplates/t2", "name": "v2"}]})
    g = api.ok("GET", f"{P}/regions/us-central1/instanceGroupManagers/pool")
    assert g["instanceTemplate"].endswith("/t2") and g["targetSize"] == 2

    def rolled():
        ms = members(api, "pool")
        g = api.ok("GET", f"{P}/regions/us-central1/instanceGroupManagers/pool")
        return g["status"]["versionTarget"]["isReached"] and g["status"]["isStable"] and len(ms) == 2 and all(
            m["version"]["instanceTemplate"].endswith("/t2") and m.get("instanceStatus") == "RUNNING" for m in ms)
    wait_until(rolled, what="rolled out")
    assert {m["name"] for m in members(api, "pool")} == before, "instances are recreated under their names"
    api.do("DELETE", f"{P}/global/instanceTemplates/t1")  # no longer used
    st, _ = api.call("PATCH", f"{P}/regions/us-central1/instanceGroupManagers/pool", {"baseInstanceName": "other"})
    assert st == 400
    st, _ = api.call("PATCH", f"{P}/regions/us-central1/instanceGroupManagers/pool",
                     {"versions": [{"instanceTemplate": "global/instanceTemplates/missing"}]})
    assert st == 404


def test_spot_preemption_and_out_of_band_changes(api):
    make_group(api, size=2, tbody=template_body("t1", spot=True))
    wait_until(lambda: len(running(api, "pool")) == 2)
    m = members(api, "pool")[0]
    zone, name = m["instance"].split("/zones/")[1].split("/instances/")
    out = api.control("preempt", {"project": P, "zone": zone, "name": name})
    assert out["action"] == "DELETE"
    wait_until(lambda: len(running(api, "pool")) == 1, timeout=2, what="preempted")
    wait_until(lambda: len(running(api, "pool")) == 2, what="recreated after preemption")
    # Out of band: an instance deleted through the API, the group recreates it.
    m = members(api, "pool")[1]
    api.do("DELETE", m["instance"].split("/projects/")[1])
    wait_until(lambda: len(running(api, "pool")) == 2, what="recreated after delete")
    # Out of band: someone else resizes the group.
    api.control("igm/resize", {"project": P, "region": "us-central1", "name": "pool", "size": 4})
    assert api.ok("GET", f"{P}/regions/us-central1/instanceGroupManagers/pool")["targetSize"] == 4
    wait_until(lambda: len(running(api, "pool")) == 4)
    st, _ = api.raw("POST", f"{api.base}/_test/preempt", {"project": P, "zone": "us-central1-a", "name": "nope"})
    assert st == 404


def test_standard_vm_is_not_preempted_and_stop_action_terminates(api):
    make_group(api, size=1)
    wait_until(lambda: len(running(api, "pool")) == 1)
    zone, name = members(api, "pool")[0]["instance"].split("/zones/")[1].split("/instances/")
    st, _ = api.raw("POST", f"{api.base}/_test/preempt", {"project": P, "zone": zone, "name": name})
    assert st == 400
    tb = template_body("t2", spot=True)
    tb["properties"]["scheduling"]["instanceTerminationAction"] = "STOP"
    api.do("POST", f"{P}/global/instanceTemplates", tb)
    api.do("POST", f"{P}/regions/us-central1/instanceGroupManagers", igm_body("spot", "t2", 1))
    wait_until(lambda: len(running(api, "spot")) == 1)
    zone, name = members(api, "spot")[0]["instance"].split("/zones/")[1].split("/instances/")
    assert api.control("preempt", {"project": P, "zone": zone, "name": name})["action"] == "STOP"
    assert api.ok("GET", f"{P}/zones/{zone}/instances/{name}")["status"] == "TERMINATED"
    wait_until(lambda: len(running(api, "spot")) == 1, what="repaired")


def test_control_endpoint_rejects_bad_input(api):
    for path, body in [("capacity", {"zone": "mars-1a", "available": 0}), ("capacity", {"code": "NOPE", "available": 0}),
                       ("faults", {"status": 404}), ("config", {"nope": 1})]:
        st, _ = api.raw("POST", f"{api.base}/_test/{path}", body)
        assert st == 400, path
    assert api.ok("GET", f"{P}/regions/us-central1")["name"] == "us-central1"


# ---- gce.sh ------------------------------------------------------------------------------
def test_gce_sh_start_is_idempotent_and_prints_the_url():
    script = HERE / "gce.sh"
    was_up = subprocess.run(["bash", str(script), "status"], capture_output=True).returncode == 0
    try:
        a = subprocess.run(["bash", str(script), "start"], check=True, capture_output=True, text=True, timeout=120)
        b = subprocess.run(["bash", str(script), "start"], check=True, capture_output=True, text=True, timeout=60)
        url = a.stdout.strip().splitlines()[-1]
        assert url.startswith("http://127.0.0.1:") and b.stdout.strip().splitlines()[-1] == url
        st = subprocess.run(["bash", str(script), "status"], capture_output=True, text=True)
        assert st.returncode == 0 and "healthy" in st.stdout
        with urllib.request.urlopen(f"{url}/compute/v1/projects/{P}/zones/us-central1-a", timeout=10) as r:
            assert json.load(r)["name"] == "us-central1-a"
    finally:
        if not was_up:
            subprocess.run(["bash", str(script), "stop"], check=True)
            assert subprocess.run(["bash", str(script), "status"], capture_output=True).returncode == 3


# ---- the real gcloud CLI ---------------------------------------------------------------
def gcloud_bin():
    g = shutil.which("gcloud")
    if g is None:
        if IN_CI:
            pytest.fail("gcloud is not installed (CI=true)")
        pytest.skip("gcloud is not installed")
    return g


def test_gcloud_round_trip(api, srv, tmp_path):
    g = gcloud_bin()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSDK_")}
    env.update({
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE": f"{srv.base_url}/compute/v1/",
        "CLOUDSDK_AUTH_ACCESS_TOKEN": "paved-local-token",
        "CLOUDSDK_CORE_PROJECT": P,
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_COMPUTE_REGION": "us-central1",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "1",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
    })

    def run(*args, ok=True):
        p = subprocess.run([g, *args], env=env, capture_output=True, text=True, timeout=180)
        if ok:
            assert p.returncode == 0, f"gcloud {' '.join(args)}\n{p.stdout}\n{p.stderr}"
        else:
            assert p.returncode != 0, f"gcloud {' '.join(args)} should fail\n{p.stdout}\n{p.stderr}"
        return p

    def js(*args):
        return json.loads(run(*args, "--format=json").stdout)

    run("compute", "instance-templates", "create", "gpu-t4", "--machine-type=n1-standard-4",
        "--accelerator=type=nvidia-tesla-t4,count=1", "--maintenance-policy=TERMINATE", "--provisioning-model=SPOT",
        "--instance-termination-action=DELETE", "--labels=paved-team=ml,paved-pool=p1")
    run("compute", "instance-templates", "create", "gpu-l4", "--machine-type=g2-standard-4",
        "--maintenance-policy=TERMINATE", "--image-family=common-cu128-ubuntu-2204-nvidia-570",
        "--image-project=deeplearning-platform-release")
    names = {t["name"] for t in js("compute", "instance-templates", "list")}
    assert names == {"gpu-t4", "gpu-l4"}
    t4 = js("compute", "instance-templates", "describe", "gpu-t4")
    assert t4["properties"]["guestAccelerators"] == [{"acceleratorType": "nvidia-tesla-t4", "acceleratorCount": 1}]
    assert t4["properties"]["scheduling"]["provisioningModel"] == "SPOT"
    assert t4["properties"]["labels"] == {"paved-team": "ml", "paved-pool": "p1"}

    api.control("capacity", {"zone": "us-central1-c", "machineType": "n1-standard-4", "available": 0})
    run("compute", "instance-groups", "managed", "create", "pool", "--region=us-central1", "--template=gpu-t4",
        "--size=2", "--zones=us-central1-a,us-central1-c")
    run("compute", "instance-groups", "managed", "resize", "pool", "--region=us-central1", "--size=3")
    d = js("compute", "instance-groups", "managed", "describe", "pool", "--region=us-central1")
    assert d["targetSize"] == 3 and d["instanceTemplate"].endswith("/gpu-t4")
    wait_until(lambda: len(running(api, "pool")) == 2, what="2 running (zone c is stocked out)")
    errs = run("compute", "instance-groups", "managed", "list-errors", "pool", "--region=us-central1").stdout
    assert "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS" in errs and "us-central1-c" in errs
    listed = js("compute", "instance-groups", "managed", "list-instances", "pool", "--region=us-central1")
    assert len(listed) == 3 and sum(1 for m in listed if m.get("instanceStatus") == "RUNNING") == 2
    api.control("capacity", {"zone": "us-central1-c", "machineType": "n1-standard-4", "available": None})
    run("compute", "instance-groups", "managed", "wait-until", "pool", "--region=us-central1", "--stable", "--timeout=60")
    groups = js("compute", "instance-groups", "managed", "list")
    assert [(x["name"], x["targetSize"]) for x in groups] == [("pool", 3)]
    vms = js("compute", "instances", "list")
    assert len(vms) == 3 and all(v["status"] == "RUNNING" for v in vms)

    # In place: a new version, not a new group.
    run("compute", "instance-groups", "managed", "rolling-action", "start-update", "pool", "--region=us-central1",
        "--version=template=gpu-l4")
    run("compute", "instance-groups", "managed", "wait-until", "pool", "--region=us-central1", "--version-target-reached",
        "--timeout=60")
    listed = js("compute", "instance-groups", "managed", "list-instances", "pool", "--region=us-central1")
    assert len(listed) == 3 and all(m["version"]["instanceTemplate"].endswith("/gpu-l4") for m in listed)

    p = run("compute", "instance-templates", "delete", "gpu-l4", ok=False)
    assert "already being used by" in p.stderr
    run("compute", "instance-groups", "managed", "delete", "pool", "--region=us-central1")
    assert js("compute", "instance-groups", "managed", "list") == []
    assert js("compute", "instances", "list") == []
    run("compute", "instance-templates", "delete", "gpu-t4", "gpu-l4")  # two at once: Google's batch endpoint
    assert js("compute", "instance-templates", "list") == []
    log = srv.world.log
    assert any(e["path"] == "/compute/v1/projects/debian-cloud/global/images/family/debian-12" for e in log)
    by_gcloud = [e for e in log if "gcloud" in e["userAgent"]]
    assert len(by_gcloud) > 20 and all(e["auth"] for e in by_gcloud), "gcloud sends its access token"
