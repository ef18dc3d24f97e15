//! cty over msgpack: the encoding of every `DynamicValue.msgpack` Terraform sends and expects
//! back.
//!
//! The format follows go-cty's `cty/msgpack` package: null is nil for every type, unknown is an
//! extension value (any extension decodes as unknown, we write `d4 00 00`), objects are maps with
//! every attribute present in sorted order, and dynamic values are `[bin(type JSON), value]`.
//!
//! The decoder reads untrusted bytes, so it checks every declared length against the bytes left
//! before allocating, caps nesting at [`MAX_DEPTH`] and never panics.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{CodecError, Number, Type, Value, MAX_DEPTH};

/// Encodes `v` as cty msgpack for type `t`.
///
/// Fails (without panicking) when the value does not conform to the type, e.g. a string where
/// the type says number, an object attribute the type does not declare, or a tuple of the wrong
/// length.
pub fn encode(v: &Value, t: &Type) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(128);
    encode_value(&mut out, v, t, 0).map_err(|e| e.into_codec())?;
    Ok(out)
}

/// Decodes cty msgpack of type `t`. The whole input must be exactly one value.
pub fn decode(bytes: &[u8], t: &Type) -> Result<Value, CodecError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let v = r.value(t, 0).map_err(|e| e.into_codec())?;
    if r.pos != bytes.len() {
        return Err(CodecError::Invalid {
            path: root_path(),
            msg: format!("{} trailing bytes after the value", bytes.len() - r.pos),
        });
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// Errors with lazily built paths, shared with the JSON codec. The success path never allocates a
// path; a failing level pushes its own step while the error travels up (innermost step first).

/// One step of the path of a failure.
pub(super) enum Seg {
    Attr(String),
    Index(usize),
    Key(String),
}

pub(super) enum FailKind {
    Eof,
    TooDeep,
    Invalid(String),
}

pub(super) struct Fail {
    kind: FailKind,
    /// Innermost step first.
    path: Vec<Seg>,
}

pub(super) type Res<T> = Result<T, Box<Fail>>;

pub(super) fn invalid<T>(msg: impl Into<String>) -> Res<T> {
    Err(Box::new(Fail {
        kind: FailKind::Invalid(msg.into()),
        path: Vec::new(),
    }))
}

pub(super) fn too_deep<T>() -> Res<T> {
    Err(Box::new(Fail {
        kind: FailKind::TooDeep,
        path: Vec::new(),
    }))
}

fn eof<T>() -> Res<T> {
    Err(Box::new(Fail {
        kind: FailKind::Eof,
        path: Vec::new(),
    }))
}

/// How the root of a value is shown in an error path.
pub(super) fn root_path() -> String {
    "(root)".to_string()
}

impl Fail {
    pub(super) fn into_codec(self) -> CodecError {
        match self.kind {
            FailKind::Eof => CodecError::Eof,
            FailKind::TooDeep => CodecError::TooDeep(MAX_DEPTH),
            FailKind::Invalid(msg) => {
                if self.path.is_empty() {
                    return CodecError::Invalid {
                        path: root_path(),
                        msg,
                    };
                }
                let mut path = String::new();
                for seg in self.path.iter().rev() {
                    match seg {
                        Seg::Attr(a) => {
                            path.push('.');
                            path.push_str(a);
                        }
                        Seg::Index(i) => {
                            let _ = write!(path, "[{i}]");
                        }
                        Seg::Key(k) => {
                            let _ = write!(path, "[{k:?}]");
                        }
                    }
                }
                CodecError::Invalid { path, msg }
            }
        }
    }
}

/// Adds a path step to a failure on its way up.
pub(super) trait At<T> {
    fn at(self, seg: impl FnOnce() -> Seg) -> Res<T>;
}

impl<T> At<T> for Res<T> {
    fn at(self, seg: impl FnOnce() -> Seg) -> Res<T> {
        self.map_err(|mut e| {
            e.path.push(seg());
            e
        })
    }
}

/// Short name of a type for error messages.
pub(super) fn type_name(t: &Type) -> &'static str {
    match t {
        Type::String => "string",
        Type::Number => "number",
        Type::Bool => "bool",
        Type::Dynamic => "dynamic",
        Type::List(_) => "list",
        Type::Set(_) => "set",
        Type::Map(_) => "map",
        Type::Object(_) => "object",
        Type::Tuple(_) => "tuple",
    }
}

/// Short name of a value's kind for error messages.
pub(super) fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Unknown => "unknown",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::List(_) => "list",
        Value::Set(_) => "set",
        Value::Map(_) => "map",
        Value::Object(_) => "object",
        Value::Tuple(_) => "tuple",
        Value::Dynamic(_) => "dynamic",
    }
}

/// Parses a number sent as a decimal string (cty accepts these for `number`). Only plain decimal
/// notation is accepted: no `inf`, `NaN`, hex or whitespace.
pub(super) fn parse_number_str(s: &str) -> Option<Number> {
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
        || !s.bytes().any(|b| b.is_ascii_digit())
    {
        return None;
    }
    if let Ok(i) = s.parse::<i64>() {
        return Some(Number::Int(i));
    }
    match s.parse::<f64>() {
        Ok(f) if !f.is_nan() => Some(Number::Float(f).normalised()),
        _ => None,
    }
}

/// Checks that an object value only holds attributes its type declares.
pub(super) fn check_attrs(m: &BTreeMap<String, Value>, attrs: &BTreeMap<String, Type>) -> Res<()> {
    if let Some(k) = m.keys().find(|k| !attrs.contains_key(*k)) {
        return invalid("attribute is not declared by the object type").at(|| Seg::Attr(k.clone()));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Encoder

static NULL: Value = Value::Null;

fn encode_value(out: &mut Vec<u8>, v: &Value, t: &Type, depth: usize) -> Res<()> {
    if depth > MAX_DEPTH {
        return too_deep();
    }
    match (v, t) {
        (Value::Null, _) => out.push(0xc0),
        (Value::Unknown, _) => out.extend_from_slice(&[0xd4, 0x00, 0x00]),
        (Value::Dynamic(b), Type::Dynamic) => {
            let (inner_t, inner_v) = &**b;
            out.push(0x92);
            write_bin(out, &inner_t.to_json_bytes())?;
            encode_value(out, inner_v, inner_t, depth + 1)?;
        }
        (Value::String(s), Type::String) => write_str(out, s)?,
        (Value::Bool(b), Type::Bool) => out.push(if *b { 0xc3 } else { 0xc2 }),
        (Value::Number(n), Type::Number) => write_number(out, *n)?,
        (Value::List(items), Type::List(et)) | (Value::Set(items), Type::Set(et)) => {
            write_array_len(out, items.len())?;
            for (i, item) in items.iter().enumerate() {
                encode_value(out, item, et, depth + 1).at(|| Seg::Index(i))?;
            }
        }
        (Value::Tuple(items), Type::Tuple(ets)) => {
            if items.len() != ets.len() {
                return invalid(format!(
                    "tuple has {} elements, its type has {}",
                    items.len(),
                    ets.len()
                ));
            }
            write_array_len(out, items.len())?;
            for (i, (item, et)) in items.iter().zip(ets).enumerate() {
                encode_value(out, item, et, depth + 1).at(|| Seg::Index(i))?;
            }
        }
        (Value::Map(m), Type::Map(et)) => {
            write_map_len(out, m.len())?;
            for (k, item) in m {
                write_str(out, k)?;
                encode_value(out, item, et, depth + 1).at(|| Seg::Key(k.clone()))?;
            }
        }
        (Value::Object(m), Type::Object(attrs)) => {
            check_attrs(m, attrs)?;
            write_map_len(out, attrs.len())?;
            for (name, at) in attrs {
                write_str(out, name)?;
                let item = m.get(name).unwrap_or(&NULL);
                encode_value(out, item, at, depth + 1).at(|| Seg::Attr(name.clone()))?;
            }
        }
        (v, t) => {
            return invalid(format!(
                "a {} value does not conform to type {}",
                value_kind(v),
                type_name(t)
            ))
        }
    }
    Ok(())
}

fn write_number(out: &mut Vec<u8>, n: Number) -> Res<()> {
    match n.normalised() {
        Number::Int(i) => write_int(out, i),
        Number::Float(f) if f.is_nan() => return invalid("NaN is not a cty number"),
        // Infinity has no decimal form; cty writes it as float64 too.
        Number::Float(f) if f.is_infinite() => {
            out.push(0xcb);
            out.extend_from_slice(&f.to_be_bytes());
        }
        // A fraction goes as its shortest decimal string, which cty parses exactly like the
        // decimal Terraform stores in state JSON. Sent as float64, 3.018 would arrive as
        // 3.01799999999999979…, differ from its stored form, and show as a perpetual diff.
        Number::Float(f) => write_str(out, &format!("{f}"))?,
    }
    Ok(())
}

/// Shortest msgpack form of an integer.
fn write_int(out: &mut Vec<u8>, i: i64) {
    if (0..=0x7f).contains(&i) {
        out.push(i as u8);
    } else if (-32..0).contains(&i) {
        out.push(i as i8 as u8);
    } else if i > 0 {
        if i <= i64::from(u8::MAX) {
            out.extend_from_slice(&[0xcc, i as u8]);
        } else if i <= i64::from(u16::MAX) {
            out.push(0xcd);
            out.extend_from_slice(&(i as u16).to_be_bytes());
        } else if i <= i64::from(u32::MAX) {
            out.push(0xce);
            out.extend_from_slice(&(i as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(i as u64).to_be_bytes());
        }
    } else if i >= i64::from(i8::MIN) {
        out.extend_from_slice(&[0xd0, i as i8 as u8]);
    } else if i >= i64::from(i16::MIN) {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= i64::from(i32::MIN) {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

/// Writes the shortest length header: `fix` is the fix-form base marker and the first length it
/// cannot hold, `forms` the 8/16/32-bit markers (0 where the 8-bit form does not exist).
fn write_len(out: &mut Vec<u8>, len: usize, fix: Option<(u8, usize)>, forms: [u8; 3]) -> Res<()> {
    match fix {
        Some((base, cap)) if len < cap => out.push(base | len as u8),
        _ if forms[0] != 0 && len <= usize::from(u8::MAX) => {
            out.extend_from_slice(&[forms[0], len as u8])
        }
        _ if len <= usize::from(u16::MAX) => {
            out.push(forms[1]);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => match u32::try_from(len) {
            Ok(l) => {
                out.push(forms[2]);
                out.extend_from_slice(&l.to_be_bytes());
            }
            Err(_) => return invalid(format!("length {len} does not fit msgpack")),
        },
    }
    Ok(())
}

fn write_str(out: &mut Vec<u8>, s: &str) -> Res<()> {
    write_len(out, s.len(), Some((0xa0, 32)), [0xd9, 0xda, 0xdb])?;
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn write_bin(out: &mut Vec<u8>, b: &[u8]) -> Res<()> {
    write_len(out, b.len(), None, [0xc4, 0xc5, 0xc6])?;
    out.extend_from_slice(b);
    Ok(())
}

fn write_array_len(out: &mut Vec<u8>, n: usize) -> Res<()> {
    write_len(out, n, Some((0x90, 16)), [0, 0xdc, 0xdd])
}

fn write_map_len(out: &mut Vec<u8>, n: usize) -> Res<()> {
    write_len(out, n, Some((0x80, 16)), [0, 0xde, 0xdf])
}

// ---------------------------------------------------------------------------------------------
// Decoder

/// The header of one msgpack item. Strings and binaries borrow their bytes; array and map
/// lengths have already been checked against the bytes left.
enum Head<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(&'a [u8]),
    Bin(&'a [u8]),
    Array(usize),
    Map(usize),
    Ext,
}

impl Head<'_> {
    fn name(&self) -> &'static str {
        match self {
            Head::Nil => "nil",
            Head::Bool(_) => "bool",
            Head::Int(_) | Head::UInt(_) => "integer",
            Head::Float(_) => "float",
            Head::Str(_) => "string",
            Head::Bin(_) => "binary",
            Head::Array(_) => "array",
            Head::Map(_) => "map",
            Head::Ext => "extension",
        }
    }
}

fn expected<T>(what: &str, got: &Head<'_>) -> Res<T> {
    invalid(format!("{what} is required, found msgpack {}", got.name()))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Res<&'a [u8]> {
        if n > self.buf.len() - self.pos {
            return eof();
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn take_array<const N: usize>(&mut self) -> Res<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Res<u8> {
        Ok(self.take_array::<1>()?[0])
    }
    fn u16(&mut self) -> Res<u16> {
        Ok(u16::from_be_bytes(self.take_array()?))
    }
    fn u32(&mut self) -> Res<u32> {
        Ok(u32::from_be_bytes(self.take_array()?))
    }
    fn u64(&mut self) -> Res<u64> {
        Ok(u64::from_be_bytes(self.take_array()?))
    }

    /// Reads a 32-bit length (usize is at least 32 bits on every target we build for).
    fn len32(&mut self) -> Res<usize> {
        let n = self.u32()?;
        usize::try_from(n).or_else(|_| eof())
    }

    fn array_head(&mut self, n: usize) -> Res<Head<'a>> {
        // Every element takes at least one byte.
        if n > self.buf.len() - self.pos {
            return eof();
        }
        Ok(Head::Array(n))
    }

    fn map_head(&mut self, n: usize) -> Res<Head<'a>> {
        // Every entry takes at least two bytes (key and value).
        if n > (self.buf.len() - self.pos) / 2 {
            return eof();
        }
        Ok(Head::Map(n))
    }

    fn ext(&mut self, len: usize) -> Res<Head<'a>> {
        // Type byte, then the payload; both ignored: every extension is an unknown value.
        self.take(1)?;
        self.take(len)?;
        Ok(Head::Ext)
    }

    fn head(&mut self) -> Res<Head<'a>> {
        let m = self.u8()?;
        Ok(match m {
            0x00..=0x7f => Head::Int(i64::from(m)),
            0x80..=0x8f => return self.map_head(usize::from(m & 0x0f)),
            0x90..=0x9f => return self.array_head(usize::from(m & 0x0f)),
            0xa0..=0xbf => Head::Str(self.take(usize::from(m & 0x1f))?),
            0xc0 => Head::Nil,
            0xc1 => return invalid("reserved msgpack byte 0xc1"),
            0xc2 => Head::Bool(false),
            0xc3 => Head::Bool(true),
            0xc4 => {
                let n = usize::from(self.u8()?);
                Head::Bin(self.take(n)?)
            }
            0xc5 => {
                let n = usize::from(self.u16()?);
                Head::Bin(self.take(n)?)
            }
            0xc6 => {
                let n = self.len32()?;
                Head::Bin(self.take(n)?)
            }
            0xc7 => {
                let n = usize::from(self.u8()?);
                return self.ext(n);
            }
            0xc8 => {
                let n = usize::from(self.u16()?);
                return self.ext(n);
            }
            0xc9 => {
                let n = self.len32()?;
                return self.ext(n);
            }
            0xca => Head::Float(f64::from(f32::from_be_bytes(self.take_array()?))),
            0xcb => Head::Float(f64::from_be_bytes(self.take_array()?)),
            0xcc => Head::Int(i64::from(self.u8()?)),
            0xcd => Head::Int(i64::from(self.u16()?)),
            0xce => Head::Int(i64::from(self.u32()?)),
            0xcf => Head::UInt(self.u64()?),
            0xd0 => Head::Int(i64::from(i8::from_be_bytes(self.take_array()?))),
            0xd1 => Head::Int(i64::from(i16::from_be_bytes(self.take_array()?))),
            0xd2 => Head::Int(i64::from(i32::from_be_bytes(self.take_array()?))),
            0xd3 => Head::Int(i64::from_be_bytes(self.take_array()?)),
            0xd4 => return self.ext(1),
            0xd5 => return self.ext(2),
            0xd6 => return self.ext(4),
            0xd7 => return self.ext(8),
            0xd8 => return self.ext(16),
            0xd9 => {
                let n = usize::from(self.u8()?);
                Head::Str(self.take(n)?)
            }
            0xda => {
                let n = usize::from(self.u16()?);
                Head::Str(self.take(n)?)
            }
            0xdb => {
                let n = self.len32()?;
                Head::Str(self.take(n)?)
            }
            0xdc => {
                let n = usize::from(self.u16()?);
                return self.array_head(n);
            }
            0xdd => {
                let n = self.len32()?;
                return self.array_head(n);
            }
            0xde => {
                let n = usize::from(self.u16()?);
                return self.map_head(n);
            }
            0xdf => {
                let n = self.len32()?;
                return self.map_head(n);
            }
            0xe0..=0xff => Head::Int(i64::from(m as i8)),
        })
    }

    /// A map key or object attribute name.
    fn key(&mut self) -> Res<String> {
        match self.head()? {
            Head::Str(b) => utf8(b),
            h => expected("string key", &h),
        }
    }

    fn value(&mut self, t: &Type, depth: usize) -> Res<Value> {
        if depth > MAX_DEPTH {
            return too_deep();
        }
        let h = self.head()?;
        match h {
            Head::Nil => return Ok(Value::Null),
            Head::Ext => return Ok(Value::Unknown),
            _ => {}
        }
        match t {
            Type::String => match h {
                Head::Str(b) => Ok(Value::String(utf8(b)?)),
                h => expected("string", &h),
            },
            Type::Bool => match h {
                Head::Bool(b) => Ok(Value::Bool(b)),
                h => expected("bool", &h),
            },
            Type::Number => number(h).map(Value::Number),
            Type::List(et) => {
                let n = array_len(h, "list")?;
                Ok(Value::List(self.elements(n, et, depth)?))
            }
            Type::Set(et) => {
                let n = array_len(h, "set")?;
                Ok(Value::set(self.elements(n, et, depth)?))
            }
            Type::Tuple(ets) => {
                let n = array_len(h, "tuple")?;
                if n != ets.len() {
                    return invalid(format!(
                        "tuple of {} elements is required, found {n}",
                        ets.len()
                    ));
                }
                let mut items = Vec::with_capacity(n);
                for (i, et) in ets.iter().enumerate() {
                    items.push(self.value(et, depth + 1).at(|| Seg::Index(i))?);
                }
                Ok(Value::Tuple(items))
            }
            Type::Map(et) => {
                let n = match h {
                    Head::Map(n) => n,
                    h => return expected("map", &h),
                };
                let mut m = BTreeMap::new();
                for _ in 0..n {
                    let k = self.key()?;
                    if m.contains_key(&k) {
                        return invalid("duplicate map key").at(|| Seg::Key(k));
                    }
                    let item = match self.value(et, depth + 1) {
                        Ok(item) => item,
                        Err(e) => return Err(e).at(|| Seg::Key(k)),
                    };
                    m.insert(k, item);
                }
                Ok(Value::Map(m))
            }
            Type::Object(attrs) => {
                let n = match h {
                    Head::Map(n) => n,
                    h => return expected("object", &h),
                };
                let mut m = BTreeMap::new();
                for _ in 0..n {
                    let k = self.key()?;
                    let Some(at) = attrs.get(&k) else {
                        return invalid("unsupported attribute").at(|| Seg::Attr(k));
                    };
                    if m.contains_key(&k) {
                        return invalid("duplicate attribute").at(|| Seg::Attr(k));
                    }
                    let item = match self.value(at, depth + 1) {
                        Ok(item) => item,
                        Err(e) => return Err(e).at(|| Seg::Attr(k)),
                    };
                    m.insert(k, item);
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
                let n = array_len(h, "dynamic value [type, value]")?;
                if n != 2 {
                    return invalid(format!(
                        "dynamic value must be a 2-element array, found {n} elements"
                    ));
                }
                let type_json = match self.head()? {
                    Head::Bin(b) | Head::Str(b) => b,
                    h => return expected("type JSON", &h),
                };
                let ty = serde_json::from_slice::<serde_json::Value>(type_json)
                    .ok()
                    .as_ref()
                    .and_then(Type::from_json);
                let Some(ty) = ty else {
                    return invalid("dynamic value carries an invalid type");
                };
                let v = self.value(&ty, depth + 1)?;
                Ok(Value::Dynamic(Box::new((ty, v))))
            }
        }
    }

    fn elements(&mut self, n: usize, et: &Type, depth: usize) -> Res<Vec<Value>> {
        let mut items = Vec::with_capacity(n);
        for i in 0..n {
            items.push(self.value(et, depth + 1).at(|| Seg::Index(i))?);
        }
        Ok(items)
    }
}

fn array_len(h: Head<'_>, what: &str) -> Res<usize> {
    match h {
        Head::Array(n) => Ok(n),
        h => expected(what, &h),
    }
}

fn utf8(b: &[u8]) -> Res<String> {
    match std::str::from_utf8(b) {
        Ok(s) => Ok(s.to_owned()),
        Err(_) => invalid("string is not valid UTF-8"),
    }
}

fn number(h: Head<'_>) -> Res<Number> {
    match h {
        Head::Int(i) => Ok(Number::Int(i)),
        Head::UInt(u) => Ok(match i64::try_from(u) {
            Ok(i) => Number::Int(i),
            Err(_) => Number::Float(u as f64),
        }),
        Head::Float(f) if f.is_nan() => invalid("NaN is not a cty number"),
        Head::Float(f) => Ok(Number::Float(f).normalised()),
        Head::Str(b) => match std::str::from_utf8(b).ok().and_then(parse_number_str) {
            Some(n) => Ok(n),
            None => invalid("string is not a decimal number"),
        },
        h => expected("number", &h),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                    ("labels", Type::map(Type::String)),
                    ("sizes", Type::list(Type::Number)),
                ]),
            ),
            ("pair", Type::Tuple(vec![Type::String, Type::Number])),
            ("extra", Type::Dynamic),
            (
                "pools",
                Type::list(Type::object([
                    ("id", Type::String),
                    ("gpus", Type::set(Type::Number)),
                ])),
            ),
        ])
    }

    fn full_value() -> Value {
        Value::object([
            ("name", Value::string("héllo wörld ✓ 日本")),
            ("count", Value::int(-1234567890123)),
            ("enabled", Value::Bool(true)),
            ("ids", Value::string_list(["i-1", "i-2", "i-3"])),
            (
                "zones",
                Value::set(vec![Value::string("b"), Value::string("a")]),
            ),
            ("tags", Value::string_map([("team", "ml"), ("env", "prod")])),
            (
                "nodes",
                Value::object([
                    ("min", Value::int(1)),
                    ("max", Value::float(2.5)),
                    ("labels", Value::string_map([("a", "b")])),
                    (
                        "sizes",
                        Value::List(vec![
                            Value::int(i64::MAX),
                            Value::int(i64::MIN),
                            Value::float(1e300),
                        ]),
                    ),
                ]),
            ),
            (
                "pair",
                Value::Tuple(vec![Value::string("x"), Value::int(300)]),
            ),
            (
                "extra",
                Value::Dynamic(Box::new((
                    Type::list(Type::Number),
                    Value::List(vec![Value::int(1), Value::int(2)]),
                ))),
            ),
            (
                "pools",
                Value::List(vec![Value::object([
                    ("id", Value::string("p1")),
                    ("gpus", Value::set(vec![Value::int(8), Value::int(4)])),
                ])]),
            ),
        ])
    }

    fn round_trip(v: &Value, t: &Type) {
        let b = encode(v, t).expect("encode");
        let back = decode(&b, t).expect("decode");
        assert_eq!(&back, v, "round trip of {v:?}");
    }

    fn hex(b: &[u8]) -> String {
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Replaces the value at every attribute/element position with `with`, one at a time.
    fn each_position(v: &Value, with: &Value, out: &mut Vec<Value>) {
        out.push(with.clone());
        match v {
            Value::Object(m) | Value::Map(m) => {
                for (k, item) in m {
                    let mut sub = Vec::new();
                    each_position(item, with, &mut sub);
                    for s in sub {
                        let mut m2 = m.clone();
                        m2.insert(k.clone(), s);
                        out.push(if matches!(v, Value::Object(_)) {
                            Value::Object(m2)
                        } else {
                            Value::Map(m2)
                        });
                    }
                }
            }
            Value::List(items) | Value::Tuple(items) => {
                for (i, item) in items.iter().enumerate() {
                    let mut sub = Vec::new();
                    each_position(item, with, &mut sub);
                    for s in sub {
                        let mut items2 = items.clone();
                        items2[i] = s;
                        out.push(if matches!(v, Value::List(_)) {
                            Value::List(items2)
                        } else {
                            Value::Tuple(items2)
                        });
                    }
                }
            }
            _ => {}
        }
    }

    #[test]
    fn round_trips_nested_object() {
        round_trip(&full_value(), &obj_type());
    }

    #[test]
    fn round_trips_null_and_unknown_at_every_level() {
        let t = obj_type();
        for with in [Value::Null, Value::Unknown] {
            let mut variants = Vec::new();
            each_position(&full_value(), &with, &mut variants);
            assert!(variants.len() > 25);
            for v in &variants {
                round_trip(v, &t);
            }
        }
        // Unknown inside a set and a dynamic value.
        round_trip(
            &Value::set(vec![Value::Unknown, Value::string("a")]),
            &Type::set(Type::String),
        );
        round_trip(
            &Value::Dynamic(Box::new((Type::String, Value::Unknown))),
            &Type::Dynamic,
        );
        round_trip(
            &Value::Dynamic(Box::new((Type::String, Value::Null))),
            &Type::Dynamic,
        );
    }

    #[test]
    fn round_trips_primitives_and_empty_collections() {
        for i in [
            0,
            1,
            5,
            127,
            128,
            255,
            256,
            65535,
            65536,
            u32::MAX as i64,
            u32::MAX as i64 + 1,
            i64::MAX,
            -1,
            -32,
            -33,
            -128,
            -129,
            -32768,
            -32769,
            i32::MIN as i64,
            i32::MIN as i64 - 1,
            i64::MIN,
        ] {
            round_trip(&Value::int(i), &Type::Number);
        }
        for f in [0.5, -0.25, 1e300, -1e-300, f64::INFINITY, 1e16, 3.0] {
            round_trip(&Value::float(f), &Type::Number);
        }
        round_trip(&Value::Bool(false), &Type::Bool);
        round_trip(&Value::string(""), &Type::String);
        round_trip(&Value::List(vec![]), &Type::list(Type::String));
        round_trip(&Value::set(vec![]), &Type::set(Type::String));
        round_trip(&Value::Map(BTreeMap::new()), &Type::map(Type::String));
        round_trip(&Value::Tuple(vec![]), &Type::Tuple(vec![]));
        round_trip(
            &Value::Object(BTreeMap::new()),
            &Type::Object(BTreeMap::new()),
        );
        for n in [300, 70_000] {
            let s: String = "é".repeat(n / 2);
            let b = encode(&Value::string(s.clone()), &Type::String).unwrap();
            assert_eq!(b.len(), n + if n < 65536 { 3 } else { 5 });
            round_trip(&Value::string(s), &Type::String);
        }
        let big = Value::List((0..70_000).map(Value::int).collect());
        let b = encode(&big, &Type::list(Type::Number)).unwrap();
        assert_eq!(&b[..5], &[0xdd, 0x00, 0x01, 0x11, 0x70]);
        round_trip(&big, &Type::list(Type::Number));
        let big_map = Value::Map(
            (0..70_000)
                .map(|i| (format!("k{i}"), Value::Bool(i % 2 == 0)))
                .collect(),
        );
        round_trip(&big_map, &Type::map(Type::Bool));
    }

    #[test]
    fn exact_bytes() {
        let cases: Vec<(Value, Type, &str)> = vec![
            (Value::Unknown, Type::String, "d4 00 00"),
            (Value::Unknown, obj_type(), "d4 00 00"),
            (Value::Unknown, Type::Dynamic, "d4 00 00"),
            (Value::Null, Type::Number, "c0"),
            (Value::Null, obj_type(), "c0"),
            (Value::Null, Type::Dynamic, "c0"),
            (Value::int(5), Type::Number, "05"),
            (Value::int(127), Type::Number, "7f"),
            (Value::int(128), Type::Number, "cc 80"),
            (Value::int(300), Type::Number, "cd 01 2c"),
            (Value::int(65536), Type::Number, "ce 00 01 00 00"),
            (
                Value::int(1 << 32),
                Type::Number,
                "cf 00 00 00 01 00 00 00 00",
            ),
            (Value::int(-1), Type::Number, "ff"),
            (Value::int(-32), Type::Number, "e0"),
            (Value::int(-33), Type::Number, "d0 df"),
            (Value::int(-129), Type::Number, "d1 ff 7f"),
            (Value::int(-32769), Type::Number, "d2 ff ff 7f ff"),
            (
                Value::int(i64::MIN),
                Type::Number,
                "d3 80 00 00 00 00 00 00 00",
            ),
            (Value::float(1.5), Type::Number, "a3 31 2e 35"),
            (Value::Number(Number::Float(2.0)), Type::Number, "02"),
            (Value::Bool(true), Type::Bool, "c3"),
            (Value::Bool(false), Type::Bool, "c2"),
            (Value::string("ab"), Type::String, "a2 61 62"),
            (
                Value::object([("b", Value::int(1)), ("a", Value::string("x"))]),
                Type::object([("b", Type::Number), ("a", Type::String)]),
                "82 a1 61 a1 78 a1 62 01",
            ),
            (
                Value::object([("a", Value::string("x"))]),
                Type::object([("b", Type::Number), ("a", Type::String)]),
                "82 a1 61 a1 78 a1 62 c0",
            ),
            (
                Value::List(vec![Value::int(1), Value::Null, Value::Unknown]),
                Type::list(Type::Number),
                "93 01 c0 d4 00 00",
            ),
            (
                Value::Dynamic(Box::new((Type::String, Value::string("x")))),
                Type::Dynamic,
                "92 c4 08 22 73 74 72 69 6e 67 22 a1 78",
            ),
        ];
        for (v, t, want) in cases {
            assert_eq!(hex(&encode(&v, &t).unwrap()), want, "{v:?}");
        }
        let s31 = "x".repeat(31);
        assert_eq!(encode(&Value::string(s31), &Type::String).unwrap()[0], 0xbf);
        let s32 = "x".repeat(32);
        assert_eq!(
            &encode(&Value::string(s32), &Type::String).unwrap()[..2],
            &[0xd9, 32]
        );
        let s300 = "x".repeat(300);
        assert_eq!(
            &encode(&Value::string(s300), &Type::String).unwrap()[..3],
            &[0xda, 1, 0x2c]
        );
        let s70k = "x".repeat(70_000);
        assert_eq!(
            &encode(&Value::string(s70k), &Type::String).unwrap()[..5],
            &[0xdb, 0, 1, 0x11, 0x70]
        );
        let l15 = Value::List(vec![Value::Null; 15]);
        assert_eq!(encode(&l15, &Type::list(Type::Bool)).unwrap()[0], 0x9f);
        let l16 = Value::List(vec![Value::Null; 16]);
        assert_eq!(
            &encode(&l16, &Type::list(Type::Bool)).unwrap()[..3],
            &[0xdc, 0, 16]
        );
        let m16 = Value::Map((0..16).map(|i| (format!("{i:02}"), Value::Null)).collect());
        assert_eq!(
            &encode(&m16, &Type::map(Type::Bool)).unwrap()[..3],
            &[0xde, 0, 16]
        );
    }

    #[test]
    fn encode_rejects_nonconforming_values() {
        let t = obj_type();
        let mut v = full_value();
        v.set_attr("count", Value::string("3"));
        assert_eq!(
            encode(&v, &t),
            Err(CodecError::Invalid {
                path: ".count".into(),
                msg: "a string value does not conform to type number".into()
            })
        );
        let mut v = full_value();
        v.set_attr("bogus", Value::Null);
        assert!(
            matches!(encode(&v, &t), Err(CodecError::Invalid { path, .. }) if path == ".bogus")
        );
        let v = Value::Tuple(vec![Value::string("x")]);
        assert!(encode(&v, &Type::Tuple(vec![Type::String])).is_ok());
        assert!(encode(&v, &Type::Tuple(vec![Type::String, Type::Number])).is_err());
        assert!(encode(&Value::string("x"), &Type::Dynamic).is_err());
        assert!(encode(&Value::List(vec![]), &Type::set(Type::String)).is_err());
        assert!(encode(&Value::float(f64::NAN), &Type::Number).is_err());
        let bad = Value::object([(
            "nodes",
            Value::object([("sizes", Value::List(vec![Value::int(1), Value::Bool(true)]))]),
        )]);
        assert!(
            matches!(encode(&bad, &t), Err(CodecError::Invalid { path, .. }) if path == ".nodes.sizes[1]")
        );
        let bad = Value::object([(
            "tags",
            Value::Map([("k".to_string(), Value::int(1))].into()),
        )]);
        assert!(
            matches!(encode(&bad, &t), Err(CodecError::Invalid { path, .. }) if path == r#".tags["k"]"#)
        );
    }

    #[test]
    fn decodes_every_int_and_float_form() {
        let cases: &[(&[u8], Value)] = &[
            (&[0x05], Value::int(5)),
            (&[0xe0], Value::int(-32)),
            (&[0xcc, 0xff], Value::int(255)),
            (&[0xcd, 0x01, 0x2c], Value::int(300)),
            (&[0xce, 0xff, 0xff, 0xff, 0xff], Value::int(u32::MAX as i64)),
            (&[0xcf, 0, 0, 0, 0, 0, 0, 0, 7], Value::int(7)),
            (
                &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                Value::float(u64::MAX as f64),
            ),
            (&[0xd0, 0xdf], Value::int(-33)),
            (&[0xd0, 0x05], Value::int(5)),
            (&[0xd1, 0xff, 0x7f], Value::int(-129)),
            (&[0xd2, 0xff, 0xff, 0x7f, 0xff], Value::int(-32769)),
            (&[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0], Value::int(i64::MIN)),
            (&[0xca, 0x3f, 0xc0, 0, 0], Value::float(1.5)),
            (&[0xca, 0x40, 0x40, 0, 0], Value::int(3)),
            (&[0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0], Value::float(1.5)),
            (&[0xa2, b'4', b'2'], Value::int(42)),
            (&[0xa4, b'-', b'1', b'.', b'5'], Value::float(-1.5)),
            (&[0xa4, b'2', b'e', b'3', b'0'], Value::float(2e30)),
        ];
        for (b, want) in cases {
            assert_eq!(&decode(b, &Type::Number).unwrap(), want, "{}", hex(b));
        }
        assert!(matches!(
            decode(
                &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                &Type::Number
            ),
            Ok(Value::Number(Number::Float(_)))
        ));
        for bad in [
            &b"\xa3abc"[..],
            b"\xa3inf",
            b"\xa3NaN",
            b"\xa0",
            b"\xa1-",
            b"\xc3",
        ] {
            assert!(decode(bad, &Type::Number).is_err(), "{}", hex(bad));
        }
        // NaN is rejected, infinity is kept.
        assert!(decode(&[0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0], &Type::Number).is_err());
        assert_eq!(
            decode(&[0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0], &Type::Number).unwrap(),
            Value::float(f64::INFINITY)
        );
    }

    /// Found by fuzzing (dynamic_value_msgpack): a float64 1e16 decoded as a Float, was
    /// re-encoded as the string "10000000000000000" and came back an Int, so the encoding was
    /// not a fixpoint and a set of numbers sorted differently after a round trip.
    #[test]
    fn large_integral_floats_have_one_form() {
        let mut f = vec![0xcb];
        f.extend_from_slice(&1e16f64.to_be_bytes());
        let v = decode(&f, &Type::Number).unwrap();
        assert!(matches!(
            v,
            Value::Number(Number::Int(10_000_000_000_000_000))
        ));
        let enc = encode(&v, &Type::Number).unwrap();
        assert_eq!(enc[0], 0xcf);
        assert_eq!(
            encode(&decode(&enc, &Type::Number).unwrap(), &Type::Number),
            Ok(enc)
        );
        let t = Type::set(Type::Number);
        let mut b = vec![0x93];
        b.extend_from_slice(&f);
        b.extend_from_slice(&[0xa3, b'2', b'.', b'5', 0x05]);
        let v = decode(&b, &t).unwrap();
        assert_eq!(decode(&encode(&v, &t).unwrap(), &t), Ok(v));
    }

    #[test]
    fn every_ext_form_is_unknown() {
        let exts: &[&[u8]] = &[
            &[0xd4, 0x00, 0x00],
            &[0xd4, 0x0c, 0x01],
            &[0xd5, 0x01, 0x00, 0x00],
            &[0xd6, 0x01, 1, 2, 3, 4],
            &[0xd7, 0x01, 1, 2, 3, 4, 5, 6, 7, 8],
            &[0xd8, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[0xc7, 0x00, 0x00],
            &[0xc7, 0x03, 0x0c, 0x81, 0x01, 0xc2],
            &[0xc8, 0x00, 0x02, 0x01, 0xaa, 0xbb],
            &[0xc9, 0x00, 0x00, 0x00, 0x01, 0x01, 0xaa],
        ];
        for e in exts {
            for t in [
                Type::String,
                Type::Number,
                Type::Dynamic,
                obj_type(),
                Type::list(Type::Bool),
            ] {
                assert_eq!(decode(e, &t), Ok(Value::Unknown), "{} as {t:?}", hex(e));
            }
            // Nested: a list element and an object attribute.
            let mut b = vec![0x92, 0x01];
            b.extend_from_slice(e);
            assert_eq!(
                decode(&b, &Type::list(Type::Number)),
                Ok(Value::List(vec![Value::int(1), Value::Unknown]))
            );
            let mut b = vec![0x81, 0xa1, b'a'];
            b.extend_from_slice(e);
            assert_eq!(
                decode(&b, &Type::object([("a", Type::String), ("b", Type::Bool)])),
                Ok(Value::object([("a", Value::Unknown), ("b", Value::Null)]))
            );
        }
    }

    #[test]
    fn decode_errors_carry_paths() {
        let t = obj_type();
        // {"nodes": {"min": "x"}}
        let b = b"\x81\xa5nodes\x81\xa3min\xa1x";
        assert_eq!(
            decode(b, &t),
            Err(CodecError::Invalid {
                path: ".nodes.min".into(),
                msg: "string is not a decimal number".into()
            })
        );
        let b = b"\x81\xa5nodes\x81\xa5bogus\xc0";
        assert!(
            matches!(decode(b, &t), Err(CodecError::Invalid { path, msg })
            if path == ".nodes.bogus" && msg == "unsupported attribute")
        );
        let b = b"\x81\xa3ids\x93\xa1a\xa1b\x05";
        assert!(
            matches!(decode(b, &t), Err(CodecError::Invalid { path, .. }) if path == ".ids[2]")
        );
        let b = b"\x81\xa4tags\x81\xa4team\xc3";
        assert!(
            matches!(decode(b, &t), Err(CodecError::Invalid { path, .. }) if path == r#".tags["team"]"#)
        );
        let b = b"\x82\xa1a\x01\xa1a\x02";
        assert!(decode(b, &Type::map(Type::Number)).is_err());
        assert!(decode(b, &Type::object([("a", Type::Number)])).is_err());
        // Wrong kinds at the top.
        assert!(
            matches!(decode(b"\x05", &Type::String), Err(CodecError::Invalid { path, .. }) if path == "(root)")
        );
        assert!(decode(b"\xa1x", &Type::Bool).is_err());
        assert!(decode(b"\x90", &Type::map(Type::String)).is_err());
        assert!(decode(b"\x80", &Type::list(Type::String)).is_err());
        assert!(decode(b"\xc4\x01x", &Type::String).is_err());
        assert!(decode(b"\xc1", &Type::String).is_err());
        assert!(decode(b"\xa2\xff\xfe", &Type::String).is_err());
        assert!(decode(b"\x81\x01\x02", &Type::map(Type::Number)).is_err());
        // Tuple length must match.
        assert!(decode(b"\x91\xa1x", &Type::Tuple(vec![Type::String, Type::Number])).is_err());
        // Trailing bytes.
        assert!(decode(b"\x05\x05", &Type::Number).is_err());
        assert!(decode(b"", &Type::Number) == Err(CodecError::Eof));
    }

    #[test]
    fn decodes_objects_sets_and_dynamic() {
        // Missing attributes become null; an empty map is an all-null object.
        let t = Type::object([("a", Type::String), ("b", Type::Number)]);
        assert_eq!(
            decode(b"\x80", &t),
            Ok(Value::object([("a", Value::Null), ("b", Value::Null)]))
        );
        // Sets are de-duplicated and canonical.
        let b = b"\x94\xa1b\xa1a\xa1b\xc0";
        assert_eq!(
            decode(b, &Type::set(Type::String)),
            Ok(Value::set(vec![
                Value::string("a"),
                Value::string("b"),
                Value::Null
            ]))
        );
        // Dynamic: type as bin or as str; typed null; garbage type.
        let want = Value::Dynamic(Box::new((
            Type::list(Type::Bool),
            Value::List(vec![Value::Bool(true)]),
        )));
        let tj = br#"["list","bool"]"#;
        let mut bin = vec![0x92, 0xc4, tj.len() as u8];
        bin.extend_from_slice(tj);
        bin.extend_from_slice(b"\x91\xc3");
        assert_eq!(decode(&bin, &Type::Dynamic), Ok(want.clone()));
        let mut s = vec![0x92, 0xa0 | tj.len() as u8];
        s.extend_from_slice(tj);
        s.extend_from_slice(b"\x91\xc3");
        assert_eq!(decode(&s, &Type::Dynamic), Ok(want));
        assert_eq!(
            decode(b"\x92\xa8\"string\"\xc0", &Type::Dynamic),
            Ok(Value::Dynamic(Box::new((Type::String, Value::Null))))
        );
        assert!(decode(b"\x92\xa8\"strnig\"\xc0", &Type::Dynamic).is_err());
        assert!(decode(b"\x92\xa3{{{\xc0", &Type::Dynamic).is_err());
        assert!(decode(b"\x91\xa8\"string\"", &Type::Dynamic).is_err());
        assert!(decode(b"\xa1x", &Type::Dynamic).is_err());
    }

    fn nested_list_type(depth: usize) -> Type {
        let mut t = Type::Number;
        for _ in 0..depth {
            t = Type::list(t);
        }
        t
    }

    #[test]
    fn nesting_is_capped() {
        let t = nested_list_type(100);
        let deep = vec![0x91u8; 10_000];
        assert_eq!(decode(&deep, &t), Err(CodecError::TooDeep(MAX_DEPTH)));
        // Data-driven nesting through dynamic values: [bin("dynamic"), [bin("dynamic"), ...]].
        let mut b = Vec::new();
        for _ in 0..10_000 {
            b.extend_from_slice(b"\x92\xa9\"dynamic\"");
        }
        b.push(0x05);
        assert_eq!(
            decode(&b, &Type::Dynamic),
            Err(CodecError::TooDeep(MAX_DEPTH))
        );
        // Exactly MAX_DEPTH containers is fine; one more is not.
        let mut ok = vec![0x91u8; MAX_DEPTH];
        ok.push(0x07);
        assert!(decode(&ok, &nested_list_type(MAX_DEPTH)).is_ok());
        let mut too = vec![0x91u8; MAX_DEPTH + 1];
        too.push(0x07);
        assert_eq!(
            decode(&too, &nested_list_type(MAX_DEPTH + 1)),
            Err(CodecError::TooDeep(MAX_DEPTH))
        );
        // The encoder refuses too.
        let mut v = Value::int(1);
        for _ in 0..MAX_DEPTH + 1 {
            v = Value::List(vec![v]);
        }
        assert_eq!(
            encode(&v, &nested_list_type(MAX_DEPTH + 1)),
            Err(CodecError::TooDeep(MAX_DEPTH))
        );
    }

    #[test]
    fn huge_declared_lengths_fail_fast() {
        let t = Type::list(Type::Number);
        let start = std::time::Instant::now();
        assert!(decode(&[0xdd, 0xff, 0xff, 0xff, 0xff, 1, 2, 3], &t).is_err());
        assert!(decode(
            &[0xdf, 0xff, 0xff, 0xff, 0xff, 1, 2, 3],
            &Type::map(Type::Number)
        )
        .is_err());
        assert!(decode(&[0xdf, 0xff, 0xff, 0xff, 0xff, 1, 2, 3], &obj_type()).is_err());
        assert!(decode(&[0xdb, 0xff, 0xff, 0xff, 0xff, b'a'], &Type::String).is_err());
        assert!(decode(&[0xc9, 0xff, 0xff, 0xff, 0xff, 0, 0], &Type::String).is_err());
        let mut dynamic = vec![0x92, 0xc6, 0xff, 0xff, 0xff, 0xff];
        dynamic.extend_from_slice(b"\"string\"");
        assert!(decode(&dynamic, &Type::Dynamic).is_err());
        assert!(decode(&[0xdc, 0xff, 0xff, 0x01], &t).is_err());
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn every_truncation_fails() {
        let t = obj_type();
        let b = encode(&full_value(), &t).unwrap();
        for n in 0..b.len() {
            assert!(decode(&b[..n], &t).is_err(), "prefix of {n} bytes decoded");
        }
        assert!(decode(&b, &t).is_ok());
    }

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Anything that decodes must re-encode and decode to the same value.
    fn check_stable(b: &[u8], t: &Type) {
        if let Ok(v) = decode(b, t) {
            let again = encode(&v, t).expect("a decoded value re-encodes");
            assert_eq!(decode(&again, t), Ok(v));
        }
    }

    #[test]
    fn fuzz_random_bytes_never_panic() {
        let t = obj_type();
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut buf = Vec::with_capacity(64);
        for i in 0..20_000 {
            buf.clear();
            let len = (rng.next() % 64) as usize;
            for _ in 0..len {
                buf.push(rng.next() as u8);
            }
            // Half the inputs start like an object so the decoder gets past the first byte.
            if i % 2 == 0 && !buf.is_empty() {
                buf[0] = 0x80 | (buf[0] & 0x0f);
            }
            check_stable(&buf, &t);
            check_stable(&buf, &Type::Dynamic);
        }
    }

    #[test]
    fn fuzz_mutated_encodings_never_panic() {
        let t = obj_type();
        let valid = encode(&full_value(), &t).unwrap();
        let mut rng = XorShift(0x1234_5678_9abc_def1);
        for _ in 0..20_000 {
            let mut b = valid.clone();
            for _ in 0..1 + rng.next() % 4 {
                let pos = (rng.next() as usize) % b.len();
                match rng.next() % 3 {
                    0 => b[pos] = rng.next() as u8,
                    1 => b[pos] ^= 1 << (rng.next() % 8),
                    _ => b.truncate(pos.max(1)),
                }
            }
            check_stable(&b, &t);
        }
    }
}
