# Two Feast feature stores for a pricing team: one with a Redis that paved runs and hourly
# materialization, and one serving online features from a pgvector database.
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

variable "server_image" {
  type    = string
  default = "feastdev/feature-server:0.47.0"
}

provider "paved" {
  default_team    = "pricing"
  default_project = "dynamic-pricing"
  kubernetes {
    config_path = var.kubeconfig
  }
}

resource "paved_feature_store" "drivers" {
  name          = "drivers"
  feast_project = "driver_stats"
  allowed_teams = ["fraud"] # pods labelled paved.dev/team=fraud may call the feature server

  feature_server {
    image = var.server_image
  }

  materialization {
    schedule = "0 * * * *"
  }
}

resource "paved_vector_db" "embeddings" {
  name   = "embeddings"
  engine = "pgvector"

  collection {
    name      = "item_embeddings"
    dimension = 384
  }
}

resource "paved_feature_store" "items" {
  name          = "items"
  registry      = "s3://pricing-feast/registry.db"
  offline_store = "s3://pricing-feast/offline"

  online_store {
    kind         = "vector_db"
    vector_db_id = paved_vector_db.embeddings.id
  }

  feature_server {
    replicas = 2
  }
}

output "drivers_server" {
  value = paved_feature_store.drivers.feature_server_url
}

output "items_online_store" {
  value = paved_feature_store.items.online_store_endpoint
}
