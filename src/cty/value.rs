//! cty values with the two states Terraform adds to every type: null and unknown.
//!
//! Values do not carry their type; the schema does. That keeps resource code simple (it reads
//! attributes by name) and matches the wire, where a type is only sent for dynamic values.

use std::collections::BTreeMap;

/// A number. cty numbers are arbitrary precision; every number paved's schemas hold fits an
/// i64 (counts, sizes) or an f64 (prices), and integers are kept exact.
#[derive(Debug, Clone, Copy)]
pub enum Number {
    Int(i64),
    Float(f64),
}

/// -2^63 and 2^63: integral floats in `[I64_LOW, I64_HIGH)` are exactly an i64.
const I64_LOW: f64 = -9_223_372_036_854_775_808.0;
const I64_HIGH: f64 = 9_223_372_036_854_775_808.0;

impl Number {
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
    /// The exact integer value, if there is one.
    pub fn as_i64(self) -> Option<i64> {
        match self.normalised() {
            Number::Int(i) => Some(i),
            Number::Float(_) => None,
        }
    }
    /// Every integral float that an i64 holds exactly becomes Int, so equal numbers have one
    /// form: they compare, sort (in sets) and encode the same way. (Bounded at 9e15 before,
    /// 1e16 stayed a float, was sent as the string "10000000000000000" and came back an Int.)
    pub fn normalised(self) -> Number {
        match self {
            Number::Float(f) if f.fract() == 0.0 && (I64_LOW..I64_HIGH).contains(&f) => {
                Number::Int(f as i64)
            }
            n => n,
        }
    }
}

impl PartialEq for Number {
    /// Exact: once normalised, an Int and a Float are never the same number (the Float is a
    /// fraction, an infinity or beyond the i64 range), though `i64::MAX as f64` rounds to 2^63.
    fn eq(&self, other: &Self) -> bool {
        match (self.normalised(), other.normalised()) {
            (Number::Int(a), Number::Int(b)) => a == b,
            (Number::Float(a), Number::Float(b)) => a == b,
            _ => false,
        }
    }
}

/// A cty value. `Set` keeps elements in a canonical order (sorted, de-duplicated) so that two
/// sets with the same members compare equal.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Unknown,
    Bool(bool),
    Number(Number),
    String(String),
    List(Vec<Value>),
    Set(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Object(BTreeMap<String, Value>),
    Tuple(Vec<Value>),
    /// A value of a `dynamic` attribute, with the concrete type it was sent with.
    Dynamic(Box<(super::Type, Value)>),
}

impl Value {
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }
    pub fn int(i: i64) -> Value {
        Value::Number(Number::Int(i))
    }
    pub fn float(f: f64) -> Value {
        Value::Number(Number::Float(f).normalised())
    }
    pub fn object<I, K>(attrs: I) -> Value
    where
        I: IntoIterator<Item = (K, Value)>,
        K: Into<String>,
    {
        Value::Object(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
    /// Builds a set value in canonical order.
    pub fn set(mut elems: Vec<Value>) -> Value {
        elems.sort_by_key(canonical_key);
        elems.dedup();
        Value::Set(elems)
    }
    pub fn string_list<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Value {
        Value::List(items.into_iter().map(|s| Value::String(s.into())).collect())
    }
    pub fn string_map<I: IntoIterator<Item = (K, V)>, K: Into<String>, V: Into<String>>(
        items: I,
    ) -> Value {
        Value::Map(
            items
                .into_iter()
                .map(|(k, v)| (k.into(), Value::String(v.into())))
                .collect(),
        )
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown)
    }
    /// True when no unknown appears anywhere inside the value.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => {
                v.iter().all(Value::is_wholly_known)
            }
            Value::Map(m) | Value::Object(m) => m.values().all(Value::is_wholly_known),
            Value::Dynamic(b) => b.1.is_wholly_known(),
            _ => true,
        }
    }

    /// Attribute of an object; `Null` for a missing attribute or a non-object.
    pub fn get(&self, name: &str) -> &Value {
        static NULL: Value = Value::Null;
        match self {
            Value::Object(m) => m.get(name).unwrap_or(&NULL),
            _ => &NULL,
        }
    }
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Value> {
        match self {
            Value::Object(m) => m.get_mut(name),
            _ => None,
        }
    }
    /// Sets an attribute on an object value (no-op on other values).
    pub fn set_attr(&mut self, name: &str, v: Value) {
        if let Value::Object(m) = self {
            m.insert(name.to_string(), v);
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(n.as_f64()),
            _ => None,
        }
    }
    /// Elements of a list, set or tuple (empty for anything else, including null).
    pub fn elements(&self) -> &[Value] {
        match self {
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => v,
            _ => &[],
        }
    }
    /// Entries of a map or object (None for anything else).
    pub fn entries(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) | Value::Object(m) => Some(m),
            _ => None,
        }
    }
    /// Known string elements of a list/set; None if the collection or any element is unknown.
    pub fn as_string_vec(&self) -> Option<Vec<String>> {
        match self {
            Value::Null => Some(vec![]),
            Value::List(v) | Value::Set(v) => {
                v.iter().map(|e| e.as_str().map(String::from)).collect()
            }
            _ => None,
        }
    }
    /// Known string entries of a map; None if the map or any value is unknown.
    pub fn as_string_map(&self) -> Option<BTreeMap<String, String>> {
        match self {
            Value::Null => Some(BTreeMap::new()),
            Value::Map(m) => m
                .iter()
                .map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect(),
            _ => None,
        }
    }
}

/// A total order over values used to canonicalise sets.
fn canonical_key(v: &Value) -> String {
    format!("{v:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_by_value() {
        assert_eq!(Number::Int(3), Number::Float(3.0));
        assert_ne!(Number::Int(3), Number::Float(3.5));
        assert_eq!(Value::float(2.0), Value::int(2));
        // Found by fuzzing (dynamic_value_msgpack, state_json): large integral floats are Ints,
        // and equality is exact at the edge of the i64 range.
        assert!(matches!(
            Number::Float(1e16).normalised(),
            Number::Int(10_000_000_000_000_000)
        ));
        assert!(matches!(
            Number::Float(I64_LOW).normalised(),
            Number::Int(i64::MIN)
        ));
        assert!(matches!(
            Number::Float(I64_HIGH).normalised(),
            Number::Float(_)
        ));
        assert_eq!(Number::Float(1e16).as_i64(), Some(10_000_000_000_000_000));
        assert_ne!(Number::Int(i64::MAX), Number::Float(I64_HIGH));
        assert_ne!(Number::Int(i64::MAX - 1), Number::Int(i64::MAX));
        assert_eq!(Number::Float(f64::INFINITY), Number::Float(f64::INFINITY));
        // One form per number, so a set sorts the same whichever form a member came in.
        let a = Value::set(vec![Value::float(1e16), Value::float(2.5), Value::int(5)]);
        let b = Value::set(vec![
            Value::int(10_000_000_000_000_000),
            Value::float(2.5),
            Value::int(5),
        ]);
        assert_eq!(a, b);
    }

    #[test]
    fn sets_are_canonical() {
        let a = Value::set(vec![
            Value::string("b"),
            Value::string("a"),
            Value::string("b"),
        ]);
        let b = Value::set(vec![Value::string("a"), Value::string("b")]);
        assert_eq!(a, b);
    }

    #[test]
    fn wholly_known_looks_inside() {
        let v = Value::object([("a", Value::List(vec![Value::Unknown]))]);
        assert!(!v.is_wholly_known());
        assert!(Value::object([("a", Value::Null)]).is_wholly_known());
    }
}
