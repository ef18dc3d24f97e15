# A model behind an autoscaling endpoint on the GPU nodes of a pool, with canary rollout,
# health checks and automatic rollback. Runs against the local control plane in the tests
# (acceptance-tests/cluster/up.sh writes the kubeconfig).
terraform {
  required_providers {
    paved = {
      source = "paved/paved"
    }
  }
}

variable "kubeconfig" {
  type = string
}

variable "model_version" {
  type    = string
  default = "v1"
}

variable "image" {
  type    = string
  default = "registry.local/model-server:1"
}

variable "canary_percent" {
  type    = number
  default = 0
}

variable "canary_version" {
  type    = string
  default = "v2"
}

variable "canary_image" {
  type    = string
  default = "registry.local/model-server:2"
}

provider "paved" {
  default_team    = "search"
  default_project = "ranking"

  kubernetes {
    config_path = var.kubeconfig
  }
}

resource "paved_model_endpoint" "llm" {
  name      = "llm"
  namespace = "default"
  pool_id   = "gp-local"

  model {
    uri     = "s3://models/llm-7b"
    version = var.model_version
    digest  = "sha256:4f1c8e0d2b7a"
    format  = "safetensors"
  }

  runtime {
    image        = var.image
    port         = 8080
    cuda_version = "12.2"
    env = {
      MAX_BATCH = "16"
    }
  }

  resources {
    gpus   = 1
    cpu    = "2"
    memory = "8Gi"
  }

  autoscaling {
    min_replicas = 5
    max_replicas = 8
  }

  health {
    readiness_path  = "/v2/health/ready"
    startup_timeout = "20s"
  }

  dynamic "canary" {
    for_each = var.canary_percent > 0 ? [1] : []
    content {
      version         = var.canary_version
      image           = var.canary_image
      traffic_percent = var.canary_percent
    }
  }

  rollout {
    timeout = "3m"
  }
}

output "url" {
  value = paved_model_endpoint.llm.url
}

output "served_revision" {
  value = paved_model_endpoint.llm.served_revision
}
