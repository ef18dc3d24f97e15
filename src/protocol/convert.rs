//! Translation between the core model (schema, values, diagnostics) and tfplugin6 messages. The
//! only place that knows both.

use super::pb;
use crate::cty::{self, Type, Value};
use crate::diag::{AttrPath, Diagnostic, Diagnostics, Severity, Step};
use crate::schema::{Attribute, Block, Mode, Nesting, Schema};

pub fn schema(s: &Schema) -> pb::Schema {
    pb::Schema {
        version: s.version,
        block: Some(block(&s.block)),
    }
}

fn block(b: &Block) -> pb::schema::Block {
    pb::schema::Block {
        version: 0,
        attributes: b.attributes.iter().map(attribute).collect(),
        block_types: b
            .blocks
            .iter()
            .map(|nb| pb::schema::NestedBlock {
                type_name: nb.name.clone(),
                block: Some(block(&nb.block)),
                nesting: match nb.nesting {
                    Nesting::Single => pb::schema::nested_block::NestingMode::Single,
                    Nesting::List => pb::schema::nested_block::NestingMode::List,
                    Nesting::Set => pb::schema::nested_block::NestingMode::Set,
                } as i32,
                min_items: nb.min_items as i64,
                max_items: nb.max_items as i64,
            })
            .collect(),
        description: b.description.clone(),
        description_kind: pb::StringKind::Markdown as i32,
        deprecated: false,
    }
}

fn attribute(a: &Attribute) -> pb::schema::Attribute {
    pb::schema::Attribute {
        name: a.name.clone(),
        r#type: a.ty.to_json_bytes(),
        nested_type: None,
        description: a.description.clone(),
        required: a.mode == Mode::Required,
        optional: matches!(a.mode, Mode::Optional | Mode::OptionalComputed),
        computed: a.is_computed(),
        sensitive: a.sensitive,
        description_kind: pb::StringKind::Markdown as i32,
        deprecated: false,
        write_only: a.write_only,
    }
}

/// A provider function's signature. Arguments are never null or unknown when paved is called:
/// the CLI refuses nulls and, for unknown arguments, returns an unknown result itself.
pub fn function(f: &dyn crate::function::Function) -> pb::Function {
    pb::Function {
        parameters: f
            .parameters()
            .iter()
            .map(|p| pb::function::Parameter {
                name: p.name.to_string(),
                r#type: p.ty.to_json_bytes(),
                allow_null_value: false,
                allow_unknown_values: false,
                description: p.description.to_string(),
                description_kind: pb::StringKind::Markdown as i32,
            })
            .collect(),
        variadic_parameter: None,
        r#return: Some(pb::function::Return {
            r#type: f.return_type().to_json_bytes(),
        }),
        summary: f.summary().to_string(),
        description: f.description().to_string(),
        description_kind: pb::StringKind::Markdown as i32,
        deprecation_message: String::new(),
    }
}

pub fn path(p: &AttrPath) -> pb::AttributePath {
    use pb::attribute_path::step::Selector;
    pb::AttributePath {
        steps: p
            .0
            .iter()
            .map(|s| pb::attribute_path::Step {
                selector: Some(match s {
                    Step::Attr(a) => Selector::AttributeName(a.clone()),
                    Step::Key(k) => Selector::ElementKeyString(k.clone()),
                    Step::Index(i) => Selector::ElementKeyInt(*i),
                }),
            })
            .collect(),
    }
}

pub fn diagnostic(d: &Diagnostic) -> pb::Diagnostic {
    pb::Diagnostic {
        severity: match d.severity {
            Severity::Error => pb::diagnostic::Severity::Error,
            Severity::Warning => pb::diagnostic::Severity::Warning,
        } as i32,
        summary: d.summary.clone(),
        detail: d.detail.clone(),
        attribute: d.path.as_ref().filter(|p| !p.is_root()).map(path),
    }
}

pub fn diagnostics(d: &Diagnostics) -> Vec<pb::Diagnostic> {
    d.iter().map(diagnostic).collect()
}

/// Decodes a DynamicValue: msgpack when present, else JSON, else null (as Terraform does).
pub fn decode(v: Option<&pb::DynamicValue>, t: &Type) -> Result<Value, Diagnostic> {
    let Some(v) = v else { return Ok(Value::Null) };
    let r = if !v.msgpack.is_empty() {
        cty::msgpack::decode(&v.msgpack, t)
    } else if !v.json.is_empty() {
        cty::json::decode_bytes(&v.json, t)
    } else {
        return Ok(Value::Null);
    };
    r.map_err(|e| {
        Diagnostic::error(
            "Provider could not decode a value from Terraform",
            format!("{e}. This is a bug in Terraform or paved; please report it with TF_LOG=trace output."),
        )
    })
}

/// Encodes a value as msgpack, the encoding Terraform reliably accepts in responses.
pub fn encode(v: &Value, t: &Type) -> Result<pb::DynamicValue, Diagnostic> {
    cty::msgpack::encode(v, t)
        .map(|msgpack| pb::DynamicValue {
            msgpack,
            json: vec![],
        })
        .map_err(|e| {
            Diagnostic::error(
                "Provider produced a value it could not encode",
                format!("{e}. This is a bug in paved; please report it."),
            )
        })
}

pub fn path_from_pb(p: &pb::AttributePath) -> AttrPath {
    use pb::attribute_path::step::Selector;
    AttrPath(
        p.steps
            .iter()
            .filter_map(|s| {
                Some(match s.selector.as_ref()? {
                    Selector::AttributeName(a) => Step::Attr(a.clone()),
                    Selector::ElementKeyString(k) => Step::Key(k.clone()),
                    Selector::ElementKeyInt(i) => Step::Index(*i),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_renders_modes_and_types() {
        let s = Schema::new(
            1,
            Block::new("d")
                .attr(Attribute::required("a", Type::String, ""))
                .attr(Attribute::optional_computed("b", Type::list(Type::String), "").sensitive())
                .block("n", Nesting::Single, Block::new("")),
        );
        let p = schema(&s);
        let b = p.block.unwrap();
        assert_eq!(p.version, 1);
        assert!(b.attributes[0].required && !b.attributes[0].optional);
        assert!(b.attributes[1].optional && b.attributes[1].computed && b.attributes[1].sensitive);
        assert_eq!(b.attributes[1].r#type, br#"["list","string"]"#.to_vec());
        assert!(
            b.block_types[0].block.is_some(),
            "every nested block must carry a block"
        );
    }

    #[test]
    fn paths_round_trip() {
        let p = AttrPath::attr("tags").key("team");
        assert_eq!(path_from_pb(&path(&p)), p);
        let p = AttrPath::attr("instance_types").index(1);
        assert_eq!(path_from_pb(&path(&p)), p);
    }

    #[test]
    fn root_paths_are_omitted() {
        let d = Diagnostic::error("x", "y").at(AttrPath::root());
        assert!(diagnostic(&d).attribute.is_none());
    }
}
