//! Discovery: for each region, one paginated describe per resource kind (never one call
//! per resource), the kinds of a region and the regions all read concurrently within the
//! account's rate budget. A kind that fails is recorded with its AWS error code; its facts
//! are not guessed.

use std::collections::BTreeMap;

use garrison_model::snapshot::*;

use crate::{Aws, CloudError};

fn ec2_tags(tags: &[aws_sdk_ec2::types::Tag]) -> Tags {
    tags.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect()
}

macro_rules! pages {
    ($aws:expr, $svc:literal, $op:literal, $builder:expr, |$page:ident| $body:block) => {{
        let mut stream = $builder.into_paginator().send();
        loop {
            $aws.pace($svc).await;
            match stream.next().await {
                None => break,
                Some(Err(e)) => return Err(CloudError::from_sdk($svc, $op, e)),
                Some(Ok($page)) => $body,
            }
        }
    }};
}

async fn zones(aws: &Aws) -> Result<Vec<Zone>, CloudError> {
    aws.pace("ec2").await;
    let out = aws
        .ec2()
        .describe_availability_zones()
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("ec2", "DescribeAvailabilityZones", e))?;
    Ok(out
        .availability_zones()
        .iter()
        .map(|z| Zone {
            name: z.zone_name().unwrap_or_default().into(),
            zone_id: z.zone_id().unwrap_or_default().into(),
            state: z.state().map(|s| s.as_str().to_string()).unwrap_or_default(),
        })
        .collect())
}

async fn vpcs(aws: &Aws) -> Result<Vec<Vpc>, CloudError> {
    let mut out = vec![];
    pages!(aws, "ec2", "DescribeVpcs", aws.ec2().describe_vpcs(), |p| {
        out.extend(p.vpcs().iter().map(|v| Vpc {
            id: v.vpc_id().unwrap_or_default().into(),
            cidr: v.cidr_block().unwrap_or_default().into(),
            is_default: v.is_default().unwrap_or(false),
            tags: ec2_tags(v.tags()),
        }))
    });
    Ok(out)
}

async fn subnets(aws: &Aws) -> Result<Vec<Subnet>, CloudError> {
    let mut out = vec![];
    pages!(aws, "ec2", "DescribeSubnets", aws.ec2().describe_subnets(), |p| {
        out.extend(p.subnets().iter().map(|s| Subnet {
            id: s.subnet_id().unwrap_or_default().into(),
            vpc_id: s.vpc_id().unwrap_or_default().into(),
            zone: s.availability_zone().unwrap_or_default().into(),
            cidr: s.cidr_block().unwrap_or_default().into(),
            tags: ec2_tags(s.tags()),
        }))
    });
    Ok(out)
}

async fn instances(aws: &Aws) -> Result<Vec<Instance>, CloudError> {
    let mut out = vec![];
    pages!(aws, "ec2", "DescribeInstances", aws.ec2().describe_instances().max_results(1000), |p| {
        for r in p.reservations() {
            out.extend(r.instances().iter().map(|i| Instance {
                id: i.instance_id().unwrap_or_default().into(),
                vpc_id: i.vpc_id().map(str::to_string),
                subnet_id: i.subnet_id().map(str::to_string),
                zone: i.placement().and_then(|p| p.availability_zone()).unwrap_or_default().into(),
                state: i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default(),
                instance_type: i.instance_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
                private_ip: i.private_ip_address().map(str::to_string),
                security_groups: i.security_groups().iter().filter_map(|g| g.group_id().map(str::to_string)).collect(),
                tags: ec2_tags(i.tags()),
                interfaces: {
                    let mut n: Vec<(i32, String)> = i
                        .network_interfaces()
                        .iter()
                        .filter_map(|n| {
                            let index = n.attachment().and_then(|a| a.device_index()).unwrap_or(i32::MAX);
                            Some((index, n.network_interface_id()?.to_string()))
                        })
                        .collect();
                    n.sort();
                    n.into_iter().map(|(_, id)| id).collect()
                },
            }));
        }
    });
    Ok(out)
}

/// A region's traffic mirror targets, filters and sessions.
#[derive(Default)]
struct Mirrors {
    targets: Vec<MirrorTarget>,
    filters: Vec<MirrorFilter>,
    sessions: Vec<MirrorSession>,
}

async fn mirroring(aws: &Aws) -> Result<Vec<Mirrors>, CloudError> {
    let mut m = Mirrors::default();
    let ec2 = aws.ec2();
    pages!(aws, "ec2", "DescribeTrafficMirrorTargets", ec2.describe_traffic_mirror_targets(), |p| {
        m.targets.extend(p.traffic_mirror_targets().iter().map(|t| MirrorTarget {
            id: t.traffic_mirror_target_id().unwrap_or_default().into(),
            interface: t.network_interface_id().map(str::to_string),
            tags: ec2_tags(t.tags()),
        }))
    });
    pages!(aws, "ec2", "DescribeTrafficMirrorFilters", ec2.describe_traffic_mirror_filters(), |p| {
        m.filters.extend(p.traffic_mirror_filters().iter().map(|f| MirrorFilter {
            id: f.traffic_mirror_filter_id().unwrap_or_default().into(),
            ingress_rules: f.ingress_filter_rules().len(),
            egress_rules: f.egress_filter_rules().len(),
            tags: ec2_tags(f.tags()),
        }))
    });
    pages!(aws, "ec2", "DescribeTrafficMirrorSessions", ec2.describe_traffic_mirror_sessions(), |p| {
        m.sessions.extend(p.traffic_mirror_sessions().iter().map(|s| MirrorSession {
            id: s.traffic_mirror_session_id().unwrap_or_default().into(),
            interface: s.network_interface_id().unwrap_or_default().into(),
            target: s.traffic_mirror_target_id().unwrap_or_default().into(),
            filter: s.traffic_mirror_filter_id().unwrap_or_default().into(),
            number: s.session_number().unwrap_or_default(),
            tags: ec2_tags(s.tags()),
        }))
    });
    Ok(vec![m])
}

fn settle_mirrors(st: &mut BTreeMap<Kind, ReadStatus>, r: Result<Vec<Mirrors>, CloudError>) -> RegionSnapshot {
    let m = settle(st, Kind::Mirroring, r).pop().unwrap_or_default();
    RegionSnapshot {
        mirror_targets: m.targets,
        mirror_filters: m.filters,
        mirror_sessions: m.sessions,
        ..Default::default()
    }
}

fn rules(perms: &[aws_sdk_ec2::types::IpPermission]) -> Vec<Rule> {
    perms
        .iter()
        .map(|p| Rule {
            protocol: p.ip_protocol().unwrap_or("-1").to_string(),
            from_port: p.from_port(),
            to_port: p.to_port(),
            cidrs: p.ip_ranges().iter().filter_map(|r| r.cidr_ip().map(str::to_string)).collect(),
            groups: p.user_id_group_pairs().iter().filter_map(|g| g.group_id().map(str::to_string)).collect(),
        })
        .collect()
}

async fn security_groups(aws: &Aws) -> Result<Vec<SecurityGroup>, CloudError> {
    let mut out = vec![];
    pages!(aws, "ec2", "DescribeSecurityGroups", aws.ec2().describe_security_groups(), |p| {
        out.extend(p.security_groups().iter().map(|g| SecurityGroup {
            id: g.group_id().unwrap_or_default().into(),
            vpc_id: g.vpc_id().map(str::to_string),
            name: g.group_name().unwrap_or_default().into(),
            ingress: rules(g.ip_permissions()),
            egress: rules(g.ip_permissions_egress()),
            tags: ec2_tags(g.tags()),
        }))
    });
    Ok(out)
}

async fn route_tables(aws: &Aws) -> Result<Vec<RouteTable>, CloudError> {
    let mut out = vec![];
    pages!(aws, "ec2", "DescribeRouteTables", aws.ec2().describe_route_tables(), |p| {
        out.extend(p.route_tables().iter().map(|t| {
            RouteTable {
                id: t.route_table_id().unwrap_or_default().into(),
                vpc_id: t.vpc_id().unwrap_or_default().into(),
                main: t.associations().iter().any(|a| a.main().unwrap_or(false)),
                subnet_ids: t.associations().iter().filter_map(|a| a.subnet_id().map(str::to_string)).collect(),
                routes: t
                    .routes()
                    .iter()
                    .map(|r| Route {
                        destination: r.destination_cidr_block().unwrap_or_default().into(),
                        target: r.gateway_id().or(r.nat_gateway_id()).or(r.instance_id()).map(str::to_string),
                    })
                    .collect(),
                tags: ec2_tags(t.tags()),
            }
        }))
    });
    Ok(out)
}

async fn network_acls(aws: &Aws) -> Result<Vec<NetworkAcl>, CloudError> {
    let mut out = vec![];
    pages!(aws, "ec2", "DescribeNetworkAcls", aws.ec2().describe_network_acls(), |p| {
        out.extend(p.network_acls().iter().map(|a| NetworkAcl {
            id: a.network_acl_id().unwrap_or_default().into(),
            vpc_id: a.vpc_id().unwrap_or_default().into(),
            is_default: a.is_default().unwrap_or(false),
            subnet_ids: a.associations().iter().filter_map(|x| x.subnet_id().map(str::to_string)).collect(),
            tags: ec2_tags(a.tags()),
        }))
    });
    Ok(out)
}

async fn internet_gateways(aws: &Aws) -> Result<Vec<InternetGateway>, CloudError> {
    let mut out = vec![];
    pages!(aws, "ec2", "DescribeInternetGateways", aws.ec2().describe_internet_gateways(), |p| {
        out.extend(p.internet_gateways().iter().map(|g| InternetGateway {
            id: g.internet_gateway_id().unwrap_or_default().into(),
            vpc_ids: g.attachments().iter().filter_map(|a| a.vpc_id().map(str::to_string)).collect(),
            tags: ec2_tags(g.tags()),
        }))
    });
    Ok(out)
}

async fn flow_logs(aws: &Aws) -> Result<Vec<FlowLog>, CloudError> {
    let mut out = vec![];
    pages!(aws, "ec2", "DescribeFlowLogs", aws.ec2().describe_flow_logs(), |p| {
        out.extend(p.flow_logs().iter().map(|f| FlowLog {
            id: f.flow_log_id().unwrap_or_default().into(),
            resource_id: f.resource_id().unwrap_or_default().into(),
            tags: ec2_tags(f.tags()),
        }))
    });
    Ok(out)
}

/// Active VPC peerings and available transit gateway VPC attachments (what lets a hub VPC's
/// appliances protect another VPC).
async fn connections(aws: &Aws) -> Result<Vec<Connection>, CloudError> {
    let mut out = vec![];
    pages!(aws, "ec2", "DescribeVpcPeeringConnections", aws.ec2().describe_vpc_peering_connections(), |p| {
        for c in p.vpc_peering_connections() {
            let active = c.status().and_then(|s| s.code()).is_some_and(|s| s.as_str() == "active");
            let vpc = |i: Option<&aws_sdk_ec2::types::VpcPeeringConnectionVpcInfo>| {
                i.and_then(|i| i.vpc_id()).map(str::to_string)
            };
            if let (true, Some(a), Some(b)) = (active, vpc(c.requester_vpc_info()), vpc(c.accepter_vpc_info())) {
                let id = c.vpc_peering_connection_id().unwrap_or_default().to_string();
                out.push(Connection { id, kind: "peering".into(), via: None, vpcs: vec![a, b] });
            }
        }
    });
    pages!(
        aws,
        "ec2",
        "DescribeTransitGatewayVpcAttachments",
        aws.ec2().describe_transit_gateway_vpc_attachments(),
        |p| {
            for a in p.transit_gateway_vpc_attachments() {
                let available = a.state().is_some_and(|s| s.as_str() == "available");
                if let (true, Some(vpc)) = (available, a.vpc_id()) {
                    out.push(Connection {
                        id: a.transit_gateway_attachment_id().unwrap_or_default().into(),
                        kind: "transit_gateway".into(),
                        via: a.transit_gateway_id().map(str::to_string),
                        vpcs: vec![vpc.to_string()],
                    });
                }
            }
        }
    );
    Ok(out)
}

async fn trails(aws: &Aws, region: &str) -> Result<Vec<Trail>, CloudError> {
    aws.pace("cloudtrail").await;
    let ct = aws.cloudtrail();
    let out = ct
        .describe_trails()
        .include_shadow_trails(true)
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("cloudtrail", "DescribeTrails", e))?;
    let mut trails = vec![];
    for t in out.trail_list() {
        let home = t.home_region().unwrap_or_default().to_string();
        let multi = t.is_multi_region_trail().unwrap_or(false);
        // Status only where it decides adoption: multi-region trails homed here (a few at most).
        let logging = if multi && home == region {
            aws.pace("cloudtrail").await;
            let st = ct
                .get_trail_status()
                .name(t.trail_arn().unwrap_or_default())
                .send()
                .await
                .map_err(|e| CloudError::from_sdk("cloudtrail", "GetTrailStatus", e))?;
            st.is_logging()
        } else {
            None
        };
        trails.push(Trail {
            name: t.name().unwrap_or_default().into(),
            arn: t.trail_arn().unwrap_or_default().into(),
            home_region: home,
            multi_region: multi,
            logging,
            s3_bucket: t.s3_bucket_name().map(str::to_string),
            sns_topic_arn: t.sns_topic_arn().map(str::to_string),
            kms_key_id: t.kms_key_id().map(str::to_string),
            organization: t.is_organization_trail().unwrap_or(false),
        });
    }
    Ok(trails)
}

async fn detectors(aws: &Aws) -> Result<Vec<Detector>, CloudError> {
    let gd = aws.guardduty();
    let mut ids = vec![];
    pages!(aws, "guardduty", "ListDetectors", gd.list_detectors(), |p| {
        ids.extend(p.detector_ids().iter().cloned())
    });
    // At most one detector per region exists, so this is one call, not one per resource.
    let mut out = vec![];
    for id in ids {
        aws.pace("guardduty").await;
        let d = gd
            .get_detector()
            .detector_id(&id)
            .send()
            .await
            .map_err(|e| CloudError::from_sdk("guardduty", "GetDetector", e))?;
        out.push(Detector {
            id,
            status: d.status().map(|s| s.as_str().to_string()),
            tags: d.tags().map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default(),
        });
    }
    Ok(out)
}

async fn config_recorders(aws: &Aws) -> Result<Vec<ConfigRecorder>, CloudError> {
    let cs = aws.configservice();
    aws.pace("config").await;
    let recs = cs
        .describe_configuration_recorders()
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("config", "DescribeConfigurationRecorders", e))?;
    if recs.configuration_recorders().is_empty() {
        return Ok(vec![]);
    }
    aws.pace("config").await;
    let st = cs
        .describe_configuration_recorder_status()
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("config", "DescribeConfigurationRecorderStatus", e))?;
    Ok(recs
        .configuration_recorders()
        .iter()
        .map(|r| {
            let name = r.name().unwrap_or_default().to_string();
            let recording =
                st.configuration_recorders_status().iter().any(|s| s.name() == Some(name.as_str()) && s.recording());
            ConfigRecorder { name, recording }
        })
        .collect())
}

async fn ecs_clusters(aws: &Aws) -> Result<Vec<EcsCluster>, CloudError> {
    let ecs = aws.ecs();
    let mut arns = vec![];
    pages!(aws, "ecs", "ListClusters", ecs.list_clusters(), |p| { arns.extend(p.cluster_arns().iter().cloned()) });
    let mut out = vec![];
    // Services and tasks are listed per cluster (their parent), in pages, never per item.
    for arn in arns {
        let mut services = vec![];
        pages!(aws, "ecs", "ListServices", ecs.list_services().cluster(&arn), |p| {
            services.extend(p.service_arns().iter().cloned())
        });
        let mut tasks = vec![];
        pages!(aws, "ecs", "ListTasks", ecs.list_tasks().cluster(&arn), |p| {
            tasks.extend(p.task_arns().iter().cloned())
        });
        let name = arn.rsplit('/').next().unwrap_or_default().to_string();
        out.push(EcsCluster { arn, name, services, tasks });
    }
    Ok(out)
}

async fn eks_clusters(aws: &Aws) -> Result<Vec<EksCluster>, CloudError> {
    let mut out = vec![];
    pages!(aws, "eks", "ListClusters", aws.eks().list_clusters(), |p| {
        out.extend(p.clusters().iter().map(|n| EksCluster { name: n.clone() }))
    });
    Ok(out)
}

/// Where the instance types appliances may use are offered (one filtered call per region).
async fn offerings(aws: &Aws, types: &[String]) -> Result<Vec<Offering>, CloudError> {
    use aws_sdk_ec2::types::{Filter, LocationType};
    let mut out = vec![];
    let req = aws
        .ec2()
        .describe_instance_type_offerings()
        .location_type(LocationType::AvailabilityZone)
        .filters(Filter::builder().name("instance-type").set_values(Some(types.to_vec())).build());
    pages!(aws, "ec2", "DescribeInstanceTypeOfferings", req, |p| {
        out.extend(p.instance_type_offerings().iter().map(|o| Offering {
            zone: o.location().unwrap_or_default().into(),
            instance_type: o.instance_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
        }))
    });
    Ok(out)
}

fn settle<T>(status: &mut BTreeMap<Kind, ReadStatus>, kind: Kind, r: Result<Vec<T>, CloudError>) -> Vec<T> {
    match r {
        Ok(v) => {
            status.insert(kind, ReadStatus::Complete);
            v
        }
        Err(e) => {
            tracing::warn!(kind = kind.as_str(), code = %e.code, "discovery read failed");
            status.insert(kind, ReadStatus::Failed { code: e.code, message: e.message });
            vec![]
        }
    }
}

/// The instance types whose offerings discovery reads: every type the price table knows.
pub fn appliance_types() -> Vec<String> {
    APPLIANCE_TYPES.iter().map(|s| s.to_string()).collect()
}

/// Kept in step with the catalog's price table (a test checks), since this crate does not
/// depend on the catalog.
pub const APPLIANCE_TYPES: &[&str] = &[
    "m3.medium",
    "t3.medium",
    "t3a.medium",
    "t3.large",
    "c5.large",
    "c4.large",
    "m5.large",
    "c5.xlarge",
    "m5.xlarge",
    "c4.xlarge",
    "t3.xlarge",
    "t3.2xlarge",
    "m4.large",
    "m4.xlarge",
    "m4.2xlarge",
    "m4.4xlarge",
    "m4.10xlarge",
    "m4.16xlarge",
    "m5.2xlarge",
    "m5.4xlarge",
    "m5.12xlarge",
    "m5.24xlarge",
    "c4.2xlarge",
    "c4.4xlarge",
    "c4.8xlarge",
    "c5.2xlarge",
    "c5.4xlarge",
    "c5.9xlarge",
    "c5.18xlarge",
    "c6a.large",
    "c6i.large",
    "c6i.xlarge",
];

/// Reads every kind of one region concurrently.
pub async fn discover_region(aws: &Aws, region: &str) -> RegionSnapshot {
    let a = aws.in_region(region);
    let types = appliance_types();
    let known = a.reuse.as_ref().and_then(|r| r.facts(&a.account, region));
    let reused = known.is_some();
    // Zones and the appliance types' offerings: slow-changing, so reused when allowed.
    let facts = async {
        match known {
            Some((z, o)) => (Ok(z), Ok(o)),
            None => tokio::join!(zones(&a), offerings(&a, &types)),
        }
    };
    let ((z, of), v, s, i, sg, rt, na, ig, fl, tr, gd, cr, ec, ek, cn, mi) = tokio::join!(
        facts,
        vpcs(&a),
        subnets(&a),
        instances(&a),
        security_groups(&a),
        route_tables(&a),
        network_acls(&a),
        internet_gateways(&a),
        flow_logs(&a),
        trails(&a, region),
        detectors(&a),
        config_recorders(&a),
        ecs_clusters(&a),
        eks_clusters(&a),
        connections(&a),
        mirroring(&a),
    );
    if let (Some(r), false, Ok(z), Ok(o)) = (&a.reuse, reused, &z, &of) {
        r.keep_facts(&a.account, region, (z.clone(), o.clone()));
    }
    let mut st = BTreeMap::new();
    let mirrors = settle_mirrors(&mut st, mi);
    RegionSnapshot {
        zones: settle(&mut st, Kind::Zones, z),
        vpcs: settle(&mut st, Kind::Vpcs, v),
        subnets: settle(&mut st, Kind::Subnets, s),
        instances: settle(&mut st, Kind::Instances, i),
        security_groups: settle(&mut st, Kind::SecurityGroups, sg),
        route_tables: settle(&mut st, Kind::RouteTables, rt),
        network_acls: settle(&mut st, Kind::NetworkAcls, na),
        internet_gateways: settle(&mut st, Kind::InternetGateways, ig),
        flow_logs: settle(&mut st, Kind::FlowLogs, fl),
        trails: settle(&mut st, Kind::Trails, tr),
        detectors: settle(&mut st, Kind::GuarddutyDetectors, gd),
        config_recorders: settle(&mut st, Kind::ConfigRecorders, cr),
        ecs_clusters: settle(&mut st, Kind::EcsClusters, ec),
        eks_clusters: settle(&mut st, Kind::EksClusters, ek),
        offerings: settle(&mut st, Kind::Offerings, of),
        connections: settle(&mut st, Kind::Connections, cn),
        status: st,
        ..mirrors
    }
}

/// Reads all `regions` concurrently into one snapshot of the account.
pub async fn discover(aws: &Aws, regions: &[String], now: i64) -> Snapshot {
    let mut set = tokio::task::JoinSet::new();
    for r in regions {
        let (a, r) = (aws.clone(), r.clone());
        set.spawn(async move {
            let snap = discover_region(&a, &r).await;
            (r, snap)
        });
    }
    let mut out = BTreeMap::new();
    while let Some(res) = set.join_next().await {
        if let Ok((r, snap)) = res {
            out.insert(r, snap);
        }
    }
    home_status_of_shadows(aws, &mut out).await;
    Snapshot { aws_account: aws.account.clone(), taken_at: now, regions: out }
}

/// Multi-region trails listed only as shadow copies (their home region was not read): their
/// status read once each in the home region, by ARN, so that adoption judges each trail by
/// its home copy whatever the regions read. One that cannot be read stays unknown.
async fn home_status_of_shadows(aws: &Aws, out: &mut BTreeMap<String, RegionSnapshot>) {
    let mut wanted: BTreeMap<String, String> = BTreeMap::new();
    for rs in out.values() {
        for t in rs.trails.iter().filter(|t| t.multi_region && t.logging.is_none()) {
            if !out.contains_key(&t.home_region) && !t.home_region.is_empty() {
                wanted.insert(t.arn.clone(), t.home_region.clone());
            }
        }
    }
    for (arn, home) in wanted {
        let a = aws.in_region(&home);
        a.pace("cloudtrail").await;
        match a.cloudtrail().get_trail_status().name(&arn).send().await {
            Ok(st) => {
                for t in out.values_mut().flat_map(|rs| rs.trails.iter_mut()).filter(|t| t.arn == arn) {
                    t.logging = st.is_logging();
                }
            }
            Err(e) => {
                let e = CloudError::from_sdk("cloudtrail", "GetTrailStatus", e);
                tracing::debug!(trail = %garrison_model::redact::text(&arn), error = %e, "a shadow trail's status is unknown");
            }
        }
    }
}

/// The regions enabled in the account (for scopes that include the whole deployment).
pub async fn enabled_regions(aws: &Aws) -> Result<Vec<String>, CloudError> {
    aws.pace("ec2").await;
    let out =
        aws.ec2().describe_regions().send().await.map_err(|e| CloudError::from_sdk("ec2", "DescribeRegions", e))?;
    let mut r: Vec<String> = out.regions().iter().filter_map(|r| r.region_name().map(str::to_string)).collect();
    r.sort();
    Ok(r)
}

/// The baseline a simple script is: the same reads, one call after another.
pub async fn discover_sequential(aws: &Aws, regions: &[String], now: i64) -> Snapshot {
    let mut out = BTreeMap::new();
    for r in regions {
        let a = aws.in_region(r);
        let mut st = BTreeMap::new();
        let snap = RegionSnapshot {
            zones: settle(&mut st, Kind::Zones, zones(&a).await),
            vpcs: settle(&mut st, Kind::Vpcs, vpcs(&a).await),
            subnets: settle(&mut st, Kind::Subnets, subnets(&a).await),
            instances: settle(&mut st, Kind::Instances, instances(&a).await),
            security_groups: settle(&mut st, Kind::SecurityGroups, security_groups(&a).await),
            route_tables: settle(&mut st, Kind::RouteTables, route_tables(&a).await),
            network_acls: settle(&mut st, Kind::NetworkAcls, network_acls(&a).await),
            internet_gateways: settle(&mut st, Kind::InternetGateways, internet_gateways(&a).await),
            flow_logs: settle(&mut st, Kind::FlowLogs, flow_logs(&a).await),
            trails: settle(&mut st, Kind::Trails, trails(&a, r).await),
            detectors: settle(&mut st, Kind::GuarddutyDetectors, detectors(&a).await),
            config_recorders: settle(&mut st, Kind::ConfigRecorders, config_recorders(&a).await),
            ecs_clusters: settle(&mut st, Kind::EcsClusters, ecs_clusters(&a).await),
            eks_clusters: settle(&mut st, Kind::EksClusters, eks_clusters(&a).await),
            offerings: settle(&mut st, Kind::Offerings, offerings(&a, &appliance_types()).await),
            connections: settle(&mut st, Kind::Connections, connections(&a).await),
            status: BTreeMap::new(),
            ..settle_mirrors(&mut st, mirroring(&a).await)
        };
        out.insert(r.clone(), RegionSnapshot { status: st, ..snap });
    }
    Snapshot { aws_account: aws.account.clone(), taken_at: now, regions: out }
}

/// The policy of a KMS key (its `default` policy, the only name KMS has), read in the
/// key's region (from its ARN, else `aws`'s).
pub async fn key_policy(aws: &Aws, key: &str) -> Result<String, CloudError> {
    let region = key.split(':').nth(3).filter(|r| !r.is_empty()).map(str::to_string).unwrap_or_else(|| aws.region());
    let a = aws.in_region(&region);
    a.pace("kms").await;
    let out = a
        .kms()
        .get_key_policy()
        .key_id(key)
        .policy_name("default")
        .send()
        .await
        .map_err(|e| CloudError::from_sdk("kms", "GetKeyPolicy", e))?;
    Ok(out.policy().unwrap_or_default().to_string())
}
