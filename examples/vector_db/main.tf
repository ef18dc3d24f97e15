# Two vector databases for a retrieval team: PostgreSQL + pgvector for a small FAQ index and a
# three-node Qdrant cluster for document embeddings, each with collections created by paved,
# a generated credential in a Secret and ingress only from the team's pods.
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

variable "docs_dimension" {
  type    = number
  default = 768
}

variable "storage_size" {
  type    = string
  default = "1Gi"
}

variable "qdrant_replicas" {
  type    = number
  default = 3
}

provider "paved" {
  default_team    = "search"
  default_project = "rag"
  kubernetes {
    config_path = var.kubeconfig
  }
}

resource "paved_vector_db" "faq" {
  name      = "faq"
  namespace = var.namespace
  engine    = "pgvector"

  storage {
    size = var.storage_size
  }

  collection {
    name      = "faq"
    dimension = 384
  }

  backup {
    schedule    = "0 3 * * *"
    destination = "s3://search-backups/faq"
  }
}

resource "paved_vector_db" "docs" {
  name          = "docs"
  namespace     = var.namespace
  engine        = "qdrant"
  replicas      = var.qdrant_replicas
  allowed_teams = ["ranking"]

  resources {
    cpu    = "1"
    memory = "2Gi"
  }

  collection {
    name      = "docs"
    dimension = var.docs_dimension
    distance  = "dot"
  }
}

output "faq_secret" {
  value = paved_vector_db.faq.connection_secret
}

output "docs_endpoint" {
  value = "${paved_vector_db.docs.endpoint}:${paved_vector_db.docs.port}"
}
