//! Values between a managed resource (camelCase JSON in `spec.forProvider` / `status.atProvider`)
//! and a resource handler (cty values with the schema's snake_case names).
//!
//! Every conversion walks the resource's [`Schema`], never the JSON alone: only attribute and
//! block names are renamed, so map keys (tags, labels, env) reach the cloud exactly as written.

use super::names::camel;
use crate::cty::{self, Type, Value};
use crate::diag::{AttrPath, Step};
use crate::schema::{Block, Nesting};
use serde_json::{Map, Value as J};
use std::collections::BTreeMap;

/// A `spec.forProvider` that does not fit the schema. `path` is the camelCase field path the
/// user wrote (`spec.forProvider.nodes.min`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConvertError {
    pub path: String,
    pub message: String,
}

const FOR_PROVIDER: &str = "spec.forProvider";

/// Renders a schema path (snake_case, as diagnostics carry it) as the MR field path.
pub fn field_path(p: &AttrPath) -> String {
    let mut s = FOR_PROVIDER.to_string();
    for step in &p.0 {
        match step {
            Step::Attr(a) => {
                s.push('.');
                s.push_str(&camel(a));
            }
            Step::Key(k) => s.push_str(&format!("[{k:?}]")),
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn err(path: &str, message: impl Into<String>) -> ConvertError {
    ConvertError {
        path: path.to_string(),
        message: message.into(),
    }
}

/// `spec.forProvider` → the configuration value Terraform would send for the same arguments:
/// every attribute present (null when unset), computed-only attributes null, absent list/set
/// blocks empty.
/// A sensitive argument given as a Secret key reference in `spec.forProvider`.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretArg {
    /// JSON pointer of the reference (`/onlineStore/connectionStringSecretRef`).
    pub reference: String,
    /// JSON pointer where the value goes (`/onlineStore/connectionString`).
    pub target: String,
    pub namespace: String,
    pub name: String,
    pub key: String,
}

/// Every `<arg>SecretRef` in `for_provider` for a sensitive argument of `block` (nested blocks
/// included). The caller reads the Secrets and [`fill_secret_args`] puts the values in place.
pub fn secret_args(block: &Block, for_provider: &J) -> Vec<SecretArg> {
    let mut out = vec![];
    collect_secret_args(block, for_provider, "", &mut out);
    out
}

fn collect_secret_args(block: &Block, j: &J, at: &str, out: &mut Vec<SecretArg>) {
    for a in block
        .attributes
        .iter()
        .filter(|a| a.sensitive && a.accepts_config())
    {
        let key = camel(&a.name);
        let r = &j[format!("{key}{}", crate::crossplane::crd::SECRET_REF_SUFFIX)];
        if let (Some(ns), Some(n), Some(k)) = (
            r["namespace"].as_str(),
            r["name"].as_str(),
            r["key"].as_str(),
        ) {
            out.push(SecretArg {
                reference: format!("{at}/{key}{}", crate::crossplane::crd::SECRET_REF_SUFFIX),
                target: format!("{at}/{key}"),
                namespace: ns.into(),
                name: n.into(),
                key: k.into(),
            });
        }
    }
    for b in &block.blocks {
        let key = camel(&b.name);
        match &j[&key] {
            J::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    collect_secret_args(&b.block, item, &format!("{at}/{key}/{i}"), out);
                }
            }
            x @ J::Object(_) => collect_secret_args(&b.block, x, &format!("{at}/{key}"), out),
            _ => {}
        }
    }
}

/// Replaces each reference by the value read from its Secret.
pub fn fill_secret_args(for_provider: &mut J, values: &[(SecretArg, String)]) {
    for (arg, value) in values {
        let (parent, _) = arg.reference.rsplit_once('/').unwrap_or(("", ""));
        let field = arg.target.rsplit('/').next().unwrap_or_default();
        let reference = arg.reference.rsplit('/').next().unwrap_or_default();
        let obj = if parent.is_empty() {
            Some(&mut *for_provider)
        } else {
            for_provider.pointer_mut(parent)
        };
        if let Some(J::Object(m)) = obj {
            m.remove(reference);
            m.insert(field.to_string(), J::String(value.clone()));
        }
    }
}

pub fn config_from_spec(block: &Block, for_provider: &J) -> Result<Value, ConvertError> {
    block_from_json(block, for_provider, FOR_PROVIDER)
}

fn block_from_json(block: &Block, j: &J, path: &str) -> Result<Value, ConvertError> {
    let empty = Map::new();
    let obj = match j {
        J::Null => &empty,
        J::Object(m) => m,
        _ => return Err(err(path, "an object is required")),
    };
    let mut known: Vec<String> = Vec::with_capacity(block.attributes.len() + block.blocks.len());
    let mut out = BTreeMap::new();
    for a in &block.attributes {
        let key = camel(&a.name);
        let at = format!("{path}.{key}");
        let v = match obj.get(&key) {
            None | Some(J::Null) => Value::Null,
            Some(_) if !a.accepts_config() => {
                return Err(err(&at, "is computed by the provider and cannot be set"))
            }
            Some(_) if a.write_only => {
                return Err(err(&at, "is a Terraform write-only argument; managed resources take the secret through the SecretRef of the stored argument"))
            }
            Some(x) => attr_from_json(x, &a.ty, &at)?,
        };
        known.push(key);
        out.insert(a.name.clone(), v);
    }
    for b in &block.blocks {
        let key = camel(&b.name);
        let at = format!("{path}.{key}");
        let raw = obj.get(&key).unwrap_or(&J::Null);
        let v = match (b.nesting, raw) {
            (Nesting::Single, J::Null) => Value::Null,
            (Nesting::Single, x) => block_from_json(&b.block, x, &at)?,
            (Nesting::List, J::Null) => Value::List(vec![]),
            (Nesting::Set, J::Null) => Value::Set(vec![]),
            (nesting, J::Array(items)) => {
                let mut vs = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    vs.push(block_from_json(&b.block, item, &format!("{at}[{i}]"))?);
                }
                if nesting == Nesting::Set {
                    Value::set(vs)
                } else {
                    Value::List(vs)
                }
            }
            _ => return Err(err(&at, "an array is required")),
        };
        known.push(key);
        out.insert(b.name.clone(), v);
    }
    if let Some(k) = obj.keys().find(|k| !known.contains(k)) {
        return Err(err(&format!("{path}.{k}"), "unknown field"));
    }
    Ok(Value::Object(out))
}

/// One attribute value: object-typed parts get their keys renamed, then the cty JSON decoder
/// checks the type (its error path is appended to ours).
fn attr_from_json(j: &J, ty: &Type, path: &str) -> Result<Value, ConvertError> {
    let snake = rename_keys(j, ty, false);
    cty::json::decode(&snake, ty).map_err(|e| match e {
        cty::CodecError::Invalid { path: inner, msg } => {
            let inner = if inner == "(root)" {
                ""
            } else {
                inner.as_str()
            };
            // The decoder's path names object attributes in snake_case; the user wrote camel.
            let inner: Vec<String> = inner
                .split('.')
                .map(|seg| match seg.find('[') {
                    Some(i) => format!("{}{}", camel(&seg[..i]), &seg[i..]),
                    None => camel(seg),
                })
                .collect();
            err(&format!("{path}{}", inner.join(".")), msg)
        }
        other => err(path, other.to_string()),
    })
}

/// Renames object attribute keys (snake ↔ camel) following the type; map keys stay as they are.
fn rename_keys(j: &J, ty: &Type, to_camel: bool) -> J {
    match (j, ty) {
        (J::Array(items), Type::List(et) | Type::Set(et)) => {
            J::Array(items.iter().map(|i| rename_keys(i, et, to_camel)).collect())
        }
        (J::Object(m), Type::Map(et)) => J::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), rename_keys(v, et, to_camel)))
                .collect(),
        ),
        (J::Object(m), Type::Object(attrs)) => {
            let mut out = Map::new();
            for (k, v) in m {
                let found = attrs.iter().find(|(name, _)| {
                    if to_camel {
                        *name == k
                    } else {
                        camel(name) == *k
                    }
                });
                match found {
                    Some((name, t)) => {
                        let key = if to_camel { camel(name) } else { name.clone() };
                        out.insert(key, rename_keys(v, t, to_camel));
                    }
                    // Left as is: the decoder reports it as an unsupported attribute.
                    None => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            J::Object(out)
        }
        _ => j.clone(),
    }
}

/// Which part of a value a JSON rendering holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Arguments (`spec.forProvider`): attributes the user may set, and all blocks.
    Arguments,
    /// Observations (`status.atProvider`): computed attributes that are not sensitive, and the
    /// blocks that hold some.
    Observations,
}

fn attr_in(part: Part, a: &crate::schema::Attribute) -> bool {
    match part {
        // A sensitive argument is never rendered into a spec (it is given as a Secret reference).
        Part::Arguments => a.accepts_config() && !a.sensitive,
        Part::Observations => a.is_computed() && !a.sensitive,
    }
}

/// Whether a nested block appears in the given part (a block with no computed attribute has
/// nothing to observe).
pub fn block_in(part: Part, b: &Block) -> bool {
    match part {
        Part::Arguments => true,
        Part::Observations => {
            b.attributes.iter().any(|a| attr_in(part, a))
                || b.blocks.iter().any(|n| block_in(part, &n.block))
        }
    }
}

/// Renders `part` of a value as camelCase JSON. Nulls, unknowns and empty block lists are left
/// out, as Kubernetes objects conventionally omit unset fields.
pub fn to_json(block: &Block, v: &Value, part: Part) -> J {
    let mut out = Map::new();
    for a in &block.attributes {
        if !attr_in(part, a) {
            continue;
        }
        let x = v.get(&a.name);
        if x.is_null() || !x.is_wholly_known() {
            continue;
        }
        if let Ok(j) = cty::json::encode(x, &a.ty) {
            out.insert(camel(&a.name), rename_keys(&j, &a.ty, true));
        }
    }
    for b in &block.blocks {
        if !block_in(part, &b.block) {
            continue;
        }
        let x = v.get(&b.name);
        let j = match b.nesting {
            Nesting::Single if x.is_null() || x.is_unknown() => continue,
            Nesting::Single => to_json(&b.block, x, part),
            Nesting::List | Nesting::Set => {
                if x.elements().is_empty() {
                    continue;
                }
                J::Array(
                    x.elements()
                        .iter()
                        .map(|e| to_json(&b.block, e, part))
                        .collect(),
                )
            }
        };
        out.insert(camel(&b.name), j);
    }
    J::Object(out)
}

/// Late initialisation: fills arguments the user left unset with what the provider observed
/// (crossplane-runtime's `LateInitialize` management action). Returns the new `forProvider`, or
/// `None` when nothing was unset or nothing was observed for it. Never overwrites a set field.
pub fn late_initialize(block: &Block, for_provider: &J, observed: &Value) -> Option<J> {
    let mut fp = match for_provider {
        J::Object(m) => m.clone(),
        _ => Map::new(),
    };
    let mut changed = false;
    for a in &block.attributes {
        let key = camel(&a.name);
        if !a.accepts_config() || a.sensitive || !fp.get(&key).unwrap_or(&J::Null).is_null() {
            continue;
        }
        let x = observed.get(&a.name);
        if x.is_null() || !x.is_wholly_known() {
            continue;
        }
        if let Ok(j) = cty::json::encode(x, &a.ty) {
            fp.insert(key, rename_keys(&j, &a.ty, true));
            changed = true;
        }
    }
    for b in &block.blocks {
        let key = camel(&b.name);
        let x = observed.get(&b.name);
        let current = fp.get(&key).cloned().unwrap_or(J::Null);
        match (b.nesting, &current) {
            (Nesting::Single, J::Null) if !x.is_null() && x.is_wholly_known() => {
                fp.insert(key, to_json(&b.block, x, Part::Arguments));
                changed = true;
            }
            (Nesting::Single, J::Object(_)) if !x.is_null() => {
                if let Some(j) = late_initialize(&b.block, &current, x) {
                    fp.insert(key, j);
                    changed = true;
                }
            }
            (Nesting::List | Nesting::Set, J::Null)
                if !x.elements().is_empty() && x.is_wholly_known() =>
            {
                fp.insert(key, to_json_list(&b.block, x));
                changed = true;
            }
            _ => {}
        }
    }
    changed.then_some(J::Object(fp))
}

fn to_json_list(block: &Block, v: &Value) -> J {
    J::Array(
        v.elements()
            .iter()
            .map(|e| to_json(block, e, Part::Arguments))
            .collect(),
    )
}

/// Suffixes of computed attribute names that a consumer needs to connect (crossplane's
/// connection details: endpoint, port, username, password…).
const CONNECTION_SUFFIXES: [&str; 5] = ["endpoint", "url", "port", "host", "secret"];

/// Connection details of a state: every sensitive top-level attribute, plus computed string or
/// number attributes whose name says they locate or unlock the object. Keys are the attribute
/// names (snake_case, as in Terraform outputs).
pub fn connection_details(block: &Block, state: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for a in &block.attributes {
        let wanted = a.sensitive
            || (a.is_computed()
                && matches!(a.ty, Type::String | Type::Number)
                && CONNECTION_SUFFIXES.iter().any(|s| a.name.ends_with(s)));
        if !wanted {
            continue;
        }
        let text = match state.get(&a.name) {
            Value::String(s) => s.clone(),
            Value::Number(n) => match n.as_i64() {
                Some(i) => i.to_string(),
                None => n.as_f64().to_string(),
            },
            Value::Bool(b) => b.to_string(),
            Value::Null | Value::Unknown => continue,
            other => match cty::json::encode(other, &a.ty) {
                Ok(j) => j.to_string(),
                Err(_) => continue,
            },
        };
        out.insert(a.name.clone(), text);
    }
    out
}

/// Replaces unknowns (anywhere) with null: the state handed to `read` when observing by external
/// name must be wholly known.
pub fn unknowns_to_null(v: &Value) -> Value {
    match v {
        Value::Unknown => Value::Null,
        Value::List(xs) => Value::List(xs.iter().map(unknowns_to_null).collect()),
        Value::Set(xs) => Value::set(xs.iter().map(unknowns_to_null).collect()),
        Value::Tuple(xs) => Value::Tuple(xs.iter().map(unknowns_to_null).collect()),
        Value::Map(m) => Value::Map(
            m.iter()
                .map(|(k, x)| (k.clone(), unknowns_to_null(x)))
                .collect(),
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), unknowns_to_null(x)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The state to keep between reconciles (the counterpart of a Terraform state file): what the
/// last create or update returned, with sensitive attributes left out. Crossplane keeps no state
/// of its own, and observing from the configuration alone would hide a changed argument the
/// cloud cannot report (e.g. a pool's machine image), which must be refused as a replacement
/// rather than silently adopted.
pub fn encode_state(block: &Block, state: &Value) -> Option<String> {
    let mut v = unknowns_to_null(state);
    strip_sensitive(block, &mut v);
    cty::json::encode(&v, &block.implied_type())
        .ok()
        .map(|j| j.to_string())
}

/// Reads a state written by [`encode_state`]; sensitive arguments come from the configuration.
/// `None` when it does not decode (e.g. written by an older schema): the caller falls back to
/// the configuration.
pub fn decode_state(block: &Block, text: &str, config: Option<&Value>) -> Option<Value> {
    let j: J = serde_json::from_str(text).ok()?;
    let mut v = cty::json::decode_lenient_unknown_attrs(&j, &block.implied_type()).ok()?;
    if let Some(c) = config {
        restore_sensitive(block, &mut v, c);
    }
    Some(v)
}

/// Nested blocks' elements, mutably (empty for anything else).
fn elements_mut(v: &mut Value) -> &mut [Value] {
    match v {
        Value::List(xs) | Value::Set(xs) => xs,
        _ => &mut [],
    }
}

/// Blanks every sensitive attribute, nested blocks included.
fn strip_sensitive(block: &Block, v: &mut Value) {
    if v.is_null() {
        return;
    }
    for a in block.attributes.iter().filter(|a| a.sensitive) {
        v.set_attr(&a.name, Value::Null);
    }
    for b in &block.blocks {
        if let Some(x) = v.get_mut(&b.name) {
            match b.nesting {
                Nesting::Single => strip_sensitive(&b.block, x),
                Nesting::List | Nesting::Set => {
                    for e in elements_mut(x) {
                        strip_sensitive(&b.block, e);
                    }
                }
            }
        }
    }
}

/// Puts sensitive arguments back from the configuration (element by element in lists).
fn restore_sensitive(block: &Block, v: &mut Value, config: &Value) {
    if v.is_null() {
        return;
    }
    for a in block
        .attributes
        .iter()
        .filter(|a| a.sensitive && a.accepts_config())
    {
        v.set_attr(&a.name, config.get(&a.name).clone());
    }
    for b in &block.blocks {
        let c = config.get(&b.name);
        if let Some(x) = v.get_mut(&b.name) {
            match b.nesting {
                Nesting::Single => restore_sensitive(&b.block, x, c),
                Nesting::List | Nesting::Set => {
                    for (i, e) in elements_mut(x).iter_mut().enumerate() {
                        if let Some(ce) = c.elements().get(i) {
                            restore_sensitive(&b.block, e, ce);
                        }
                    }
                }
            }
        }
    }
}

/// Paths (camelCase, under `spec.forProvider`) where two values of the block differ: how a drift
/// is explained in events and conditions without printing values (they may be secrets).
pub fn diff_paths(block: &Block, a: &Value, b: &Value) -> Vec<String> {
    let mut out = vec![];
    diff_into(block, a, b, &AttrPath::root(), &mut out);
    out
}

fn diff_into(block: &Block, a: &Value, b: &Value, at: &AttrPath, out: &mut Vec<String>) {
    // Arguments only: computed attributes change as a consequence and are not what drifted.
    for attr in block.attributes.iter().filter(|x| x.accepts_config()) {
        if a.get(&attr.name) != b.get(&attr.name) {
            out.push(field_path(&at.clone().then(&attr.name)));
        }
    }
    for nb in &block.blocks {
        let (x, y) = (a.get(&nb.name), b.get(&nb.name));
        if x == y {
            continue;
        }
        if nb.nesting == Nesting::Single && !x.is_null() && !y.is_null() {
            diff_into(&nb.block, x, y, &at.clone().then(&nb.name), out);
        } else {
            out.push(field_path(&at.clone().then(&nb.name)));
        }
    }
}

#[cfg(test)]
mod secret_arg_tests {
    use super::*;
    use crate::cty::Type;
    use crate::schema::{Attribute, Block, Nesting};
    use serde_json::json;

    #[test]
    fn sensitive_arguments_come_from_secret_refs_at_any_depth() {
        let block = Block::new("")
            .attr(Attribute::optional("token", Type::String, "").sensitive())
            .block(
                "online_store",
                Nesting::Single,
                Block::new("")
                    .attr(Attribute::optional("connection_string", Type::String, "").sensitive()),
            );
        let mut fp = json!({
            "tokenSecretRef": {"namespace": "ns", "name": "s", "key": "t"},
            "onlineStore": {"connectionStringSecretRef": {"namespace": "ns", "name": "s", "key": "c"}}
        });
        let args = secret_args(&block, &fp);
        assert_eq!(
            args.iter().map(|a| a.target.as_str()).collect::<Vec<_>>(),
            vec!["/token", "/onlineStore/connectionString"]
        );
        let values: Vec<(SecretArg, String)> = args
            .into_iter()
            .map(|a| {
                let v = format!("v-{}", a.key);
                (a, v)
            })
            .collect();
        fill_secret_args(&mut fp, &values);
        assert_eq!(
            fp,
            json!({"token": "v-t", "onlineStore": {"connectionString": "v-c"}})
        );
        let v = config_from_spec(&block, &fp).unwrap();
        assert_eq!(
            v.get("online_store").get("connection_string").as_str(),
            Some("v-c")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Attribute, Schema};
    use serde_json::json;

    fn schema() -> Schema {
        Schema::new(
            0,
            Block::new("t")
                .attr(Attribute::computed("id", Type::String, ""))
                .attr(Attribute::required("instance_type", Type::String, ""))
                .attr(Attribute::optional("tags", Type::map(Type::String), ""))
                .attr(Attribute::optional(
                    "taints",
                    Type::list(Type::object([("node_key", Type::String)])),
                    "",
                ))
                .attr(Attribute::optional_computed("team", Type::String, ""))
                .attr(Attribute::computed("url", Type::String, ""))
                .attr(Attribute::computed("admin_password", Type::String, "").sensitive())
                .attr(Attribute::computed("gpus_total", Type::Number, ""))
                .block(
                    "nodes",
                    Nesting::Single,
                    Block::new("n")
                        .attr(Attribute::required("min_size", Type::Number, ""))
                        .attr(Attribute::optional_computed("desired", Type::Number, "")),
                )
                .block(
                    "rules",
                    Nesting::List,
                    Block::new("r").attr(Attribute::required("from_port", Type::Number, "")),
                ),
        )
    }

    #[test]
    fn camel_case_round_trip_keeps_map_keys() {
        let s = schema();
        let fp = json!({
            "instanceType": "g5.xlarge",
            "tags": {"cost_center": "ml", "Team": "x"},
            "taints": [{"nodeKey": "gpu"}],
            "nodes": {"minSize": 2},
            "rules": [{"fromPort": 80}]
        });
        let v = config_from_spec(&s.block, &fp).unwrap();
        assert_eq!(v.get("instance_type"), &Value::string("g5.xlarge"));
        assert_eq!(
            v.get("tags").get("cost_center"),
            &Value::Null,
            "maps are not objects"
        );
        assert_eq!(
            v.get("tags").entries().unwrap().get("cost_center"),
            Some(&Value::string("ml"))
        );
        assert_eq!(
            v.get("taints").elements()[0].get("node_key"),
            &Value::string("gpu")
        );
        assert_eq!(v.get("nodes").get("desired"), &Value::Null);
        assert_eq!(v.get("id"), &Value::Null);
        assert_eq!(to_json(&s.block, &v, Part::Arguments), fp);
    }

    #[test]
    fn absent_blocks_look_like_terraform_config() {
        let s = schema();
        let v = config_from_spec(&s.block, &json!({"instanceType": "x"})).unwrap();
        assert_eq!(v, {
            let mut n = s.block.null_object();
            n.set_attr("instance_type", Value::string("x"));
            n
        });
    }

    #[test]
    fn errors_name_the_camel_case_field() {
        let s = schema();
        let e = config_from_spec(&s.block, &json!({"nodes": {"minSize": "many"}})).unwrap_err();
        assert_eq!(e.path, "spec.forProvider.nodes.minSize");
        let e = config_from_spec(&s.block, &json!({"instance_type": "x"})).unwrap_err();
        assert_eq!(e.path, "spec.forProvider.instance_type");
        assert_eq!(e.message, "unknown field");
        let e = config_from_spec(&s.block, &json!({"gpusTotal": 3})).unwrap_err();
        assert!(e.message.contains("computed"), "{e}");
        assert_eq!(
            field_path(&AttrPath::attr("nodes").then("min_size")),
            "spec.forProvider.nodes.minSize"
        );
    }

    #[test]
    fn observations_hold_computed_non_sensitive_values() {
        let s = schema();
        let mut v = s.block.null_object();
        v.set_attr("id", Value::string("gp-1"));
        v.set_attr("instance_type", Value::string("g5"));
        v.set_attr("team", Value::string("ml"));
        v.set_attr("admin_password", Value::string("hunter2"));
        v.set_attr("gpus_total", Value::Unknown);
        v.set_attr(
            "nodes",
            Value::object([("min_size", Value::int(1)), ("desired", Value::int(2))]),
        );
        assert_eq!(
            to_json(&s.block, &v, Part::Observations),
            json!({"id": "gp-1", "team": "ml", "nodes": {"desired": 2}})
        );
        v.set_attr("url", Value::string("http://x:80"));
        let c = connection_details(&s.block, &v);
        assert_eq!(c.get("admin_password").map(String::as_str), Some("hunter2"));
        assert_eq!(c.get("url").map(String::as_str), Some("http://x:80"));
        assert!(!c.contains_key("id") && !c.contains_key("team"));
    }

    #[test]
    fn late_initialisation_fills_only_unset_fields() {
        let s = schema();
        let mut obs = s.block.null_object();
        obs.set_attr("instance_type", Value::string("observed"));
        obs.set_attr("team", Value::string("ml"));
        obs.set_attr(
            "nodes",
            Value::object([("min_size", Value::int(1)), ("desired", Value::int(3))]),
        );
        let fp = json!({"instanceType": "mine", "nodes": {"minSize": 1}});
        let out = late_initialize(&s.block, &fp, &obs).unwrap();
        assert_eq!(
            out,
            json!({"instanceType": "mine", "nodes": {"minSize": 1, "desired": 3}, "team": "ml"})
        );
        assert_eq!(late_initialize(&s.block, &out, &obs), None, "idempotent");
    }

    #[test]
    fn kept_state_leaves_secrets_out() {
        let s = schema();
        let mut v = s.block.null_object();
        v.set_attr("id", Value::string("gp-1"));
        v.set_attr("admin_password", Value::string("hunter2"));
        v.set_attr("gpus_total", Value::Unknown);
        let text = encode_state(&s.block, &v).unwrap();
        assert!(!text.contains("hunter2"));
        let back = decode_state(&s.block, &text, None).unwrap();
        assert_eq!(back.get("id"), &Value::string("gp-1"));
        assert_eq!(back.get("admin_password"), &Value::Null);
        assert_eq!(back.get("gpus_total"), &Value::Null);
        assert_eq!(decode_state(&s.block, "{not json", None), None);
    }

    #[test]
    fn diffs_are_reported_as_field_paths() {
        let s = schema();
        let mut a = s.block.null_object();
        a.set_attr(
            "nodes",
            Value::object([("min_size", Value::int(1)), ("desired", Value::int(1))]),
        );
        let mut b = a.clone();
        b.get_mut("nodes")
            .unwrap()
            .set_attr("desired", Value::int(2));
        b.set_attr("team", Value::string("x"));
        assert_eq!(
            diff_paths(&s.block, &a, &b),
            vec!["spec.forProvider.team", "spec.forProvider.nodes.desired"]
        );
    }
}
