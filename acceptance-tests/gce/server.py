#!/usr/bin/env python3
"""A local Compute Engine API (the subset paved uses) on 127.0.0.1.

Serves `/compute/v1/projects/{project}/...` at the discovery document's flatPaths, with
real semantics where paved depends on them: operations that go PENDING -> RUNNING -> DONE
(get and wait, zone/region/global), requestId de-duplication, immutable instance templates
that cannot be deleted while a group uses them, regional managed instance groups that
reconcile towards their target size over time (resize is DONE before the instances
exist), per-zone / per-machine-type capacity and regional quotas that fail instance
creation with ZONE_RESOURCE_POOL_EXHAUSTED[_WITH_DETAILS] / QUOTA_EXCEEDED (shown in
listErrors and listManagedInstances), Spot preemption, and injected 429/503 answers.
Errors use Google's JSON error format. Request bodies and query parameters are validated
against the discovery document (unknown fields are rejected, as Google does).

Test-only control endpoints live under `/_test/` (see README in docs/gcp-local-api.md).

Standard library only; needs compute.v1.json (discovery.py says where it comes from).
Run: python3 server.py --port 0 (prints the base URL once it listens).
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import json
import os
import random
import re
import secrets
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import catalog  # noqa: E402
from auth import Auth, Unauthenticated  # noqa: E402
import discovery  # noqa: E402

# Links are stored with this prefix and rendered with the base URL the client used.
BASE = "@@BASE@@/"
NAME_RE = re.compile(r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$")

DEFAULT_CONFIG = {
    "op_pending_s": 0.05,  # an operation is PENDING this long
    "op_running_s": 0.3,  # then RUNNING at least this long before its effect and DONE
    "instance_boot_s": 1.0,  # PROVISIONING/STAGING -> RUNNING
    "instance_delete_s": 0.5,  # STOPPING -> gone
    "create_retry_s": 1.0,  # a group retries a failed instance creation after this
    "repair_delay_s": 1.0,  # a group recreates a preempted or vanished instance after this
    "wait_max_s": 120.0,  # operations.wait returns after at most this long (Google: 2 min)
    "tick_s": 0.05,  # how often the world moves on
    "request_log_max": 20000,
}


class ApiError(Exception):
    """An error answer in Google's format."""

    def __init__(self, code: int, reason: str, message: str, domain: str = "global", extra: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.domain, self.extra = code, reason, message, domain, extra

    def body(self) -> dict:
        err = {"code": self.code, "message": self.message,
               "errors": [{"message": self.message, "domain": self.domain, "reason": self.reason}]}
        if self.extra:
            err.update(self.extra)
        return {"error": err}


def not_found(path: str) -> ApiError:
    return ApiError(404, "notFound", f"The resource '{path}' was not found")


def invalid(message: str) -> ApiError:
    return ApiError(400, "invalid", message)


def now_ts(t: float | None = None) -> str:
    dt = datetime.fromtimestamp(time.time() if t is None else t, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+00:00"


def new_id() -> str:
    return str(random.randrange(10**18, 2**63))


def fingerprint() -> str:
    return base64.b64encode(secrets.token_bytes(8)).decode()


def project_number(project: str) -> str:
    return str(100000000000 + int(hashlib.sha256(project.encode()).hexdigest(), 16) % 900000000000)


def rel(link: str, project: str) -> str:
    """A resource reference as given by a client (full URL of any host, projects/..., or
    global/..., zones/..., regions/...) -> 'projects/P/...'."""
    link = link.strip()
    i = link.find("projects/")
    if i >= 0:
        return link[i:]
    if link.startswith(("global/", "zones/", "regions/")):
        return f"projects/{project}/{link}"
    return link


def last(link: str) -> str:
    return link.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class Operation:
    project: str
    scope: str  # "global" | "regions/R" | "zones/Z"
    name: str
    op_type: str
    target: str  # relative link of the target
    target_id: str
    created: float
    on_running: object = None  # callable(world) when it turns RUNNING
    on_done: object = None  # callable(world) -> None; may raise ApiError (the op fails)
    done_when: object = None  # callable(world) -> bool; DONE waits for it
    status: str = "PENDING"
    started: float | None = None
    ended: float | None = None
    error: dict | None = None
    http_error: tuple[int, str] | None = None
    id: str = field(default_factory=new_id)
    progress: int = 0

    def render(self) -> dict:
        out = {
            "kind": "compute#operation",
            "id": self.id,
            "name": self.name,
            "operationType": self.op_type,
            "progress": self.progress,
            "insertTime": now_ts(self.created),
            "selfLink": f"{BASE}projects/{self.project}/{self.scope}/operations/{self.name}",
            "status": self.status,
            "targetId": self.target_id,
            "targetLink": BASE + self.target,
            "user": "paved-test@example.iam.gserviceaccount.com",
        }
        if self.started is not None:
            out["startTime"] = now_ts(self.started)
        if self.ended is not None:
            out["endTime"] = now_ts(self.ended)
        if self.scope.startswith("regions/"):
            out["region"] = f"{BASE}projects/{self.project}/{self.scope}"
        elif self.scope.startswith("zones/"):
            out["zone"] = f"{BASE}projects/{self.project}/{self.scope}"
        if self.error is not None:
            out["error"] = self.error
            code, msg = self.http_error or (400, "BAD REQUEST")
            out["httpErrorStatusCode"] = code
            out["httpErrorMessage"] = msg
        return out


@dataclass
class Instance:
    project: str
    zone: str
    name: str
    machine_type: str
    template: str  # relative link
    props: dict  # the template's properties (copied)
    igm: tuple | None  # (project, region, name)
    created: float
    boot_at: float
    id: str = field(default_factory=new_id)
    status: str = "PROVISIONING"
    stop_at: float | None = None  # STOPPING until then, then gone
    label_fp: str = field(default_factory=fingerprint)

    @property
    def link(self) -> str:
        return f"projects/{self.project}/zones/{self.zone}/instances/{self.name}"

    @property
    def provisioning_model(self) -> str:
        s = self.props.get("scheduling") or {}
        if s.get("provisioningModel"):
            return s["provisioningModel"]
        return "SPOT" if s.get("preemptible") else "STANDARD"

    def render(self) -> dict:
        p = self.props
        sched = dict(p.get("scheduling") or {})
        sched.setdefault("onHostMaintenance", "TERMINATE" if self.provisioning_model == "SPOT" else "MIGRATE")
        sched.setdefault("automaticRestart", self.provisioning_model != "SPOT")
        sched.setdefault("preemptible", self.provisioning_model == "SPOT")
        sched.setdefault("provisioningModel", self.provisioning_model)
        items = [i for i in (p.get("metadata") or {}).get("items", [])]
        pnum = project_number(self.project)
        items.append({"key": "instance-template", "value": f"projects/{pnum}/global/instanceTemplates/{last(self.template)}"})
        if self.igm:
            items.append({"key": "created-by", "value": f"projects/{pnum}/regions/{self.igm[1]}/instanceGroupManagers/{self.igm[2]}"})
        out = {
            "kind": "compute#instance",
            "id": self.id,
            "name": self.name,
            "creationTimestamp": now_ts(self.created),
            "zone": f"{BASE}projects/{self.project}/zones/{self.zone}",
            "machineType": f"{BASE}projects/{self.project}/zones/{self.zone}/machineTypes/{self.machine_type}",
            "status": self.status,
            "selfLink": BASE + self.link,
            "scheduling": sched,
            "labels": dict(p.get("labels") or {}),
            "labelFingerprint": self.label_fp,
            "fingerprint": self.label_fp,
            "metadata": {"kind": "compute#metadata", "fingerprint": self.label_fp, "items": items},
            "cpuPlatform": "Intel Cascade Lake",
            "deletionProtection": False,
            "startRestricted": False,
            "canIpForward": bool(p.get("canIpForward", False)),
            "disks": [_render_disk(d, i, self.project, self.zone) for i, d in enumerate(p.get("disks") or [])],
            "networkInterfaces": [_render_nic(n, i, self.project) for i, n in enumerate(p.get("networkInterfaces") or [])],
        }
        if not out["labels"]:
            del out["labels"]
        accs = [{"acceleratorType": f"{BASE}projects/{self.project}/zones/{self.zone}/acceleratorTypes/{last(a['acceleratorType'])}",
                 "acceleratorCount": a.get("acceleratorCount", 1)} for a in p.get("guestAccelerators") or []]
        if accs:
            out["guestAccelerators"] = accs
        if self.status == "RUNNING":
            out["lastStartTimestamp"] = now_ts(self.boot_at)
        if p.get("serviceAccounts"):
            out["serviceAccounts"] = copy.deepcopy(p["serviceAccounts"])
        if p.get("tags"):
            out["tags"] = copy.deepcopy(p["tags"])
        return out


def _render_disk(d: dict, i: int, project: str, zone: str | None) -> dict:
    out = copy.deepcopy(d)
    out.setdefault("kind", "compute#attachedDisk")
    out.setdefault("type", "PERSISTENT")
    out.setdefault("mode", "READ_WRITE")
    out.setdefault("index", i)
    out.setdefault("deviceName", "persistent-disk-%d" % i)
    out.setdefault("autoDelete", bool(d.get("boot")))
    out.setdefault("boot", False)
    if zone is not None:
        out.pop("initializeParams", None)
        out["source"] = f"{BASE}projects/{project}/zones/{zone}/disks/{out['deviceName']}"
        out["interface"] = out.get("interface", "SCSI")
    return out


def _render_nic(n: dict, i: int, project: str) -> dict:
    out = copy.deepcopy(n)
    out.setdefault("kind", "compute#networkInterface")
    out.setdefault("name", f"nic{i}")
    net = out.get("network") or f"projects/{project}/global/networks/default"
    out["network"] = BASE + rel(net, project)
    for ac in out.get("accessConfigs") or []:
        ac.setdefault("kind", "compute#accessConfig")
    return out


@dataclass
class Member:
    """One managed instance of a group."""

    name: str
    zone: str
    template: str  # relative link of the version's template
    version_name: str | None
    action: str = "CREATING"  # ManagedInstance.currentAction
    next_attempt: float = 0.0
    errors: list | None = None  # last attempt's errors (Operation-error items)
    machine_type: str | None = None  # chosen (instance flexibility)
    id: str = field(default_factory=new_id)
    repair_at: float | None = None


@dataclass
class Igm:
    project: str
    region: str
    name: str
    spec: dict  # the stored, client-visible fields
    created: float
    zones: list
    id: str = field(default_factory=new_id)
    fp: str = field(default_factory=fingerprint)
    members: list = field(default_factory=list)
    errors: list = field(default_factory=list)  # listErrors entries (newest last)
    deleting: bool = False
    active: bool = False  # reconciles once its insert operation is DONE

    @property
    def link(self) -> str:
        return f"projects/{self.project}/regions/{self.region}/instanceGroupManagers/{self.name}"

    def target_size(self) -> int:
        return 0 if self.deleting else int(self.spec.get("targetSize", 0))

    def current_template(self) -> tuple[str, str | None]:
        versions = self.spec.get("versions") or []
        if versions:
            return versions[0]["instanceTemplate"], versions[0].get("name")
        return self.spec["instanceTemplate"], None


class World:
    def __init__(self, doc: dict, config: dict | None = None):
        self.doc = doc
        self.validator = discovery.Validator(doc)
        self.methods = discovery.methods(doc)
        self.global_params = doc.get("parameters", {})
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.config = dict(DEFAULT_CONFIG)
        self.config.update(config or {})
        self.reset()

    def reset(self):
        with self.lock:
            self.templates: dict[tuple, dict] = {}  # (project, name) -> stored template
            self.template_reserved: set = set()
            self.igms: dict[tuple, Igm] = {}  # (project, region, name)
            self.instances: dict[tuple, Instance] = {}  # (project, zone, name)
            self.ops: dict[tuple, Operation] = {}  # (project, scope, name)
            self.request_ids: dict[tuple, tuple] = {}  # (project, requestId) -> op key
            self.capacity: list[dict] = []  # capacity rules
            self.quotas: dict[tuple, float] = {}  # (region|"global", metric) -> limit
            self.faults: list[dict] = []
            self.log: list[dict] = []
            self.seq = 0
            self.auth = Auth()  # who may call: open (default) or required, see auth.py

    # ---- operations --------------------------------------------------------------
    def new_op(self, project, scope, op_type, target, target_id, request_id, **hooks) -> Operation:
        t = time.time()
        name = f"operation-{int(t * 1000)}-{secrets.token_hex(7)[:13]}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"
        op = Operation(project, scope, name, op_type, target, target_id, t, **hooks)
        self.ops[(project, scope, name)] = op
        if request_id:
            self.request_ids[(project, request_id)] = (project, scope, name)
        return op

    def step(self):
        t = time.time()
        cfg = self.config
        for op in list(self.ops.values()):
            if op.status == "PENDING" and t >= op.created + cfg["op_pending_s"]:
                op.status, op.started, op.progress = "RUNNING", t, 0
                if op.on_running:
                    try:
                        op.on_running(self)
                    except ApiError as e:
                        self._fail(op, e, t)
            if op.status == "RUNNING" and t >= op.started + cfg["op_running_s"]:
                if op.done_when and not op.done_when(self):
                    continue
                try:
                    if op.on_done:
                        op.on_done(self)
                except ApiError as e:
                    self._fail(op, e, t)
                    continue
                op.status, op.ended, op.progress = "DONE", t, 100
        for igm in list(self.igms.values()):
            self._reconcile(igm, t)
        for inst in list(self.instances.values()):
            if inst.status in ("PROVISIONING", "STAGING") and t >= inst.boot_at:
                inst.status = "RUNNING"
            elif inst.status == "PROVISIONING" and t >= inst.boot_at - cfg["instance_boot_s"] / 2:
                inst.status = "STAGING"
            if inst.status == "STOPPING" and inst.stop_at is not None and t >= inst.stop_at:
                self.instances.pop((inst.project, inst.zone, inst.name), None)

    def _fail(self, op: Operation, e: ApiError, t: float):
        op.status, op.ended, op.progress = "DONE", t, 100
        code = {"notFound": "RESOURCE_NOT_FOUND", "alreadyExists": "RESOURCE_ALREADY_EXISTS", "invalid": "INVALID_FIELD_VALUE",
                "resourceInUseByAnotherResource": "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE"}.get(e.reason, e.reason)
        op.error = {"errors": [{"code": code, "message": e.message}]}
        op.http_error = (e.code, {400: "BAD REQUEST", 404: "NOT FOUND", 409: "CONFLICT", 503: "SERVICE UNAVAILABLE"}.get(e.code, "ERROR"))

    # ---- capacity and quota ----------------------------------------------------------
    def _count(self, pred) -> int:
        return sum(1 for i in self.instances.values() if i.status != "STOPPING" and pred(i))

    def _gpus(self, machine_type: str, props: dict) -> tuple[str | None, int]:
        mt = catalog.MACHINE_TYPES[machine_type]
        if mt["gpu"]:
            return mt["gpu"], mt["gpuCount"]
        accs = props.get("guestAccelerators") or []
        if accs:
            return last(accs[0]["acceleratorType"]), sum(int(a.get("acceleratorCount", 1)) for a in accs)
        return None, 0

    def creation_error(self, project: str, zone: str, machine_type: str, props: dict) -> dict | None:
        """Why an instance of this shape cannot be created in this zone now (an Operation
        error item), or None."""
        sched = props.get("scheduling") or {}
        model = sched.get("provisioningModel") or ("SPOT" if sched.get("preemptible") else "STANDARD")
        if machine_type not in catalog.MACHINE_TYPES or zone not in catalog.machine_type_zones(machine_type):
            return {"code": "RESOURCE_NOT_FOUND",
                    "message": f"The resource 'projects/{project}/zones/{zone}/machineTypes/{machine_type}' was not found"}
        gpu, count = self._gpus(machine_type, props)
        accs = props.get("guestAccelerators") or []
        if accs:
            if catalog.MACHINE_TYPES[machine_type]["gpu"] or not machine_type.startswith("n1-"):
                return {"code": "UNSUPPORTED_OPERATION",
                        "message": f"Machine type {machine_type} does not support attaching guest accelerators."}
            for a in accs:
                at = last(a["acceleratorType"])
                if at not in catalog.ACCELERATORS or zone not in catalog.accelerator_zones(at):
                    return {"code": "RESOURCE_NOT_FOUND",
                            "message": f"The resource 'projects/{project}/zones/{zone}/acceleratorTypes/{at}' was not found"}
        if gpu and sched.get("onHostMaintenance", "TERMINATE" if model == "SPOT" else "MIGRATE") != "TERMINATE":
            return {"code": "UNSUPPORTED_OPERATION",
                    "message": "Instances with guest accelerators do not support live migration."}
        for rule in self.capacity:
            if rule["zone"] not in ("*", zone) or rule["machineType"] not in ("*", machine_type):
                continue
            if rule["provisioningModel"] not in ("*", model) or rule.get("project", "*") not in ("*", project):
                continue
            used = self._count(lambda i, r=rule: i.zone == zone and r.get("project", "*") in ("*", i.project)
                               and r["machineType"] in ("*", i.machine_type)
                               and r["provisioningModel"] in ("*", i.provisioning_model))
            if used >= rule["available"]:
                return self._stockout(rule["code"], zone, machine_type, gpu, count)
        region = catalog.ZONE_REGION[zone]
        cpus = catalog.MACHINE_TYPES[machine_type]["guestCpus"]
        checks = [(region, "CPUS", cpus, lambda i: catalog.ZONE_REGION[i.zone] == region, lambda i: catalog.MACHINE_TYPES[i.machine_type]["guestCpus"])]
        if gpu:
            metric = catalog.ACCELERATORS[gpu][3]
            if model == "SPOT":
                metric = "PREEMPTIBLE_" + metric
            checks.append((region, metric, count,
                           lambda i, m=metric: catalog.ZONE_REGION[i.zone] == region and self._metric(i) == m,
                           lambda i: self._gpus(i.machine_type, i.props)[1]))
            checks.append(("global", "GPUS_ALL_REGIONS", count, lambda i: self._gpus(i.machine_type, i.props)[0] is not None,
                           lambda i: self._gpus(i.machine_type, i.props)[1]))
        for scope, metric, need, sel, amount in checks:
            # Quotas are a project's: usage counts that project's VMs only.
            limit = self.quotas.get((project, scope, metric), self.quotas.get(("*", scope, metric)))
            if limit is None:
                continue
            usage = sum(amount(i) for i in self.instances.values()
                        if i.status != "STOPPING" and i.project == project and sel(i))
            if usage + need > limit:
                where = "globally" if scope == "global" else f"in region {scope}"
                msg = f"Quota '{metric}' exceeded.  Limit: {float(limit)} {where}."
                return {"code": "QUOTA_EXCEEDED", "message": msg,
                        "errorDetails": [{"quotaInfo": {"metricName": f"compute.googleapis.com/{metric.lower()}",
                                                        "limitName": f"{metric}-per-project-region" if scope != "global" else f"{metric}-per-project",
                                                        "dimensions": {"region": scope} if scope != "global" else {},
                                                        "limit": float(limit)}}]}
        return None

    def _metric(self, inst: Instance) -> str | None:
        gpu, _ = self._gpus(inst.machine_type, inst.props)
        if not gpu:
            return None
        m = catalog.ACCELERATORS[gpu][3]
        return ("PREEMPTIBLE_" + m) if inst.provisioning_model == "SPOT" else m

    def _stockout(self, code: str, zone: str, machine_type: str, gpu: str | None, count: int) -> dict:
        region = catalog.ZONE_REGION[zone]
        others = [z for z in catalog.REGIONS[region] if z != zone and z in catalog.machine_type_zones(machine_type)
                  and not any(r["zone"] in ("*", z) and r["machineType"] in ("*", machine_type) and r["available"] <= 0
                              for r in self.capacity)]
        if code == "ZONE_RESOURCE_POOL_EXHAUSTED":
            return {"code": code,
                    "message": f"The zone 'projects/{{project}}/zones/{zone}' does not have enough resources available to fulfill the request.  Try a different zone, or try again later."}
        what = f"A {machine_type} VM instance" + (f" with {count} {gpu} accelerator(s)" if gpu else "")
        msg = f"{what} is currently unavailable in the {zone} zone. " + (
            f"Consider trying your request in the {', '.join(others)} zone(s), which currently has capacity to accommodate your request. "
            if others else "") + "Alternatively, you can try your request again with a different VM hardware configuration or at a later time. For more information, see the troubleshooting documentation."
        meta = {"vmType": machine_type, "zone": zone, "zonesAvailable": ",".join(others)}
        if gpu:
            meta["attachment"] = f"{gpu}:{count}"
        return {"code": "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS", "message": msg,
                "errorDetails": [
                    {"errorInfo": {"reason": "resource_availability", "domain": "compute.googleapis.com", "metadatas": meta}},
                    {"help": {"links": [{"description": "Troubleshooting documentation",
                                         "url": "https://cloud.google.com/compute/docs/resource-error"}]}},
                    {"localizedMessage": {"locale": "en-US", "message": msg}},
                ]}

    # ---- groups ----------------------------------------------------------------------
    def _template_props(self, link: str) -> dict | None:
        p = link.split("/")
        t = self.templates.get((p[1], p[-1]))
        return t["properties"] if t else None

    def _pick_zone(self, igm: Igm, exclude: set | None = None) -> str:
        shape = (igm.spec.get("distributionPolicy") or {}).get("targetShape", "EVEN")
        zones = [z for z in igm.zones if not exclude or z not in exclude] or list(igm.zones)
        if shape == "ANY_SINGLE_ZONE":
            used = {m.zone for m in igm.members if m.action != "DELETING"}
            if used:
                return sorted(used)[0]
            return zones[0]
        counts = {z: sum(1 for m in igm.members if m.zone == z and m.action != "DELETING") for z in zones}
        return min(zones, key=lambda z: (counts[z], igm.zones.index(z)))

    def _machine_types(self, igm: Igm, props: dict) -> list[str]:
        sel = (igm.spec.get("instanceFlexibilityPolicy") or {}).get("instanceSelections") or {}
        if not sel:
            return [props["machineType"]]
        ranked = sorted(sel.values(), key=lambda s: s.get("rank", 0))
        out = []
        for s in ranked:
            for mt in s.get("machineTypes") or []:
                if mt not in out:
                    out.append(last(mt))
        return out

    def _record_error(self, igm: Igm, m: Member, err: dict, t: float, action: str = "CREATING"):
        m.errors = [err]
        entry = {"error": {"code": err["code"], "message": err["message"].replace("{project}", igm.project)},
                 "instanceActionDetails": {"action": action,
                                           "instance": f"{BASE}projects/{igm.project}/zones/{m.zone}/instances/{m.name}",
                                           "version": {"instanceTemplate": BASE + m.template, **({"name": m.version_name} if m.version_name else {})}},
                 "timestamp": now_ts(t)}
        igm.errors.append(entry)
        del igm.errors[:-500]

    def _try_create(self, igm: Igm, m: Member, t: float):
        props = self._template_props(m.template)
        if props is None:
            err = {"code": "RESOURCE_NOT_FOUND", "message": f"The resource '{m.template}' was not found"}
            self._record_error(igm, m, err, t)
            m.next_attempt = t + self.config["create_retry_s"]
            return
        shape = (igm.spec.get("distributionPolicy") or {}).get("targetShape", "EVEN")
        # EVEN keeps a member in its zone; BALANCED/ANY may move it to a zone with capacity.
        zones = [m.zone] + ([z for z in igm.zones if z != m.zone] if shape in ("BALANCED", "ANY") else [])
        failed = []  # every (zone, machine type) tried in this attempt, with its error
        for zone in zones:
            for mt in self._machine_types(igm, props):
                err = self.creation_error(igm.project, zone, mt, props)
                if err is None:
                    # The failed tries happened (VM inserts that failed) before the group fell
                    # back to this zone or machine type: each is listed.
                    for z, e in failed:
                        m.zone = z
                        self._record_error(igm, m, e, t)
                    m.zone, m.machine_type, m.errors = zone, mt, None
                    boot = t + self.config["instance_boot_s"]
                    inst = Instance(igm.project, zone, m.name, mt, m.template, copy.deepcopy(props),
                                    (igm.project, igm.region, igm.name), t, boot)
                    self.instances[(igm.project, zone, m.name)] = inst
                    return
                failed.append((zone, err))
        home = m.zone
        for z, e in failed:
            m.zone = z
            self._record_error(igm, m, e, t)
        m.zone = home
        m.errors = [failed[0][1]]
        m.next_attempt = t + self.config["create_retry_s"]

    def _reconcile(self, igm: Igm, t: float):
        if not igm.active and not igm.deleting:
            return
        cfg = self.config
        tmpl, vname = self.current_template_of(igm)
        alive = [m for m in igm.members if m.action != "DELETING"]
        target = igm.target_size()
        while len(alive) < target:
            m = Member(self._instance_name(igm), "", tmpl, vname, next_attempt=t)
            m.zone = self._pick_zone(igm)
            igm.members.append(m)
            alive.append(m)
        if len(alive) > target:
            # Prefer members that have no instance yet, then the newest.
            def rank(mm):
                inst = self.instances.get((igm.project, mm.zone, mm.name))
                return (inst is not None and inst.status == "RUNNING", -igm.members.index(mm))
            for m in sorted(alive, key=rank)[: len(alive) - target]:
                m.action = "DELETING"
                inst = self.instances.get((igm.project, m.zone, m.name))
                if inst:
                    inst.status, inst.stop_at = "STOPPING", t + cfg["instance_delete_s"]
        proactive = ((igm.spec.get("updatePolicy") or {}).get("type", "PROACTIVE")) == "PROACTIVE"
        rolling = any(m.action == "RECREATING" for m in igm.members)
        for m in list(igm.members):
            inst = self.instances.get((igm.project, m.zone, m.name))
            if m.action == "DELETING":
                if inst is None or inst.status == "STOPPING" and inst.stop_at and t >= inst.stop_at:
                    if inst:
                        self.instances.pop((igm.project, m.zone, m.name), None)
                    igm.members.remove(m)
                elif inst.status != "STOPPING":
                    inst.status, inst.stop_at = "STOPPING", t + cfg["instance_delete_s"]
                continue
            if m.action in ("CREATING", "RECREATING"):
                if inst is None:
                    if t >= m.next_attempt:
                        self._try_create(igm, m, t)
                elif inst.status == "RUNNING":
                    m.action = "NONE"
                elif inst.status == "STOPPING":
                    pass  # the old instance of a RECREATING member is going away
                continue
            # NONE: watch the instance.
            if inst is None or inst.status in ("TERMINATED", "STOPPED"):
                # repair_at holds when the loss was seen; the delay is read live, so a test can
                # hold a repair back and then let it happen.
                if m.repair_at is None:
                    m.repair_at = t
                elif t >= m.repair_at + cfg["repair_delay_s"]:
                    if inst is not None:
                        self.instances.pop((igm.project, m.zone, m.name), None)
                    m.action, m.repair_at, m.next_attempt = "RECREATING", None, t
                continue
            if proactive and not rolling and m.template != tmpl:
                m.template, m.version_name = tmpl, vname
                m.action = "RECREATING"
                inst.status, inst.stop_at = "STOPPING", t + cfg["instance_delete_s"]
                rolling = True
            elif not proactive and m.template != tmpl:
                pass  # OPPORTUNISTIC: only new instances get the new version
        for m in igm.members:
            if m.action in ("CREATING", "RECREATING") and m.template != tmpl and not self.instances.get((igm.project, m.zone, m.name)):
                m.template, m.version_name = tmpl, vname

    def current_template_of(self, igm: Igm) -> tuple[str, str | None]:
        return igm.current_template()

    def _instance_name(self, igm: Igm) -> str:
        base = igm.spec["baseInstanceName"]
        while True:
            name = f"{base}-{''.join(random.choice('abcdefghijklmnopqrstuvwxyz0123456789') for _ in range(4))}"
            if not any(m.name == name for m in igm.members) and not any(k[0] == igm.project and k[2] == name for k in self.instances):
                return name

    def template_users(self, project: str, name: str) -> list[str]:
        link = f"projects/{project}/global/instanceTemplates/{name}"
        users = []
        for igm in self.igms.values():
            if igm.project != project:
                continue
            refs = {igm.spec.get("instanceTemplate")} | {v.get("instanceTemplate") for v in igm.spec.get("versions") or []}
            if link in refs:
                users.append(igm.link)
        return users

    def render_igm(self, igm: Igm) -> dict:
        s = igm.spec
        counts = dict.fromkeys(["abandoning", "creating", "creatingWithoutRetries", "deleting", "none", "recreating",
                                "refreshing", "restarting", "resuming", "starting", "stopping", "suspending", "verifying"], 0)
        for m in igm.members:
            counts[{"CREATING": "creating", "RECREATING": "recreating", "DELETING": "deleting", "NONE": "none"}[m.action]] += 1
        tmpl, _ = igm.current_template()
        target = igm.target_size()
        stable = igm.active and all(m.action == "NONE" for m in igm.members) and len(igm.members) == target
        out = {
            "kind": "compute#instanceGroupManager",
            "id": igm.id,
            "creationTimestamp": now_ts(igm.created),
            "name": igm.name,
            "region": f"{BASE}projects/{igm.project}/regions/{igm.region}",
            "selfLink": BASE + igm.link,
            "baseInstanceName": s["baseInstanceName"],
            "instanceTemplate": BASE + tmpl,
            "instanceGroup": f"{BASE}projects/{igm.project}/regions/{igm.region}/instanceGroups/{igm.name}",
            "targetSize": int(s.get("targetSize", 0)),
            "targetStoppedSize": 0,
            "targetSuspendedSize": 0,
            "fingerprint": igm.fp,
            "currentActions": counts,
            "listManagedInstancesResults": "PAGELESS",
            "satisfiesPzi": False,
            "satisfiesPzs": False,
            "distributionPolicy": {
                "targetShape": (s.get("distributionPolicy") or {}).get("targetShape", "EVEN"),
                "zones": [{"zone": f"{BASE}projects/{igm.project}/zones/{z}"} for z in igm.zones],
            },
            "status": {
                "isStable": stable,
                "versionTarget": {"isReached": all(m.template == tmpl for m in igm.members)},
                "stateful": {"hasStatefulConfig": False, "perInstanceConfigs": {"allEffective": True}},
                "allInstancesConfig": {"effective": True},
            },
            "updatePolicy": _update_policy(s.get("updatePolicy") or {}, len(igm.zones)),
            "versions": [
                {"instanceTemplate": BASE + v["instanceTemplate"], **({"name": v["name"]} if v.get("name") else {}),
                 "targetSize": {"calculated": target if i == 0 else 0}}
                for i, v in enumerate(s.get("versions") or [{"instanceTemplate": tmpl}])
            ],
        }
        for k in ("description", "instanceFlexibilityPolicy", "namedPorts", "autoHealingPolicies"):
            if k in s:
                out[k] = copy.deepcopy(s[k])
        return out

    def render_member(self, igm: Igm, m: Member) -> dict:
        inst = self.instances.get((igm.project, m.zone, m.name))
        out = {
            "name": m.name,
            "instance": f"{BASE}projects/{igm.project}/zones/{m.zone}/instances/{m.name}",
            "currentAction": m.action,
            "targetStatus": "DELETED" if m.action == "DELETING" else "RUNNING",
            "version": {"instanceTemplate": BASE + m.template, **({"name": m.version_name} if m.version_name else {})},
        }
        if inst is not None:
            out["id"] = inst.id
            out["instanceStatus"] = inst.status
            if (igm.spec.get("instanceFlexibilityPolicy") or {}).get("instanceSelections"):
                out["propertiesFromFlexibilityPolicy"] = {"machineType": inst.machine_type}
        if m.errors:
            out["lastAttempt"] = {"errors": {"errors": [
                {**e, "message": e["message"].replace("{project}", igm.project)} for e in m.errors]}}
        return out


def _update_policy(p: dict, nzones: int) -> dict:
    out = {"type": p.get("type", "PROACTIVE"),
           "instanceRedistributionType": p.get("instanceRedistributionType", "PROACTIVE"),
           "minimalAction": p.get("minimalAction", "REPLACE"),
           "replacementMethod": p.get("replacementMethod", "SUBSTITUTE"),
           "maxSurge": dict(p.get("maxSurge") or {"fixed": nzones}),
           "maxUnavailable": dict(p.get("maxUnavailable") or {"fixed": nzones})}
    if "mostDisruptiveAllowedAction" in p:
        out["mostDisruptiveAllowedAction"] = p["mostDisruptiveAllowedAction"]
    for k in ("maxSurge", "maxUnavailable"):
        if "fixed" in out[k]:
            out[k]["calculated"] = out[k]["fixed"]
    return out


# ---- request handling ------------------------------------------------------------------
class Ctx:
    def __init__(self, world: World, method: discovery.Method, params: dict, query: dict, body):
        self.world, self.method, self.params, self.query, self.body = world, method, params, query, body
        self.project = params.get("project")

    def q(self, name, default=None):
        v = self.query.get(name)
        return v[0] if v else default


HANDLERS = {}

# Query parameters that Google's clients send and Google accepts but that this revision of
# the discovery document no longer declares: gcloud 528 sends returnPartialSuccess=True on
# aggregatedList (its generated compute_v1_messages.py declares it; the document's method
# descriptions still recommend it).
EXTRA_PARAMS = {"returnPartialSuccess": {"type": "boolean", "location": "query"}}


def handler(*keys):
    def deco(fn):
        for k in keys:
            HANDLERS[k] = fn
        return fn
    return deco


def check_request_id(ctx: Ctx):
    rid = ctx.q("requestId")
    if rid is None:
        return None
    try:
        u = uuid.UUID(rid)
    except ValueError:
        raise invalid(f"Invalid value for field 'requestId': '{rid}'. The request ID must be a valid UUID.") from None
    if u.int == 0:
        raise invalid(f"Invalid value for field 'requestId': '{rid}'. The zero UUID is not supported.")
    key = (ctx.project, rid)
    prev = ctx.world.request_ids.get(key)
    if prev and prev in ctx.world.ops:
        return ctx.world.ops[prev]
    return rid


def paginate(ctx: Ctx, items: list, kind: str, self_path: str) -> dict:
    mr = int(ctx.q("maxResults", "500"))
    if mr < 0:
        raise invalid("Invalid value for field 'maxResults'")
    mr = min(mr or 500, 500)
    start = 0
    tok = ctx.q("pageToken")
    if tok:
        try:
            start = int(base64.urlsafe_b64decode(tok.encode()).decode())
        except Exception:  # noqa: BLE001
            raise invalid(f"Invalid value for field 'pageToken': '{tok}'.") from None
    items = apply_filter(ctx, items)
    page = items[start:start + mr]
    out = {"kind": kind, "id": self_path, "selfLink": BASE + self_path}
    if page:
        out["items"] = page
    if start + mr < len(items):
        out["nextPageToken"] = base64.urlsafe_b64encode(str(start + mr).encode()).decode()
    return out


_FILTER_TERM = re.compile(r'\s*\(?\s*([A-Za-z_][\w.-]*)\s*(=|!=|eq|ne)\s*("(?:[^"\\]|\\.)*"|[^\s()]+)\s*\)?\s*')


def apply_filter(ctx: Ctx, items: list) -> list:
    """Compute's list filter: terms `field = value`, `field != value` (value may end in
    `*`), `field eq regex`, `field ne regex` (full match), joined by spaces or AND."""
    f = ctx.q("filter")
    if not f:
        return items
    terms = []
    pos = 0
    text = f.strip()
    while pos < len(text):
        m = _FILTER_TERM.match(text, pos)
        if not m:
            raise invalid(f"Invalid value for field 'filter': '{f}'. Invalid list filter expression.")
        terms.append((m.group(1), m.group(2), m.group(3)))
        pos = m.end()
        am = re.match(r"\s*AND\s+", text[pos:])
        if am:
            pos += am.end()

    def get(obj, path):
        for part in path.split("."):
            if not isinstance(obj, dict) or part not in obj:
                return None
            obj = obj[part]
        return obj

    def ok(item):
        for fld, op, val in terms:
            if val.startswith('"'):
                val = json.loads(val)
            v = get(item, fld)
            sv = "" if v is None else (json.dumps(v) if isinstance(v, bool) else str(v))
            sv = sv.replace(BASE, "")
            if op in ("eq", "ne"):
                hit = re.fullmatch(val, sv) is not None
                if (op == "eq") != hit:
                    return False
            else:
                hit = fnmatch_star(val, sv)
                if (op == "=") != hit:
                    return False
        return True

    return [i for i in items if ok(i)]


def fnmatch_star(pat: str, s: str) -> bool:
    if pat.endswith("*"):
        return s.startswith(pat[:-1])
    return s == pat or last(s) == pat


# ---- catalog ----------------------------------------------------------------------
def _zone_or_404(ctx: Ctx) -> str:
    z = ctx.params["zone"]
    if z not in catalog.ZONE_REGION:
        raise ApiError(400, "invalid", f"Invalid value for field 'zone': '{z}'. Unknown zone.")
    return z


def _region_or_404(ctx: Ctx) -> str:
    r = ctx.params["region"]
    if r not in catalog.REGIONS:
        raise ApiError(400, "invalid", f"Invalid value for field 'region': '{r}'. Unknown region.")
    return r


def render_zone(project: str, z: str) -> dict:
    r = catalog.ZONE_REGION[z]
    return {"kind": "compute#zone", "id": str(2000 + catalog.ALL_ZONES.index(z)), "creationTimestamp": "1969-12-31T16:00:00.000-08:00",
            "name": z, "description": z, "status": "UP", "region": f"{BASE}projects/{project}/regions/{r}",
            "selfLink": f"{BASE}projects/{project}/zones/{z}",
            "availableCpuPlatforms": ["Intel Cascade Lake", "Intel Ice Lake", "AMD Milan", "Intel Sapphire Rapids"],
            "supportsPzs": False}


def render_region(world: World, project: str, r: str) -> dict:
    quotas = []
    metrics = {"CPUS", "GPUS_ALL_REGIONS"} | {a[3] for a in catalog.ACCELERATORS.values()} | {"PREEMPTIBLE_" + a[3] for a in catalog.ACCELERATORS.values()}
    enum = set(world.doc["schemas"]["Quota"]["properties"]["metric"]["enum"])
    for m in sorted(metrics & enum):
        scope = "global" if m == "GPUS_ALL_REGIONS" else r
        limit = world.quotas.get((project, scope, m), world.quotas.get(("*", scope, m), 1000000.0))
        usage = 0
        for i in world.instances.values():
            if i.status == "STOPPING" or i.project != project or (scope != "global" and catalog.ZONE_REGION[i.zone] != r):
                continue
            if m == "CPUS":
                usage += catalog.MACHINE_TYPES[i.machine_type]["guestCpus"]
            elif m == "GPUS_ALL_REGIONS" or world._metric(i) == m:
                g, c = world._gpus(i.machine_type, i.props)
                usage += c if g else 0
        quotas.append({"metric": m, "limit": float(limit), "usage": float(usage)})
    return {"kind": "compute#region", "id": str(1000 + list(catalog.REGIONS).index(r)), "creationTimestamp": "1969-12-31T16:00:00.000-08:00",
            "name": r, "description": r, "status": "UP", "selfLink": f"{BASE}projects/{project}/regions/{r}",
            "zones": [f"{BASE}projects/{project}/zones/{z}" for z in catalog.REGIONS[r]], "quotas": quotas, "supportsPzs": False}


def render_machine_type(project: str, zone: str, name: str) -> dict:
    mt = catalog.MACHINE_TYPES[name]
    out = {"kind": "compute#machineType", "id": str(int(hashlib.sha256(name.encode()).hexdigest(), 16) % 10**12),
           "creationTimestamp": "1969-12-31T16:00:00.000-08:00", "name": name,
           "description": f"{mt['guestCpus']} vCPU{'s' if mt['guestCpus'] > 1 else ''}, {mt['memoryMb'] / 1024:g} GB RAM"
           + (f", {mt['gpuCount']} {catalog.ACCELERATORS[mt['gpu']][0]} GPU" if mt["gpu"] else ""),
           "guestCpus": mt["guestCpus"], "memoryMb": mt["memoryMb"], "imageSpaceGb": 0, "maximumPersistentDisks": 128,
           "maximumPersistentDisksSizeGb": "263168", "zone": zone, "isSharedCpu": False, "architecture": "X86_64",
           "selfLink": f"{BASE}projects/{project}/zones/{zone}/machineTypes/{name}"}
    if mt["gpu"]:
        out["accelerators"] = [{"guestAcceleratorType": mt["gpu"], "guestAcceleratorCount": mt["gpuCount"]}]
    return out


def render_accelerator(project: str, zone: str, name: str) -> dict:
    desc, maxc, _, _ = catalog.ACCELERATORS[name]
    return {"kind": "compute#acceleratorType", "id": str(int(hashlib.sha256(name.encode()).hexdigest(), 16) % 10**9),
            "creationTimestamp": "1969-12-31T16:00:00.000-08:00", "name": name, "description": desc,
            "zone": f"{BASE}projects/{project}/zones/{zone}", "maximumCardsPerInstance": maxc,
            "selfLink": f"{BASE}projects/{project}/zones/{zone}/acceleratorTypes/{name}"}


@handler("zones.list")
def zones_list(ctx):
    return paginate(ctx, [render_zone(ctx.project, z) for z in catalog.ALL_ZONES], "compute#zoneList", f"projects/{ctx.project}/zones")


@handler("zones.get")
def zones_get(ctx):
    z = ctx.params["zone"]
    if z not in catalog.ZONE_REGION:
        raise not_found(f"projects/{ctx.project}/zones/{z}")
    return render_zone(ctx.project, z)


@handler("regions.list")
def regions_list(ctx):
    return paginate(ctx, [render_region(ctx.world, ctx.project, r) for r in catalog.REGIONS], "compute#regionList", f"projects/{ctx.project}/regions")


@handler("regions.get")
def regions_get(ctx):
    r = ctx.params["region"]
    if r not in catalog.REGIONS:
        raise not_found(f"projects/{ctx.project}/regions/{r}")
    return render_region(ctx.world, ctx.project, r)


@handler("machineTypes.list")
def machine_types_list(ctx):
    z = _zone_or_404(ctx)
    items = [render_machine_type(ctx.project, z, n) for n in catalog.MACHINE_TYPES if z in catalog.machine_type_zones(n)]
    return paginate(ctx, items, "compute#machineTypeList", f"projects/{ctx.project}/zones/{z}/machineTypes")


@handler("machineTypes.get")
def machine_types_get(ctx):
    z, n = _zone_or_404(ctx), ctx.params["machineType"]
    if n not in catalog.MACHINE_TYPES or z not in catalog.machine_type_zones(n):
        raise not_found(f"projects/{ctx.project}/zones/{z}/machineTypes/{n}")
    return render_machine_type(ctx.project, z, n)


@handler("acceleratorTypes.list")
def accelerator_types_list(ctx):
    z = _zone_or_404(ctx)
    items = [render_accelerator(ctx.project, z, n) for n in catalog.ACCELERATORS if z in catalog.accelerator_zones(n)]
    return paginate(ctx, items, "compute#acceleratorTypeList", f"projects/{ctx.project}/zones/{z}/acceleratorTypes")


@handler("acceleratorTypes.get")
def accelerator_types_get(ctx):
    z, n = _zone_or_404(ctx), ctx.params["acceleratorType"]
    if n not in catalog.ACCELERATORS or z not in catalog.accelerator_zones(n):
        raise not_found(f"projects/{ctx.project}/zones/{z}/acceleratorTypes/{n}")
    return render_accelerator(ctx.project, z, n)


def render_image(project: str, img: dict, i: int) -> dict:
    return {"kind": "compute#image", "id": str(5000000 + i), "creationTimestamp": "2026-11-11T00:00:00.000-08:00",
            "name": img["name"], "family": img["family"], "description": img["description"], "diskSizeGb": img["diskSizeGb"],
            "status": "READY", "sourceType": "RAW", "architecture": "X86_64", "archiveSizeBytes": "1073741824",
            "selfLink": f"{BASE}projects/{project}/global/images/{img['name']}",
            "guestOsFeatures": [{"type": "UEFI_COMPATIBLE"}, {"type": "VIRTIO_SCSI_MULTIQUEUE"}, {"type": "GVNIC"}],
            "storageLocations": ["us", "eu", "asia"]}


@handler("images.get")
def images_get(ctx):
    for i, img in enumerate(catalog.IMAGES.get(ctx.project, [])):
        if img["name"] == ctx.params["image"]:
            return render_image(ctx.project, img, i)
    raise not_found(f"projects/{ctx.project}/global/images/{ctx.params['image']}")


@handler("images.getFromFamily")
def images_family(ctx):
    for i, img in enumerate(catalog.IMAGES.get(ctx.project, [])):
        if img["family"] == ctx.params["family"]:
            return render_image(ctx.project, img, i)
    raise not_found(f"projects/{ctx.project}/global/images/family/{ctx.params['family']}")


@handler("images.list")
def images_list(ctx):
    items = [render_image(ctx.project, img, i) for i, img in enumerate(catalog.IMAGES.get(ctx.project, []))]
    return paginate(ctx, items, "compute#imageList", f"projects/{ctx.project}/global/images")


@handler("projects.get")
def projects_get(ctx):
    return {"kind": "compute#project", "id": project_number(ctx.project), "name": ctx.project,
            "creationTimestamp": "2026-01-01T00:00:00.000-08:00", "selfLink": f"{BASE}projects/{ctx.project}",
            "defaultServiceAccount": f"{project_number(ctx.project)}-compute@developer.gserviceaccount.com",
            "xpnProjectStatus": "UNSPECIFIED_XPN_PROJECT_STATUS", "defaultNetworkTier": "PREMIUM",
            "commonInstanceMetadata": {"kind": "compute#metadata", "fingerprint": "AAAAAAAAAAA="}}


# ---- operations -------------------------------------------------------------------
def _op_scope(ctx) -> str:
    if "zone" in ctx.params:
        return f"zones/{ctx.params['zone']}"
    if "region" in ctx.params:
        return f"regions/{ctx.params['region']}"
    return "global"


def _find_op(ctx) -> Operation:
    key = (ctx.project, _op_scope(ctx), ctx.params["operation"])
    op = ctx.world.ops.get(key)
    if op is None:
        raise not_found(f"projects/{ctx.project}/{key[1]}/operations/{key[2]}")
    return op


@handler("zoneOperations.get", "regionOperations.get", "globalOperations.get")
def op_get(ctx):
    return _find_op(ctx).render()


@handler("zoneOperations.wait", "regionOperations.wait", "globalOperations.wait")
def op_wait(ctx):
    op = _find_op(ctx)
    deadline = time.time() + ctx.world.config["wait_max_s"]
    while op.status != "DONE":
        left = deadline - time.time()
        if left <= 0:
            break
        ctx.world.cond.wait(timeout=min(left, 1.0))
    return op.render()


@handler("zoneOperations.list", "regionOperations.list", "globalOperations.list")
def op_list(ctx):
    scope = _op_scope(ctx)
    items = [op.render() for k, op in sorted(ctx.world.ops.items(), key=lambda kv: kv[1].created) if k[0] == ctx.project and k[1] == scope]
    return paginate(ctx, items, "compute#operationList", f"projects/{ctx.project}/{scope}/operations")


@handler("zoneOperations.delete", "regionOperations.delete", "globalOperations.delete")
def op_delete(ctx):
    op = _find_op(ctx)
    ctx.world.ops.pop((op.project, op.scope, op.name), None)
    return None


# ---- instance templates -------------------------------------------------------------
def _normalize_template(ctx, body: dict) -> dict:
    p = copy.deepcopy(body.get("properties") or {})
    mt = p.get("machineType", "")
    if "/" in mt:
        raise invalid(f"Invalid value for field 'resource.properties.machineType': '{mt}'. "
                      "For instance templates, specify only the machine type name (e.g. n1-standard-4).")
    if mt not in catalog.MACHINE_TYPES:
        raise invalid(f"Invalid value for field 'resource.properties.machineType': '{mt}'. Machine type with name '{mt}' does not exist.")
    for i, a in enumerate(p.get("guestAccelerators") or []):
        at = a.get("acceleratorType", "")
        if last(at) not in catalog.ACCELERATORS:
            raise invalid(f"Invalid value for field 'resource.properties.guestAccelerators[{i}].acceleratorType': '{at}'. "
                          "Accelerator type does not exist.")
        c = a.get("acceleratorCount", 1)
        if c < 1 or c > catalog.ACCELERATORS[last(at)][1]:
            raise invalid(f"Invalid value for field 'resource.properties.guestAccelerators[{i}].acceleratorCount': '{c}'.")
    labels = p.get("labels") or {}
    for k, v in labels.items():
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", k) or not re.fullmatch(r"[a-z0-9_-]{0,63}", v):
            raise invalid(f"Invalid value for field 'resource.properties.labels': '{k}'. "
                          "Label keys and values can only contain lowercase letters, numeric characters, underscores and dashes.")
    sched = p.setdefault("scheduling", {})
    model = sched.get("provisioningModel") or ("SPOT" if sched.get("preemptible") else "STANDARD")
    if model == "SPOT":
        if sched.get("automaticRestart") is True:
            raise invalid("Invalid value for field 'resource.properties.scheduling.automaticRestart': 'true'. "
                          "Spot VMs cannot be configured to restart automatically.")
        if sched.get("onHostMaintenance") == "MIGRATE":
            raise invalid("Invalid value for field 'resource.properties.scheduling.onHostMaintenance': 'MIGRATE'. "
                          "Spot VMs must have onHostMaintenance set to TERMINATE.")
        sched.setdefault("instanceTerminationAction", "STOP")
    sched.setdefault("onHostMaintenance", "TERMINATE" if model == "SPOT" else "MIGRATE")
    sched.setdefault("automaticRestart", model != "SPOT")
    sched.setdefault("preemptible", model == "SPOT")
    if "provisioningModel" in sched or model == "SPOT":
        sched["provisioningModel"] = model
    for i, d in enumerate(p.get("disks") or []):
        src = (d.get("initializeParams") or {}).get("sourceImage")
        if src:
            _resolve_image(ctx, src, f"resource.properties.disks[{i}].initializeParams.sourceImage")
    for n in p.get("networkInterfaces") or []:
        if n.get("network"):
            n["network"] = rel(n["network"], ctx.project)
    return p


def _resolve_image(ctx, src: str, field_name: str):
    r = rel(src, ctx.project)
    m = re.fullmatch(r"projects/([^/]+)/global/images/(family/)?([^/]+)", r)
    if not m:
        raise invalid(f"Invalid value for field '{field_name}': '{src}'. The URL is malformed.")
    proj, fam, name = m.groups()
    for img in catalog.IMAGES.get(proj, []):
        if (fam and img["family"] == name) or (not fam and img["name"] == name):
            return
    raise ApiError(404, "notFound", f"The resource '{r}' was not found")


def render_template(t: dict) -> dict:
    out = {k: copy.deepcopy(v) for k, v in t.items() if not k.startswith("_")}
    p = out["properties"]
    p["disks"] = [_render_disk(d, i, t["_project"], None) for i, d in enumerate(p.get("disks") or [])]
    if not p["disks"]:
        del p["disks"]
    p["networkInterfaces"] = [_render_nic(n, i, t["_project"]) for i, n in enumerate(p.get("networkInterfaces") or [])]
    if not p["networkInterfaces"]:
        del p["networkInterfaces"]
    md = p.setdefault("metadata", {})
    md["kind"] = "compute#metadata"
    md.setdefault("fingerprint", t["_md_fp"])
    for a in p.get("guestAccelerators") or []:
        a["acceleratorType"] = last(a["acceleratorType"])
    return out


@handler("instanceTemplates.insert")
def templates_insert(ctx):
    w = ctx.world
    prior = check_request_id(ctx)
    if isinstance(prior, Operation):
        return prior.render()
    body = ctx.body
    name = body["name"]
    if not NAME_RE.match(name):
        raise invalid(f"Invalid value for field 'resource.name': '{name}'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{{0,61}}[a-z0-9])?)'")
    key = (ctx.project, name)
    link = f"projects/{ctx.project}/global/instanceTemplates/{name}"
    if key in w.templates or key in w.template_reserved:
        raise ApiError(409, "alreadyExists", f"The resource '{link}' already exists")
    props = _normalize_template(ctx, body)
    stored = {"kind": "compute#instanceTemplate", "id": new_id(), "name": name, "creationTimestamp": now_ts(),
              "selfLink": BASE + link, "properties": props, "_project": ctx.project, "_md_fp": fingerprint()}
    if body.get("description"):
        stored["description"] = body["description"]
    w.template_reserved.add(key)

    def done(world):
        world.template_reserved.discard(key)
        world.templates[key] = stored
    op = w.new_op(ctx.project, "global", "compute.instanceTemplates.insert", link, stored["id"], prior, on_done=done)
    return op.render()


@handler("instanceTemplates.get")
def templates_get(ctx):
    t = ctx.world.templates.get((ctx.project, ctx.params["instanceTemplate"]))
    if t is None:
        raise not_found(f"projects/{ctx.project}/global/instanceTemplates/{ctx.params['instanceTemplate']}")
    return render_template(t)


@handler("instanceTemplates.list")
def templates_list(ctx):
    items = [render_template(t) for (p, _), t in sorted(ctx.world.templates.items()) if p == ctx.project]
    return paginate(ctx, items, "compute#instanceTemplateList", f"projects/{ctx.project}/global/instanceTemplates")


@handler("instanceTemplates.aggregatedList")
def templates_aggregated(ctx):
    items = [render_template(t) for (p, _), t in sorted(ctx.world.templates.items()) if p == ctx.project]
    items = apply_filter(ctx, items)
    scoped = {"global": {"instanceTemplates": items}} if items else {"global": _no_results("global")}
    for r in catalog.REGIONS:
        scoped[f"regions/{r}"] = _no_results(f"regions/{r}")
    return {"kind": "compute#instanceTemplateAggregatedList", "id": f"projects/{ctx.project}/aggregated/instanceTemplates",
            "selfLink": f"{BASE}projects/{ctx.project}/aggregated/instanceTemplates", "items": scoped}


def _no_results(scope: str) -> dict:
    return {"warning": {"code": "NO_RESULTS_ON_PAGE", "message": f"There are no results for scope '{scope}' on this page.",
                        "data": [{"key": "scope", "value": scope}]}}


@handler("instanceTemplates.delete")
def templates_delete(ctx):
    w = ctx.world
    prior = check_request_id(ctx)
    if isinstance(prior, Operation):
        return prior.render()
    name = ctx.params["instanceTemplate"]
    key = (ctx.project, name)
    link = f"projects/{ctx.project}/global/instanceTemplates/{name}"
    t = w.templates.get(key)
    if t is None:
        raise not_found(link)
    users = w.template_users(ctx.project, name)
    if users:
        raise ApiError(400, "resourceInUseByAnotherResource",
                       f"The instance_template resource '{link}' is already being used by '{users[0]}'")
    del w.templates[key]
    w.template_reserved.add(key)  # gone for readers; the name frees when the delete is DONE
    op = w.new_op(ctx.project, "global", "compute.instanceTemplates.delete", link, t["id"], prior,
                  on_done=lambda world: world.template_reserved.discard(key))
    return op.render()


# ---- regional instance group managers -------------------------------------------------
IGM_MUTABLE = {"targetSize", "versions", "instanceTemplate", "updatePolicy", "instanceFlexibilityPolicy",
               "autoHealingPolicies", "namedPorts", "description", "distributionPolicy", "fingerprint"}


def _igm(ctx) -> Igm:
    key = (ctx.project, ctx.params["region"], ctx.params["instanceGroupManager"])
    igm = ctx.world.igms.get(key)
    if igm is None:
        raise not_found(f"projects/{key[0]}/regions/{key[1]}/instanceGroupManagers/{key[2]}")
    return igm


def _check_template_ref(ctx, link: str, field_name: str) -> str:
    r = rel(link, ctx.project)
    m = re.fullmatch(r"projects/([^/]+)/global/instanceTemplates/([^/]+)", r)
    if not m:
        raise invalid(f"Invalid value for field '{field_name}': '{link}'. The URL is malformed.")
    if (m.group(1), m.group(2)) not in ctx.world.templates:
        raise ApiError(404, "notFound", f"The resource '{r}' was not found")
    return r


def _normalize_igm_versions(ctx, spec: dict, where: str = "resource"):
    if "versions" in spec and spec["versions"]:
        vs = []
        for i, v in enumerate(spec["versions"]):
            if "instanceTemplate" not in v:
                raise invalid(f"Invalid value for field '{where}.versions[{i}].instanceTemplate': ''. Instance template must be specified.")
            nv = dict(v)
            nv["instanceTemplate"] = _check_template_ref(ctx, v["instanceTemplate"], f"{where}.versions[{i}].instanceTemplate")
            vs.append(nv)
        if len(vs) > 1:
            raise ApiError(400, "invalid", "The local Compute API models a single version per group (canary versions are not modeled).")
        spec["versions"] = vs
        spec["instanceTemplate"] = vs[0]["instanceTemplate"]
    elif spec.get("instanceTemplate"):
        spec["instanceTemplate"] = _check_template_ref(ctx, spec["instanceTemplate"], f"{where}.instanceTemplate")
        spec["versions"] = [{"instanceTemplate": spec["instanceTemplate"]}]


def _check_flex(spec: dict):
    sel = (spec.get("instanceFlexibilityPolicy") or {}).get("instanceSelections") or {}
    for name, s in sel.items():
        for mt in s.get("machineTypes") or []:
            if last(mt) not in catalog.MACHINE_TYPES:
                raise invalid(f"Invalid value for field 'resource.instanceFlexibilityPolicy.instanceSelections[{name}].machineTypes': '{mt}'.")


@handler("regionInstanceGroupManagers.insert")
def igm_insert(ctx):
    w = ctx.world
    region = _region_or_404(ctx)
    prior = check_request_id(ctx)
    if isinstance(prior, Operation):
        return prior.render()
    spec = copy.deepcopy(ctx.body)
    name = spec["name"]
    if not NAME_RE.match(name):
        raise invalid(f"Invalid value for field 'resource.name': '{name}'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{{0,61}}[a-z0-9])?)'")
    key = (ctx.project, region, name)
    link = f"projects/{ctx.project}/regions/{region}/instanceGroupManagers/{name}"
    if key in w.igms:
        raise ApiError(409, "alreadyExists", f"The resource '{link}' already exists")
    if not spec.get("instanceTemplate") and not spec.get("versions"):
        raise invalid("Invalid value for field 'resource.instanceTemplate': ''. Instance template or versions must be specified.")
    _normalize_igm_versions(ctx, spec)
    _check_flex(spec)
    if int(spec.get("targetSize", 0)) < 0:
        raise invalid(f"Invalid value for field 'resource.targetSize': '{spec['targetSize']}'. Must be greater than or equal to 0")
    spec.setdefault("baseInstanceName", name[:54])
    if not re.fullmatch(r"[a-z][-a-z0-9]{0,57}", spec["baseInstanceName"]):
        raise invalid(f"Invalid value for field 'resource.baseInstanceName': '{spec['baseInstanceName']}'.")
    dp = spec.setdefault("distributionPolicy", {})
    zones = [last(z["zone"]) for z in dp.get("zones") or []]
    for z in zones:
        if catalog.ZONE_REGION.get(z) != region:
            raise invalid(f"Invalid value for field 'resource.distributionPolicy.zones': '{z}'. Zone must be in region {region}.")
    if not zones:
        zones = catalog.REGIONS[region][:3]
    dp.setdefault("targetShape", "EVEN")
    dp["zones"] = [{"zone": f"projects/{ctx.project}/zones/{z}"} for z in zones]
    igm = Igm(ctx.project, region, name, spec, time.time(), zones)
    w.igms[key] = igm

    def done(world):
        igm.active = True
    op = w.new_op(ctx.project, f"regions/{region}", "compute.instanceGroupManagers.insert", link, igm.id, prior, on_done=done)
    return op.render()


@handler("regionInstanceGroupManagers.get")
def igm_get(ctx):
    return ctx.world.render_igm(_igm(ctx))


@handler("regionInstanceGroupManagers.list")
def igm_list(ctx):
    region = _region_or_404(ctx)
    items = [ctx.world.render_igm(i) for k, i in sorted(ctx.world.igms.items()) if k[0] == ctx.project and k[1] == region]
    return paginate(ctx, items, "compute#regionInstanceGroupManagerList", f"projects/{ctx.project}/regions/{region}/instanceGroupManagers")


@handler("instanceGroupManagers.aggregatedList")
def igm_aggregated(ctx):
    scoped = {}
    for r in catalog.REGIONS:
        items = [ctx.world.render_igm(i) for k, i in sorted(ctx.world.igms.items()) if k[0] == ctx.project and k[1] == r]
        items = apply_filter(ctx, items)
        scoped[f"regions/{r}"] = {"instanceGroupManagers": items} if items else _no_results(f"regions/{r}")
    for z in catalog.ALL_ZONES:
        scoped[f"zones/{z}"] = _no_results(f"zones/{z}")
    return {"kind": "compute#instanceGroupManagerAggregatedList", "id": f"projects/{ctx.project}/aggregated/instanceGroupManagers",
            "selfLink": f"{BASE}projects/{ctx.project}/aggregated/instanceGroupManagers", "items": scoped}


def _not_deleting(igm: Igm):
    if igm.deleting:
        raise ApiError(400, "resourceNotReady", f"The resource '{igm.link}' is not ready")


@handler("regionInstanceGroupManagers.resize")
def igm_resize(ctx):
    w = ctx.world
    prior = check_request_id(ctx)
    if isinstance(prior, Operation):
        return prior.render()
    igm = _igm(ctx)
    _not_deleting(igm)
    size = int(ctx.q("size"))
    if size < 0:
        raise invalid(f"Invalid value for field 'size': '{size}'. Must be greater than or equal to 0")

    def done(world):
        igm.spec["targetSize"] = size
        igm.fp = fingerprint()
    op = w.new_op(ctx.project, f"regions/{igm.region}", "compute.regionInstanceGroupManagers.resize", igm.link, igm.id, prior, on_done=done)
    return op.render()


@handler("regionInstanceGroupManagers.patch")
def igm_patch(ctx):
    w = ctx.world
    prior = check_request_id(ctx)
    if isinstance(prior, Operation):
        return prior.render()
    igm = _igm(ctx)
    _not_deleting(igm)
    patch = copy.deepcopy(ctx.body)
    if patch.get("fingerprint") and patch["fingerprint"] != igm.fp:
        raise ApiError(412, "conditionNotMet", "Supplied fingerprint does not match current metadata fingerprint.")
    for k in list(patch):
        if k in ("name", "region", "zone", "kind", "id", "selfLink", "creationTimestamp", "status", "currentActions",
                 "instanceGroup", "listManagedInstancesResults", "satisfiesPzi", "satisfiesPzs", "targetStoppedSize",
                 "targetSuspendedSize"):
            # Output-only or identity fields: accepted when unchanged, else immutable.
            continue
        if k == "baseInstanceName" and patch[k] != igm.spec["baseInstanceName"]:
            raise invalid("Invalid value for field 'resource.baseInstanceName': cannot be changed.")
        if k not in IGM_MUTABLE and k != "baseInstanceName":
            raise ApiError(400, "invalid", f"The local Compute API does not model patching '{k}'.")
    if "distributionPolicy" in patch:
        zs = [last(z["zone"]) for z in patch["distributionPolicy"].get("zones") or []]
        if zs and sorted(zs) != sorted(igm.zones):
            raise invalid("Invalid value for field 'resource.distributionPolicy.zones': zones of a regional group cannot be changed.")
    if "versions" in patch or "instanceTemplate" in patch:
        if "versions" in patch and "instanceTemplate" not in patch:
            patch.pop("instanceTemplate", None)
        elif "instanceTemplate" in patch and "versions" not in patch:
            patch["versions"] = [{"instanceTemplate": patch["instanceTemplate"]}]
        _normalize_igm_versions(ctx, patch)
    _check_flex(patch)
    if "targetSize" in patch and int(patch["targetSize"]) < 0:
        raise invalid("Invalid value for field 'resource.targetSize': must be greater than or equal to 0")

    def done(world):
        for k, v in patch.items():
            if k in ("distributionPolicy",):
                if "targetShape" in v:
                    igm.spec["distributionPolicy"]["targetShape"] = v["targetShape"]
            elif k in IGM_MUTABLE and k != "fingerprint":
                igm.spec[k] = v
        igm.fp = fingerprint()
    op = w.new_op(ctx.project, f"regions/{igm.region}", "compute.regionInstanceGroupManagers.patch", igm.link, igm.id, prior, on_done=done)
    return op.render()


@handler("regionInstanceGroupManagers.delete")
def igm_delete(ctx):
    w = ctx.world
    prior = check_request_id(ctx)
    if isinstance(prior, Operation):
        return prior.render()
    igm = _igm(ctx)
    if igm.deleting:
        raise ApiError(400, "resourceNotReady", f"The resource '{igm.link}' is not ready")
    key = (igm.project, igm.region, igm.name)

    def running(world):
        igm.deleting = True

    def gone(world):
        return not igm.members

    def done(world):
        world.igms.pop(key, None)
    op = w.new_op(ctx.project, f"regions/{igm.region}", "compute.regionInstanceGroupManagers.delete", igm.link, igm.id, prior,
                  on_running=running, done_when=gone, on_done=done)
    return op.render()


@handler("regionInstanceGroupManagers.listManagedInstances")
def igm_list_instances(ctx):
    igm = _igm(ctx)
    items = [ctx.world.render_member(igm, m) for m in igm.members]
    items = apply_filter(ctx, items)
    out = {}
    if items:
        out["managedInstances"] = items
    return out


@handler("regionInstanceGroupManagers.listErrors")
def igm_list_errors(ctx):
    igm = _igm(ctx)
    items = list(reversed(igm.errors))
    mr = min(int(ctx.q("maxResults", "500")) or 500, 500)
    start = 0
    if ctx.q("pageToken"):
        start = int(base64.urlsafe_b64decode(ctx.q("pageToken").encode()).decode())
    out = {}
    page = items[start:start + mr]
    if page:
        out["items"] = copy.deepcopy(page)
    if start + mr < len(items):
        out["nextPageToken"] = base64.urlsafe_b64encode(str(start + mr).encode()).decode()
    return out


@handler("regionAutoscalers.list")
def region_autoscalers_list(ctx):
    # Autoscalers are not modeled: none can be created here, so every list is empty.
    region = _region_or_404(ctx)
    return paginate(ctx, [], "compute#regionAutoscalerList", f"projects/{ctx.project}/regions/{region}/autoscalers")


@handler("autoscalers.list")
def autoscalers_list(ctx):
    z = _zone_or_404(ctx)
    return paginate(ctx, [], "compute#autoscalerList", f"projects/{ctx.project}/zones/{z}/autoscalers")


def render_instance_group(world: World, igm: Igm) -> dict:
    size = sum(1 for m in igm.members if (igm.project, m.zone, m.name) in world.instances)
    return {"kind": "compute#instanceGroup", "id": str(int(igm.id) // 2), "creationTimestamp": now_ts(igm.created),
            "name": igm.name, "description": "This instance group is controlled by Regional Instance Group Manager "
            f"'{igm.name}'. To modify instances in this group, use the Regional Instance Group Manager API: "
            "https://cloud.google.com/compute/docs/reference/latest/regionInstanceGroupManagers",
            "region": f"{BASE}projects/{igm.project}/regions/{igm.region}", "size": size,
            "fingerprint": "42WmSpB8rSM=",
            "network": f"{BASE}projects/{igm.project}/global/networks/default",
            "selfLink": f"{BASE}projects/{igm.project}/regions/{igm.region}/instanceGroups/{igm.name}"}


@handler("regionInstanceGroups.list")
def region_instance_groups_list(ctx):
    region = _region_or_404(ctx)
    items = [render_instance_group(ctx.world, i) for k, i in sorted(ctx.world.igms.items()) if k[0] == ctx.project and k[1] == region]
    return paginate(ctx, items, "compute#regionInstanceGroupList", f"projects/{ctx.project}/regions/{region}/instanceGroups")


@handler("instanceGroups.aggregatedList")
def instance_groups_aggregated(ctx):
    scoped = {}
    for r in catalog.REGIONS:
        items = apply_filter(ctx, [render_instance_group(ctx.world, i) for k, i in sorted(ctx.world.igms.items())
                                   if k[0] == ctx.project and k[1] == r])
        scoped[f"regions/{r}"] = {"instanceGroups": items} if items else _no_results(f"regions/{r}")
    for z in catalog.ALL_ZONES:
        scoped[f"zones/{z}"] = _no_results(f"zones/{z}")
    return {"kind": "compute#instanceGroupAggregatedList", "id": f"projects/{ctx.project}/aggregated/instanceGroups",
            "selfLink": f"{BASE}projects/{ctx.project}/aggregated/instanceGroups", "items": scoped}


@handler("regionInstanceGroups.get")
def region_instance_groups_get(ctx):
    key = (ctx.project, ctx.params["region"], ctx.params["instanceGroup"])
    igm = ctx.world.igms.get(key)
    if igm is None:
        raise not_found(f"projects/{key[0]}/regions/{key[1]}/instanceGroups/{key[2]}")
    return render_instance_group(ctx.world, igm)


@handler("regionInstanceGroups.listInstances")
def region_instance_groups_list_instances(ctx):
    key = (ctx.project, ctx.params["region"], ctx.params["instanceGroup"])
    igm = ctx.world.igms.get(key)
    if igm is None:
        raise not_found(f"projects/{key[0]}/regions/{key[1]}/instanceGroups/{key[2]}")
    state = (ctx.body or {}).get("instanceState", "ALL")
    items = []
    for m in igm.members:
        inst = ctx.world.instances.get((igm.project, m.zone, m.name))
        if inst is None or (state == "RUNNING" and inst.status != "RUNNING"):
            continue
        items.append({"instance": BASE + inst.link, "status": inst.status})
    return paginate(ctx, items, "compute#regionInstanceGroupsListInstances",
                    f"projects/{ctx.project}/regions/{igm.region}/instanceGroups/{igm.name}/listInstances")


# ---- instances ----------------------------------------------------------------------
def _inst(ctx) -> Instance:
    key = (ctx.project, ctx.params["zone"], ctx.params["instance"])
    inst = ctx.world.instances.get(key)
    if inst is None:
        raise not_found(f"projects/{key[0]}/zones/{key[1]}/instances/{key[2]}")
    return inst


@handler("instances.get")
def instances_get(ctx):
    return _inst(ctx).render()


@handler("instances.list")
def instances_list(ctx):
    z = _zone_or_404(ctx)
    items = [i.render() for k, i in sorted(ctx.world.instances.items()) if k[0] == ctx.project and k[1] == z]
    return paginate(ctx, items, "compute#instanceList", f"projects/{ctx.project}/zones/{z}/instances")


@handler("instances.aggregatedList")
def instances_aggregated(ctx):
    scoped = {}
    for z in catalog.ALL_ZONES:
        items = apply_filter(ctx, [i.render() for k, i in sorted(ctx.world.instances.items()) if k[0] == ctx.project and k[1] == z])
        scoped[f"zones/{z}"] = {"instances": items} if items else _no_results(f"zones/{z}")
    return {"kind": "compute#instanceAggregatedList", "id": f"projects/{ctx.project}/aggregated/instances",
            "selfLink": f"{BASE}projects/{ctx.project}/aggregated/instances", "items": scoped}


@handler("instances.delete")
def instances_delete(ctx):
    w = ctx.world
    prior = check_request_id(ctx)
    if isinstance(prior, Operation):
        return prior.render()
    inst = _inst(ctx)
    if inst.status == "STOPPING":
        raise ApiError(400, "resourceNotReady", f"The resource '{inst.link}' is not ready")

    def running(world):
        inst.status, inst.stop_at = "STOPPING", time.time() + world.config["instance_delete_s"]

    def gone(world):
        return (inst.project, inst.zone, inst.name) not in world.instances or world.instances[(inst.project, inst.zone, inst.name)] is not inst
    op = w.new_op(ctx.project, f"zones/{inst.zone}", "delete", inst.link, inst.id, prior, on_running=running, done_when=gone)
    return op.render()


# ---- the test-only control endpoint ------------------------------------------------
def control(world: World, method: str, path: str, body: dict, query: dict):
    """/_test/...: state for tests, fault injection and out-of-band changes."""
    p = path[len("/_test/"):].strip("/")
    if p == "health":
        return 200, {"ok": True, "discovery_revision": world.doc.get("revision")}
    if method == "GET" and p == "log":
        since = int((query.get("since") or ["0"])[0])
        return 200, {"entries": [e for e in world.log if e["seq"] > since], "seq": world.seq}
    if method == "GET" and p == "state":
        return 200, {
            "templates": sorted(f"{k[0]}/{k[1]}" for k in world.templates),
            "groups": {f"{k[0]}/{k[1]}/{k[2]}": {"targetSize": i.target_size(), "deleting": i.deleting, "active": i.active,
                                                 "members": [{"name": m.name, "zone": m.zone, "action": m.action,
                                                              "template": last(m.template)} for m in i.members]}
                       for k, i in world.igms.items()},
            "instances": {f"{k[0]}/{k[1]}/{k[2]}": {"status": i.status, "machineType": i.machine_type,
                                                    "provisioningModel": i.provisioning_model,
                                                    "group": i.igm[2] if i.igm else None}
                          for k, i in world.instances.items()},
            "operations": {"total": len(world.ops), "notDone": sum(1 for o in world.ops.values() if o.status != "DONE")},
            "capacity": world.capacity, "quotas": [{"project": k[0], "scope": k[1], "metric": k[2], "limit": v} for k, v in world.quotas.items()],
            "faults": world.faults, "config": world.config,
        }
    if method != "POST":
        return 405, {"error": "use POST"}
    if p == "reset":
        keep = dict(world.config)
        world.reset()
        world.config = keep if not body.get("config") else {**DEFAULT_CONFIG}
        return 200, {"ok": True}
    if p == "config":
        for k, v in body.items():
            if k not in DEFAULT_CONFIG:
                return 400, {"error": f"unknown config key {k!r}", "keys": sorted(DEFAULT_CONFIG)}
            world.config[k] = float(v)
        return 200, world.config
    if p == "auth":
        # {"mode": "open"|"required", "required_projects": [project, ...], "service_accounts": {email: {"n": hex modulus, "e": 65537}},
        #  "refresh_tokens": {token: principal}, "metadata_principal": email, "token_lifetime_s": N}
        world.auth.configure(body)
        return 200, {"mode": world.auth.mode, "required_projects": sorted(world.auth.required_projects),
                     "service_accounts": sorted(world.auth.service_accounts),
                     "metadata_principal": world.auth.metadata_principal}
    if p == "capacity":
        # {"zone": "us-central1-a"|"*", "machineType": "a2-highgpu-1g"|"*", "provisioningModel": "STANDARD"|"SPOT"|"*",
        #  "available": N (VMs that may exist at once) | null to remove the rule,
        #  "code": "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS" | "ZONE_RESOURCE_POOL_EXHAUSTED"}
        rule = {"zone": body.get("zone", "*"), "machineType": body.get("machineType", "*"),
                "provisioningModel": body.get("provisioningModel", "*"), "project": body.get("project", "*"),
                "code": body.get("code", "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS")}
        if rule["code"] not in ("ZONE_RESOURCE_POOL_EXHAUSTED", "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS"):
            return 400, {"error": "code must be ZONE_RESOURCE_POOL_EXHAUSTED or ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS"}
        if rule["zone"] != "*" and rule["zone"] not in catalog.ZONE_REGION:
            return 400, {"error": f"unknown zone {rule['zone']}"}
        if rule["machineType"] != "*" and rule["machineType"] not in catalog.MACHINE_TYPES:
            return 400, {"error": f"unknown machine type {rule['machineType']}"}
        world.capacity = [r for r in world.capacity if (r["zone"], r["machineType"], r["provisioningModel"], r["project"]) !=
                          (rule["zone"], rule["machineType"], rule["provisioningModel"], rule["project"])]
        if body.get("available") is not None:
            rule["available"] = int(body["available"])
            world.capacity.append(rule)
        return 200, {"capacity": world.capacity}
    if p == "quota":
        key = (body.get("project", "*"), body.get("region", "global"), body["metric"])
        if body.get("limit") is None:
            world.quotas.pop(key, None)
        else:
            world.quotas[key] = float(body["limit"])
        return 200, {"ok": True}
    if p == "log/clear":
        world.log.clear()
        return 200, {"ok": True}
    if p == "faults":
        # {"method": "compute.regionInstanceGroupManagers.insert" | "regionInstanceGroupManagers.insert" | "*",
        #  "status": 429|500|503, "count": N, "when": "before" (default: refuse) | "after" (apply, then answer the error)}
        if body.get("clear"):
            world.faults.clear()
            return 200, {"faults": []}
        f = {"method": body.get("method", "*"), "status": int(body.get("status", 503)), "count": int(body.get("count", 1)),
             "when": body.get("when", "before"), "project": body.get("project", "*")}
        if f["status"] not in (429, 500, 503) or f["when"] not in ("before", "after"):
            return 400, {"error": "status must be 429, 500 or 503; when before|after"}
        world.faults.append(f)
        return 200, {"faults": world.faults}
    if p == "instances/delete":
        key = (body["project"], body["zone"], body["name"])
        if key not in world.instances:
            return 404, {"error": "no such instance"}
        del world.instances[key]
        return 200, {"ok": True}
    if p == "preempt":
        key = (body["project"], body["zone"], body["name"])
        inst = world.instances.get(key)
        if inst is None:
            return 404, {"error": "no such instance"}
        if inst.provisioning_model != "SPOT":
            return 400, {"error": "only Spot instances are preempted"}
        action = (inst.props.get("scheduling") or {}).get("instanceTerminationAction", "STOP")
        if action == "DELETE":
            del world.instances[key]
        else:
            inst.status = "TERMINATED"
        return 200, {"ok": True, "action": action}
    if p == "igm/resize":
        key = (body["project"], body["region"], body["name"])
        igm = world.igms.get(key)
        if igm is None:
            return 404, {"error": "no such group"}
        igm.spec["targetSize"] = int(body["size"])
        igm.fp = fingerprint()
        return 200, {"ok": True}
    return 404, {"error": f"unknown control path {path}"}


def fault_body(status: int) -> dict:
    if status == 429:
        return ApiError(429, "rateLimitExceeded", "Rate Limit Exceeded", domain="usageLimits").body()
    if status == 503:
        return ApiError(503, "backendError", "Internal error. Please try again or contact Google Support. (Code: '-1')").body()
    return ApiError(500, "backendError", "Internal Error").body()


def api_call(world: World, http_method: str, target: str, raw: bytes, headers, base: str) -> tuple[int, dict | None]:
    """One Compute API request (path with query string) -> (status, JSON body); logged."""
    u = urllib.parse.urlsplit(target)
    query = urllib.parse.parse_qs(u.query, keep_blank_values=True)
    prefix = "/compute/v1/"
    status, out, mid, principal = 404, None, None, None
    try:
        if not u.path.startswith(prefix):
            raise ApiError(404, "notFound", f"The requested URL {u.path} was not found on this server.")
        try:
            with world.lock:
                project = u.path[len(prefix):].split("/")[1] if u.path[len(prefix):].startswith("projects/") else None
                principal = world.auth.principal(headers.get("Authorization"), project)
        except Unauthenticated as e:
            raise ApiError(401, "required" if not headers.get("Authorization") else "authError", str(e),
                           extra={"status": "UNAUTHENTICATED"}) from None
        sub = urllib.parse.unquote(u.path[len(prefix):])
        method, params = None, None
        for m in world.methods:
            if m.http_method != http_method:
                continue
            mt = m.regex.match(sub)
            if mt:
                method, params = m, mt.groupdict()
                break
        if method is None:
            raise ApiError(404, "notFound", f"The requested URL {u.path} was not found on this server.")
        mid = method.id
        body = None
        if method.request:
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                raise ApiError(400, "parseError", "Parse Error") from None
            if not isinstance(body, dict):
                raise ApiError(400, "required", "Required field 'resource' not specified")
            errs = world.validator.validate(body, method.request, method_id=method.id, where="resource")
            if errs:
                raise ApiError(400, "invalid", "Invalid JSON payload received. " + "; ".join(errs[:5]))
        elif raw.strip():
            raise ApiError(400, "invalid", f"Invalid JSON payload received. {method.id} takes no request body.")
        extra = EXTRA_PARAMS if method.name in ("list", "aggregatedList") else None
        errs = world.validator.check_params(method, query, world.global_params, extra)
        if errs:
            raise ApiError(400, "invalid", "Invalid request: " + "; ".join(errs))
        fn = HANDLERS.get(method.key)
        if fn is None:
            raise ApiError(501, "notImplemented", f"Method {method.id} is not implemented by paved's local Compute API.")
        with world.lock:
            fault = None
            for f in world.faults:
                if f["method"] in ("*", method.id, method.key) and f["count"] > 0 and f["project"] in ("*", params.get("project")):
                    f["count"] -= 1
                    fault = f
                    break
            world.faults[:] = [f for f in world.faults if f["count"] > 0]
            if fault and fault["when"] == "before":
                status, out = fault["status"], fault_body(fault["status"])
            else:
                out = fn(Ctx(world, method, params, query, body))
                status = 200
                if out is None:
                    out = {}
                if fault:
                    status, out = fault["status"], fault_body(fault["status"])
    except ApiError as e:
        status, out = e.code, e.body()
    except Exception as e:  # noqa: BLE001 - answer 500 in Google's format, log it
        traceback.print_exc()
        status, out = 500, ApiError(500, "backendError", f"Internal error in the local Compute API: {e!r}").body()
    with world.lock:
        world.seq += 1
        try:
            req_body = json.loads(raw) if raw else None
        except ValueError:
            req_body = raw.decode("utf-8", "replace")
        world.log.append({"seq": world.seq, "time": time.time(), "method": mid, "http": http_method,
                          "path": u.path, "query": dict(query), "request": req_body, "status": status,
                          "response": json.loads(json.dumps(out).replace(BASE, base)) if out is not None else None,
                          "auth": bool(headers.get("Authorization")), "principal": principal,
                          "userAgent": headers.get("User-Agent", "")})
        del world.log[: -int(world.config["request_log_max"])]
    return status, out


REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 404: "Not Found", 409: "Conflict", 412: "Precondition Failed",
           429: "Too Many Requests", 500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable"}


def batch_call(world: World, content_type: str, raw: bytes, headers, base: str) -> tuple[bytes, str]:
    """Google's batch endpoint (/batch/compute/v1): a multipart/mixed body of
    application/http parts, each one API request; answers each in a part of its own."""
    m = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not m or not content_type.startswith("multipart/mixed"):
        raise ApiError(400, "badRequest", "Batch requests must be multipart/mixed with a boundary.")
    boundary = m.group(1).encode()
    parts = raw.split(b"--" + boundary)
    out_parts = []
    for part in parts[1:]:
        if part.startswith(b"--"):
            break
        part = part.lstrip(b"\r\n")
        head, _, inner = part.partition(b"\r\n\r\n")
        if not _:
            head, _, inner = part.partition(b"\n\n")
        cid = None
        for line in head.decode("latin-1").splitlines():
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-id":
                cid = v.strip()
        req_line, _, rest = inner.replace(b"\r\n", b"\n").partition(b"\n")
        hdr_text, _, body = rest.partition(b"\n\n")
        inner_headers = {}
        for line in hdr_text.decode("latin-1").splitlines():
            k, _, v = line.partition(":")
            if k:
                inner_headers[k.strip()] = v.strip()
        meth, target, *_ = req_line.decode("latin-1").split(" ")
        t = urllib.parse.urlsplit(target)
        target = t.path + (("?" + t.query) if t.query else "")
        body = body.rstrip(b"\n")
        hdrs = dict(headers)
        hdrs.update(inner_headers)
        status, data = api_call(world, meth, target, body, hdrs, base)
        payload = b"" if data is None else json.dumps(data, indent=1).replace(BASE, base).encode()
        rid = f"<response-{cid.strip('<>')}>" if cid else "<response-0>"
        out_parts.append(b"Content-Type: application/http\r\nContent-ID: " + rid.encode() + b"\r\n\r\n"
                         + f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n".encode()
                         + b"Content-Type: application/json; charset=UTF-8\r\n"
                         + f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload + b"\r\n")
    rb = "batch_" + secrets.token_hex(12)
    body = b"".join(b"--" + rb.encode() + b"\r\n" + p for p in out_parts) + b"--" + rb.encode() + b"--\r\n"
    return body, f"multipart/mixed; boundary={rb}"


def make_handler(world: World):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "ESF"
        sys_version = ""

        def log_message(self, fmt, *args):
            if os.environ.get("PAVED_GCE_VERBOSE"):
                sys.stderr.write("gce: " + (fmt % args) + "\n")

        def _send_raw(self, status: int, data: bytes, ctype: str):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Vary", "Origin")
            self.end_headers()
            self.wfile.write(data)

        def _send(self, status: int, body, base: str):
            data = b"" if body is None else json.dumps(body, indent=1).replace(BASE, base).encode()
            self._send_raw(status, data, "application/json; charset=UTF-8")

        def _dispatch(self):
            u = urllib.parse.urlsplit(self.path)
            host = self.headers.get("Host") or f"{self.server.server_address[0]}:{self.server.server_address[1]}"
            base = f"http://{host}/compute/v1/"
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            if u.path.startswith("/_test/"):
                query = urllib.parse.parse_qs(u.query, keep_blank_values=True)
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    return self._send(400, {"error": "body is not JSON"}, base)
                with world.lock:
                    try:
                        status, out = control(world, self.command, u.path, body, query)
                    except (KeyError, ValueError, TypeError) as e:
                        status, out = 400, {"error": f"bad control request: {e!r}"}
                return self._send(status, out, base)
            if u.path == "/token" and self.command == "POST":
                # Google's token endpoint takes a form (RFC 6749) or, as google-cloud-auth sends it, JSON.
                text = raw.decode("utf-8", "replace")
                if "json" in (self.headers.get("Content-Type") or "") or text.lstrip().startswith("{"):
                    try:
                        form = {k: str(v) for k, v in json.loads(text).items()}
                    except (ValueError, AttributeError):
                        return self._send(400, {"error": "invalid_request", "error_description": "body is not JSON"}, base)
                else:
                    form = {k: v[-1] for k, v in urllib.parse.parse_qs(text).items()}
                with world.lock:
                    status, out = world.auth.token_endpoint(form)
                return self._send(status, out, base)
            if u.path.startswith("/computeMetadata/"):
                with world.lock:
                    status, out = world.auth.metadata(u.path, self.headers)
                if isinstance(out, str):
                    return self._send_raw(status, out.encode(), "application/text")
                return self._send(status, out, base)
            if u.path == "/batch/compute/v1" and self.command == "POST":
                try:
                    data, ctype = batch_call(world, self.headers.get("Content-Type", ""), raw, self.headers, base)
                except ApiError as e:
                    return self._send(e.code, e.body(), base)
                return self._send_raw(200, data, ctype)
            status, out = api_call(world, self.command, self.path, raw, self.headers, base)
            self._send(status, out, base)

        do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _dispatch

    return H


class Server:
    """The local Compute API: an HTTP server plus the thread that moves the world on."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, doc: dict | None = None, config: dict | None = None):
        self.world = World(doc or discovery.load(), config)
        self.httpd = ThreadingHTTPServer((host, port), make_handler(self.world))
        self.httpd.daemon_threads = True
        self._stop = threading.Event()
        self.threads = []

    @property
    def base_url(self) -> str:
        h, p = self.httpd.server_address[:2]
        return f"http://{h}:{p}"

    def _ticker(self):
        while not self._stop.is_set():
            with self.world.lock:
                self.world.step()
                self.world.cond.notify_all()
            self._stop.wait(self.world.config["tick_s"])

    def start(self):
        for target in (self.httpd.serve_forever, self._ticker):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self):
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=int(os.environ.get("PAVED_GCE_PORT", "0")))
    ap.add_argument("--discovery", help="path of compute.v1.json (default: the copy in google-api-python-client)")
    ap.add_argument("--url-file", help="write the base URL here once listening")
    for k, v in DEFAULT_CONFIG.items():
        ap.add_argument("--" + k.replace("_", "-"), type=float, default=None, help=f"default {v}")
    a = ap.parse_args(argv)
    if a.host not in ("127.0.0.1", "localhost", "::1"):
        ap.error("the local Compute API listens on loopback only")
    doc = discovery.load(a.discovery) if a.discovery else discovery.load()
    cfg = {k: getattr(a, k) for k in DEFAULT_CONFIG if getattr(a, k) is not None}
    srv = Server(a.host, a.port, doc, cfg).start()
    if a.url_file:
        tmp = a.url_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(srv.base_url + "\n")
        os.replace(tmp, a.url_file)
    print(srv.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
