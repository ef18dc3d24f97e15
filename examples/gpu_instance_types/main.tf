# Compare GPU options before asking for a pool: the catalog and the prices paved charges.
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

provider "paved" {
  price_overrides = {
    "g5.xlarge:spot" = 0.35
  }
}

data "paved_gpu_instance_types" "a10g" {
  accelerator   = var.accelerator
  gpus_per_node = 1
  capacity_type = "spot"
}

output "cheapest" {
  value = data.paved_gpu_instance_types.a10g.instance_types[0]
}
