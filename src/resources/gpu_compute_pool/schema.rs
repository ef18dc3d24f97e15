//! The `paved_gpu_compute_pool` schema.

use crate::cty::{Type, Value};
use crate::schema::{Attribute, Block, Nesting, Schema};

pub fn taint_type() -> Type {
    Type::object([
        ("key", Type::String),
        ("value", Type::String),
        ("effect", Type::String),
    ])
}

pub fn schema() -> Schema {
    let strs = || Type::list(Type::String);
    let accelerator = Block::new("GPU model and GPUs per node. Picks instance types from paved's catalog, cheapest first.")
        .attr(Attribute::required("type", Type::String, "Accelerator: nvidia-t4, nvidia-a10g, nvidia-l4, nvidia-v100-16gb, nvidia-a100-40gb, nvidia-a100-80gb or nvidia-h100-80gb."))
        .attr(Attribute::optional_computed("count", Type::Number, "GPUs per node (default 1).").default(Value::int(1)));
    let nodes = Block::new("Pool size. Resizing happens in place.")
        .attr(Attribute::required("min", Type::Number, "Smallest allowed size."))
        .attr(Attribute::required("max", Type::Number, "Largest allowed size."))
        .attr(Attribute::optional_computed("desired", Type::Number, "Nodes to run now (default: min). Nodes terminated outside Terraform show up here as drift."));
    let timeouts = Block::new("How long apply waits for each operation (e.g. \"20m\", \"1h\").")
        .attr(Attribute::optional("create", Type::String, "Default 20m."))
        .attr(Attribute::optional("update", Type::String, "Default 20m."))
        .attr(Attribute::optional("delete", Type::String, "Default 20m."));
    Schema::new(
        0,
        Block::new("A pool of GPU instances for one team, tagged for cost attribution, with environment parity (CUDA/driver pinned) for training and inference nodes.")
            .attr(Attribute::computed("id", Type::String, "Pool ID (`gp-…`); import with it (or `REGION/ID`) on AWS, with `PROJECT/REGION/NAME` on GCP."))
            .attr(Attribute::required("name", Type::String, "Pool name: lowercase letters, digits and dashes. Changing it replaces the pool.").force_new())
            .attr(Attribute::optional_computed("team", Type::String, "Team charged for the pool. Defaults to the provider's default_team."))
            .attr(Attribute::optional_computed("project", Type::String, "Project charged for the pool. Defaults to the provider's default_project."))
            .attr(Attribute::optional_computed("cloud", Type::String, "Cloud: aws (EC2) or gcp (Compute Engine: an instance template and a regional managed instance group).").default(Value::string("aws")).force_new())
            .attr(Attribute::optional_computed("region", Type::String, "Region; defaults to the provider's aws.region (gcp.region for cloud = \"gcp\").").force_new())
            .attr(Attribute::optional_computed("gcp_project", Type::String, "GCP project of a cloud = \"gcp\" pool; defaults to the provider's gcp.project. Null on AWS.").force_new())
            .attr(Attribute::optional("availability_zones", strs(), "Zones to try, in order, when capacity is short.").force_new())
            .attr(Attribute::optional_computed("instance_types", strs(), "Instance types (EC2) or machine types (GCP) to try, in order (first preferred). Default: the catalog types for `accelerator` on the pool's cloud.").force_new())
            .attr(Attribute::optional_computed("capacity_type", Type::String, "on_demand or spot.").default(Value::string("on_demand")).force_new())
            .attr(Attribute::optional("image_id", Type::String, "Machine image with the NVIDIA driver: an AMI ID on AWS, an image link such as projects/deeplearning-platform-release/global/images/family/common-cu128-ubuntu-2204-nvidia-570 on GCP.").force_new())
            .attr(Attribute::optional("cuda_version", Type::String, "CUDA toolkit pinned on the nodes, e.g. \"12.2\"; must be supported by driver_version.").force_new())
            .attr(Attribute::optional("driver_version", Type::String, "NVIDIA driver pinned on the nodes, e.g. \"535.104.05\".").force_new())
            .attr(Attribute::optional("subnet_ids", strs(), "Subnets to try, in order (each implies its zone).").force_new())
            .attr(Attribute::optional("security_group_ids", strs(), "Security groups for the nodes.").force_new())
            .attr(Attribute::optional("labels", Type::map(Type::String), "Kubernetes node labels passed to the node bootstrap for cluster join.").force_new())
            .attr(Attribute::optional("taints", Type::list(taint_type()), "Kubernetes node taints ({key, value, effect}) passed to the node bootstrap.").force_new())
            .attr(Attribute::optional("tags", Type::map(Type::String), "Extra tags; they override the provider's default_tags."))
            .attr(Attribute::computed("tags_all", Type::map(Type::String), "Every tag applied: default_tags, tags and paved's cost-attribution tags."))
            .attr(Attribute::computed("launch_template_id", Type::String, "EC2 launch template behind the pool."))
            .attr(Attribute::computed("instance_template", Type::String, "GCP: the instance template the group runs (immutable; a change to the pool's labels rolls out a new one). Null on AWS."))
            .attr(Attribute::computed("instance_group", Type::String, "GCP: the regional managed instance group, projects/P/regions/R/instanceGroupManagers/N. Null on AWS."))
            .attr(Attribute::computed("instance_type", Type::String, "Instance type the nodes run on (the most common one if capacity fallback mixed types)."))
            .attr(Attribute::computed("instance_ids", strs(), "IDs (AWS) or names (GCP) of the pool's live instances, sorted."))
            .attr(Attribute::computed("gpus_total", Type::Number, "GPUs across all live nodes."))
            .attr(Attribute::computed("hourly_cost_usd", Type::Number, "Estimated hourly cost of the live nodes in USD (built-in price table or price_overrides)."))
            .attr(Attribute::computed("gpu_hourly_usd", Type::Number, "USD per hour of one GPU on the pool's first instance type (the one it runs whenever capacity allows), at the capacity type's price (built-in table or price_overrides). Known at plan time: pass it to paved_model_endpoint.gpu_hourly_usd so an endpoint's GPU share is priced as the nodes it runs on. Null when the type has no price or no GPUs."))
            .attr(Attribute::computed("monthly_cost_usd", crate::resources::cost::monthly_type(), "Monthly cost range in USD, known at plan time: nodes.min of the cheapest of instance_types to nodes.max of the dearest, at the capacity type's price (built-in table or price_overrides), 730 hours a month. Null when no candidate type has a price."))
            .block("accelerator", Nesting::Single, accelerator)
            .force_new_block()
            .block("nodes", Nesting::Single, nodes)
            .required_block()
            .block("timeouts", Nesting::Single, timeouts),
    )
}
