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
