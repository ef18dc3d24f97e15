"""Google's Compute Engine discovery document (compute.v1.json): where to find it, the
routes of its methods, and a validator for messages against its schemas.

The document ships inside the PyPI package google-api-python-client (pinned in
requirements.txt). Only the data file is used, so the package is installed with --no-deps
and never imported: `importlib.util.find_spec` locates it without running its code.

Standard library only.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

DOC_RELPATH = Path("discovery_cache") / "documents" / "compute.v1.json"


def discovery_path() -> Path:
    """compute.v1.json: $PAVED_GCE_DISCOVERY, else the copy inside googleapiclient."""
    env = os.environ.get("PAVED_GCE_DISCOVERY")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("googleapiclient")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "compute.v1.json not found: install acceptance-tests/gce/requirements.txt "
            "(google-api-python-client) or set PAVED_GCE_DISCOVERY"
        )
    for loc in spec.submodule_search_locations:
        p = Path(loc) / DOC_RELPATH
        if p.is_file():
            return p
    raise FileNotFoundError(f"{DOC_RELPATH} not found in googleapiclient at {spec.submodule_search_locations}")


def load(path: Path | None = None) -> dict:
    with open(path or discovery_path(), encoding="utf-8") as f:
        return json.load(f)


@dataclass(frozen=True)
class Method:
    resource: str  # e.g. "regionInstanceGroupManagers"
    name: str  # e.g. "resize"
    id: str  # e.g. "compute.regionInstanceGroupManagers.resize"
    http_method: str
    flat_path: str  # e.g. "projects/{project}/regions/{region}/..."
    regex: re.Pattern
    parameters: dict  # name -> parameter spec
    request: str | None  # schema name of the body
    response: str | None  # schema name of the response

    @property
    def key(self) -> str:
        return f"{self.resource}.{self.name}"


def methods(doc: dict) -> list[Method]:
    """Every method of every resource, with a regex over the path below servicePath."""
    out = []
    for rname, res in doc["resources"].items():
        for mname, m in res.get("methods", {}).items():
            flat = m["flatPath"]
            pattern = ""
            pos = 0
            for mt in re.finditer(r"\{([^}]+)\}", flat):
                pattern += re.escape(flat[pos : mt.start()]) + f"(?P<{mt.group(1)}>[^/]+)"
                pos = mt.end()
            pattern += re.escape(flat[pos:])
            out.append(
                Method(
                    resource=rname,
                    name=mname,
                    id=m["id"],
                    http_method=m["httpMethod"],
                    flat_path=flat,
                    regex=re.compile("^" + pattern + "$"),
                    parameters=m.get("parameters", {}),
                    request=(m.get("request") or {}).get("$ref"),
                    response=(m.get("response") or {}).get("$ref"),
                )
            )
    return out


_B64 = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")
_INT = re.compile(r"^-?[0-9]+$")
_UINT = re.compile(r"^[0-9]+$")
_DURATION = re.compile(r"^-?[0-9]+(\.[0-9]{1,9})?s$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


class Validator:
    """Checks a JSON value against a discovery schema.

    Checks: JSON types, formats (int32/uint32 ranges, int64/uint64 as decimal strings,
    byte as base64, google-datetime, google-duration), enums, patterns where the
    document gives one, that every object member is a declared property (or matches
    additionalProperties), and, for a request of a given method, the properties that the
    document's `annotations.required` lists for that method id.
    """

    def __init__(self, doc: dict):
        self.schemas = doc["schemas"]

    def validate(self, value, schema_name: str, *, method_id: str | None = None, where: str = "$") -> list[str]:
        errors: list[str] = []
        self._check(value, {"$ref": schema_name}, where, method_id, errors, depth=0)
        return errors

    def _check(self, value, spec: dict, where: str, method_id, errors: list[str], depth: int):
        if depth > 64:
            errors.append(f"{where}: nesting too deep")
            return
        if "$ref" in spec:
            ref = spec["$ref"]
            if ref not in self.schemas:
                errors.append(f"{where}: unknown schema {ref}")
                return
            spec = self.schemas[ref]
        t = spec.get("type")
        if t == "object":
            if not isinstance(value, dict):
                errors.append(f"{where}: expected object, got {type(value).__name__}")
                return
            props = spec.get("properties")
            addl = spec.get("additionalProperties")
            if spec.get("format") == "google.protobuf.Any":
                return
            for k, v in value.items():
                if props and k in props:
                    self._check(v, props[k], f"{where}.{k}", method_id, errors, depth + 1)
                    # `kind` is a constant per schema (its default, e.g. compute#operation).
                    if k == "kind" and "default" in props[k] and v != props[k]["default"]:
                        errors.append(f"{where}.kind: {v!r}, expected {props[k]['default']!r}")
                elif addl is not None:
                    self._check(v, addl, f"{where}[{k!r}]", method_id, errors, depth + 1)
                else:
                    errors.append(f"{where}: unknown field {k!r}")
            if method_id and props:
                for k, p in props.items():
                    req = (p.get("annotations") or {}).get("required") or []
                    if method_id in req and k not in value:
                        errors.append(f"{where}: missing required field {k!r} for {method_id}")
        elif t == "array":
            if not isinstance(value, list):
                errors.append(f"{where}: expected array, got {type(value).__name__}")
                return
            for i, v in enumerate(value):
                self._check(v, spec.get("items", {}), f"{where}[{i}]", method_id, errors, depth + 1)
        elif t == "string":
            if not isinstance(value, str):
                errors.append(f"{where}: expected string, got {type(value).__name__}")
                return
            fmt = spec.get("format")
            if fmt in ("int64",) and not _INT.match(value):
                errors.append(f"{where}: {value!r} is not an int64 decimal string")
            elif fmt == "uint64" and not _UINT.match(value):
                errors.append(f"{where}: {value!r} is not a uint64 decimal string")
            elif fmt == "byte":
                if not _B64.match(value):
                    errors.append(f"{where}: {value!r} is not base64")
                else:
                    try:
                        base64.urlsafe_b64decode(value.replace("+", "-").replace("/", "_") + "=" * (-len(value) % 4))
                    except Exception:  # noqa: BLE001 - report, don't raise
                        errors.append(f"{where}: {value!r} is not base64")
            elif fmt == "google-datetime" and not _DATETIME.match(value):
                errors.append(f"{where}: {value!r} is not an RFC 3339 timestamp")
            elif fmt == "google-duration" and not _DURATION.match(value):
                errors.append(f"{where}: {value!r} is not a duration")
            enum = spec.get("enum")
            if enum and value not in enum:
                errors.append(f"{where}: {value!r} not in enum {enum[:8]}{'…' if len(enum) > 8 else ''}")
            pat = spec.get("pattern")
            if pat and not re.fullmatch(pat, value):
                errors.append(f"{where}: {value!r} does not match {pat}")
        elif t == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                errors.append(f"{where}: expected integer, got {type(value).__name__}")
                return
            fmt = spec.get("format")
            if fmt == "int32" and not (-(2**31) <= value < 2**31):
                errors.append(f"{where}: {value} out of int32 range")
            if fmt == "uint32" and not (0 <= value < 2**32):
                errors.append(f"{where}: {value} out of uint32 range")
        elif t == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                errors.append(f"{where}: expected number, got {type(value).__name__}")
        elif t == "boolean":
            if not isinstance(value, bool):
                errors.append(f"{where}: expected boolean, got {type(value).__name__}")
        elif t == "any" or t is None:
            return
        else:
            errors.append(f"{where}: unsupported schema type {t!r}")

    def check_params(self, method: Method, query: dict[str, list[str]], global_params: dict,
                     extra: dict | None = None) -> list[str]:
        """Query parameters: known to the method or the API's global parameters (or a
        `$`-prefixed system parameter), typed as declared, and the required ones present."""
        errors = []
        for k, vals in query.items():
            if k.startswith("$"):
                continue
            spec = method.parameters.get(k) or global_params.get(k) or (extra or {}).get(k)
            if spec is None or (spec.get("location") == "path"):
                errors.append(f"unknown query parameter {k!r}")
                continue
            if not spec.get("repeated") and len(vals) > 1:
                errors.append(f"query parameter {k!r} given {len(vals)} times")
            for v in vals:
                t = spec.get("type")
                if t == "integer" and not _INT.match(v):
                    errors.append(f"query parameter {k}={v!r} is not an integer")
                elif t == "boolean" and v not in ("true", "false", "True", "False", "1", "0"):
                    errors.append(f"query parameter {k}={v!r} is not a boolean")
                if spec.get("enum") and v not in spec["enum"]:
                    errors.append(f"query parameter {k}={v!r} not in {spec['enum']}")
                if spec.get("format") == "uint32" and (not _UINT.match(v) or int(v) >= 2**32):
                    errors.append(f"query parameter {k}={v!r} is not a uint32")
        for k, spec in method.parameters.items():
            if spec.get("location") == "query" and spec.get("required") and k not in query:
                errors.append(f"missing required query parameter {k!r}")
        return errors
