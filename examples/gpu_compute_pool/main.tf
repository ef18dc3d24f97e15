# A GPU training pool for one team on AWS (LocalStack in the tests).
terraform {
  required_providers {
    paved = {
      source = "paved/paved"
    }
  }
}

variable "aws_endpoint" {
  type    = string
  default = "http://127.0.0.1:4566"
}

variable "desired" {
  type    = number
  default = 2
}

provider "paved" {
  default_team    = "ml-platform"
  default_project = "recsys"
  default_tags = {
    cost-center = "cc-1234"
  }

  aws {
    region     = "us-east-1"
    access_key = "test"
    secret_key = "test"
    endpoints {
      ec2 = var.aws_endpoint
      sts = var.aws_endpoint
    }
  }
}

resource "paved_gpu_compute_pool" "training" {
  name               = "recsys-training"
  team               = "recsys"
  image_id           = "ami-04681a1dbd79675a5"
  availability_zones = ["us-east-1a", "us-east-1b"]

  accelerator {
    type  = "nvidia-a10g"
    count = 1
  }

  nodes {
    min     = 0
    max     = 4
    desired = var.desired
  }

  cuda_version   = "12.2"
  driver_version = "535.104.05"

  labels = {
    workload = "training"
  }
  taints = [{ key = "dedicated", value = "training", effect = "NoSchedule" }]

  tags = {
    owner = "alice"
  }
}

output "pool_id" {
  value = paved_gpu_compute_pool.training.id
}

output "hourly_cost_usd" {
  value = paved_gpu_compute_pool.training.hourly_cost_usd
}

output "instance_ids" {
  value = paved_gpu_compute_pool.training.instance_ids
}
