# A GPU inference pool for one team on Google Cloud (the local Compute API in the tests):
# an instance template plus a regional managed instance group over two zones, L4 GPUs on
# G2 machine types with a fallback type.
terraform {
  required_providers {
    paved = {
      source = "paved/paved"
    }
  }
}

variable "gce_endpoint" {
  type    = string
  default = "http://127.0.0.1:18090"
}

# A service-account key (the JSON, e.g. file("key.json")) or an OAuth access token. Null: the
# environment and application default credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's
# ADC file, the metadata server); against the local Compute API, none at all.
variable "gce_credentials" {
  type      = string
  default   = null
  sensitive = true
}

variable "desired" {
  type    = number
  default = 2
}

variable "capacity_type" {
  type    = string
  default = "on_demand"
}

provider "paved" {
  default_team    = "ml-platform"
  default_project = "search"
  default_tags = {
    cost-center = "cc-1234"
  }

  gcp {
    project  = "paved-test"
    region   = "us-central1"
    endpoint    = var.gce_endpoint
    credentials = var.gce_credentials
  }
}

resource "paved_gpu_compute_pool" "serving" {
  name               = "search-serving"
  cloud              = "gcp"
  team               = "search"
  image_id           = "projects/deeplearning-platform-release/global/images/family/common-cu128-ubuntu-2204-nvidia-570"
  availability_zones = ["us-central1-a", "us-central1-b"]
  instance_types     = ["g2-standard-4", "g2-standard-8"]
  capacity_type      = var.capacity_type

  accelerator {
    type  = "nvidia-l4"
    count = 1
  }

  nodes {
    min     = 0
    max     = 4
    desired = var.desired
  }

  cuda_version   = "12.8"
  driver_version = "570.26"

  labels = {
    workload = "inference"
  }

  tags = {
    owner = "alice"
  }
}

output "pool_id" {
  value = paved_gpu_compute_pool.serving.id
}

output "instance_group" {
  value = paved_gpu_compute_pool.serving.instance_group
}

output "hourly_cost_usd" {
  value = paved_gpu_compute_pool.serving.hourly_cost_usd
}
