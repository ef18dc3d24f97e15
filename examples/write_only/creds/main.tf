# A child module that opens a vector database's credentials for one run and hands them on as
# ephemeral outputs (root modules cannot have ephemeral outputs; child modules can).
terraform {
  required_providers {
    paved = {
      source = "paved/paved"
    }
  }
}

variable "vector_db_id" {
  type = string
}

ephemeral "paved_vector_db_credentials" "this" {
  vector_db_id = var.vector_db_id
}

output "connection_string" {
  description = "host:port,password=KEY in Feast's Redis format, for a write-only argument."
  value       = "${ephemeral.paved_vector_db_credentials.this.endpoint}:${ephemeral.paved_vector_db_credentials.this.port},password=${ephemeral.paved_vector_db_credentials.this.api_key}"
  ephemeral   = true
}
