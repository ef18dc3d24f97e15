//! Generic plan rules every resource gets for free, following Terraform's plan contract
//! (docs/resource-instance-change-lifecycle.md): keep what the user configured, keep prior
//! computed values, plan defaults or unknowns for computed values nobody knows yet, and flag
//! changes to replace-only attributes.

use crate::cty::Value;
use crate::diag::AttrPath;
use crate::schema::{Block, Nesting, Schema};

#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub planned: Value,
    pub requires_replace: Vec<AttrPath>,
}

/// Plans a create (`prior` = None) or an update from Terraform's proposed new state.
pub fn plan(schema: &Schema, prior: Option<&Value>, proposed: &Value, config: &Value) -> Planned {
    let planned = plan_block(&schema.block, prior, proposed, config);
    let mut requires_replace = vec![];
    if let Some(prior) = prior {
        replace_paths(
            &schema.block,
            prior,
            &planned,
            &AttrPath::root(),
            &mut requires_replace,
        );
    }
    Planned {
        planned,
        requires_replace,
    }
}

fn plan_block(block: &Block, prior: Option<&Value>, proposed: &Value, config: &Value) -> Value {
    let mut out = match proposed {
        Value::Object(_) => proposed.clone(),
        _ => block.null_object(),
    };
    for a in &block.attributes {
        if a.write_only {
            // Never in a plan: apply reads the value from the configuration.
            out.set_attr(&a.name, Value::Null);
            continue;
        }
        if !a.is_computed() || !config.get(&a.name).is_null() {
            continue;
        }
        let proposed_v = proposed.get(&a.name);
        let v = match (prior, &a.default) {
            // Unset optional+computed with a default: the default, on create and update alike,
            // so removing an argument from config returns it to the default.
            (_, Some(d)) => d.clone(),
            (None, None) => Value::Unknown,
            (Some(_), None) => proposed_v.clone(),
        };
        out.set_attr(&a.name, v);
    }
    for b in &block.blocks {
        let prior_b = prior.map(|p| p.get(&b.name));
        let proposed_b = proposed.get(&b.name);
        let config_b = config.get(&b.name);
        let v = match b.nesting {
            Nesting::Single => {
                // Terraform 1.0 proposes the prior block for one removed from config; the plan
                // must follow the config (an absent block is null).
                if config_b.is_null() {
                    Value::Null
                } else if proposed_b.is_null() || proposed_b.is_unknown() {
                    proposed_b.clone()
                } else {
                    let p = prior_b.filter(|p| !p.is_null());
                    plan_block(&b.block, p, proposed_b, config_b)
                }
            }
            Nesting::List => match proposed_b {
                Value::List(items) => Value::List(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| {
                            let p = prior_b.and_then(|p| p.elements().get(i));
                            let c = config_b.elements().get(i).unwrap_or(&Value::Null);
                            plan_block(&b.block, p, item, c)
                        })
                        .collect(),
                ),
                other => other.clone(),
            },
            // Set elements cannot be correlated between plan and apply; they are planned as the
            // user wrote them (paved's set blocks hold no computed attributes).
            Nesting::Set => proposed_b.clone(),
        };
        out.set_attr(&b.name, v);
    }
    out
}

fn replace_paths(
    block: &Block,
    prior: &Value,
    planned: &Value,
    at: &AttrPath,
    out: &mut Vec<AttrPath>,
) {
    for a in &block.attributes {
        if a.force_new && prior.get(&a.name) != planned.get(&a.name) {
            out.push(extend(at, &a.name));
        }
    }
    for b in &block.blocks {
        let (p, n) = (prior.get(&b.name), planned.get(&b.name));
        if b.force_new {
            if p != n {
                out.push(extend(at, &b.name));
            }
        } else if b.nesting == Nesting::Single && !p.is_null() && !n.is_null() {
            replace_paths(&b.block, p, n, &extend(at, &b.name), out);
        }
    }
}

fn extend(at: &AttrPath, name: &str) -> AttrPath {
    at.clone().then(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cty::Type;
    use crate::schema::Attribute;

    fn schema() -> Schema {
        Schema::new(
            0,
            Block::new("t")
                .attr(Attribute::required("name", Type::String, "").force_new())
                .attr(Attribute::optional("team", Type::String, ""))
                .attr(Attribute::computed("id", Type::String, ""))
                .attr(
                    Attribute::optional_computed("capacity_type", Type::String, "")
                        .default(Value::string("on_demand")),
                )
                .attr(Attribute::optional_computed("region", Type::String, ""))
                .block(
                    "nodes",
                    Nesting::Single,
                    Block::new("n")
                        .attr(Attribute::required("desired", Type::Number, ""))
                        .attr(Attribute::optional("zone", Type::String, "").force_new()),
                ),
        )
    }

    fn obj(name: &str, desired: i64) -> Value {
        Value::object([
            ("name", Value::string(name)),
            ("team", Value::Null),
            ("id", Value::Null),
            ("capacity_type", Value::Null),
            ("region", Value::Null),
            (
                "nodes",
                Value::object([("desired", Value::int(desired)), ("zone", Value::Null)]),
            ),
        ])
    }

    #[test]
    fn create_marks_computed_unknown_and_applies_defaults() {
        let cfg = obj("a", 1);
        let p = plan(&schema(), None, &cfg, &cfg);
        assert_eq!(p.planned.get("id"), &Value::Unknown);
        assert_eq!(p.planned.get("region"), &Value::Unknown);
        assert_eq!(p.planned.get("capacity_type"), &Value::string("on_demand"));
        assert_eq!(
            p.planned.get("team"),
            &Value::Null,
            "non-computed null stays null"
        );
        assert!(p.requires_replace.is_empty(), "no replacement on create");
    }

    #[test]
    fn update_keeps_prior_computed_values() {
        let mut prior = obj("a", 1);
        prior.set_attr("id", Value::string("gp-1"));
        prior.set_attr("region", Value::string("us-east-1"));
        prior.set_attr("capacity_type", Value::string("on_demand"));
        let cfg = obj("a", 3);
        let mut proposed = cfg.clone();
        proposed.set_attr("id", Value::string("gp-1"));
        proposed.set_attr("region", Value::string("us-east-1"));
        proposed.set_attr("capacity_type", Value::string("on_demand"));
        let p = plan(&schema(), Some(&prior), &proposed, &cfg);
        assert_eq!(p.planned.get("id"), &Value::string("gp-1"));
        assert_eq!(p.planned.get("nodes").get("desired"), &Value::int(3));
        assert!(p.requires_replace.is_empty());
    }

    #[test]
    fn a_block_removed_from_config_is_planned_null() {
        let prior = obj("a", 1);
        let mut cfg = obj("a", 1);
        cfg.set_attr("nodes", Value::Null);
        // Terraform 1.0 proposes the prior block when the config drops it.
        let p = plan(&schema(), Some(&prior), &prior, &cfg);
        assert_eq!(p.planned.get("nodes"), &Value::Null);
    }

    #[test]
    fn force_new_changes_are_reported_with_paths() {
        let prior = obj("a", 1);
        let mut cfg = obj("b", 1);
        cfg.get_mut("nodes")
            .unwrap()
            .set_attr("zone", Value::string("z"));
        let p = plan(&schema(), Some(&prior), &cfg, &cfg);
        assert_eq!(
            p.requires_replace,
            vec![AttrPath::attr("name"), AttrPath::attr("nodes").then("zone")]
        );
    }
}
