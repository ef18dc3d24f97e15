# paved's provider functions (Terraform >= 1.8, OpenTofu >= 1.7): the GPU catalog, prices and
# CUDA/driver rules the resources use, called from locals and outputs. No provider
# configuration and no cloud are needed.
terraform {
  required_providers {
    paved = {
      source = "paved/paved"
    }
  }
}

variable "accelerator" {
  type    = string
  default = "nvidia-a10g"
}

variable "gpus_per_node" {
  type    = number
  default = 1
}

variable "nodes" {
  type    = number
  default = 3
}

variable "cuda_version" {
  type    = string
  default = "12.4"
}

locals {
  spot_hourly      = provider::paved::gpu_hourly_cost(var.accelerator, var.gpus_per_node, "spot", "us-east-1")
  on_demand_hourly = provider::paved::gpu_hourly_cost(var.accelerator, var.gpus_per_node, "on_demand", "us-east-1")
  types            = provider::paved::instance_types(var.accelerator, var.gpus_per_node, "aws")
  driver           = provider::paved::min_driver(var.cuda_version)
}

output "pool_hourly_usd" {
  value = {
    on_demand = local.on_demand_hourly * var.nodes
    spot      = local.spot_hourly * var.nodes
  }
}

output "instance_types" {
  value = local.types
}

output "min_driver" {
  value = local.driver
}

output "driver_535_runs_cuda" {
  value = provider::paved::cuda_compatible(var.cuda_version, "535.104.05")
}
