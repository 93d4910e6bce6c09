//! Reference estates on the emulator: VPCs spread over regions, subnets over several
//! zones, running and stopped instances, security groups, empty VPCs, and optionally a
//! customer's own trail, GuardDuty detector, Config recorder and containers. What was
//! built is returned so that tests can compare discovery with it exactly.

use anyhow::Context;
use aws_sdk_ec2::types::{Filter, IpPermission, IpRange};

use crate::{Aws, Sessions};

#[derive(Debug, Clone)]
pub struct EstateSpec {
    pub name: &'static str,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    /// VPCs per account, spread round-robin over the regions.
    pub vpcs: usize,
    /// Instances per account, spread over the inhabited VPCs and their subnets.
    pub instances: usize,
    /// Every n-th VPC is left empty (0: none).
    pub empty_every: usize,
    /// Every n-th instance is stopped (0: none).
    pub stopped_every: usize,
    pub zones_per_vpc: usize,
    pub existing_trail: bool,
    pub existing_detector: bool,
    pub existing_recorder: bool,
    pub containers: bool,
}

pub const DEFAULT_ACCOUNT: &str = "123456789012";

fn regions(n: usize) -> Vec<String> {
    [
        "us-east-1",
        "us-west-2",
        "eu-west-1",
        "eu-central-1",
        "ap-southeast-1",
        "ap-northeast-1",
        "us-east-2",
        "us-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-north-1",
        "ap-southeast-2",
        "ap-northeast-2",
        "ap-south-1",
        "ca-central-1",
        "sa-east-1",
    ][..n]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

impl EstateSpec {
    /// S: 2 regions, 4 VPCs (one empty), 10 instances; an existing trail, detector, recorder and containers.
    pub fn s() -> EstateSpec {
        EstateSpec {
            name: "S",
            accounts: vec![DEFAULT_ACCOUNT.into()],
            regions: regions(2),
            vpcs: 4,
            instances: 10,
            empty_every: 4,
            stopped_every: 5,
            zones_per_vpc: 2,
            existing_trail: true,
            existing_detector: true,
            existing_recorder: true,
            containers: true,
        }
    }

    /// S without the customer's own trail, detector, recorder and containers: garrison
    /// builds its own audit source there (bucket, topic, queue), so CloudTrail reaches it.
    pub fn s_bare() -> EstateSpec {
        EstateSpec {
            existing_trail: false,
            existing_detector: false,
            existing_recorder: false,
            containers: false,
            ..EstateSpec::s()
        }
    }

    /// M: 4 regions, 40 VPCs, 400 instances.
    pub fn m() -> EstateSpec {
        EstateSpec {
            name: "M",
            regions: regions(4),
            vpcs: 40,
            instances: 400,
            existing_trail: false,
            existing_detector: false,
            existing_recorder: false,
            containers: false,
            ..EstateSpec::s()
        }
    }

    /// L: 16 regions, 200 VPCs, 4,000 instances.
    pub fn l() -> EstateSpec {
        EstateSpec { name: "L", regions: regions(16), vpcs: 200, instances: 4000, ..EstateSpec::m() }
    }
}

#[derive(Debug, Clone)]
pub struct BuiltInstance {
    pub id: String,
    pub subnet: String,
    pub zone: String,
    pub running: bool,
}

#[derive(Debug, Clone)]
pub struct BuiltVpc {
    pub region: String,
    pub id: String,
    pub cidr: String,
    pub subnets: Vec<(String, String)>,
    pub security_group: String,
    pub instances: Vec<BuiltInstance>,
}

#[derive(Debug, Clone)]
pub struct BuiltAccount {
    pub account: String,
    /// A role garrison can be given for this account (the emulator accepts any).
    pub role_arn: String,
    pub vpcs: Vec<BuiltVpc>,
    pub trail: Option<String>,
    pub detector: Option<String>,
    pub recorder: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Estate {
    pub spec: EstateSpec,
    pub accounts: Vec<BuiltAccount>,
}

impl Estate {
    pub fn vpcs(&self) -> impl Iterator<Item = &BuiltVpc> {
        self.accounts.iter().flat_map(|a| a.vpcs.iter())
    }
}

pub const ESTATE_EXTERNAL_ID: &str = "garrison-estate";

pub async fn build(sessions: &Sessions, spec: &EstateSpec) -> anyhow::Result<Estate> {
    let mut accounts = vec![];
    for acct in &spec.accounts {
        let role_arn = format!("arn:aws:iam::{acct}:role/garrison");
        let aws = sessions.assume(&role_arn, ESTATE_EXTERNAL_ID).await?;
        accounts.push(
            build_account(&aws, acct, &role_arn, spec)
                .await
                .with_context(|| format!("estate {} in {acct}", spec.name))?,
        );
    }
    Ok(Estate { spec: spec.clone(), accounts })
}

async fn build_account(aws: &Aws, acct: &str, role_arn: &str, spec: &EstateSpec) -> anyhow::Result<BuiltAccount> {
    let mut vpcs = vec![];
    let inhabited: Vec<usize> =
        (0..spec.vpcs).filter(|i| spec.empty_every == 0 || i % spec.empty_every != spec.empty_every - 1).collect();
    // Instances per inhabited VPC, as even as possible.
    let per =
        |k: usize| spec.instances / inhabited.len().max(1) + usize::from(k < spec.instances % inhabited.len().max(1));
    let mut n = 0usize;
    let mut zones_of: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for i in 0..spec.vpcs {
        let region = spec.regions[i % spec.regions.len()].clone();
        let ec2 = aws.in_region(&region).ec2();
        if !zones_of.contains_key(&region) {
            let z = ec2.describe_availability_zones().send().await?;
            let mut names: Vec<String> =
                z.availability_zones().iter().filter_map(|z| z.zone_name().map(str::to_string)).collect();
            names.sort();
            zones_of.insert(region.clone(), names);
        }
        let zones = &zones_of[&region];
        let cidr = format!("10.{}.0.0/16", i % 250);
        let vpc = ec2
            .create_vpc()
            .cidr_block(&cidr)
            .send()
            .await?
            .vpc()
            .and_then(|v| v.vpc_id())
            .context("vpc id")?
            .to_string();
        let mut subnets = vec![];
        for z in 0..spec.zones_per_vpc {
            let zone = zones[z % zones.len()].clone();
            let s = ec2
                .create_subnet()
                .vpc_id(&vpc)
                .cidr_block(format!("10.{}.{z}.0/24", i % 250))
                .availability_zone(&zone)
                .send()
                .await?;
            subnets.push((s.subnet().and_then(|s| s.subnet_id()).context("subnet id")?.to_string(), zone));
        }
        let sg = ec2
            .create_security_group()
            .group_name(format!("app-{i}"))
            .description("estate app tier")
            .vpc_id(&vpc)
            .send()
            .await?;
        let sg = sg.group_id().context("sg id")?.to_string();
        ec2.authorize_security_group_ingress()
            .group_id(&sg)
            .ip_permissions(
                IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(443)
                    .to_port(443)
                    .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                    .build(),
            )
            .send()
            .await?;
        let mut instances = vec![];
        if let Some(k) = inhabited.iter().position(|x| *x == i) {
            let count = per(k);
            for (j, (subnet, zone)) in subnets.iter().enumerate() {
                let c = count / subnets.len() + usize::from(j < count % subnets.len());
                if c == 0 {
                    continue;
                }
                let out = ec2
                    .run_instances()
                    .image_id("ami-12c6146b")
                    .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                    .min_count(c as i32)
                    .max_count(c as i32)
                    .subnet_id(subnet)
                    .send()
                    .await?;
                for inst in out.instances() {
                    n += 1;
                    let running = spec.stopped_every == 0 || !n.is_multiple_of(spec.stopped_every);
                    instances.push(BuiltInstance {
                        id: inst.instance_id().unwrap_or_default().into(),
                        subnet: subnet.clone(),
                        zone: zone.clone(),
                        running,
                    });
                }
            }
            let stopped: Vec<String> = instances.iter().filter(|x| !x.running).map(|x| x.id.clone()).collect();
            if !stopped.is_empty() {
                ec2.stop_instances().set_instance_ids(Some(stopped)).send().await?;
            }
        }
        vpcs.push(BuiltVpc { region, id: vpc, cidr, subnets, security_group: sg, instances });
    }
    let home = aws.in_region(&spec.regions[0]);
    let mut built = BuiltAccount {
        account: acct.into(),
        role_arn: role_arn.into(),
        vpcs,
        trail: None,
        detector: None,
        recorder: None,
    };
    if spec.existing_trail || spec.existing_recorder {
        home.s3().create_bucket().bucket(format!("customer-logs-{acct}")).send().await?;
    }
    if spec.existing_trail {
        let t = home
            .cloudtrail()
            .create_trail()
            .name("customer-trail")
            .s3_bucket_name(format!("customer-logs-{acct}"))
            .is_multi_region_trail(true)
            .send()
            .await?;
        home.cloudtrail().start_logging().name("customer-trail").send().await?;
        built.trail = t.trail_arn().map(str::to_string);
    }
    if spec.existing_detector {
        let d = home.guardduty().create_detector().enable(true).send().await?;
        built.detector = d.detector_id().map(str::to_string);
    }
    if spec.existing_recorder {
        let cs = home.configservice();
        cs.put_configuration_recorder()
            .configuration_recorder(
                aws_sdk_config::types::ConfigurationRecorder::builder()
                    .name("default")
                    .role_arn(format!("arn:aws:iam::{acct}:role/config"))
                    .build(),
            )
            .send()
            .await?;
        cs.put_delivery_channel()
            .delivery_channel(
                aws_sdk_config::types::DeliveryChannel::builder()
                    .name("default")
                    .s3_bucket_name(format!("customer-logs-{acct}"))
                    .build(),
            )
            .send()
            .await?;
        cs.start_configuration_recorder().configuration_recorder_name("default").send().await?;
        built.recorder = Some("default".into());
    }
    if spec.containers {
        let ecs = home.ecs();
        ecs.create_cluster().cluster_name("shop").send().await?;
        ecs.register_task_definition()
            .family("web")
            .container_definitions(
                aws_sdk_ecs::types::ContainerDefinition::builder().name("web").image("nginx").memory(128).build(),
            )
            .send()
            .await?;
        ecs.create_service().cluster("shop").service_name("web").task_definition("web").desired_count(0).send().await?;
        let vpc = &built.vpcs[0];
        home.eks()
            .create_cluster()
            .name("platform")
            .role_arn(format!("arn:aws:iam::{acct}:role/eks"))
            .resources_vpc_config(
                aws_sdk_eks::types::VpcConfigRequest::builder()
                    .set_subnet_ids(Some(vpc.subnets.iter().map(|s| s.0.clone()).collect()))
                    .build(),
            )
            .send()
            .await?;
    }
    Ok(built)
}

/// The emulator's own default VPC in a region (moto makes one per region and account).
/// A customer's role as garrison's template makes it: `trust` as its trust policy and each
/// of `policies` as a managed policy attached to it. Returns the role ARN.
pub async fn create_role(
    aws: &Aws,
    name: &str,
    trust: &serde_json::Value,
    policies: &[serde_json::Value],
) -> anyhow::Result<String> {
    let iam = aws.iam();
    let role = iam.create_role().role_name(name).assume_role_policy_document(trust.to_string()).send().await?;
    for (i, p) in policies.iter().enumerate() {
        let pol = iam.create_policy().policy_name(format!("{name}-{i}")).policy_document(p.to_string()).send().await?;
        iam.attach_role_policy()
            .role_name(name)
            .policy_arn(pol.policy().and_then(|p| p.arn()).context("CreatePolicy returned no ARN")?)
            .send()
            .await?;
    }
    role.role().map(|r| r.arn().to_string()).context("CreateRole returned no role")
}

pub async fn default_vpc(aws: &Aws, region: &str) -> anyhow::Result<Option<String>> {
    let out = aws
        .in_region(region)
        .ec2()
        .describe_vpcs()
        .filters(Filter::builder().name("is-default").values("true").build())
        .send()
        .await?;
    Ok(out.vpcs().first().and_then(|v| v.vpc_id()).map(str::to_string))
}

/// What an instance was launched with as user data, decoded (tests read an appliance's
/// first-boot script as the instance would).
pub async fn user_data(aws: &crate::Aws, instance: &str) -> anyhow::Result<Option<String>> {
    use base64::Engine as _;
    let out = aws
        .ec2()
        .describe_instance_attribute()
        .instance_id(instance)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await?;
    match out.user_data().and_then(|u| u.value()) {
        Some(raw) => Ok(Some(String::from_utf8(base64::engine::general_purpose::STANDARD.decode(raw)?)?)),
        None => Ok(None),
    }
}

/// The instances (id, state) carrying tag `key` = `value` in `region`.
pub async fn instances_tagged(
    aws: &Aws,
    region: &str,
    key: &str,
    value: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let out = aws
        .in_region(region)
        .ec2()
        .describe_instances()
        .filters(Filter::builder().name(format!("tag:{key}")).values(value).build())
        .send()
        .await?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| Some((i.instance_id()?.to_string(), i.state()?.name()?.as_str().to_string())))
        .collect())
}
