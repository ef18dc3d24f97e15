//! What paved knows about GPU hardware on EC2: which instance types carry which accelerator,
//! what they cost, and which CUDA toolkits a driver supports. Plan-time validation and cost
//! attribution both read this table, so it is the one place to update when AWS adds a type.
//!
//! Prices are public on-demand list prices for us-east-1 (USD/hour, Linux). Spot prices are
//! estimates: on-demand × a per-family discount observed over time. Both are overridable with the
//! provider's `price_overrides`.

/// One EC2 GPU instance type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InstanceType {
    pub name: &'static str,
    pub accelerator: &'static str,
    pub gpus: i64,
    pub on_demand_usd: f64,
    /// Fraction of the on-demand price a spot instance typically costs.
    pub spot_factor: f64,
}

const fn it(
    name: &'static str,
    accelerator: &'static str,
    gpus: i64,
    usd: f64,
    spot: f64,
) -> InstanceType {
    InstanceType {
        name,
        accelerator,
        gpus,
        on_demand_usd: usd,
        spot_factor: spot,
    }
}

pub const INSTANCE_TYPES: &[InstanceType] = &[
    it("g4dn.xlarge", "nvidia-t4", 1, 0.526, 0.40),
    it("g4dn.2xlarge", "nvidia-t4", 1, 0.752, 0.40),
    it("g4dn.4xlarge", "nvidia-t4", 1, 1.204, 0.40),
    it("g4dn.8xlarge", "nvidia-t4", 1, 2.176, 0.40),
    it("g4dn.12xlarge", "nvidia-t4", 4, 3.912, 0.40),
    it("g4dn.metal", "nvidia-t4", 8, 7.824, 0.40),
    it("g5.xlarge", "nvidia-a10g", 1, 1.006, 0.45),
    it("g5.2xlarge", "nvidia-a10g", 1, 1.212, 0.45),
    it("g5.4xlarge", "nvidia-a10g", 1, 1.624, 0.45),
    it("g5.8xlarge", "nvidia-a10g", 1, 2.448, 0.45),
    it("g5.12xlarge", "nvidia-a10g", 4, 5.672, 0.45),
    it("g5.24xlarge", "nvidia-a10g", 4, 8.144, 0.45),
    it("g5.48xlarge", "nvidia-a10g", 8, 16.288, 0.45),
    it("g6.xlarge", "nvidia-l4", 1, 0.8048, 0.45),
    it("g6.2xlarge", "nvidia-l4", 1, 0.9776, 0.45),
    it("g6.4xlarge", "nvidia-l4", 1, 1.3232, 0.45),
    it("g6.12xlarge", "nvidia-l4", 4, 4.6016, 0.45),
    it("g6.24xlarge", "nvidia-l4", 4, 6.6752, 0.45),
    it("g6.48xlarge", "nvidia-l4", 8, 13.3504, 0.45),
    it("p3.2xlarge", "nvidia-v100-16gb", 1, 3.06, 0.35),
    it("p3.8xlarge", "nvidia-v100-16gb", 4, 12.24, 0.35),
    it("p3.16xlarge", "nvidia-v100-16gb", 8, 24.48, 0.35),
    it("p4d.24xlarge", "nvidia-a100-40gb", 8, 32.7726, 0.50),
    it("p4de.24xlarge", "nvidia-a100-80gb", 8, 40.9657, 0.50),
    it("p5.48xlarge", "nvidia-h100-80gb", 8, 98.32, 0.55),
];

/// Regions whose prices this table gives. AWS lists the same Linux on-demand price for the GPU
/// types above in N. Virginia, Ohio and Oregon; other regions differ by region and type, so paved
/// does not guess them (functions refuse them; pools fall back to `price_overrides`).
pub const PRICED_REGIONS: &[&str] = &["us-east-1", "us-east-2", "us-west-2"];

/// One Compute Engine machine type a GPU pool can run on. A2/A3/G2 types carry their GPUs
/// built in; N1 types get theirs as `guestAccelerators` (`guest` names the accelerator type
/// Compute wants), billed per GPU on top of the VM.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GceMachineType {
    pub name: &'static str,
    /// paved's accelerator name (the same names as on EC2).
    pub accelerator: &'static str,
    pub gpus: i64,
    /// Compute's accelerator type for N1 `guestAccelerators`; None when the GPUs are built in.
    pub guest: Option<&'static str>,
    /// Whole-VM on-demand USD/hour in us-central1, GPUs included.
    pub on_demand_usd: f64,
    /// Whole-VM Spot USD/hour in us-central1 on the price date; None where no dated Spot price
    /// for the attached GPU is published (then the on-demand price is the estimate).
    pub spot_usd: Option<f64>,
}

const fn gm(
    name: &'static str,
    accelerator: &'static str,
    gpus: i64,
    guest: Option<&'static str>,
    usd: f64,
    spot: Option<f64>,
) -> GceMachineType {
    GceMachineType {
        name,
        accelerator,
        gpus,
        guest,
        on_demand_usd: usd,
        spot_usd: spot,
    }
}

/// Per-GPU on-demand USD/hour of the N1 guest accelerators (Google's GPU price list, us-central1).
const T4_USD: f64 = 0.35;
const V100_USD: f64 = 2.48;

/// Compute Engine GPU machine types, with us-central1 prices from the Cloud Billing Catalog as
/// published in Cyclenerd/google-cloud-pricing-cost-calculator's pricing.yml of 2026-07-30
/// (whole VM; N1 prices are the VM's plus the GPU list price per GPU). Spot prices move up to
/// once a day, so they are dated estimates; `price_overrides` replaces any of them
/// (`MACHINE_TYPE` or `MACHINE_TYPE:spot`). nvidia-a10g has no Compute Engine equivalent.
pub const GCE_MACHINE_TYPES: &[GceMachineType] = &[
    gm(
        "n1-standard-4",
        "nvidia-t4",
        1,
        Some("nvidia-tesla-t4"),
        0.19 + T4_USD,
        None,
    ),
    gm(
        "n1-standard-8",
        "nvidia-t4",
        1,
        Some("nvidia-tesla-t4"),
        0.38 + T4_USD,
        None,
    ),
    gm(
        "n1-standard-16",
        "nvidia-t4",
        2,
        Some("nvidia-tesla-t4"),
        0.76 + 2.0 * T4_USD,
        None,
    ),
    gm(
        "n1-standard-32",
        "nvidia-t4",
        4,
        Some("nvidia-tesla-t4"),
        1.52 + 4.0 * T4_USD,
        None,
    ),
    gm(
        "n1-standard-8",
        "nvidia-v100-16gb",
        1,
        Some("nvidia-tesla-v100"),
        0.38 + V100_USD,
        None,
    ),
    gm(
        "n1-standard-16",
        "nvidia-v100-16gb",
        2,
        Some("nvidia-tesla-v100"),
        0.76 + 2.0 * V100_USD,
        None,
    ),
    gm(
        "n1-standard-32",
        "nvidia-v100-16gb",
        4,
        Some("nvidia-tesla-v100"),
        1.52 + 4.0 * V100_USD,
        None,
    ),
    gm(
        "n1-standard-64",
        "nvidia-v100-16gb",
        8,
        Some("nvidia-tesla-v100"),
        3.04 + 8.0 * V100_USD,
        None,
    ),
    gm("g2-standard-4", "nvidia-l4", 1, None, 0.7068, Some(0.3973)),
    gm("g2-standard-8", "nvidia-l4", 1, None, 0.8536, Some(0.4799)),
    gm("g2-standard-12", "nvidia-l4", 1, None, 1.0004, Some(0.5624)),
    gm("g2-standard-24", "nvidia-l4", 2, None, 2.0008, Some(1.1248)),
    gm("g2-standard-48", "nvidia-l4", 4, None, 4.0017, Some(2.2496)),
    gm("g2-standard-96", "nvidia-l4", 8, None, 8.0033, Some(4.4993)),
    gm(
        "a2-highgpu-1g",
        "nvidia-a100-40gb",
        1,
        None,
        3.6734,
        Some(1.9280),
    ),
    gm(
        "a2-highgpu-2g",
        "nvidia-a100-40gb",
        2,
        None,
        7.3468,
        Some(3.8560),
    ),
    gm(
        "a2-highgpu-4g",
        "nvidia-a100-40gb",
        4,
        None,
        14.6936,
        Some(7.7121),
    ),
    gm(
        "a2-highgpu-8g",
        "nvidia-a100-40gb",
        8,
        None,
        29.3871,
        Some(15.4242),
    ),
    gm(
        "a2-megagpu-16g",
        "nvidia-a100-40gb",
        16,
        None,
        55.7395,
        Some(29.2557),
    ),
    gm(
        "a2-ultragpu-1g",
        "nvidia-a100-80gb",
        1,
        None,
        5.0688,
        Some(2.7595),
    ),
    gm(
        "a2-ultragpu-2g",
        "nvidia-a100-80gb",
        2,
        None,
        10.1376,
        Some(5.5191),
    ),
    gm(
        "a2-ultragpu-4g",
        "nvidia-a100-80gb",
        4,
        None,
        20.2752,
        Some(11.0382),
    ),
    gm(
        "a2-ultragpu-8g",
        "nvidia-a100-80gb",
        8,
        None,
        40.5504,
        Some(22.0764),
    ),
    gm(
        "a3-highgpu-8g",
        "nvidia-h100-80gb",
        8,
        None,
        88.49,
        Some(50.6095),
    ),
];

/// The Compute Engine entry for `name` carrying `accelerator` (N1 types appear once per GPU
/// model they take; without an accelerator the first entry).
pub fn gce_machine_type(name: &str, accelerator: Option<&str>) -> Option<&'static GceMachineType> {
    GCE_MACHINE_TYPES
        .iter()
        .find(|t| t.name == name && accelerator.is_none_or(|a| t.accelerator == a))
}

/// The entry of a running VM: its machine type and the guest accelerator type the API reports
/// (`nvidia-tesla-t4`; None for machine types with built-in GPUs).
pub fn gce_vm_type(name: &str, guest: Option<&str>) -> Option<&'static GceMachineType> {
    GCE_MACHINE_TYPES
        .iter()
        .find(|t| t.name == name && (guest.is_none() || t.guest == guest))
}

/// Compute Engine machine types for `count` GPUs of `accel`, cheapest first.
pub fn gce_types_for(accel: &str, count: i64) -> Vec<&'static str> {
    let mut v: Vec<&GceMachineType> = GCE_MACHINE_TYPES
        .iter()
        .filter(|t| t.accelerator == accel && t.gpus == count)
        .collect();
    v.sort_by(|a, b| a.on_demand_usd.total_cmp(&b.on_demand_usd));
    v.into_iter().map(|t| t.name).collect()
}

/// GPU counts Compute Engine offers for an accelerator (for error messages).
pub fn gce_counts_for(accel: &str) -> Vec<i64> {
    let mut v: Vec<i64> = GCE_MACHINE_TYPES
        .iter()
        .filter(|t| t.accelerator == accel)
        .map(|t| t.gpus)
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Hourly price of one Compute Engine VM; overrides win over the table. Spot without a dated
/// price falls back to the on-demand price (an upper bound), as the resource docs say.
pub fn gce_hourly_price(
    name: &str,
    accelerator: Option<&str>,
    spot: bool,
    overrides: &std::collections::BTreeMap<String, f64>,
) -> Option<f64> {
    if spot {
        if let Some(p) = overrides.get(&format!("{name}:spot")) {
            return Some(*p);
        }
    }
    if let Some(p) = overrides.get(name) {
        if !spot {
            return Some(*p);
        }
    }
    let t = gce_machine_type(name, accelerator)?;
    let on_demand = overrides.get(name).copied().unwrap_or(t.on_demand_usd);
    Some(match (spot, t.spot_usd) {
        (true, Some(s)) => s,
        _ => on_demand,
    })
}

/// GPUs per node of a machine type on `cloud` (for plan-time totals).
pub fn gpus_per_node(cloud: &str, name: &str, accelerator: Option<&str>) -> Option<i64> {
    match cloud {
        "gcp" => gce_machine_type(name, accelerator).map(|t| t.gpus),
        _ => instance_type(name).map(|t| t.gpus),
    }
}

/// Accelerators and the oldest CUDA toolkit that supports their architecture.
pub const ACCELERATORS: &[(&str, (u32, u32))] = &[
    ("nvidia-t4", (10, 0)),
    ("nvidia-v100-16gb", (9, 0)),
    ("nvidia-a10g", (11, 1)),
    ("nvidia-l4", (11, 8)),
    ("nvidia-a100-40gb", (11, 0)),
    ("nvidia-a100-80gb", (11, 0)),
    ("nvidia-h100-80gb", (11, 8)),
];

/// CUDA toolkit → minimum Linux driver (NVIDIA's CUDA toolkit release notes, table 3).
/// (CUDA major.minor, minimum driver major.minor.patch).
pub type CudaDriver = ((u32, u32), (u32, u32, u32));

pub const CUDA_MIN_DRIVER: &[CudaDriver] = &[
    ((11, 0), (450, 36, 6)),
    ((11, 1), (455, 23, 0)),
    ((11, 2), (460, 27, 3)),
    ((11, 3), (465, 19, 1)),
    ((11, 4), (470, 42, 1)),
    ((11, 5), (495, 29, 5)),
    ((11, 6), (510, 39, 1)),
    ((11, 7), (515, 43, 4)),
    ((11, 8), (520, 61, 5)),
    ((12, 0), (525, 60, 13)),
    ((12, 1), (530, 30, 2)),
    ((12, 2), (535, 54, 3)),
    ((12, 3), (545, 23, 6)),
    ((12, 4), (550, 54, 14)),
    ((12, 5), (555, 42, 2)),
    ((12, 6), (560, 28, 3)),
    ((12, 8), (570, 26, 0)),
    ((12, 9), (575, 51, 3)),
];

pub fn instance_type(name: &str) -> Option<&'static InstanceType> {
    INSTANCE_TYPES.iter().find(|t| t.name == name)
}

pub fn accelerator_names() -> Vec<&'static str> {
    ACCELERATORS.iter().map(|a| a.0).collect()
}

pub fn accelerator_min_cuda(accel: &str) -> Option<(u32, u32)> {
    ACCELERATORS.iter().find(|a| a.0 == accel).map(|a| a.1)
}

/// Instance types for `count` GPUs of `accel`, cheapest first: the fallback order when the
/// user names an accelerator instead of instance types.
pub fn types_for(accel: &str, count: i64) -> Vec<&'static str> {
    let mut v: Vec<&InstanceType> = INSTANCE_TYPES
        .iter()
        .filter(|t| t.accelerator == accel && t.gpus == count)
        .collect();
    v.sort_by(|a, b| a.on_demand_usd.total_cmp(&b.on_demand_usd));
    v.into_iter().map(|t| t.name).collect()
}

/// GPU counts available for an accelerator (for error messages).
pub fn counts_for(accel: &str) -> Vec<i64> {
    let mut v: Vec<i64> = INSTANCE_TYPES
        .iter()
        .filter(|t| t.accelerator == accel)
        .map(|t| t.gpus)
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Hourly price of one instance; overrides win over the table.
pub fn hourly_price(
    name: &str,
    spot: bool,
    overrides: &std::collections::BTreeMap<String, f64>,
) -> Option<f64> {
    let key = if spot {
        format!("{name}:spot")
    } else {
        name.to_string()
    };
    if let Some(p) = overrides.get(&key) {
        return Some(*p);
    }
    let t = instance_type(name)?;
    let base = overrides.get(name).copied().unwrap_or(t.on_demand_usd);
    Some(if spot { base * t.spot_factor } else { base })
}

pub fn parse_cuda(v: &str) -> Option<(u32, u32)> {
    let mut it = v.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    it.next().is_none().then_some((major, minor))
}

pub fn parse_driver(v: &str) -> Option<(u32, u32, u32)> {
    let parts: Vec<&str> = v.split('.').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return None;
    }
    let n = |s: &str| s.parse::<u32>().ok();
    Some((
        n(parts[0])?,
        n(parts[1])?,
        parts.get(2).map_or(Some(0), |p| n(p))?,
    ))
}

pub fn cuda_min_driver(cuda: (u32, u32)) -> Option<(u32, u32, u32)> {
    CUDA_MIN_DRIVER.iter().find(|c| c.0 == cuda).map(|c| c.1)
}

/// A driver version as NVIDIA writes it: 535.54.03, or 570.26 when there is no patch level.
pub fn fmt_driver(d: (u32, u32, u32)) -> String {
    if d.2 == 0 {
        format!("{}.{}", d.0, d.1)
    } else {
        format!("{}.{}.{:02}", d.0, d.1, d.2)
    }
}

pub fn known_cuda_versions() -> Vec<String> {
    CUDA_MIN_DRIVER
        .iter()
        .map(|c| format!("{}.{}", c.0 .0, c.0 .1))
        .collect()
}

/// Checks shared by every argument that names catalog entries, so a pool, an endpoint and the
/// catalog data source word the same mistake the same way. Unknown or null values pass.
pub mod checks {
    use crate::cty::Value;
    use crate::diag::{AttrPath, Diagnostics};

    /// An accelerator name; returns it when known.
    pub fn accelerator<'a>(v: &'a Value, path: AttrPath, d: &mut Diagnostics) -> Option<&'a str> {
        let a = v.as_str()?;
        if super::accelerator_min_cuda(a).is_some() {
            return Some(a);
        }
        d.attr_error(
            path,
            "Unknown accelerator type",
            format!(
                "{a:?} is not a known accelerator; use one of {}.",
                super::accelerator_names().join(", ")
            ),
        );
        None
    }

    /// A CUDA toolkit version; returns it parsed when known.
    pub fn cuda(v: &Value, path: AttrPath, d: &mut Diagnostics) -> Option<(u32, u32)> {
        let s = v.as_str()?;
        let p = super::parse_cuda(s).filter(|p| super::cuda_min_driver(*p).is_some());
        if p.is_none() {
            d.attr_error(
                path,
                "Unknown CUDA version",
                format!(
                    "{s:?} is not a CUDA toolkit paved knows; use one of {}.",
                    super::known_cuda_versions().join(", ")
                ),
            );
        }
        p
    }

    /// `on_demand` or `spot`.
    pub fn capacity_type(v: &Value, path: AttrPath, d: &mut Diagnostics) {
        if let Some(ct) = v.as_str() {
            if ct != "on_demand" && ct != "spot" {
                d.attr_error(
                    path,
                    "Invalid capacity_type",
                    format!("{ct:?} is not a capacity type; use \"on_demand\" or \"spot\"."),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn accelerator_maps_to_cheapest_first() {
        assert_eq!(types_for("nvidia-a10g", 1)[0], "g5.xlarge");
        assert_eq!(
            types_for("nvidia-a10g", 4),
            vec!["g5.12xlarge", "g5.24xlarge"]
        );
        assert!(types_for("nvidia-h100-80gb", 1).is_empty());
        assert_eq!(counts_for("nvidia-h100-80gb"), vec![8]);
    }

    #[test]
    fn every_catalog_accelerator_is_known() {
        for t in INSTANCE_TYPES {
            assert!(accelerator_min_cuda(t.accelerator).is_some(), "{}", t.name);
        }
    }

    #[test]
    fn prices_use_overrides() {
        let mut o = BTreeMap::new();
        assert_eq!(hourly_price("g5.xlarge", false, &o), Some(1.006));
        o.insert("g5.xlarge".to_string(), 2.0);
        assert_eq!(hourly_price("g5.xlarge", true, &o), Some(0.9));
        o.insert("g5.xlarge:spot".to_string(), 0.3);
        assert_eq!(hourly_price("g5.xlarge", true, &o), Some(0.3));
        assert_eq!(hourly_price("m5.large", false, &o), None);
    }

    #[test]
    fn versions_parse() {
        assert_eq!(parse_cuda("12.2"), Some((12, 2)));
        assert_eq!(parse_cuda("12"), None);
        assert_eq!(parse_driver("535.104.05"), Some((535, 104, 5)));
        assert_eq!(parse_driver("550.54"), Some((550, 54, 0)));
        assert_eq!(parse_driver("x"), None);
        assert!(cuda_min_driver((12, 2)).unwrap() <= parse_driver("535.104.05").unwrap());
    }
}
