//! Fuzz harnesses: the bodies of the cargo-fuzz targets in `fuzz/fuzz_targets/` (one line each).
//! They live in the crate, compiled only under `cfg(fuzzing)` (which cargo-fuzz sets) and for
//! tests, so that `cargo test` runs every harness on a seed corpus and on the inputs of past
//! findings, without nightly or libFuzzer.
//!
//! Each harness takes arbitrary bytes. A panic is a finding; the harnesses panic on purpose when
//! a property fails:
//! - the decoders (msgpack DynamicValue, JSON state, CRD spec and kept state) return errors on
//!   bad input, never panic, overflow the stack or allocate beyond what the input holds;
//! - whatever decodes re-encodes, decoding that gives the same value, and the encoding is a
//!   fixpoint (msgpack ⇄ JSON included, as UpgradeResourceState turns JSON state into msgpack);
//! - every validator (resources, data sources, the ephemeral resource, the provider block)
//!   accepts any value of its schema's type, unknowns and nulls anywhere, and puts each
//!   diagnostic on a path that exists in the schema (else the CLI cannot point at the line).
//!
//! Inputs start with one selector byte that picks the schema (see [`subjects`]).

use crate::crossplane::convert::{self, Part};
use crate::cty::{json, msgpack, Number, Type, Value};
use crate::diag::{Diagnostics, Step};
use crate::resource::Resource;
use crate::schema::{Block, Nesting, Schema};
use serde_json::Value as J;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

/// A harness: runs one input, panics on a finding.
pub type Harness = fn(&[u8]);

/// The fuzz targets, by name (the names of `fuzz/fuzz_targets/*.rs`).
pub const TARGETS: [(&str, Harness); 4] = [
    ("dynamic_value_msgpack", dynamic_value_msgpack),
    ("state_json", state_json),
    ("crd_convert", crd_convert),
    ("validators", validators),
];

type Validate = Box<dyn Fn(&Value) -> Diagnostics + Send + Sync>;

/// Something with a schema and a validator: every resource, data source and ephemeral resource,
/// and the provider block.
pub struct Subject {
    pub name: &'static str,
    pub schema: Schema,
    pub ty: Type,
    validate: Validate,
    resource: Option<Arc<dyn Resource>>,
}

fn subject(name: &'static str, schema: Schema, validate: Validate) -> Subject {
    Subject {
        name,
        ty: schema.implied_type(),
        schema,
        validate,
        resource: None,
    }
}

/// Every schema the provider serves, built once. Resources first: [`crd_convert`] uses them.
pub fn subjects() -> &'static [Subject] {
    static ALL: OnceLock<Vec<Subject>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut out = vec![];
        for r in crate::resources::all() {
            let v = r.clone();
            let mut s = subject(
                r.type_name(),
                r.schema(),
                Box::new(move |c| {
                    v.validator()
                        .map_or_else(Diagnostics::new, |x| x.validate(c))
                }),
            );
            s.resource = Some(r);
            out.push(s);
        }
        for d in crate::data_sources::all() {
            let v = d.clone();
            out.push(subject(
                d.type_name(),
                d.schema(),
                Box::new(move |c| v.validate(c)),
            ));
        }
        for e in crate::ephemeral_resources::all() {
            let v = e.clone();
            out.push(subject(
                e.type_name(),
                e.schema(),
                Box::new(move |c| v.validate(c)),
            ));
        }
        out.push(subject(
            "provider",
            crate::provider::config::schema(),
            Box::new(crate::provider::config::validate),
        ));
        out
    })
}

fn resources() -> &'static [Subject] {
    let all = subjects();
    let n = all.iter().take_while(|s| s.resource.is_some()).count();
    &all[..n]
}

/// A type that uses every kind cty has (the schemas have no tuple or dynamic attribute), for the
/// decoder targets besides the schemas' own types.
pub fn rich_type() -> Type {
    Type::object([
        ("s", Type::String),
        ("n", Type::Number),
        ("b", Type::Bool),
        ("l", Type::list(Type::String)),
        ("ns", Type::set(Type::Number)),
        ("ss", Type::set(Type::String)),
        ("m", Type::map(Type::Number)),
        (
            "t",
            Type::Tuple(vec![Type::String, Type::Number, Type::Bool]),
        ),
        ("d", Type::Dynamic),
        ("ds", Type::set(Type::Dynamic)),
        (
            "o",
            Type::list(Type::object([
                ("k", Type::String),
                ("v", Type::Number),
                ("sub", Type::set(Type::object([("x", Type::Bool)]))),
            ])),
        ),
        ("mm", Type::map(Type::list(Type::String))),
    ])
}

/// The types the decoder targets pick from: every schema's, then the rich type, then dynamic.
fn decoder_types() -> &'static [Type] {
    static ALL: OnceLock<Vec<Type>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut v: Vec<Type> = subjects().iter().map(|s| s.ty.clone()).collect();
        v.push(rich_type());
        v.push(Type::Dynamic);
        v
    })
}

fn split(data: &[u8]) -> (usize, &[u8]) {
    match data.split_first() {
        Some((s, rest)) => (usize::from(*s), rest),
        None => (0, data),
    }
}

// ---------------------------------------------------------------------------------------------
// Targets

/// `DynamicValue.msgpack` as Terraform sends it, decoded against a schema's type.
pub fn dynamic_value_msgpack(data: &[u8]) {
    let (sel, bytes) = split(data);
    let types = decoder_types();
    let t = &types[sel % types.len()];
    if let Ok(v) = msgpack::decode(bytes, t) {
        check_msgpack_round_trip(&v, t);
        if v.is_wholly_known() {
            check_json_round_trip(&v, t);
        }
    }
}

/// `RawState.json` (UpgradeResourceState) and `DynamicValue.json`: the JSON decoder, strict and
/// lenient, then what UpgradeResourceState does with the result (state upgraders for older
/// versions, msgpack encoding of the upgraded state).
pub fn state_json(data: &[u8]) {
    let (sel, text) = split(data);
    let types = decoder_types();
    let t = &types[sel % types.len()];
    let strict = json::decode_bytes(text, t);
    let Ok(j) = serde_json::from_slice::<J>(text) else {
        assert!(strict.is_err(), "invalid JSON decoded: {strict:?}");
        return;
    };
    let lenient = json::decode_lenient_unknown_attrs(&j, t);
    if let Ok(v) = &strict {
        assert_eq!(
            lenient.as_ref(),
            Ok(v),
            "lenient decoding differs on input that strict decoding accepts"
        );
    }
    if let Ok(v) = &lenient {
        check_json_round_trip(v, t);
        check_msgpack_round_trip(v, t);
    }
    if let Some(s) = subjects().get(sel % types.len()) {
        if let Some(u) = s.resource.as_ref().and_then(|r| r.state_upgrader()) {
            for version in 0..s.schema.version {
                if let Ok(v) = u.upgrade(version, &j) {
                    assert!(
                        msgpack::encode(&v, &s.ty).is_ok(),
                        "{}: state upgraded from version {version} does not conform to the schema",
                        s.name
                    );
                }
            }
        }
    }
}

/// A managed resource's `spec.forProvider` and its kept state (both JSON), converted to and from
/// cty values with the resource's schema.
pub fn crd_convert(data: &[u8]) {
    let (sel, text) = split(data);
    let rs = resources();
    let s = &rs[sel % rs.len()];
    let block = &s.schema.block;
    let Ok(j) = serde_json::from_slice::<J>(text) else {
        return;
    };

    let config = convert::config_from_spec(block, &j);
    if let Ok(c) = &config {
        if let Err(e) = msgpack::encode(c, &s.ty) {
            panic!(
                "{}: config_from_spec made a value outside the schema type: {e}",
                s.name
            );
        }
        // The spec rendering leaves sensitive arguments out (they come from Secret references).
        let spec = convert::to_json(block, c, Part::Arguments);
        let again = convert::config_from_spec(block, &spec).unwrap_or_else(|e| {
            panic!(
                "{}: the rendered spec does not convert back: {e}\n{spec}",
                s.name
            )
        });
        assert_eq!(
            again,
            without_sensitive(block, c),
            "{}: spec → config → spec → config changed the value",
            s.name
        );
        assert_eq!(convert::to_json(block, &again, Part::Arguments), spec);
        check_diagnostics(s, c, &(s.validate)(c));
        let _ = convert::late_initialize(block, &j, c);
    }

    let refs = convert::secret_args(block, &j);
    if !refs.is_empty() {
        let values: Vec<_> = refs
            .into_iter()
            .map(|a| (a, "s3cret".to_string()))
            .collect();
        let mut filled = j.clone();
        convert::fill_secret_args(&mut filled, &values);
        let _ = convert::config_from_spec(block, &filled);
    }

    // The same JSON as the state kept in an annotation between reconciles.
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    if let Some(st) = convert::decode_state(block, text, config.as_ref().ok()) {
        let kept = convert::encode_state(block, &st)
            .unwrap_or_else(|| panic!("{}: a decoded state does not re-encode", s.name));
        let st2 = convert::decode_state(block, &kept, None)
            .unwrap_or_else(|| panic!("{}: an encoded state does not decode: {kept}", s.name));
        assert_eq!(
            convert::encode_state(block, &st2).as_deref(),
            Some(kept.as_str()),
            "{}: the kept state is not a fixpoint",
            s.name
        );
        let _ = convert::to_json(block, &st, Part::Observations);
        let _ = convert::connection_details(block, &st);
        if let Ok(c) = &config {
            let _ = convert::diff_paths(block, c, &st);
            if let Some(fp) = convert::late_initialize(block, &j, &st) {
                let _ = convert::config_from_spec(block, &fp);
            }
        }
    }
}

/// Every validator on a value of its schema built from the input (structured fuzzing: the bytes
/// choose null, unknown or a value at every attribute, and the value).
pub fn validators(data: &[u8]) {
    let (sel, rest) = split(data);
    let all = subjects();
    let s = &all[sel % all.len()];
    let mut g = Gen::new(rest, true);
    let c = g.config(&s.schema.block);
    check_diagnostics(s, &c, &(s.validate)(&c));
    // A value of the schema's type encodes, and round-trips.
    check_msgpack_round_trip(&c, &s.ty);
    if c.is_wholly_known() {
        check_json_round_trip(&c, &s.ty);
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

fn check_msgpack_round_trip(v: &Value, t: &Type) {
    let enc = msgpack::encode(v, t)
        .unwrap_or_else(|e| panic!("a value of the type does not encode as msgpack: {e}: {v:?}"));
    let back = msgpack::decode(&enc, t)
        .unwrap_or_else(|e| panic!("an encoded value does not decode: {e}: {v:?}"));
    assert_eq!(&back, v, "msgpack encode → decode changed the value");
    let enc2 = msgpack::encode(&back, t).expect("re-encode");
    assert_eq!(enc2, enc, "the msgpack encoding is not a fixpoint: {v:?}");
}

fn check_json_round_trip(v: &Value, t: &Type) {
    let j = match json::encode(v, t) {
        Ok(j) => j,
        // JSON has no infinities; nothing else known and conforming may fail.
        Err(e) => {
            assert!(
                has_infinity(v),
                "a known value does not encode as JSON: {e}: {v:?}"
            );
            return;
        }
    };
    assert_eq!(
        json::decode(&j, t).as_ref(),
        Ok(v),
        "JSON encode → decode changed the value"
    );
    let text = serde_json::to_vec(&j).expect("JSON serialises");
    match json::decode_bytes(&text, t) {
        Ok(back) => assert_eq!(&back, v, "JSON text round trip changed the value: {j}"),
        // serde_json refuses documents nested deeper than 128; only dynamic values inside
        // dynamic values (whose types nest too) get there, and no schema has a dynamic attribute.
        Err(e) if e.to_string().contains("recursion limit") => {}
        Err(e) => panic!("JSON text does not decode: {e}: {j}"),
    }
}

fn has_infinity(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_f64().is_infinite(),
        Value::List(xs) | Value::Set(xs) | Value::Tuple(xs) => xs.iter().any(has_infinity),
        Value::Map(m) | Value::Object(m) => m.values().any(has_infinity),
        Value::Dynamic(b) => has_infinity(&b.1),
        _ => false,
    }
}

/// Every diagnostic points at a path that exists in the schema type.
fn check_diagnostics(s: &Subject, c: &Value, d: &Diagnostics) {
    for diag in d.iter() {
        let Some(p) = &diag.path else { continue };
        assert!(
            path_exists(&s.ty, &p.0),
            "{}: diagnostic {:?} is on {p}, which the schema does not have (config {c:?})",
            s.name,
            diag.summary
        );
    }
}

fn path_exists(t: &Type, steps: &[Step]) -> bool {
    let Some((first, rest)) = steps.split_first() else {
        return true;
    };
    match (first, t) {
        (_, Type::Dynamic) => true,
        (Step::Attr(a), Type::Object(attrs)) => attrs.get(a).is_some_and(|t| path_exists(t, rest)),
        (Step::Key(_), Type::Map(et)) => path_exists(et, rest),
        (Step::Index(_), Type::List(et) | Type::Set(et)) => path_exists(et, rest),
        (Step::Index(i), Type::Tuple(ets)) => usize::try_from(*i)
            .ok()
            .and_then(|i| ets.get(i))
            .is_some_and(|t| path_exists(t, rest)),
        _ => false,
    }
}

/// The value with every sensitive attribute null, nested blocks included.
fn without_sensitive(block: &Block, v: &Value) -> Value {
    let mut v = v.clone();
    strip_sensitive(block, &mut v);
    v
}

fn strip_sensitive(block: &Block, v: &mut Value) {
    if !matches!(v, Value::Object(_)) {
        return;
    }
    for a in block.attributes.iter().filter(|a| a.sensitive) {
        v.set_attr(&a.name, Value::Null);
    }
    for b in &block.blocks {
        if let Some(x) = v.get_mut(&b.name) {
            match &mut *x {
                Value::List(xs) | Value::Set(xs) => {
                    xs.iter_mut().for_each(|e| strip_sensitive(&b.block, e))
                }
                other => strip_sensitive(&b.block, other),
            }
            if b.nesting == Nesting::Set {
                if let Value::Set(xs) = x {
                    *x = Value::set(std::mem::take(xs));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Structured values from bytes

/// Strings the validators compare against (enumerations, formats, limits), so structured inputs
/// reach past the first check. Raw strings from the input are used as well.
const STRINGS: &[&str] = &[
    "",
    "a",
    "-",
    "x",
    "ml",
    "team-a",
    "default",
    "docs",
    "llm",
    "é",
    "日本",
    "a.b_c",
    "A",
    "aws",
    "gcp",
    "azure",
    "ami-",
    "ami-0123456789abcdef0",
    "ami-12345678",
    "nvidia-t4",
    "nvidia-a10g",
    "nvidia-l4",
    "nvidia-v100-16gb",
    "nvidia-a100-40gb",
    "nvidia-a100-80gb",
    "nvidia-h100-80gb",
    "nvidia-b300",
    "g5.xlarge",
    "g5.48xlarge",
    "g4dn.xlarge",
    "g4dn.metal",
    "g6.xlarge",
    "p4d.24xlarge",
    "p5.48xlarge",
    "p3.2xlarge",
    "m5.large",
    "g5.xlarge:spot",
    "on_demand",
    "spot",
    "reserved",
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "us-east-1a",
    "12.2",
    "12.4",
    "11.0",
    "12",
    "535.104.05",
    "550.54.14",
    "550.90.07",
    "550.54",
    "0s",
    "45s",
    "20m",
    "1h30m",
    "24h",
    "25h",
    "5d",
    "5 minutes",
    "18446744073709551615s",
    "99999999999999999999999h",
    "5124095576030432h",
    "10Gi",
    "500Mi",
    "1Gi",
    "0Gi",
    "4Ti",
    "64Ti",
    "65Ti",
    "10GB",
    "Gi",
    "20000000Ti",
    "99999999999999999999Ti",
    "0.1",
    "10",
    "1",
    "0",
    "-1",
    "0 3 * * *",
    "*/15 * * * 1-5",
    "daily",
    "qdrant",
    "pgvector",
    "milvus",
    "redis",
    "memcached",
    "cosine",
    "euclidean",
    "dot",
    "vector_db",
    "external",
    "kubernetes",
    "s3://b/k",
    "s3://",
    "gs://b/k",
    "file://",
    "file:///feast/data/registry.db",
    "file:///feast/data/../x",
    "file:///etc/passwd",
    "http://",
    "https://",
    "http://127.0.0.1:4566",
    "postgresql://u:p@h:5432/db",
    "redis:6379",
    "default/docs",
    "other/docs",
    "registry.example/llm:v1",
    "sha256:0123",
    "v1",
    "v2",
    "NoSchedule",
    "PreferNoSchedule",
    "NoExecute",
    "Degraded: x",
];

const INTS: &[i64] = &[
    0,
    1,
    -1,
    2,
    3,
    8,
    16,
    63,
    64,
    100,
    101,
    999,
    1000,
    1001,
    2000,
    2001,
    65535,
    65536,
    i32::MAX as i64,
    i32::MIN as i64,
    1 << 31,
    1 << 53,
    (1 << 53) + 1,
    9_000_000_000_000_000,
    i64::MAX,
    i64::MIN,
    i64::MAX - 1,
    i64::MIN + 1,
];

const FLOATS: &[f64] = &[
    0.5,
    -0.5,
    0.1,
    1.5,
    2.5,
    99.9,
    100.5,
    1e-300,
    5e-324,
    1e15,
    1e16,
    1e19,
    1e300,
    -1e300,
    9_223_372_036_854_775_808.0,
    -9_223_372_036_854_775_808.0,
    1.7976931348623157e308,
    f64::INFINITY,
    f64::NEG_INFINITY,
];

/// Turns bytes into cty values, one choice per byte (zeros once the bytes run out, which makes
/// everything null and ends the value).
pub struct Gen<'a> {
    data: &'a [u8],
    pos: usize,
    /// Unknown values and infinities (msgpack can carry them, JSON cannot).
    wire: bool,
}

impl<'a> Gen<'a> {
    pub fn new(data: &'a [u8], wire: bool) -> Gen<'a> {
        Gen { data, pos: 0, wire }
    }

    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = self.pos.saturating_add(1);
        b
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.pos = self.pos.saturating_add(n);
        &self.data[start..end]
    }

    fn len(&mut self) -> usize {
        match self.byte() % 8 {
            7 => usize::from(self.byte() % 40),
            n => usize::from(n % 4),
        }
    }

    /// A configuration of `block` as a CLI sends it: every attribute present, computed-only
    /// ones null, collection blocks never null.
    pub fn config(&mut self, block: &Block) -> Value {
        let mut m = BTreeMap::new();
        for a in &block.attributes {
            let v = if a.accepts_config() {
                self.value(&a.ty)
            } else {
                Value::Null
            };
            m.insert(a.name.clone(), v);
        }
        for b in &block.blocks {
            let choice = self.byte();
            let v = match b.nesting {
                Nesting::Single if choice < 0x40 => Value::Null,
                Nesting::Single if choice < 0x48 && self.wire => Value::Unknown,
                Nesting::Single => self.config(&b.block),
                // A dynamic block over an unknown collection.
                _ if choice < 0x08 && self.wire => Value::Unknown,
                nesting => {
                    let items = (0..self.len()).map(|_| self.config(&b.block)).collect();
                    if nesting == Nesting::Set {
                        Value::set(items)
                    } else {
                        Value::List(items)
                    }
                }
            };
            m.insert(b.name.clone(), v);
        }
        Value::Object(m)
    }

    /// A value of type `t`: null, unknown or a known value (whose parts may again be either).
    pub fn value(&mut self, t: &Type) -> Value {
        match self.byte() {
            0x00..=0x2f => return Value::Null,
            0x30..=0x37 if self.wire => return Value::Unknown,
            _ => {}
        }
        match t {
            Type::String => Value::String(self.string()),
            Type::Number => Value::Number(self.number()),
            Type::Bool => Value::Bool(self.byte() & 1 == 1),
            Type::List(et) => Value::List((0..self.len()).map(|_| self.value(et)).collect()),
            Type::Set(et) => Value::set((0..self.len()).map(|_| self.value(et)).collect()),
            Type::Tuple(ets) => Value::Tuple(ets.iter().map(|et| self.value(et)).collect()),
            Type::Map(et) => Value::Map(
                (0..self.len())
                    .map(|_| (self.string(), self.value(et)))
                    .collect(),
            ),
            Type::Object(attrs) => Value::Object(
                attrs
                    .iter()
                    .map(|(k, at)| (k.clone(), self.value(at)))
                    .collect(),
            ),
            Type::Dynamic => {
                let ty = match self.byte() % 6 {
                    0 => Type::String,
                    1 => Type::Number,
                    2 => Type::Bool,
                    3 => Type::list(Type::String),
                    4 => Type::map(Type::Number),
                    _ => Type::object([("a", Type::String), ("b", Type::set(Type::Number))]),
                };
                let v = self.value(&ty);
                Value::Dynamic(Box::new((ty, v)))
            }
        }
    }

    fn string(&mut self) -> String {
        let b = self.byte();
        let pooled = STRINGS[usize::from(b) % STRINGS.len()];
        match b {
            0x00..=0xbf => pooled.to_string(),
            0xc0..=0xdf => {
                let n = usize::from(self.byte() % 16);
                format!("{pooled}{}", String::from_utf8_lossy(self.take(n)))
            }
            _ => {
                let n = match self.byte() {
                    0xff => 64 + usize::from(self.byte()),
                    n => usize::from(n % 64),
                };
                String::from_utf8_lossy(self.take(n)).into_owned()
            }
        }
    }

    fn number(&mut self) -> Number {
        let pick = self.byte();
        match pick % 8 {
            0 => Number::Int(i64::from_le_bytes(self.array())),
            1 => {
                let f = f64::from_le_bytes(self.array());
                if f.is_nan() || (!self.wire && f.is_infinite()) {
                    Number::Int(0)
                } else {
                    Number::Float(f).normalised()
                }
            }
            2 => Number::Int(INTS[usize::from(self.byte()) % INTS.len()]),
            3 => {
                let f = FLOATS[usize::from(self.byte()) % FLOATS.len()];
                if !self.wire && f.is_infinite() {
                    Number::Float(0.5)
                } else {
                    Number::Float(f).normalised()
                }
            }
            4 => Number::Int(i64::from(self.byte() as i8)),
            _ => Number::Int(i64::from(self.byte())),
        }
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        let s = self.take(N);
        a[..s.len()].copy_from_slice(s);
        a
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds

/// Deterministic pseudo-random bytes (xorshift64), for seeds and tests.
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn with_selector(sel: usize, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 1);
    v.push(u8::try_from(sel).expect("fewer than 256 schemas"));
    v.extend_from_slice(payload);
    v
}

/// A starting corpus for `target`: valid encodings of values of every schema (so the fuzzer
/// knows every attribute name from the start), empty values, and structured inputs.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let mut out = vec![];
    let types = decoder_types();
    for round in 0..4u64 {
        for (sel, t) in types.iter().enumerate() {
            let bytes = pseudo_random(round * 1000 + sel as u64 + 1, 2048);
            let block = subjects().get(sel).map(|s| &s.schema.block);
            match target {
                "dynamic_value_msgpack" => {
                    let mut g = Gen::new(&bytes, true);
                    let v = match block {
                        Some(b) => g.config(b),
                        None => g.value(t),
                    };
                    if let Ok(enc) = msgpack::encode(&v, t) {
                        out.push(with_selector(sel, &enc));
                    }
                }
                "state_json" => {
                    let mut g = Gen::new(&bytes, false);
                    let v = match block {
                        Some(b) => g.config(b),
                        None => g.value(t),
                    };
                    if let Ok(j) = json::encode(&v, t) {
                        out.push(with_selector(sel, j.to_string().as_bytes()));
                    }
                }
                "crd_convert" => {
                    let Some(s) = resources().get(sel) else {
                        continue;
                    };
                    let v = Gen::new(&bytes, false).config(&s.schema.block);
                    let spec = convert::to_json(&s.schema.block, &v, Part::Arguments);
                    out.push(with_selector(sel, spec.to_string().as_bytes()));
                    if let Some(st) = convert::encode_state(&s.schema.block, &v) {
                        out.push(with_selector(sel, st.as_bytes()));
                    }
                }
                "validators" if sel < subjects().len() => {
                    out.push(with_selector(sel, &bytes[..256 << round]));
                }
                _ => {}
            }
        }
    }
    for sel in 0..types.len() {
        out.push(with_selector(sel, b""));
        out.push(with_selector(sel, b"{}"));
        out.push(with_selector(sel, b"\x80"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus_dir(target: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target)
    }

    /// Every harness on its generated seeds and on the checked-in corpus (which holds the
    /// inputs of past findings): what the fuzzer starts from must pass.
    #[test]
    fn harnesses_pass_on_their_seeds_and_corpus() {
        for (name, harness) in TARGETS {
            let seeds = seeds(name);
            assert!(seeds.len() >= 20, "{name}: {} seeds", seeds.len());
            for s in &seeds {
                harness(s);
            }
            let mut files = 0;
            if let Ok(dir) = std::fs::read_dir(corpus_dir(name)) {
                for f in dir {
                    let path = f.unwrap().path();
                    harness(&std::fs::read(&path).unwrap());
                    files += 1;
                }
            }
            assert!(
                files > 0,
                "{name}: no checked-in corpus in fuzz/corpus/{name}"
            );
        }
    }

    /// A few thousand pseudo-random and mutated inputs per harness, so `cargo test` alone catches
    /// a shallow regression.
    #[test]
    fn harnesses_survive_random_inputs() {
        for (i, (name, harness)) in TARGETS.into_iter().enumerate() {
            let seeds = seeds(name);
            for k in 0..1500u64 {
                let noise = pseudo_random(k * 7919 + i as u64, (k % 200) as usize + 1);
                harness(&noise);
                // Mutate a seed: overwrite a few bytes, keep the selector.
                let mut m = seeds[(k as usize) % seeds.len()].clone();
                for (j, b) in noise.iter().take(4).enumerate() {
                    let at = 1 + (usize::from(*b) * 31 + j * 97) % m.len().max(1);
                    if at < m.len() {
                        m[at] = noise[noise.len() - 1 - j];
                    }
                }
                harness(&m);
            }
        }
    }

    #[test]
    fn generated_configs_cover_every_schema_with_values() {
        for s in subjects() {
            let bytes = pseudo_random(42, 4096);
            let v = Gen::new(&bytes, false).config(&s.schema.block);
            assert!(v.is_wholly_known(), "{}", s.name);
            assert!(msgpack::encode(&v, &s.ty).is_ok(), "{}", s.name);
            let set = v
                .entries()
                .unwrap()
                .values()
                .filter(|x| !x.is_null())
                .count();
            assert!(set > 0, "{}: nothing set", s.name);
        }
        assert!(subjects().len() >= 7);
        assert!(resources().len() == crate::resources::all().len());
    }

    #[test]
    fn paths_are_checked_against_the_type() {
        let t = rich_type();
        let ok = |steps: &[Step]| path_exists(&t, steps);
        assert!(ok(&[]));
        assert!(ok(&[
            Step::Attr("o".into()),
            Step::Index(3),
            Step::Attr("k".into())
        ]));
        assert!(ok(&[Step::Attr("m".into()), Step::Key("any".into())]));
        assert!(ok(&[Step::Attr("t".into()), Step::Index(2)]));
        assert!(!ok(&[Step::Attr("t".into()), Step::Index(3)]));
        assert!(!ok(&[Step::Attr("nope".into())]));
        assert!(!ok(&[Step::Attr("s".into()), Step::Attr("x".into())]));
    }

    /// Writes the generated seeds into fuzz/corpus/ (run after a schema change:
    /// `cargo test --lib fuzz_logic::tests::write_seed_corpus -- --ignored`).
    #[test]
    #[ignore]
    fn write_seed_corpus() {
        for (name, _) in TARGETS {
            let dir = corpus_dir(name);
            std::fs::create_dir_all(&dir).unwrap();
            for (i, s) in seeds(name).iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i:03}")), s).unwrap();
            }
        }
    }
}
