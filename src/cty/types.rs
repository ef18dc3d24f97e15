//! cty types: the type system Terraform uses for every value that crosses the plugin protocol.
//!
//! Types are needed on both sides of the wire: the schema renders them as type JSON, and the
//! msgpack decoder needs them because msgpack alone cannot tell a list from a set or a map from
//! an object.

use std::collections::BTreeMap;

/// A cty type. Objects keep attributes sorted (BTreeMap) because cty encodes object keys in
/// sorted order and Terraform compares attribute sets by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    String,
    Number,
    Bool,
    /// Any type; the value carries its own type on the wire.
    Dynamic,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Object(BTreeMap<String, Type>),
    Tuple(Vec<Type>),
}

impl Type {
    pub fn list(t: Type) -> Type {
        Type::List(Box::new(t))
    }
    pub fn set(t: Type) -> Type {
        Type::Set(Box::new(t))
    }
    pub fn map(t: Type) -> Type {
        Type::Map(Box::new(t))
    }
    pub fn object<I, K>(attrs: I) -> Type
    where
        I: IntoIterator<Item = (K, Type)>,
        K: Into<String>,
    {
        Type::Object(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The type JSON Terraform expects in `Schema.Attribute.type` (e.g. `["list","string"]`).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{json, Value as J};
        match self {
            Type::String => json!("string"),
            Type::Number => json!("number"),
            Type::Bool => json!("bool"),
            Type::Dynamic => json!("dynamic"),
            Type::List(t) => json!(["list", t.to_json()]),
            Type::Set(t) => json!(["set", t.to_json()]),
            Type::Map(t) => json!(["map", t.to_json()]),
            Type::Object(attrs) => {
                let m: serde_json::Map<String, J> = attrs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect();
                json!(["object", J::Object(m)])
            }
            Type::Tuple(elems) => {
                json!(["tuple", J::Array(elems.iter().map(Type::to_json).collect())])
            }
        }
    }

    /// Parses type JSON, as found in the first element of a msgpack/JSON dynamic value.
    pub fn from_json(v: &serde_json::Value) -> Option<Type> {
        use serde_json::Value as J;
        match v {
            J::String(s) => match s.as_str() {
                "string" => Some(Type::String),
                "number" => Some(Type::Number),
                "bool" => Some(Type::Bool),
                "dynamic" => Some(Type::Dynamic),
                _ => None,
            },
            J::Array(parts) if parts.len() >= 2 => {
                let kind = parts[0].as_str()?;
                match kind {
                    "list" => Some(Type::list(Type::from_json(&parts[1])?)),
                    "set" => Some(Type::set(Type::from_json(&parts[1])?)),
                    "map" => Some(Type::map(Type::from_json(&parts[1])?)),
                    "object" => {
                        let obj = parts[1].as_object()?;
                        let mut attrs = BTreeMap::new();
                        for (k, t) in obj {
                            attrs.insert(k.clone(), Type::from_json(t)?);
                        }
                        Some(Type::Object(attrs))
                    }
                    "tuple" => {
                        let elems = parts[1].as_array()?;
                        elems
                            .iter()
                            .map(Type::from_json)
                            .collect::<Option<Vec<_>>>()
                            .map(Type::Tuple)
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    pub fn to_json_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.to_json()).expect("type JSON always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_json_round_trips() {
        let t = Type::object([
            ("a", Type::list(Type::String)),
            ("b", Type::map(Type::Number)),
            ("c", Type::set(Type::Bool)),
            ("d", Type::Tuple(vec![Type::String, Type::Dynamic])),
        ]);
        let j = t.to_json();
        assert_eq!(Type::from_json(&j), Some(t));
        assert_eq!(
            serde_json::to_string(&Type::list(Type::String).to_json()).unwrap(),
            r#"["list","string"]"#
        );
    }

    #[test]
    fn bad_type_json_is_rejected() {
        assert_eq!(Type::from_json(&serde_json::json!("strnig")), None);
        assert_eq!(Type::from_json(&serde_json::json!(["list"])), None);
    }
}
