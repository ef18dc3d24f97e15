//! The desired state of a managed resource, computed by the same code path `terraform plan`
//! uses: Terraform's proposed-new-state rule, the generic [`crate::plan`] rules, then the
//! resource's own `ModifyPlan` with the ProviderConfig's context. "Up to date" therefore means
//! exactly what an empty second `terraform plan` means.

use crate::context::Context;
use crate::cty::Value;
use crate::diag::{AttrPath, Diagnostics};
use crate::plan;
use crate::resource::{PlanInputs, Resource};
use crate::schema::{Block, Nesting, Schema};

#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub planned: Value,
    pub requires_replace: Vec<AttrPath>,
    pub diags: Diagnostics,
}

/// Terraform's `ProposedNew`: the configuration, with computed attributes the configuration
/// leaves null taken from the prior state.
pub fn proposed_new(block: &Block, prior: &Value, config: &Value) -> Value {
    let mut out = block.null_object();
    for a in &block.attributes {
        let c = config.get(&a.name);
        let v = if a.is_computed() && c.is_null() {
            prior.get(&a.name).clone()
        } else {
            c.clone()
        };
        out.set_attr(&a.name, v);
    }
    for b in &block.blocks {
        let c = config.get(&b.name);
        let p = prior.get(&b.name);
        let v = match b.nesting {
            Nesting::Single if c.is_null() => Value::Null,
            Nesting::Single => proposed_new(&b.block, p, c),
            Nesting::List => Value::List(
                c.elements()
                    .iter()
                    .enumerate()
                    .map(|(i, ce)| {
                        proposed_new(&b.block, p.elements().get(i).unwrap_or(&Value::Null), ce)
                    })
                    .collect(),
            ),
            Nesting::Set => c.clone(),
        };
        out.set_attr(&b.name, v);
    }
    out
}

/// Plans a create (`prior` None) or an update from the observed state.
pub fn desired(
    r: &dyn Resource,
    schema: &Schema,
    ctx: &Context,
    prior: Option<&Value>,
    config: &Value,
) -> Desired {
    let proposed = match prior {
        Some(p) => proposed_new(&schema.block, p, config),
        None => config.clone(),
    };
    let mut p = plan::plan(schema, prior, &proposed, config);
    let mut diags = Diagnostics::new();
    if let Some(m) = r.plan_modifier() {
        let inputs = PlanInputs { prior, config };
        m.modify_plan(
            ctx,
            &inputs,
            &mut p.planned,
            &mut p.requires_replace,
            &mut diags,
        );
    }
    Desired {
        planned: p.planned,
        requires_replace: p.requires_replace,
        diags,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cty::Type;
    use crate::schema::Attribute;

    #[test]
    fn proposed_takes_computed_values_from_prior() {
        let b = Block::new("t")
            .attr(Attribute::computed("id", Type::String, ""))
            .attr(Attribute::optional_computed("team", Type::String, ""))
            .attr(Attribute::optional("note", Type::String, ""))
            .block(
                "nodes",
                Nesting::Single,
                Block::new("n")
                    .attr(Attribute::required("min", Type::Number, ""))
                    .attr(Attribute::optional_computed("desired", Type::Number, "")),
            );
        let mut prior = b.null_object();
        prior.set_attr("id", Value::string("x-1"));
        prior.set_attr("team", Value::string("ml"));
        prior.set_attr("note", Value::string("old"));
        prior.set_attr(
            "nodes",
            Value::object([("min", Value::int(1)), ("desired", Value::int(2))]),
        );
        let mut config = b.null_object();
        config.set_attr(
            "nodes",
            Value::object([("min", Value::int(3)), ("desired", Value::Null)]),
        );
        let p = proposed_new(&b, &prior, &config);
        assert_eq!(p.get("id"), &Value::string("x-1"));
        assert_eq!(p.get("team"), &Value::string("ml"));
        assert_eq!(
            p.get("note"),
            &Value::Null,
            "non-computed follows the config"
        );
        assert_eq!(p.get("nodes").get("min"), &Value::int(3));
        assert_eq!(p.get("nodes").get("desired"), &Value::int(2));
        config.set_attr("nodes", Value::Null);
        assert_eq!(proposed_new(&b, &prior, &config).get("nodes"), &Value::Null);
    }
}
