//! Functions over the GPU catalog (`gpu_compute_pool::catalog`): the same table, prices and
//! CUDA/driver rules the pool validates and charges with, callable from `locals`.

use crate::cty::{Type, Value};
use crate::function::{Function, FunctionError, Parameter};
use crate::resources::gpu_compute_pool::catalog;
use std::collections::BTreeMap;

fn text(args: &[Value], i: usize) -> Result<&str, FunctionError> {
    args.get(i)
        .and_then(Value::as_str)
        .ok_or_else(|| FunctionError::at(i, "expected a string"))
}

fn accelerator(args: &[Value], i: usize) -> Result<&str, FunctionError> {
    let a = text(args, i)?;
    catalog::accelerator_min_cuda(a).map(|_| a).ok_or_else(|| {
        FunctionError::at(
            i,
            format!(
                "accelerator {a:?} is not in paved's catalog; use one of {}",
                catalog::accelerator_names().join(", ")
            ),
        )
    })
}

/// GPUs per node: a whole number the catalog offers for the accelerator.
fn gpu_count(args: &[Value], i: usize, accel: &str) -> Result<i64, FunctionError> {
    let offered = catalog::counts_for(accel);
    let list = || {
        offered
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match args.get(i).and_then(Value::as_i64) {
        Some(n) if offered.contains(&n) => Ok(n),
        Some(n) => Err(FunctionError::at(
            i,
            format!("{accel} nodes come with {} GPUs, not {n}", list()),
        )),
        None => Err(FunctionError::at(
            i,
            format!(
                "count must be a whole number of GPUs per node ({accel}: {})",
                list()
            ),
        )),
    }
}

fn cuda(args: &[Value], i: usize) -> Result<(u32, u32), FunctionError> {
    let v = text(args, i)?;
    catalog::parse_cuda(v)
        .filter(|c| catalog::cuda_min_driver(*c).is_some())
        .ok_or_else(|| {
            FunctionError::at(
                i,
                format!(
                    "{v:?} is not a CUDA toolkit paved knows; use one of {}",
                    catalog::known_cuda_versions().join(", ")
                ),
            )
        })
}

pub struct GpuHourlyCost;

impl Function for GpuHourlyCost {
    fn name(&self) -> &'static str {
        "gpu_hourly_cost"
    }
    fn summary(&self) -> &'static str {
        "Hourly USD price of one GPU node, as paved charges it"
    }
    fn description(&self) -> &'static str {
        "The hourly USD list price of one node with `count` GPUs of `accelerator` on the cheapest instance type paved would launch for it (the first choice of a `paved_gpu_compute_pool` with that accelerator), on demand or spot. Prices are the built-in catalog's (provider `price_overrides` do not apply: functions run without provider configuration) for the regions it prices: us-east-1, us-east-2, us-west-2."
    }
    fn parameters(&self) -> Vec<Parameter> {
        vec![
            Parameter::new(
                "accelerator",
                Type::String,
                "Accelerator, e.g. nvidia-a10g.",
            ),
            Parameter::new("count", Type::Number, "GPUs per node, e.g. 1, 4 or 8."),
            Parameter::new("capacity_type", Type::String, "on_demand or spot."),
            Parameter::new("region", Type::String, "AWS region, e.g. us-east-1."),
        ]
    }
    fn return_type(&self) -> Type {
        Type::Number
    }
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError> {
        let accel = accelerator(args, 0)?;
        let count = gpu_count(args, 1, accel)?;
        let spot = match text(args, 2)? {
            "on_demand" => false,
            "spot" => true,
            other => {
                return Err(FunctionError::at(
                    2,
                    format!("{other:?} is not a capacity type; use \"on_demand\" or \"spot\""),
                ))
            }
        };
        let region = text(args, 3)?;
        if !catalog::PRICED_REGIONS.contains(&region) {
            return Err(FunctionError::at(
                3,
                format!(
                    "paved's catalog has no prices for region {region:?}; it prices {}",
                    catalog::PRICED_REGIONS.join(", ")
                ),
            ));
        }
        let cheapest = catalog::types_for(accel, count)[0];
        let price = catalog::hourly_price(cheapest, spot, &BTreeMap::new()).unwrap_or(0.0);
        // Four decimals, as the data source reports prices: spot factors make long fractions.
        Ok(Value::float((price * 10_000.0).round() / 10_000.0))
    }
}

pub struct InstanceTypes;

impl Function for InstanceTypes {
    fn name(&self) -> &'static str {
        "instance_types"
    }
    fn summary(&self) -> &'static str {
        "Instance types for a GPU node, cheapest first"
    }
    fn description(&self) -> &'static str {
        "The instance types with exactly `count` GPUs of `accelerator`, cheapest first: the order a `paved_gpu_compute_pool` falls back through when capacity runs out. `cloud` is \"aws\" (the only cloud pools run on today)."
    }
    fn parameters(&self) -> Vec<Parameter> {
        vec![
            Parameter::new(
                "accelerator",
                Type::String,
                "Accelerator, e.g. nvidia-a10g.",
            ),
            Parameter::new("count", Type::Number, "GPUs per node."),
            Parameter::new("cloud", Type::String, "aws."),
        ]
    }
    fn return_type(&self) -> Type {
        Type::list(Type::String)
    }
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError> {
        let accel = accelerator(args, 0)?;
        let count = gpu_count(args, 1, accel)?;
        match text(args, 2)? {
            "aws" => Ok(Value::string_list(catalog::types_for(accel, count))),
            other => Err(FunctionError::at(
                2,
                format!("paved_gpu_compute_pool runs on \"aws\"; {other:?} is not supported"),
            )),
        }
    }
}

pub struct CudaCompatible;

impl Function for CudaCompatible {
    fn name(&self) -> &'static str {
        "cuda_compatible"
    }
    fn summary(&self) -> &'static str {
        "Whether a CUDA toolkit runs on an NVIDIA driver"
    }
    fn description(&self) -> &'static str {
        "True when `driver_version` is at least the minimum Linux driver NVIDIA lists for `cuda_version` (the check paved makes between a pool's driver and an endpoint's runtime)."
    }
    fn parameters(&self) -> Vec<Parameter> {
        vec![
            Parameter::new("cuda_version", Type::String, "CUDA toolkit, e.g. 12.4."),
            Parameter::new("driver_version", Type::String, "Driver, e.g. 550.54.14."),
        ]
    }
    fn return_type(&self) -> Type {
        Type::Bool
    }
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError> {
        let c = cuda(args, 0)?;
        let d = text(args, 1)?;
        let have = catalog::parse_driver(d).ok_or_else(|| {
            FunctionError::at(
                1,
                format!("{d:?} is not a driver version; write it like 550.54.14"),
            )
        })?;
        let min = catalog::cuda_min_driver(c).unwrap_or((0, 0, 0));
        Ok(Value::Bool(have >= min))
    }
}

pub struct MinDriver;

impl Function for MinDriver {
    fn name(&self) -> &'static str {
        "min_driver"
    }
    fn summary(&self) -> &'static str {
        "The oldest NVIDIA driver a CUDA toolkit needs"
    }
    fn description(&self) -> &'static str {
        "The minimum Linux driver version NVIDIA lists for `cuda_version`, as NVIDIA writes it (e.g. 550.54.14 for 12.4)."
    }
    fn parameters(&self) -> Vec<Parameter> {
        vec![Parameter::new(
            "cuda_version",
            Type::String,
            "CUDA toolkit, e.g. 12.4.",
        )]
    }
    fn return_type(&self) -> Type {
        Type::String
    }
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError> {
        let c = cuda(args, 0)?;
        let min = catalog::cuda_min_driver(c).unwrap_or((0, 0, 0));
        Ok(Value::string(catalog::fmt_driver(min)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::string(v)
    }

    #[test]
    fn prices_come_from_the_catalog() {
        let f = GpuHourlyCost;
        let one = f
            .call(&[
                s("nvidia-a10g"),
                Value::int(1),
                s("on_demand"),
                s("us-east-1"),
            ])
            .unwrap();
        assert_eq!(one, Value::float(1.006));
        let spot = f
            .call(&[s("nvidia-a10g"), Value::int(4), s("spot"), s("us-west-2")])
            .unwrap();
        assert_eq!(spot, Value::float(2.5524));
    }

    #[test]
    fn errors_name_the_argument() {
        let f = GpuHourlyCost;
        let e = f
            .call(&[s("nvidia-b9000"), Value::int(1), s("spot"), s("us-east-1")])
            .unwrap_err();
        assert_eq!(e.argument, Some(0));
        assert!(e.text.contains("nvidia-a10g"), "{}", e.text);
        let e = f
            .call(&[
                s("nvidia-h100-80gb"),
                Value::int(2),
                s("spot"),
                s("us-east-1"),
            ])
            .unwrap_err();
        assert_eq!(e.argument, Some(1));
        assert!(e.text.contains("come with 8 GPUs"), "{}", e.text);
        let e = f
            .call(&[
                s("nvidia-a10g"),
                Value::float(1.5),
                s("spot"),
                s("us-east-1"),
            ])
            .unwrap_err();
        assert_eq!(e.argument, Some(1));
        let e = f
            .call(&[
                s("nvidia-a10g"),
                Value::int(1),
                s("reserved"),
                s("us-east-1"),
            ])
            .unwrap_err();
        assert_eq!(e.argument, Some(2));
        let e = f
            .call(&[s("nvidia-a10g"), Value::int(1), s("spot"), s("ap-south-1")])
            .unwrap_err();
        assert_eq!(e.argument, Some(3));
    }

    #[test]
    fn instance_types_follow_the_pools_fallback_order() {
        let v = InstanceTypes
            .call(&[s("nvidia-a10g"), Value::int(4), s("aws")])
            .unwrap();
        assert_eq!(v, Value::string_list(["g5.12xlarge", "g5.24xlarge"]));
        assert_eq!(
            InstanceTypes
                .call(&[s("nvidia-a10g"), Value::int(1), s("azure")])
                .unwrap_err()
                .argument,
            Some(2)
        );
    }

    #[test]
    fn cuda_and_driver() {
        assert_eq!(
            CudaCompatible.call(&[s("12.4"), s("535.104.05")]).unwrap(),
            Value::Bool(false)
        );
        assert_eq!(
            CudaCompatible.call(&[s("12.4"), s("550.54.14")]).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            CudaCompatible
                .call(&[s("12.4"), s("five")])
                .unwrap_err()
                .argument,
            Some(1)
        );
        assert_eq!(
            MinDriver.call(&[s("12.4")]).unwrap(),
            Value::string("550.54.14")
        );
        assert_eq!(MinDriver.call(&[s("13.7")]).unwrap_err().argument, Some(0));
    }
}
