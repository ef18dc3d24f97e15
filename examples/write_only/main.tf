# Secrets that never reach the state (Terraform >= 1.11, OpenTofu >= 1.11):
# - a feature store whose external Redis password comes from an ephemeral variable, through
#   the write-only connection_string_wo;
# - a second one whose connection string is built from a vector database's key, opened for this
#   run only by the paved_vector_db_credentials ephemeral resource (in ./creds).
#
# Ephemeral resources are opened during plan whenever their arguments are known, and a vector
# database's ID is known before it exists; so create the database first:
#   terraform apply -target=paved_vector_db.docs && terraform apply
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

variable "namespace" {
  type    = string
  default = "default"
}

variable "redis_password" {
  type      = string
  ephemeral = true
}

variable "password_version" {
  type    = number
  default = 1
}

provider "paved" {
  default_team = "pricing"
  kubernetes {
    config_path = var.kubeconfig
  }
}

resource "paved_feature_store" "external" {
  name      = "wo-external"
  namespace = var.namespace

  online_store {
    kind                         = "external"
    connection_string_wo         = "redis.example.internal:6379,password=${var.redis_password}"
    connection_string_wo_version = var.password_version
  }
}

resource "paved_vector_db" "docs" {
  name      = "wo-docs"
  namespace = var.namespace
  engine    = "qdrant"

  storage {
    size = "1Gi"
  }
}

module "creds" {
  source       = "./creds"
  vector_db_id = paved_vector_db.docs.id
}

resource "paved_feature_store" "on_vector_db_key" {
  name      = "wo-vdbkey"
  namespace = var.namespace

  online_store {
    kind                         = "external"
    connection_string_wo         = module.creds.connection_string
    connection_string_wo_version = 1
  }
}
