//! cty over JSON: the encoding of `RawState.json` (UpgradeResourceState), of `DynamicValue.json`
//! when Terraform sends no msgpack, and of values exchanged with Kubernetes.
//!
//! Follows go-cty's `cty/json`: null is `null`, numbers are JSON numbers (numeric strings are
//! accepted for `number`), objects decode with missing attributes as null and reject undeclared
//! ones, and dynamic values are `{"value": V, "type": T}`. JSON cannot hold unknown values.

use std::collections::BTreeMap;

use serde_json::Value as J;

use super::msgpack::{
    check_attrs, invalid, parse_number_str, root_path, too_deep, type_name, value_kind, At, Res,
    Seg,
};
use super::{CodecError, Number, Type, Value, MAX_DEPTH};

/// Decodes cty JSON of type `t`. Object attributes the type does not declare are an error.
pub fn decode(v: &J, t: &Type) -> Result<Value, CodecError> {
    decode_value(v, t, 0, false).map_err(|e| e.into_codec())
}

/// Like [`decode`], but ignores object attributes (at any depth) that the type does not declare:
/// state written by an older schema version may still carry attributes that were removed since.
pub fn decode_lenient_unknown_attrs(v: &J, t: &Type) -> Result<Value, CodecError> {
    decode_value(v, t, 0, true).map_err(|e| e.into_codec())
}

/// Parses JSON text and decodes it as with [`decode`].
pub fn decode_bytes(b: &[u8], t: &Type) -> Result<Value, CodecError> {
    let j: J = serde_json::from_slice(b).map_err(|e| CodecError::Invalid {
        path: root_path(),
        msg: format!("invalid JSON: {e}"),
    })?;
    decode(&j, t)
}

/// Encodes `v` as cty JSON of type `t`. Fails on unknown values (JSON cannot represent them), on
/// non-finite numbers and on values that do not conform to the type.
pub fn encode(v: &Value, t: &Type) -> Result<J, CodecError> {
    encode_value(v, t, 0).map_err(|e| e.into_codec())
}

fn kind(j: &J) -> &'static str {
    match j {
        J::Null => "null",
        J::Bool(_) => "bool",
        J::Number(_) => "number",
        J::String(_) => "string",
        J::Array(_) => "array",
        J::Object(_) => "object",
    }
}

fn expected<T>(what: &str, got: &J) -> Res<T> {
    invalid(format!("{what} is required, found JSON {}", kind(got)))
}

fn decode_value(j: &J, t: &Type, depth: usize, lenient: bool) -> Res<Value> {
    if depth > MAX_DEPTH {
        return too_deep();
    }
    if j.is_null() {
        return Ok(Value::Null);
    }
    match t {
        Type::String => match j {
            J::String(s) => Ok(Value::String(s.clone())),
            j => expected("string", j),
        },
        Type::Bool => match j {
            J::Bool(b) => Ok(Value::Bool(*b)),
            j => expected("bool", j),
        },
        Type::Number => match j {
            J::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Value::int(i))
                } else if let Some(u) = n.as_u64() {
                    Ok(Value::Number(Number::Float(u as f64)))
                } else {
                    match n.as_f64() {
                        Some(f) if !f.is_nan() => Ok(Value::float(f)),
                        _ => invalid("number out of range"),
                    }
                }
            }
            J::String(s) => match parse_number_str(s) {
                Some(n) => Ok(Value::Number(n)),
                None => invalid("string is not a decimal number"),
            },
            j => expected("number", j),
        },
        Type::List(et) | Type::Set(et) => {
            let J::Array(items) = j else {
                return expected(type_name(t), j);
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(decode_value(item, et, depth + 1, lenient).at(|| Seg::Index(i))?);
            }
            Ok(if matches!(t, Type::Set(_)) {
                Value::set(out)
            } else {
                Value::List(out)
            })
        }
        Type::Tuple(ets) => {
            let J::Array(items) = j else {
                return expected("tuple", j);
            };
            if items.len() != ets.len() {
                return invalid(format!(
                    "tuple of {} elements is required, found {}",
                    ets.len(),
                    items.len()
                ));
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, (item, et)) in items.iter().zip(ets).enumerate() {
                out.push(decode_value(item, et, depth + 1, lenient).at(|| Seg::Index(i))?);
            }
            Ok(Value::Tuple(out))
        }
        Type::Map(et) => {
            let J::Object(entries) = j else {
                return expected("map", j);
            };
            let mut m = BTreeMap::new();
            for (k, item) in entries {
                let v = decode_value(item, et, depth + 1, lenient).at(|| Seg::Key(k.clone()))?;
                m.insert(k.clone(), v);
            }
            Ok(Value::Map(m))
        }
        Type::Object(attrs) => {
            let J::Object(entries) = j else {
                return expected("object", j);
            };
            let mut m = BTreeMap::new();
            for (k, item) in entries {
                let Some(at) = attrs.get(k) else {
                    if lenient {
                        continue;
                    }
                    return invalid("unsupported attribute").at(|| Seg::Attr(k.clone()));
                };
                let v = decode_value(item, at, depth + 1, lenient).at(|| Seg::Attr(k.clone()))?;
                m.insert(k.clone(), v);
            }
            if m.len() != attrs.len() {
                for name in attrs.keys() {
                    if !m.contains_key(name) {
                        m.insert(name.clone(), Value::Null);
                    }
                }
            }
            Ok(Value::Object(m))
        }
        Type::Dynamic => {
            let J::Object(entries) = j else {
                return expected("dynamic value {\"value\": …, \"type\": …}", j);
            };
            if let Some(k) = entries.keys().find(|k| *k != "type" && *k != "value") {
                return invalid("dynamic value may only have \"type\" and \"value\"")
                    .at(|| Seg::Attr(k.clone()));
            }
            let Some(ty) = entries.get("type").and_then(Type::from_json) else {
                return invalid("dynamic value carries a missing or invalid type");
            };
            let inner = entries.get("value").unwrap_or(&J::Null);
            let v = decode_value(inner, &ty, depth + 1, lenient)?;
            Ok(Value::Dynamic(Box::new((ty, v))))
        }
    }
}

fn encode_value(v: &Value, t: &Type, depth: usize) -> Res<J> {
    if depth > MAX_DEPTH {
        return too_deep();
    }
    Ok(match (v, t) {
        (Value::Null, _) => J::Null,
        (Value::Unknown, _) => return invalid("unknown values cannot be encoded as JSON"),
        (Value::String(s), Type::String) => J::String(s.clone()),
        (Value::Bool(b), Type::Bool) => J::Bool(*b),
        (Value::Number(n), Type::Number) => match n.normalised() {
            Number::Int(i) => J::from(i),
            Number::Float(f) => match serde_json::Number::from_f64(f) {
                Some(n) => J::Number(n),
                None => return invalid(format!("{f} cannot be encoded as a JSON number")),
            },
        },
        (Value::List(items), Type::List(et)) | (Value::Set(items), Type::Set(et)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(encode_value(item, et, depth + 1).at(|| Seg::Index(i))?);
            }
            J::Array(out)
        }
        (Value::Tuple(items), Type::Tuple(ets)) => {
            if items.len() != ets.len() {
                return invalid(format!(
                    "tuple has {} elements, its type has {}",
                    items.len(),
                    ets.len()
                ));
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, (item, et)) in items.iter().zip(ets).enumerate() {
                out.push(encode_value(item, et, depth + 1).at(|| Seg::Index(i))?);
            }
            J::Array(out)
        }
        (Value::Map(m), Type::Map(et)) => {
            let mut out = serde_json::Map::with_capacity(m.len());
            for (k, item) in m {
                let j = encode_value(item, et, depth + 1).at(|| Seg::Key(k.clone()))?;
                out.insert(k.clone(), j);
            }
            J::Object(out)
        }
        (Value::Object(m), Type::Object(attrs)) => {
            check_attrs(m, attrs)?;
            let mut out = serde_json::Map::with_capacity(attrs.len());
            for (name, at) in attrs {
                let j = match m.get(name) {
                    Some(item) => {
                        encode_value(item, at, depth + 1).at(|| Seg::Attr(name.clone()))?
                    }
                    None => J::Null,
                };
                out.insert(name.clone(), j);
            }
            J::Object(out)
        }
        (Value::Dynamic(b), Type::Dynamic) => {
            let (inner_t, inner_v) = &**b;
            let mut out = serde_json::Map::with_capacity(2);
            out.insert("value".into(), encode_value(inner_v, inner_t, depth + 1)?);
            out.insert("type".into(), inner_t.to_json());
            J::Object(out)
        }
        (v, t) => {
            return invalid(format!(
                "a {} value does not conform to type {}",
                value_kind(v),
                type_name(t)
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj_type() -> Type {
        Type::object([
            ("name", Type::String),
            ("count", Type::Number),
            ("enabled", Type::Bool),
            ("ids", Type::list(Type::String)),
            ("zones", Type::set(Type::String)),
            ("tags", Type::map(Type::String)),
            (
                "nodes",
                Type::object([
                    ("min", Type::Number),
                    ("max", Type::Number),
                    ("sizes", Type::list(Type::Number)),
                ]),
            ),
            ("pair", Type::Tuple(vec![Type::String, Type::Number])),
            ("extra", Type::Dynamic),
        ])
    }

    fn full_value() -> Value {
        Value::object([
            ("name", Value::string("héllo ✓ 日本 \"quoted\"\n")),
            ("count", Value::int(i64::MIN)),
            ("enabled", Value::Bool(false)),
            ("ids", Value::string_list(["i-1", "i-2"])),
            (
                "zones",
                Value::set(vec![Value::string("b"), Value::string("a")]),
            ),
            ("tags", Value::string_map([("team", "ml")])),
            (
                "nodes",
                Value::object([
                    ("min", Value::int(0)),
                    ("max", Value::float(0.125)),
                    (
                        "sizes",
                        Value::List(vec![
                            Value::int(i64::MAX),
                            Value::float(-1e300),
                            Value::Null,
                        ]),
                    ),
                ]),
            ),
            (
                "pair",
                Value::Tuple(vec![Value::string("x"), Value::int(-33)]),
            ),
            (
                "extra",
                Value::Dynamic(Box::new((
                    Type::map(Type::Number),
                    Value::Map([("k".to_string(), Value::int(1))].into()),
                ))),
            ),
        ])
    }

    fn round_trip(v: &Value, t: &Type) {
        let j = encode(v, t).expect("encode");
        assert_eq!(&decode(&j, t).expect("decode"), v);
        let text = serde_json::to_vec(&j).unwrap();
        assert_eq!(&decode_bytes(&text, t).expect("decode_bytes"), v);
    }

    #[test]
    fn round_trips() {
        let t = obj_type();
        round_trip(&full_value(), &t);
        round_trip(&Value::Null, &t);
        // Null at every attribute.
        for name in [
            "name", "count", "ids", "zones", "tags", "nodes", "pair", "extra",
        ] {
            let mut v = full_value();
            v.set_attr(name, Value::Null);
            round_trip(&v, &t);
        }
        // Empty collections.
        let mut v = full_value();
        v.set_attr("ids", Value::List(vec![]));
        v.set_attr("zones", Value::set(vec![]));
        v.set_attr("tags", Value::Map(BTreeMap::new()));
        round_trip(&v, &t);
        round_trip(&Value::Tuple(vec![]), &Type::Tuple(vec![]));
        round_trip(
            &Value::Object(BTreeMap::new()),
            &Type::Object(BTreeMap::new()),
        );
        // Large strings and arrays.
        round_trip(&Value::string("é".repeat(35_000)), &Type::String);
        round_trip(
            &Value::List((0..70_000).map(Value::int).collect()),
            &Type::list(Type::Number),
        );
        round_trip(
            &Value::Dynamic(Box::new((Type::String, Value::Null))),
            &Type::Dynamic,
        );
    }

    #[test]
    fn encoding_shape() {
        let t = Type::object([
            ("b", Type::Number),
            ("a", Type::String),
            ("c", Type::Dynamic),
        ]);
        let v = Value::object([
            ("b", Value::Number(Number::Float(2.0))),
            (
                "c",
                Value::Dynamic(Box::new((
                    Type::list(Type::Bool),
                    Value::List(vec![Value::Bool(true)]),
                ))),
            ),
        ]);
        let j = encode(&v, &t).unwrap();
        assert_eq!(
            serde_json::to_string(&j).unwrap(),
            r#"{"a":null,"b":2,"c":{"value":[true],"type":["list","bool"]}}"#
        );
        assert_eq!(
            encode(&Value::float(0.5), &Type::Number).unwrap(),
            json!(0.5)
        );
        assert_eq!(encode(&Value::int(-7), &Type::Number).unwrap(), json!(-7));
    }

    #[test]
    fn numbers() {
        let n = Type::Number;
        assert_eq!(decode(&json!(3), &n), Ok(Value::int(3)));
        assert!(matches!(
            decode(&json!(3), &n),
            Ok(Value::Number(Number::Int(3)))
        ));
        assert!(matches!(
            decode(&json!(3.0), &n),
            Ok(Value::Number(Number::Int(3)))
        ));
        assert!(matches!(decode(&json!(3.5), &n), Ok(Value::Number(Number::Float(f))) if f == 3.5));
        assert!(matches!(
            decode(&json!(u64::MAX), &n),
            Ok(Value::Number(Number::Float(_)))
        ));
        assert_eq!(decode(&json!("42"), &n), Ok(Value::int(42)));
        assert_eq!(decode(&json!("-2.5e1"), &n), Ok(Value::float(-25.0)));
        assert!(decode(&json!("4x"), &n).is_err());
        assert!(decode(&json!("NaN"), &n).is_err());
        assert!(decode(&json!(true), &n).is_err());
        assert!(decode_bytes(b"1e999", &n).is_err());
        // Found by fuzzing (state_json): JSON text must read back as the very float written,
        // or a stored number differs from itself on the next read.
        for f in [
            7.766823637999885e-54,
            1.2345678901234567e-300,
            2.2250738585072014e-308,
        ] {
            let text = serde_json::to_vec(&encode(&Value::float(f), &n).unwrap()).unwrap();
            assert_eq!(decode_bytes(&text, &n), Ok(Value::float(f)), "{f:e}");
        }
        assert!(encode(&Value::float(f64::INFINITY), &n).is_err());
        assert!(encode(&Value::float(f64::NAN), &n).is_err());
    }

    #[test]
    fn no_string_conversions() {
        assert!(decode(&json!("true"), &Type::Bool).is_err());
        assert!(decode(&json!(1), &Type::Bool).is_err());
        assert!(decode(&json!(1), &Type::String).is_err());
        assert!(decode(&json!(true), &Type::String).is_err());
        assert!(decode(&json!({}), &Type::list(Type::String)).is_err());
        assert!(decode(&json!([]), &Type::map(Type::String)).is_err());
        assert!(decode(
            &json!(["a"]),
            &Type::Tuple(vec![Type::String, Type::String])
        )
        .is_err());
    }

    #[test]
    fn missing_attrs_are_null_unknown_attrs_fail() {
        let t = obj_type();
        let v = decode(&json!({"name": "n", "nodes": {"min": 1}}), &t).unwrap();
        assert_eq!(v.get("name"), &Value::string("n"));
        assert_eq!(v.get("count"), &Value::Null);
        assert_eq!(v.get("nodes").get("max"), &Value::Null);
        assert_eq!(v.entries().unwrap().len(), 9);

        let j = json!({"name": "n", "nodes": {"min": 1, "removed": [1, 2]}, "old": {"x": 1}});
        assert!(
            matches!(decode(&j, &t), Err(CodecError::Invalid { path, msg })
            if path == ".nodes.removed" && msg == "unsupported attribute")
        );
        let v = decode_lenient_unknown_attrs(&j, &t).unwrap();
        assert_eq!(v.get("nodes").get("min"), &Value::int(1));
        assert_eq!(v.entries().unwrap().len(), 9);
        assert_eq!(v.get("old"), &Value::Null);
        // Lenient mode still type-checks declared attributes.
        assert!(decode_lenient_unknown_attrs(&json!({"name": 5}), &t).is_err());
    }

    #[test]
    fn errors_carry_paths() {
        let t = obj_type();
        let j = json!({"ids": ["a", 1]});
        assert!(
            matches!(decode(&j, &t), Err(CodecError::Invalid { path, .. }) if path == ".ids[1]")
        );
        let j = json!({"tags": {"team": 1}});
        assert!(
            matches!(decode(&j, &t), Err(CodecError::Invalid { path, .. }) if path == r#".tags["team"]"#)
        );
        let mut v = full_value();
        v.get_mut("nodes").unwrap().set_attr("min", Value::Unknown);
        assert_eq!(
            encode(&v, &t),
            Err(CodecError::Invalid {
                path: ".nodes.min".into(),
                msg: "unknown values cannot be encoded as JSON".into()
            })
        );
        assert!(encode(&Value::Unknown, &Type::String).is_err());
        assert!(encode(&Value::string("x"), &Type::Number).is_err());
        let mut v = full_value();
        v.set_attr("bogus", Value::Null);
        assert!(encode(&v, &t).is_err());
        assert!(
            matches!(decode_bytes(b"{", &t), Err(CodecError::Invalid { path, .. }) if path == "(root)")
        );
    }

    #[test]
    fn dynamic_values() {
        let d = Type::Dynamic;
        assert_eq!(
            decode(&json!({"type": "number", "value": 5}), &d),
            Ok(Value::Dynamic(Box::new((Type::Number, Value::int(5)))))
        );
        assert_eq!(decode(&json!(null), &d), Ok(Value::Null));
        assert!(decode(&json!({"type": "nope", "value": 5}), &d).is_err());
        assert!(decode(&json!({"value": 5}), &d).is_err());
        assert!(decode(&json!({"type": "number", "value": 5, "x": 1}), &d).is_err());
        assert!(decode(&json!(5), &d).is_err());
    }

    #[test]
    fn nesting_is_capped() {
        let mut j = json!(1);
        for _ in 0..200 {
            j = json!({"type": "dynamic", "value": j});
        }
        assert_eq!(
            decode(&j, &Type::Dynamic),
            Err(CodecError::TooDeep(MAX_DEPTH))
        );
        let mut t = Type::Number;
        let mut j = json!(1);
        for _ in 0..MAX_DEPTH + 1 {
            t = Type::list(t);
            j = json!([j]);
        }
        assert_eq!(decode(&j, &t), Err(CodecError::TooDeep(MAX_DEPTH)));
    }
}
