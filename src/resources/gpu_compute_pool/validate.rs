//! Plan-time checks for `paved_gpu_compute_pool`. Each error names the attribute and says how to
//! fix it. Unknown values (from other resources) are skipped, never guessed.

use super::catalog;
use crate::cty::Value;
use crate::diag::{AttrPath, Diagnostics};
use crate::resources::common::{check_count, check_len};

pub const ACCELERATOR_HINT: &str = "nvidia-t4, nvidia-a10g, nvidia-l4, nvidia-v100-16gb, nvidia-a100-40gb, nvidia-a100-80gb, nvidia-h100-80gb";

pub fn validate(c: &Value) -> Diagnostics {
    let mut d = Diagnostics::new();
    name(c, &mut d);
    cloud(c, &mut d);
    hardware(c, &mut d);
    nodes(c, &mut d);
    versions(c, &mut d);
    placement(c, &mut d);
    node_config(c, &mut d);
    crate::resources::common::validate_timeouts(c, &mut d);
    d
}

fn name(c: &Value, d: &mut Diagnostics) {
    if let Some(n) = c.get("name").as_str() {
        let ok = !n.is_empty()
            && n.len() <= 63
            && n.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
            && !n.starts_with('-')
            && !n.ends_with('-');
        if !ok {
            d.attr_error(
                AttrPath::attr("name"),
                "Invalid pool name",
                format!("{n:?} is not a valid name: use 1-63 lowercase letters, digits and dashes, starting and ending with a letter or digit (it becomes a Kubernetes label)."),
            );
        }
    }
}

/// The pool's cloud as validation sees it: None while unknown (then cloud-specific checks are
/// skipped), `aws` when unset (the default).
fn cloud_of(c: &Value) -> Option<&str> {
    match c.get("cloud") {
        Value::Null => Some("aws"),
        v => v.as_str(),
    }
}

fn cloud(c: &Value, d: &mut Diagnostics) {
    let cloud = cloud_of(c);
    if let Some(other) = cloud.filter(|c| !matches!(*c, "aws" | "gcp")) {
        d.attr_error(
            AttrPath::attr("cloud"),
            "Unknown cloud",
            format!("{other:?} is not supported; use \"aws\" or \"gcp\"."),
        );
    }
    let img = c.get("image_id");
    match cloud {
        Some("aws") => {
            if img.is_null() {
                d.attr_error(
                    AttrPath::attr("image_id"),
                    "Missing image_id",
                    "AWS pools need a machine image with the NVIDIA driver, e.g. an AWS Deep Learning Base GPU AMI. Set image_id = \"ami-…\".",
                );
            }
            if let Some(img) = img.as_str().filter(|i| !i.starts_with("ami-")) {
                d.attr_error(
                    AttrPath::attr("image_id"),
                    "Invalid image_id",
                    format!("{img:?} is not an AMI ID; AMI IDs look like ami-0123456789abcdef0."),
                );
            }
            if !c.get("gcp_project").is_null() && !c.get("gcp_project").is_unknown() {
                d.attr_error(
                    AttrPath::attr("gcp_project"),
                    "gcp_project on an AWS pool",
                    "gcp_project applies to cloud = \"gcp\" pools only; remove it or set cloud = \"gcp\".",
                );
            }
        }
        Some("gcp") => {
            if img.is_null() {
                d.attr_error(
                    AttrPath::attr("image_id"),
                    "Missing image_id",
                    "GCP pools need a boot image with the NVIDIA driver, e.g. image_id = \"projects/deeplearning-platform-release/global/images/family/common-cu128-ubuntu-2204-nvidia-570\".",
                );
            }
            if let Some(i) = img.as_str().filter(|i| !is_gce_image(i)) {
                d.attr_error(
                    AttrPath::attr("image_id"),
                    "Invalid image_id",
                    format!("{i:?} is not a Compute Engine image; write projects/PROJECT/global/images/NAME or projects/PROJECT/global/images/family/FAMILY."),
                );
            }
            for a in ["subnet_ids", "security_group_ids"] {
                if matches!(c.get(a), Value::List(v) if !v.is_empty()) {
                    d.attr_error(
                        AttrPath::attr(a),
                        "Not used on GCP",
                        format!("{a} are EC2 concepts; GCP pools run on the project's default network (use availability_zones to choose zones). Remove {a}."),
                    );
                }
            }
            if let (Some(region), Value::List(zones)) =
                (c.get("region").as_str(), c.get("availability_zones"))
            {
                for (i, z) in zones.iter().enumerate() {
                    if let Some(z) = z.as_str().filter(|z| {
                        z.strip_prefix(region)
                            .and_then(|r| r.strip_prefix('-'))
                            .is_none_or(|s| s.is_empty())
                    }) {
                        d.attr_error(
                            AttrPath::attr("availability_zones").index(i),
                            "Zone outside the region",
                            format!("{z:?} is not a zone of {region}; GCP zones are named REGION-LETTER, e.g. {region}-a."),
                        );
                    }
                }
            }
        }
        _ => {}
    }
    catalog::checks::capacity_type(c.get("capacity_type"), AttrPath::attr("capacity_type"), d);
}

/// `projects/P/global/images/NAME`, `.../images/family/F`, or a full https URL of one.
fn is_gce_image(i: &str) -> bool {
    let rest = match i.find("projects/") {
        Some(p) if p == 0 || i.starts_with("https://") => &i[p..],
        _ => return false,
    };
    let parts: Vec<&str> = rest.split('/').collect();
    matches!(parts.as_slice(), ["projects", p, "global", "images", n] if !p.is_empty() && !n.is_empty())
        || matches!(parts.as_slice(), ["projects", p, "global", "images", "family", f] if !p.is_empty() && !f.is_empty())
}

fn hardware(c: &Value, d: &mut Diagnostics) {
    let accel = c.get("accelerator");
    let types = c.get("instance_types");
    let accel_type = accel.get("type").as_str();
    if accel.is_null() && types.is_null() {
        d.attr_error(
            AttrPath::attr("accelerator"),
            "No GPU hardware chosen",
            format!("Add an accelerator block (type = one of {ACCELERATOR_HINT}) or set instance_types."),
        );
    }
    if let Some(t) = catalog::checks::accelerator(
        accel.get("type"),
        AttrPath::attr("accelerator").then("type"),
        d,
    ) {
        if let Some(n) = check_count(
            accel.get("count"),
            AttrPath::attr("accelerator").then("count"),
            1,
            16,
            "accelerator.count",
            d,
        ) {
            match cloud_of(c) {
                Some("gcp") if catalog::gce_counts_for(t).is_empty() => d.attr_error(
                    AttrPath::attr("accelerator").then("type"),
                    "Accelerator not offered on GCP",
                    format!("Compute Engine has no {t}; on GCP use one of {} (nvidia-l4 is the closest to the A10G).", gce_accelerators().join(", ")),
                ),
                Some("gcp") if types.is_null() && catalog::gce_types_for(t, n).is_empty() => d.attr_error(
                    AttrPath::attr("accelerator").then("count"),
                    "No machine type has that many GPUs",
                    format!(
                        "On GCP, {t} nodes come with {:?} GPUs; pick one of those counts.",
                        catalog::gce_counts_for(t)
                    ),
                ),
                Some("aws") if types.is_null() && catalog::types_for(t, n).is_empty() => d.attr_error(
                    AttrPath::attr("accelerator").then("count"),
                    "No instance type has that many GPUs",
                    format!(
                        "{t} nodes come with {:?} GPUs; pick one of those counts.",
                        catalog::counts_for(t)
                    ),
                ),
                _ => {}
            }
        }
    }
    if let Value::List(items) = types {
        if items.is_empty() {
            d.attr_error(AttrPath::attr("instance_types"), "Empty instance_types", "List at least one GPU instance type, or remove the argument to use the accelerator's catalog types.");
        }
        for (i, it) in items.iter().enumerate() {
            let Some(name) = it.as_str() else { continue };
            match cloud_of(c) {
                Some("gcp") => {
                    gce_machine_type(
                        name,
                        accel_type,
                        AttrPath::attr("instance_types").index(i),
                        d,
                    );
                    continue;
                }
                Some("aws") => {}
                _ => continue,
            }
            match catalog::instance_type(name) {
                None => d.attr_error(
                    AttrPath::attr("instance_types").index(i),
                    "Not a GPU instance type",
                    format!("{name:?} is not a GPU instance type paved knows; use a type from the g4dn, g5, g6, p3, p4d, p4de or p5 families (see the resource docs)."),
                ),
                Some(cat) => {
                    if let Some(t) = accel_type {
                        if cat.accelerator != t {
                            d.attr_error(
                                AttrPath::attr("instance_types").index(i),
                                "Instance type does not match the accelerator",
                                format!("{name} carries {}, but accelerator.type is {t}. Remove it or change the accelerator.", cat.accelerator),
                            );
                        }
                    }
                }
            }
        }
    }
}

fn gce_accelerators() -> Vec<&'static str> {
    let mut v: Vec<&str> = catalog::GCE_MACHINE_TYPES
        .iter()
        .map(|t| t.accelerator)
        .collect();
    v.sort();
    v.dedup();
    v
}

fn gce_machine_type(name: &str, accel: Option<&str>, path: AttrPath, d: &mut Diagnostics) {
    if catalog::gce_machine_type(name, None).is_none() {
        d.attr_error(
            path,
            "Not a GPU machine type",
            format!("{name:?} is not a Compute Engine GPU machine type paved knows; use a type from the g2, a2-highgpu, a2-ultragpu, a2-megagpu or a3-highgpu families, or n1-standard-* with a T4 or V100 accelerator (see the resource docs)."),
        );
    } else if let Some(t) = accel {
        if catalog::gce_machine_type(name, Some(t)).is_none() {
            d.attr_error(
                path,
                "Machine type does not match the accelerator",
                format!("{name} does not carry {t} on Compute Engine. Remove it or change the accelerator."),
            );
        }
    }
}

/// The most nodes one pool may have (and launch in one apply): a platform limit, documented in
/// the resource's Limits section.
pub const MAX_NODES: i64 = 1000;

fn nodes(c: &Value, d: &mut Diagnostics) {
    let n = c.get("nodes");
    let at = |a: &str| AttrPath::attr("nodes").then(a);
    let count = |name: &str, lo: i64, d: &mut Diagnostics| {
        check_count(
            n.get(name),
            at(name),
            lo,
            MAX_NODES,
            &format!("nodes.{name}"),
            d,
        )
    };
    let min = count("min", 0, d);
    let max = count("max", 1, d);
    let desired = count("desired", 0, d);
    if let (Some(min), Some(max)) = (min, max) {
        if min > max {
            d.attr_error(
                at("min"),
                "nodes.min is larger than nodes.max",
                format!("min = {min} and max = {max}: make min ≤ max."),
            );
        }
    }
    if let Some(des) = desired {
        if min.is_some_and(|m| des < m) || max.is_some_and(|m| des > m) {
            d.attr_error(
                at("desired"),
                "nodes.desired is outside min..max",
                format!(
                    "desired = {des} must lie between min = {} and max = {}.",
                    min.map_or("?".into(), |v| v.to_string()),
                    max.map_or("?".into(), |v| v.to_string())
                ),
            );
        }
    }
}

fn versions(c: &Value, d: &mut Diagnostics) {
    let driver_v = c.get("driver_version").as_str();
    let cuda = catalog::checks::cuda(c.get("cuda_version"), AttrPath::attr("cuda_version"), d);
    let driver = driver_v.and_then(|v| {
        let p = catalog::parse_driver(v);
        if p.is_none() {
            d.attr_error(
                AttrPath::attr("driver_version"),
                "Invalid driver version",
                format!("{v:?} is not an NVIDIA driver version such as \"535.104.05\"."),
            );
        }
        p
    });
    if let (Some(cu), Some(dr)) = (cuda, driver) {
        if let Some(min) = catalog::cuda_min_driver(cu) {
            if dr < min {
                d.attr_error(
                    AttrPath::attr("cuda_version"),
                    "CUDA version not supported by the driver",
                    format!(
                        "CUDA {}.{} needs NVIDIA driver {} or newer, but driver_version is {}. Raise driver_version or lower cuda_version.",
                        cu.0, cu.1, catalog::fmt_driver(min), driver_v.unwrap_or_default()
                    ),
                );
            }
        }
    }
    if cuda.is_some() && driver_v.is_none() && c.get("driver_version").is_null() {
        d.attr_error(
            AttrPath::attr("driver_version"),
            "driver_version is needed with cuda_version",
            "Pin the NVIDIA driver too, so paved can check that it supports the CUDA version.",
        );
    }
    if let (Some(cu), Some(t)) = (cuda, c.get("accelerator").get("type").as_str()) {
        if let Some(min) = catalog::accelerator_min_cuda(t) {
            if cu < min {
                d.attr_error(
                    AttrPath::attr("cuda_version"),
                    "CUDA version too old for the GPU",
                    format!(
                        "{t} needs CUDA {}.{} or newer; cuda_version is {}.{}.",
                        min.0, min.1, cu.0, cu.1
                    ),
                );
            }
        }
    }
}

fn placement(c: &Value, d: &mut Diagnostics) {
    let azs = c.get("availability_zones");
    let subnets = c.get("subnet_ids");
    if matches!(azs, Value::List(v) if !v.is_empty())
        && matches!(subnets, Value::List(v) if !v.is_empty())
    {
        d.attr_error(
            AttrPath::attr("availability_zones"),
            "Conflicting placement",
            "Set availability_zones or subnet_ids, not both: each subnet already fixes its zone.",
        );
    }
}

fn node_config(c: &Value, d: &mut Diagnostics) {
    // EC2's own tag limits (128-character keys, 256-character values), checked here so the
    // mistake shows at plan time instead of as a CreateLaunchTemplate error.
    if let Some(m) = c.get("tags").entries() {
        for (k, v) in m {
            if k.len() > 128 {
                d.attr_error(
                    AttrPath::attr("tags").key(k),
                    "Tag key too long",
                    format!(
                        "Tag keys are at most 128 characters; {:?}… has {}.",
                        &k[..k.char_indices().nth(20).map_or(k.len(), |x| x.0)],
                        k.len()
                    ),
                );
            }
            check_len(
                v,
                AttrPath::attr("tags").key(k),
                256,
                &format!("tags[{k:?}]"),
                d,
            );
        }
    }
    for (k, v) in c.get("labels").entries().into_iter().flatten() {
        check_len(
            v,
            AttrPath::attr("labels").key(k),
            63,
            &format!("labels[{k:?}]"),
            d,
        );
    }
    for (i, t) in c.get("taints").elements().iter().enumerate() {
        if let Some(e) = t.get("effect").as_str() {
            if !matches!(e, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
                d.attr_error(
                    AttrPath::attr("taints").index(i).then("effect"),
                    "Invalid taint effect",
                    format!("{e:?} is not a taint effect; use NoSchedule, PreferNoSchedule or NoExecute."),
                );
            }
        }
        if t.get("key").as_str() == Some("") {
            d.attr_error(
                AttrPath::attr("taints").index(i).then("key"),
                "Empty taint key",
                "A taint needs a key.",
            );
        }
    }
    if let Some(m) = c.get("labels").entries() {
        for k in m.keys() {
            let name = k.rsplit('/').next().unwrap_or(k);
            let ok = !name.is_empty()
                && name.len() <= 63
                && name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch));
            if !ok {
                d.attr_error(AttrPath::attr("labels").key(k), "Invalid label key", format!("{k:?} is not a Kubernetes label key (name part: 1-63 of A-Z a-z 0-9 - _ .)."));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::gpu_compute_pool::schema::schema;

    fn base() -> Value {
        let mut v = schema().block.null_object();
        v.set_attr("name", Value::string("train-a10g"));
        v.set_attr("image_id", Value::string("ami-12345678"));
        v.set_attr(
            "accelerator",
            Value::object([
                ("type", Value::string("nvidia-a10g")),
                ("count", Value::int(1)),
            ]),
        );
        v.set_attr(
            "nodes",
            Value::object([
                ("min", Value::int(1)),
                ("max", Value::int(4)),
                ("desired", Value::int(2)),
            ]),
        );
        v
    }

    fn paths(v: &Value) -> Vec<String> {
        validate(v)
            .iter()
            .map(|d| d.path.as_ref().map(|p| p.to_string()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn a_good_config_passes() {
        assert!(validate(&base()).is_empty(), "{:?}", validate(&base()));
    }

    #[test]
    fn node_bounds_are_checked_with_paths() {
        let mut v = base();
        v.set_attr(
            "nodes",
            Value::object([
                ("min", Value::int(3)),
                ("max", Value::int(2)),
                ("desired", Value::int(5)),
            ]),
        );
        assert_eq!(paths(&v), vec!["nodes.min", "nodes.desired"]);
    }

    #[test]
    fn node_counts_are_bounded_whole_numbers() {
        let mut v = base();
        v.set_attr(
            "nodes",
            Value::object([
                ("min", Value::int(0)),
                ("max", Value::float(1e15)),
                ("desired", Value::float(1e15)),
            ]),
        );
        assert_eq!(paths(&v), vec!["nodes.max", "nodes.desired"]);
        assert!(
            validate(&v).0[0].detail.contains("0..1000")
                || validate(&v).0[0].detail.contains("1..1000")
        );
        v.set_attr(
            "nodes",
            Value::object([
                ("min", Value::float(0.5)),
                ("max", Value::int(1000)),
                ("desired", Value::int(-3)),
            ]),
        );
        assert_eq!(paths(&v), vec!["nodes.min", "nodes.desired"]);
        v.set_attr(
            "accelerator",
            Value::object([
                ("type", Value::string("nvidia-a10g")),
                ("count", Value::float(1e30)),
            ]),
        );
        v.set_attr("nodes", base().get("nodes").clone());
        v.set_attr("tags", Value::string_map([("team-note", "x".repeat(300))]));
        assert_eq!(paths(&v), vec!["accelerator.count", "tags[\"team-note\"]"]);
    }

    #[test]
    fn unknown_values_are_not_judged() {
        let mut v = base();
        v.set_attr(
            "nodes",
            Value::object([
                ("min", Value::Unknown),
                ("max", Value::int(2)),
                ("desired", Value::Unknown),
            ]),
        );
        v.set_attr("image_id", Value::Unknown);
        v.set_attr("cuda_version", Value::Unknown);
        assert!(validate(&v).is_empty());
    }

    #[test]
    fn accelerator_and_instance_types_are_checked() {
        let mut v = base();
        v.set_attr(
            "accelerator",
            Value::object([
                ("type", Value::string("nvidia-b300")),
                ("count", Value::int(1)),
            ]),
        );
        assert_eq!(paths(&v), vec!["accelerator.type"]);
        let mut v = base();
        v.set_attr(
            "instance_types",
            Value::string_list(["g5.xlarge", "m5.large", "g4dn.xlarge"]),
        );
        assert_eq!(paths(&v), vec!["instance_types[1]", "instance_types[2]"]);
        let mut v = base();
        v.set_attr(
            "accelerator",
            Value::object([
                ("type", Value::string("nvidia-h100-80gb")),
                ("count", Value::int(1)),
            ]),
        );
        assert_eq!(paths(&v), vec!["accelerator.count"]);
    }

    #[test]
    fn cuda_must_be_supported_by_driver_and_gpu() {
        let mut v = base();
        v.set_attr("cuda_version", Value::string("12.4"));
        v.set_attr("driver_version", Value::string("535.104.05"));
        let d = validate(&v);
        assert_eq!(paths(&v), vec!["cuda_version"]);
        assert!(d.0[0].detail.contains("550.54.14"), "{}", d.0[0].detail);
        v.set_attr("driver_version", Value::string("550.90.07"));
        assert!(validate(&v).is_empty());
        v.set_attr("cuda_version", Value::string("11.0"));
        v.set_attr(
            "accelerator",
            Value::object([
                ("type", Value::string("nvidia-l4")),
                ("count", Value::int(1)),
            ]),
        );
        assert_eq!(paths(&v), vec!["cuda_version"]);
    }

    #[test]
    fn other_fields() {
        let mut v = base();
        v.set_attr("name", Value::string("Bad_Name"));
        v.set_attr("capacity_type", Value::string("reserved"));
        v.set_attr("image_id", Value::Null);
        v.set_attr(
            "timeouts",
            Value::object([
                ("create", Value::string("5 minutes")),
                ("update", Value::Null),
                ("delete", Value::Null),
            ]),
        );
        v.set_attr(
            "taints",
            Value::List(vec![Value::object([
                ("key", Value::string("gpu")),
                ("value", Value::string("")),
                ("effect", Value::string("Never")),
            ])]),
        );
        assert_eq!(
            paths(&v),
            vec![
                "name",
                "image_id",
                "capacity_type",
                "taints[0].effect",
                "timeouts.create"
            ]
        );
    }
}
