//! The schema model: what a resource or the provider accepts and exposes. One schema feeds the
//! Terraform protocol schema, the msgpack/JSON codecs (through its implied type), the generic plan
//! rules and, later, generated CRDs.

use crate::cty::{Type, Value};
use std::collections::BTreeMap;

/// How an attribute gets its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Required,
    Optional,
    /// Set by the provider only.
    Computed,
    /// Set by the user, or by the provider (default, derived value) when the user leaves it out.
    OptionalComputed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub name: String,
    pub ty: Type,
    pub mode: Mode,
    pub description: String,
    pub sensitive: bool,
    /// A change to this attribute replaces the object instead of updating it in place.
    pub force_new: bool,
    /// Planned when the user leaves an OptionalComputed attribute out.
    pub default: Option<Value>,
    /// Write-only (Terraform >= 1.11, OpenTofu >= 1.11): the value reaches the provider only in
    /// the configuration of validate, plan and apply, and is never stored in a plan or state.
    pub write_only: bool,
}

impl Attribute {
    pub fn new(name: &str, ty: Type, mode: Mode, description: &str) -> Attribute {
        Attribute {
            name: name.to_string(),
            ty,
            mode,
            description: description.to_string(),
            sensitive: false,
            force_new: false,
            default: None,
            write_only: false,
        }
    }
    pub fn required(name: &str, ty: Type, description: &str) -> Attribute {
        Attribute::new(name, ty, Mode::Required, description)
    }
    pub fn optional(name: &str, ty: Type, description: &str) -> Attribute {
        Attribute::new(name, ty, Mode::Optional, description)
    }
    pub fn computed(name: &str, ty: Type, description: &str) -> Attribute {
        Attribute::new(name, ty, Mode::Computed, description)
    }
    pub fn optional_computed(name: &str, ty: Type, description: &str) -> Attribute {
        Attribute::new(name, ty, Mode::OptionalComputed, description)
    }
    pub fn sensitive(mut self) -> Attribute {
        self.sensitive = true;
        self
    }
    /// Makes an Optional attribute write-only (and sensitive): for secrets a user supplies, so
    /// they can come from ephemeral values and never land in state.
    pub fn write_only(mut self) -> Attribute {
        debug_assert_eq!(self.mode, Mode::Optional);
        self.write_only = true;
        self.sensitive = true;
        self
    }
    pub fn force_new(mut self) -> Attribute {
        self.force_new = true;
        self
    }
    /// Gives an OptionalComputed attribute a default planned when the user leaves it out.
    pub fn default(mut self, v: Value) -> Attribute {
        debug_assert_eq!(self.mode, Mode::OptionalComputed);
        self.default = Some(v);
        self
    }
    pub fn is_computed(&self) -> bool {
        matches!(self.mode, Mode::Computed | Mode::OptionalComputed)
    }
    pub fn accepts_config(&self) -> bool {
        !matches!(self.mode, Mode::Computed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    /// Zero or one block; absent = null.
    Single,
    List,
    Set,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NestedBlock {
    pub name: String,
    pub nesting: Nesting,
    pub block: Block,
    pub min_items: u32,
    pub max_items: u32,
    /// A change anywhere inside this block replaces the object.
    pub force_new: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Block {
    pub description: String,
    pub attributes: Vec<Attribute>,
    pub blocks: Vec<NestedBlock>,
}

impl Block {
    pub fn new(description: &str) -> Block {
        Block {
            description: description.to_string(),
            ..Block::default()
        }
    }
    pub fn attr(mut self, a: Attribute) -> Block {
        self.attributes.push(a);
        self
    }
    pub fn block(mut self, name: &str, nesting: Nesting, block: Block) -> Block {
        self.blocks.push(NestedBlock {
            name: name.to_string(),
            nesting,
            block,
            // Terraform (>= 1.1 validates it) requires min_items == max_items for a Single
            // block: 0/0 is "optional", 1/1 is "required".
            min_items: 0,
            max_items: 0,
            force_new: false,
        });
        self
    }
    /// Marks the most recently added nested block as replacing the object on change.
    pub fn force_new_block(mut self) -> Block {
        if let Some(b) = self.blocks.last_mut() {
            b.force_new = true;
        }
        self
    }
    /// Marks the most recently added nested block as mandatory (exactly one for Single).
    pub fn required_block(mut self) -> Block {
        if let Some(b) = self.blocks.last_mut() {
            b.min_items = 1;
            if b.nesting == Nesting::Single {
                b.max_items = 1;
            }
        }
        self
    }

    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
    pub fn nested(&self, name: &str) -> Option<&NestedBlock> {
        self.blocks.iter().find(|b| b.name == name)
    }

    /// Whether any attribute at any depth is write-only.
    pub fn has_write_only(&self) -> bool {
        self.attributes.iter().any(|a| a.write_only)
            || self.blocks.iter().any(|b| b.block.has_write_only())
    }

    /// Nulls every write-only attribute of `v`: no plan or state a front end returns may hold
    /// one.
    pub fn clear_write_only(&self, v: &mut Value) {
        self.each_write_only(v, &Value::Null, &mut |slot, _| *slot = Value::Null);
    }

    /// Copies the write-only values of `config` into `v` (a plan or state of the same shape), so
    /// the verbs that act on them see them like any other argument.
    pub fn merge_write_only(&self, v: &mut Value, config: &Value) {
        self.each_write_only(v, config, &mut |slot, c| *slot = c.clone());
    }

    /// Paths of the write-only attributes `config` sets (known or unknown).
    pub fn write_only_set(&self, config: &Value) -> Vec<crate::diag::AttrPath> {
        let mut out = vec![];
        self.write_only_paths(config, &crate::diag::AttrPath::root(), &mut out);
        out
    }

    fn write_only_paths(
        &self,
        config: &Value,
        at: &crate::diag::AttrPath,
        out: &mut Vec<crate::diag::AttrPath>,
    ) {
        for a in self.attributes.iter().filter(|a| a.write_only) {
            if !config.get(&a.name).is_null() {
                out.push(at.clone().then(&a.name));
            }
        }
        for b in self.blocks.iter().filter(|b| b.block.has_write_only()) {
            let c = config.get(&b.name);
            match b.nesting {
                Nesting::Single => b.block.write_only_paths(c, &at.clone().then(&b.name), out),
                Nesting::List | Nesting::Set => {
                    for (i, item) in c.elements().iter().enumerate() {
                        b.block
                            .write_only_paths(item, &at.clone().then(&b.name).index(i), out);
                    }
                }
            }
        }
    }

    /// Visits each write-only attribute slot of `v` with the matching value of `other`. List
    /// elements correlate by index; sets cannot be correlated, so their write-only values are
    /// only ever cleared.
    fn each_write_only(&self, v: &mut Value, other: &Value, f: &mut dyn FnMut(&mut Value, &Value)) {
        if !matches!(v, Value::Object(_)) {
            return;
        }
        for a in self.attributes.iter().filter(|a| a.write_only) {
            let mut slot = v.get(&a.name).clone();
            f(&mut slot, other.get(&a.name));
            v.set_attr(&a.name, slot);
        }
        for b in self.blocks.iter().filter(|b| b.block.has_write_only()) {
            let o = other.get(&b.name);
            let Some(inner) = v.get_mut(&b.name) else {
                continue;
            };
            match (b.nesting, inner) {
                (Nesting::Single, inner) => b.block.each_write_only(inner, o, f),
                (Nesting::List, Value::List(items)) => {
                    for (i, item) in items.iter_mut().enumerate() {
                        let oi = o.elements().get(i).unwrap_or(&Value::Null);
                        b.block.each_write_only(item, oi, f);
                    }
                }
                (_, Value::List(items) | Value::Set(items)) => {
                    for item in items.iter_mut() {
                        b.block
                            .each_write_only(item, &Value::Null, &mut |s, _| *s = Value::Null);
                    }
                }
                _ => {}
            }
        }
    }

    /// The object type of a value conforming to this block.
    pub fn implied_type(&self) -> Type {
        let mut attrs: BTreeMap<String, Type> = self
            .attributes
            .iter()
            .map(|a| (a.name.clone(), a.ty.clone()))
            .collect();
        for b in &self.blocks {
            let inner = b.block.implied_type();
            let t = match b.nesting {
                Nesting::Single => inner,
                Nesting::List => Type::list(inner),
                Nesting::Set => Type::set(inner),
            };
            attrs.insert(b.name.clone(), t);
        }
        Type::Object(attrs)
    }

    /// An object of this block with every attribute null and every collection block empty:
    /// what Terraform sends for an absent configuration.
    pub fn null_object(&self) -> Value {
        let mut m = BTreeMap::new();
        for a in &self.attributes {
            m.insert(a.name.clone(), Value::Null);
        }
        for b in &self.blocks {
            let v = match b.nesting {
                Nesting::Single => Value::Null,
                Nesting::List => Value::List(vec![]),
                Nesting::Set => Value::Set(vec![]),
            };
            m.insert(b.name.clone(), v);
        }
        Value::Object(m)
    }
}

/// A versioned top-level schema (provider or resource).
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub version: i64,
    pub block: Block,
}

impl Schema {
    pub fn new(version: i64, block: Block) -> Schema {
        Schema { version, block }
    }
    pub fn implied_type(&self) -> Type {
        self.block.implied_type()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implied_type_includes_blocks() {
        let b = Block::new("x")
            .attr(Attribute::required("name", Type::String, "n"))
            .block(
                "nodes",
                Nesting::Single,
                Block::new("n").attr(Attribute::required("min", Type::Number, "m")),
            )
            .block("rules", Nesting::List, Block::new("r"));
        let t = b.implied_type();
        assert_eq!(
            t,
            Type::object([
                ("name", Type::String),
                ("nodes", Type::object([("min", Type::Number)])),
                (
                    "rules",
                    Type::list(Type::object::<[(&str, Type); 0], &str>([]))
                ),
            ])
        );
        let null = b.null_object();
        assert_eq!(null.get("rules"), &Value::List(vec![]));
        assert!(null.get("nodes").is_null());
    }
}
