//! AWS EC2 (and STS for the credential check) behind [`Ec2Api`], with the operations a GPU pool
//! needs rather than the SDK's whole surface.

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    Filter, InstanceMarketOptionsRequest, LaunchTemplateSpecification, MarketType, Placement,
    RequestLaunchTemplateData, ResourceType, SpotInstanceType, SpotMarketOptions, Tag,
    TagSpecification,
};
use base64::Engine;
use std::collections::BTreeMap;

/// Tag that ties every EC2 object to its pool; Read and Delete find objects by it.
pub const POOL_TAG: &str = "paved:pool-id";

/// Provider-level AWS settings (the provider's `aws` block).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub ec2_endpoint: Option<String>,
    pub sts_endpoint: Option<String>,
    pub skip_credentials_validation: bool,
}

/// An EC2/STS API error with its AWS error code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{operation}: {code}: {message}")]
pub struct Ec2Error {
    pub operation: &'static str,
    pub code: String,
    pub message: String,
}

impl Ec2Error {
    pub fn new(operation: &'static str, code: &str, message: &str) -> Ec2Error {
        Ec2Error {
            operation,
            code: code.to_string(),
            message: message.to_string(),
        }
    }

    /// Errors that mean "this instance type or zone has no room now": try the next option.
    pub fn is_capacity(&self) -> bool {
        matches!(
            self.code.as_str(),
            "InsufficientInstanceCapacity"
                | "InsufficientCapacity"
                | "InsufficientHostCapacity"
                | "InsufficientReservedInstanceCapacity"
                | "Unsupported"
                | "SpotMaxPriceTooLow"
                | "MaxSpotInstanceCountExceeded"
                | "InsufficientFreeAddressesInSubnet"
        )
    }

    pub fn is_not_found(&self) -> bool {
        self.code.ends_with(".NotFound") || self.code == "InvalidLaunchTemplateId.Malformed"
    }
}

impl From<Ec2Error> for crate::error::ResourceError {
    fn from(e: Ec2Error) -> Self {
        crate::error::ResourceError::Cloud {
            service: "EC2",
            operation: e.operation,
            code: e.code,
            message: e.message,
            source: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LaunchTemplateSpec {
    pub name: String,
    pub image_id: String,
    /// Plain text; the client base64-encodes it for EC2.
    pub user_data: String,
    pub security_group_ids: Vec<String>,
    /// Tags for the template itself and, through tag specifications, every instance and volume.
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LaunchTemplate {
    pub id: String,
    pub name: String,
    pub tags: BTreeMap<String, String>,
    /// Decoded user data of the latest version, when asked for.
    pub user_data: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunRequest {
    pub launch_template_id: String,
    pub instance_type: String,
    pub availability_zone: Option<String>,
    pub subnet_id: Option<String>,
    pub count: i32,
    pub spot: bool,
    /// Deterministic idempotency token (≤ 64 ASCII chars).
    pub client_token: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Instance {
    pub id: String,
    pub instance_type: String,
    /// EC2 state name: pending, running, stopping, stopped, shutting-down, terminated.
    pub state: String,
    pub availability_zone: Option<String>,
    /// Seconds since the epoch.
    pub launch_time: i64,
    /// The instance's tags (DescribeInstances returns them with the instance).
    pub tags: BTreeMap<String, String>,
    /// EC2 says it is a Spot Instance (`InstanceLifecycle = spot`).
    pub spot: bool,
}

impl Instance {
    /// Counts toward the pool: everything not on its way out.
    pub fn is_live(&self) -> bool {
        !matches!(self.state.as_str(), "shutting-down" | "terminated")
    }
}

/// The EC2 operations paved uses. Contracts: calls are single API requests (plus pagination);
/// "not found" on delete is success; list calls return only what matches, never an error for
/// an empty result.
#[async_trait]
pub trait Ec2Api: Send + Sync {
    /// Checks the credentials once (STS GetCallerIdentity); returns the caller's ARN (the
    /// identity paved acts as, for the audit trail).
    async fn caller_identity(&self) -> Result<String, Ec2Error>;
    /// Creates a launch template; returns its ID.
    async fn create_launch_template(&self, spec: &LaunchTemplateSpec) -> Result<String, Ec2Error>;
    /// The launch template tagged with `pool_id`, if any; `with_data` also fetches its current
    /// tags and user data (two more calls, for import).
    async fn find_launch_template(
        &self,
        pool_id: &str,
        with_data: bool,
    ) -> Result<Option<LaunchTemplate>, Ec2Error>;
    async fn delete_launch_template(&self, id: &str) -> Result<(), Ec2Error>;
    /// Launches exactly `count` instances (MinCount = MaxCount) or none.
    async fn run_instances(&self, req: &RunRequest) -> Result<Vec<Instance>, Ec2Error>;
    /// Instances tagged with `pool_id` that are not shutting down or terminated.
    async fn pool_instances(&self, pool_id: &str) -> Result<Vec<Instance>, Ec2Error>;
    /// Every instance paved manages in this region (tagged with [`POOL_TAG`], any pool) that is
    /// not shutting down or terminated, with its tags: one paginated DescribeInstances, so a
    /// cost report costs the same number of calls for 1 pool or 1,000.
    async fn managed_instances(&self) -> Result<Vec<Instance>, Ec2Error>;
    /// The given instances in any state; IDs EC2 does not know are left out.
    async fn instances(&self, ids: &[String]) -> Result<Vec<Instance>, Ec2Error>;
    async fn terminate_instances(&self, ids: &[String]) -> Result<(), Ec2Error>;
    /// Adds/overwrites `set` and removes `remove` on every resource in `ids`.
    async fn update_tags(
        &self,
        ids: &[String],
        set: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), Ec2Error>;
}

/// The real client (aws-sdk-ec2 / aws-sdk-sts), one per region.
pub struct SdkEc2 {
    settings: AwsSettings,
    region: String,
    clients: tokio::sync::OnceCell<(aws_sdk_ec2::Client, aws_sdk_sts::Client)>,
}

impl SdkEc2 {
    pub fn new(settings: &AwsSettings, region: &str) -> SdkEc2 {
        SdkEc2 {
            settings: settings.clone(),
            region: region.to_string(),
            clients: tokio::sync::OnceCell::new(),
        }
    }

    /// Loads the SDK config lazily so plans (which never call EC2) never touch credentials.
    async fn clients(&self) -> &(aws_sdk_ec2::Client, aws_sdk_sts::Client) {
        self.clients
            .get_or_init(|| async {
                let s = &self.settings;
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .region(aws_config::Region::new(self.region.clone()));
                if let Some(p) = &s.profile {
                    loader = loader.profile_name(p);
                }
                if let (Some(ak), Some(sk)) = (&s.access_key, &s.secret_key) {
                    loader = loader.credentials_provider(aws_credential_types::Credentials::new(
                        ak,
                        sk,
                        None,
                        None,
                        "paved-provider-config",
                    ));
                }
                let conf = loader.load().await;
                let mut ec2 = aws_sdk_ec2::config::Builder::from(&conf);
                if let Some(e) = &s.ec2_endpoint {
                    ec2 = ec2.endpoint_url(e);
                }
                let mut sts = aws_sdk_sts::config::Builder::from(&conf);
                if let Some(e) = &s.sts_endpoint {
                    sts = sts.endpoint_url(e);
                }
                (
                    aws_sdk_ec2::Client::from_conf(ec2.build()),
                    aws_sdk_sts::Client::from_conf(sts.build()),
                )
            })
            .await
    }

    async fn ec2(&self) -> &aws_sdk_ec2::Client {
        &self.clients().await.0
    }

    /// Instances matching `filter` that are not on their way out, every page.
    async fn live_instances(&self, filter: Filter) -> Result<Vec<Instance>, Ec2Error> {
        let mut out = vec![];
        let mut token: Option<String> = None;
        loop {
            let resp = self
                .ec2()
                .await
                .describe_instances()
                .filters(filter.clone())
                .filters(
                    Filter::builder()
                        .name("instance-state-name")
                        .values("pending")
                        .values("running")
                        .values("stopping")
                        .values("stopped")
                        .build(),
                )
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_err("DescribeInstances", e))?;
            for r in resp.reservations() {
                out.extend(r.instances().iter().map(instance_of));
            }
            match resp.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        out.retain(Instance::is_live);
        Ok(out)
    }
}

fn sdk_err<E, R>(operation: &'static str, e: aws_sdk_ec2::error::SdkError<E, R>) -> Ec2Error
where
    E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_ec2::error::ProvideErrorMetadata;
    let code = e.code().unwrap_or("RequestFailed").to_string();
    let message = match e.message() {
        Some(m) => m.to_string(),
        None => {
            // Transport errors carry their cause in the source chain.
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg = format!("{msg}: {s}");
                src = s.source();
            }
            msg
        }
    };
    Ec2Error {
        operation,
        code,
        message,
    }
}

fn tags_of(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

fn sdk_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn tag_spec(rt: ResourceType, tags: &BTreeMap<String, String>) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(rt)
        .set_tags(Some(sdk_tags(tags)))
        .build()
}

fn instance_of(i: &aws_sdk_ec2::types::Instance) -> Instance {
    Instance {
        id: i.instance_id().unwrap_or_default().to_string(),
        instance_type: i
            .instance_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        state: i
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_string())
            .unwrap_or_default(),
        availability_zone: i
            .placement()
            .and_then(|p| p.availability_zone())
            .map(String::from),
        launch_time: i.launch_time().map(|t| t.secs()).unwrap_or(0),
        tags: tags_of(i.tags()),
        spot: i.instance_lifecycle().map(|l| l.as_str()) == Some("spot"),
    }
}

#[async_trait]
impl Ec2Api for SdkEc2 {
    async fn caller_identity(&self) -> Result<String, Ec2Error> {
        let sts = &self.clients().await.1;
        let out = sts.get_caller_identity().send().await.map_err(|e| {
            use aws_sdk_sts::error::ProvideErrorMetadata;
            Ec2Error::new(
                "GetCallerIdentity",
                e.code().unwrap_or("RequestFailed"),
                &e.message()
                    .map(String::from)
                    .unwrap_or_else(|| e.to_string()),
            )
        })?;
        Ok(out.arn().unwrap_or_default().to_string())
    }

    async fn create_launch_template(&self, spec: &LaunchTemplateSpec) -> Result<String, Ec2Error> {
        let data = RequestLaunchTemplateData::builder()
            .image_id(&spec.image_id)
            .user_data(base64::engine::general_purpose::STANDARD.encode(&spec.user_data))
            .set_security_group_ids(
                (!spec.security_group_ids.is_empty()).then(|| spec.security_group_ids.clone()),
            )
            .tag_specifications(
                aws_sdk_ec2::types::LaunchTemplateTagSpecificationRequest::builder()
                    .resource_type(ResourceType::Instance)
                    .set_tags(Some(sdk_tags(&spec.tags)))
                    .build(),
            )
            .tag_specifications(
                aws_sdk_ec2::types::LaunchTemplateTagSpecificationRequest::builder()
                    .resource_type(ResourceType::Volume)
                    .set_tags(Some(sdk_tags(&spec.tags)))
                    .build(),
            )
            .build();
        let out = self
            .ec2()
            .await
            .create_launch_template()
            .launch_template_name(&spec.name)
            .launch_template_data(data)
            .tag_specifications(tag_spec(ResourceType::LaunchTemplate, &spec.tags))
            .send()
            .await
            .map_err(|e| sdk_err("CreateLaunchTemplate", e))?;
        Ok(out
            .launch_template()
            .and_then(|t| t.launch_template_id())
            .unwrap_or_default()
            .to_string())
    }

    async fn find_launch_template(
        &self,
        pool_id: &str,
        with_data: bool,
    ) -> Result<Option<LaunchTemplate>, Ec2Error> {
        let out = self
            .ec2()
            .await
            .describe_launch_templates()
            .filters(
                Filter::builder()
                    .name(format!("tag:{POOL_TAG}"))
                    .values(pool_id)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| sdk_err("DescribeLaunchTemplates", e))?;
        let Some(t) = out.launch_templates().first() else {
            return Ok(None);
        };
        let mut lt = LaunchTemplate {
            id: t.launch_template_id().unwrap_or_default().to_string(),
            name: t.launch_template_name().unwrap_or_default().to_string(),
            tags: tags_of(t.tags()),
            user_data: None,
        };
        if with_data {
            // DescribeTags is the authoritative view of tags changed after creation
            // (LocalStack's DescribeLaunchTemplates keeps showing the creation-time tags).
            let tags = self
                .ec2()
                .await
                .describe_tags()
                .filters(Filter::builder().name("resource-id").values(&lt.id).build())
                .send()
                .await
                .map_err(|e| sdk_err("DescribeTags", e))?;
            lt.tags = tags
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
                .collect();
            let v = self
                .ec2()
                .await
                .describe_launch_template_versions()
                .launch_template_id(&lt.id)
                .versions("$Latest")
                .send()
                .await
                .map_err(|e| sdk_err("DescribeLaunchTemplateVersions", e))?;
            lt.user_data = v
                .launch_template_versions()
                .first()
                .and_then(|v| v.launch_template_data())
                .and_then(|d| d.user_data())
                .and_then(|u| base64::engine::general_purpose::STANDARD.decode(u).ok())
                .and_then(|b| String::from_utf8(b).ok());
        }
        Ok(Some(lt))
    }

    async fn delete_launch_template(&self, id: &str) -> Result<(), Ec2Error> {
        match self
            .ec2()
            .await
            .delete_launch_template()
            .launch_template_id(id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = sdk_err("DeleteLaunchTemplate", e);
                if e.is_not_found() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn run_instances(&self, req: &RunRequest) -> Result<Vec<Instance>, Ec2Error> {
        let mut call = self
            .ec2()
            .await
            .run_instances()
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_id(&req.launch_template_id)
                    .version("$Latest")
                    .build(),
            )
            .instance_type(req.instance_type.as_str().into())
            .min_count(req.count)
            .max_count(req.count)
            .client_token(&req.client_token)
            .tag_specifications(tag_spec(ResourceType::Instance, &req.tags))
            .tag_specifications(tag_spec(ResourceType::Volume, &req.tags));
        if let Some(az) = &req.availability_zone {
            call = call.placement(Placement::builder().availability_zone(az).build());
        }
        if let Some(s) = &req.subnet_id {
            call = call.subnet_id(s);
        }
        if req.spot {
            call = call.instance_market_options(
                InstanceMarketOptionsRequest::builder()
                    .market_type(MarketType::Spot)
                    .spot_options(
                        SpotMarketOptions::builder()
                            .spot_instance_type(SpotInstanceType::OneTime)
                            .build(),
                    )
                    .build(),
            );
        }
        let out = call.send().await.map_err(|e| sdk_err("RunInstances", e))?;
        Ok(out.instances().iter().map(instance_of).collect())
    }

    async fn pool_instances(&self, pool_id: &str) -> Result<Vec<Instance>, Ec2Error> {
        self.live_instances(
            Filter::builder()
                .name(format!("tag:{POOL_TAG}"))
                .values(pool_id)
                .build(),
        )
        .await
    }

    async fn managed_instances(&self) -> Result<Vec<Instance>, Ec2Error> {
        self.live_instances(Filter::builder().name("tag-key").values(POOL_TAG).build())
            .await
    }

    async fn instances(&self, ids: &[String]) -> Result<Vec<Instance>, Ec2Error> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        // Filtering by instance-id (rather than InstanceIds) makes unknown IDs drop out instead
        // of failing the whole call, which matters right after launch (eventual consistency).
        let mut f = Filter::builder().name("instance-id");
        for id in ids {
            f = f.values(id);
        }
        let resp = self
            .ec2()
            .await
            .describe_instances()
            .filters(f.build())
            .send()
            .await
            .map_err(|e| sdk_err("DescribeInstances", e))?;
        Ok(resp
            .reservations()
            .iter()
            .flat_map(|r| r.instances().iter().map(instance_of))
            .collect())
    }

    async fn terminate_instances(&self, ids: &[String]) -> Result<(), Ec2Error> {
        if ids.is_empty() {
            return Ok(());
        }
        match self
            .ec2()
            .await
            .terminate_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = sdk_err("TerminateInstances", e);
                if e.is_not_found() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn update_tags(
        &self,
        ids: &[String],
        set: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), Ec2Error> {
        if ids.is_empty() {
            return Ok(());
        }
        if !remove.is_empty() {
            self.ec2()
                .await
                .delete_tags()
                .set_resources(Some(ids.to_vec()))
                .set_tags(Some(
                    remove
                        .iter()
                        .map(|k| Tag::builder().key(k).build())
                        .collect(),
                ))
                .send()
                .await
                .map_err(|e| sdk_err("DeleteTags", e))?;
        }
        if !set.is_empty() {
            self.ec2()
                .await
                .create_tags()
                .set_resources(Some(ids.to_vec()))
                .set_tags(Some(sdk_tags(set)))
                .send()
                .await
                .map_err(|e| sdk_err("CreateTags", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_codes_are_recognised() {
        assert!(Ec2Error::new("RunInstances", "InsufficientInstanceCapacity", "").is_capacity());
        assert!(!Ec2Error::new("RunInstances", "UnauthorizedOperation", "").is_capacity());
        assert!(Ec2Error::new("x", "InvalidInstanceID.NotFound", "").is_not_found());
    }
}
