# The ML inference golden path in one apply: a GPU pool for serving, a pgvector database for
# retrieval, a Feast feature store that serves online features from it, and a model endpoint on
# the pool's GPUs wired to both (connection details injected, recorded as lineage).
# Locally: LocalStack stands in for EC2 and acceptance-tests/cluster/node_joiner.py joins the
# pool's instances to the local control plane, as the pool's bootstrap does on AWS.
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

variable "aws_endpoint" {
  type    = string
  default = "http://127.0.0.1:4566"
}

variable "model_version" {
  type    = string
  default = "v1"
}

provider "paved" {
  default_team    = "search"
  default_project = "rag-assistant"

  aws {
    region     = "us-east-1"
    access_key = "test"
    secret_key = "test"
    endpoints {
      ec2 = var.aws_endpoint
      sts = var.aws_endpoint
    }
  }

  kubernetes {
    config_path = var.kubeconfig
  }
}

resource "paved_gpu_compute_pool" "serving" {
  name               = "rag-serving"
  image_id           = "ami-04681a1dbd79675a5"
  availability_zones = ["us-east-1a", "us-east-1b"]

  accelerator {
    type  = "nvidia-a10g"
    count = 1
  }

  nodes {
    min     = 1
    max     = 4
    desired = 2
  }

  cuda_version   = "12.2"
  driver_version = "535.104.05"
}

resource "paved_vector_db" "docs" {
  name   = "rag-docs"
  engine = "pgvector"

  storage {
    size = "5Gi"
  }

  collection {
    name      = "chunks"
    dimension = 1024
  }
}

resource "paved_feature_store" "users" {
  name          = "rag-users"
  feast_project = "rag_users"

  online_store {
    kind         = "vector_db"
    vector_db_id = paved_vector_db.docs.id
  }

  materialization {
    schedule = "*/30 * * * *"
  }
}

resource "paved_model_endpoint" "assistant" {
  name             = "rag-assistant"
  pool_id          = paved_gpu_compute_pool.serving.id
  gpu_hourly_usd   = paved_gpu_compute_pool.serving.gpu_hourly_usd
  vector_db_id     = paved_vector_db.docs.id
  feature_store_id = paved_feature_store.users.id

  model {
    uri     = "s3://models/rag-assistant"
    version = var.model_version
    format  = "safetensors"
  }

  runtime {
    image        = "registry.local/model-server:1"
    cuda_version = paved_gpu_compute_pool.serving.cuda_version
  }

  resources {
    gpus   = 1
    cpu    = "2"
    memory = "8Gi"
  }

  autoscaling {
    min_replicas = 2
    max_replicas = 4
  }

  health {
    readiness_path  = "/v2/health/ready"
    startup_timeout = "2m"
  }
}

output "endpoint_url" {
  value = paved_model_endpoint.assistant.url
}

output "lineage" {
  value = paved_model_endpoint.assistant.lineage
}

output "hourly_cost_usd" {
  value = paved_gpu_compute_pool.serving.hourly_cost_usd
}
