//! Discovery on the emulator: exact counts and relationships for estates S and M, one
//! describe per kind per region (counted), and a region answering AccessDenied giving a
//! snapshot flagged partial that names it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use garrison_cloud::emulator::{Moto, sdk_config};
use garrison_cloud::estate::{self, ESTATE_EXTERNAL_ID, Estate, EstateSpec};
use garrison_cloud::{Aws, Sessions, discovery};
use garrison_model::snapshot::{Kind, ReadStatus, Snapshot};
use garrison_testkit::proxy::Proxy;

fn check_exact(estate: &Estate, snap: &Snapshot) {
    let spec = &estate.spec;
    assert!(!snap.is_partial(), "{:?}", snap.gaps());
    assert_eq!(snap.regions.keys().cloned().collect::<Vec<_>>(), {
        let mut r = spec.regions.clone();
        r.sort();
        r
    });
    for (region, rs) in &snap.regions {
        // The emulator's default VPC, plus exactly the estate's.
        let want: BTreeSet<&str> = estate.vpcs().filter(|v| &v.region == region).map(|v| v.id.as_str()).collect();
        let got: BTreeSet<&str> = rs.vpcs.iter().filter(|v| !v.is_default).map(|v| v.id.as_str()).collect();
        assert_eq!(got, want, "{region}: VPCs");
        assert_eq!(rs.vpcs.iter().filter(|v| v.is_default).count(), 1, "{region}: one default VPC");
        for v in estate.vpcs().filter(|v| &v.region == region) {
            let vpc = rs.vpcs.iter().find(|x| x.id == v.id).unwrap();
            assert_eq!(vpc.cidr, v.cidr);
            let subnets: BTreeSet<(String, String)> =
                rs.subnets.iter().filter(|s| s.vpc_id == v.id).map(|s| (s.id.clone(), s.zone.clone())).collect();
            assert_eq!(subnets, v.subnets.iter().cloned().collect(), "{}: subnets and zones", v.id);
            let instances: BTreeMap<&str, (&str, &str, bool)> = rs
                .instances
                .iter()
                .filter(|i| i.vpc_id.as_deref() == Some(v.id.as_str()))
                .map(|i| (i.id.as_str(), (i.subnet_id.as_deref().unwrap(), i.zone.as_str(), i.is_running())))
                .collect();
            let want: BTreeMap<&str, (&str, &str, bool)> =
                v.instances.iter().map(|i| (i.id.as_str(), (i.subnet.as_str(), i.zone.as_str(), i.running))).collect();
            assert_eq!(instances, want, "{}: instances, their subnet, zone and state", v.id);
            let sg = rs.security_groups.iter().find(|g| g.id == v.security_group).expect("app security group");
            assert_eq!(sg.vpc_id.as_deref(), Some(v.id.as_str()));
            assert!(
                sg.ingress.iter().any(|r| r.protocol == "tcp" && r.from_port == Some(443) && r.cidrs == ["0.0.0.0/0"])
            );
            assert!(
                rs.security_groups.iter().any(|g| g.vpc_id.as_deref() == Some(v.id.as_str()) && g.name == "default")
            );
            assert_eq!(
                rs.route_tables.iter().filter(|t| t.vpc_id == v.id && t.main).count(),
                1,
                "{}: main route table",
                v.id
            );
            assert_eq!(
                rs.network_acls.iter().filter(|a| a.vpc_id == v.id && a.is_default).count(),
                1,
                "{}: default NACL",
                v.id
            );
        }
        let zones: BTreeSet<&str> = rs.zones.iter().map(|z| z.name.as_str()).collect();
        for v in estate.vpcs().filter(|v| &v.region == region) {
            for (_, z) in &v.subnets {
                assert!(zones.contains(z.as_str()), "{z} listed among the region's zones");
            }
        }
    }
    let total: usize = estate.vpcs().map(|v| v.instances.len()).sum();
    let running: usize = estate.vpcs().flat_map(|v| &v.instances).filter(|i| i.running).count();
    assert_eq!(total, spec.instances);
    assert_eq!(snap.count(Kind::Instances), total);
    assert_eq!(snap.regions.values().flat_map(|r| &r.instances).filter(|i| i.is_running()).count(), running);
}

/// One describe per kind per region; the only extra calls are per parent (ECS cluster) or
/// per singleton (a region's detector, a multi-region trail's status).
fn check_calls(aws: &Aws, regions: usize, clusters: u64, detectors: u64, trails: u64) {
    let calls = aws.calls.snapshot();
    for op in [
        "DescribeVpcs",
        "DescribeSubnets",
        "DescribeInstances",
        "DescribeSecurityGroups",
        "DescribeRouteTables",
        "DescribeNetworkAcls",
        "DescribeInternetGateways",
        "DescribeFlowLogs",
        "DescribeAvailabilityZones",
        "DescribeTrails",
        "ListDetectors",
        "DescribeConfigurationRecorders",
        "ListClusters",
        "DescribeInstanceTypeOfferings",
        "DescribeVpcPeeringConnections",
        "DescribeTransitGatewayVpcAttachments",
        "DescribeTrafficMirrorTargets",
        "DescribeTrafficMirrorFilters",
        "DescribeTrafficMirrorSessions",
    ] {
        let n = aws.calls.count(op);
        let expected = if op == "ListClusters" { 2 * regions as u64 } else { regions as u64 };
        assert_eq!(n, expected, "{op}: {calls:?}");
    }
    assert_eq!(aws.calls.count("GetDetector"), detectors, "{calls:?}");
    assert_eq!(aws.calls.count("GetTrailStatus"), trails, "{calls:?}");
    assert_eq!(aws.calls.count("ListServices"), clusters);
    assert_eq!(aws.calls.count("ListTasks"), clusters);
    assert!(aws.calls.count("DescribeConfigurationRecorderStatus") <= regions as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estates_s_and_m_are_discovered_exactly() {
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    for spec in [EstateSpec::s(), EstateSpec::m()] {
        moto.reset().unwrap();
        let sessions = Sessions::new(Aws::from_config(moto.sdk_config("us-east-1").await));
        let estate = estate::build(&sessions, &spec).await.unwrap();
        let acct = &estate.accounts[0];
        let aws = sessions.assume(&acct.role_arn, ESTATE_EXTERNAL_ID).await.unwrap();
        aws.calls.reset();
        let snap = discovery::discover(&aws, &spec.regions, 1).await;
        check_exact(&estate, &snap);
        if spec.name == "S" {
            let home = &snap.regions["us-east-1"];
            assert_eq!(
                home.trails
                    .iter()
                    .filter(|t| t.name == "customer-trail" && t.multi_region && t.logging == Some(true))
                    .count(),
                1
            );
            assert_eq!(snap.regions["us-west-2"].trails.len(), 1, "the multi-region trail shows in every region");
            assert_eq!(
                home.detectors.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
                [acct.detector.as_deref().unwrap()]
            );
            assert_eq!(
                home.config_recorders.iter().map(|r| (r.name.as_str(), r.recording)).collect::<Vec<_>>(),
                [("default", true)]
            );
            assert_eq!(home.ecs_clusters.len(), 1);
            assert_eq!(home.ecs_clusters[0].services.len(), 1);
            assert_eq!(home.eks_clusters.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["platform"]);
            check_calls(&aws, spec.regions.len(), 1, 1, 1);
        } else {
            check_calls(&aws, spec.regions.len(), 0, 0, 0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_answering_access_denied_makes_the_snapshot_partial() {
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let proxy = Proxy::start(&moto.url).await.unwrap();
    let sessions = Sessions::new(Aws::from_config(sdk_config(&proxy.url, "us-east-1").await));
    let spec = EstateSpec { containers: false, ..EstateSpec::s() };
    let estate = estate::build(&sessions, &spec).await.unwrap();
    let aws = sessions.assume(&estate.accounts[0].role_arn, ESTATE_EXTERNAL_ID).await.unwrap();
    let before = discovery::discover(&aws, &spec.regions, 1).await;
    assert!(!before.is_partial());
    proxy.faults.deny_regions.lock().unwrap().insert("us-west-2".into());
    let snap = discovery::discover(&aws, &spec.regions, 2).await;
    assert!(snap.is_partial());
    let gaps = snap.gaps();
    assert!(gaps.iter().all(|g| g.region == "us-west-2"), "{gaps:?}");
    assert_eq!(gaps.len(), Kind::ALL.len(), "every kind of the region is named");
    let ec2 = gaps.iter().find(|g| g.kind == Kind::Instances).unwrap();
    assert_eq!(ec2.code, "UnauthorizedOperation");
    assert_eq!(gaps.iter().find(|g| g.kind == Kind::GuarddutyDetectors).unwrap().code, "AccessDeniedException");
    assert!(snap.regions["us-east-1"].status.values().all(|s| *s == ReadStatus::Complete));
    // Facts are not replaced by absence: the merged snapshot keeps what was known there.
    let merged = snap.merged_over(Some(&before));
    assert_eq!(merged.regions["us-west-2"].instances, before.regions["us-west-2"].instances);
    assert!(!merged.regions["us-west-2"].instances.is_empty());
    assert!(merged.is_partial(), "still flagged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_by_the_sdk_and_terminal_errors_are_not() {
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let proxy = Proxy::start(&moto.url).await.unwrap();
    let sessions = Sessions::new(Aws::from_config(sdk_config(&proxy.url, "us-east-1").await));
    let spec =
        EstateSpec { containers: false, regions: vec!["us-east-1".into()], vpcs: 2, instances: 4, ..EstateSpec::s() };
    let estate = estate::build(&sessions, &spec).await.unwrap();
    let aws = sessions.assume(&estate.accounts[0].role_arn, ESTATE_EXTERNAL_ID).await.unwrap();
    let clean = discovery::discover(&aws, &spec.regions, 1).await;
    // Three throttling answers, spread over whichever calls come first: each is retried.
    aws.calls.reset();
    proxy.faults.throttle_next.store(3, std::sync::atomic::Ordering::SeqCst);
    let snap = discovery::discover(&aws, &spec.regions, 2).await;
    assert_eq!(proxy.faults.throttled.load(std::sync::atomic::Ordering::SeqCst), 3);
    assert!(!snap.is_partial(), "{:?}", snap.gaps());
    assert_eq!(snap.count(Kind::Instances), clean.count(Kind::Instances));
    let attempts = aws.calls.total();
    aws.calls.reset();
    discovery::discover(&aws, &spec.regions, 3).await;
    assert_eq!(attempts, aws.calls.total() + 3, "each throttled call was attempted again");
    // Access denied is terminal: one attempt, then a gap.
    proxy.faults.deny_services.lock().unwrap().insert("guardduty".into());
    aws.calls.reset();
    let snap = discovery::discover(&aws, &spec.regions, 4).await;
    assert_eq!(aws.calls.count("ListDetectors"), 1, "not retried");
    assert_eq!(snap.gaps().iter().map(|g| g.kind).collect::<Vec<_>>(), [Kind::GuarddutyDetectors]);
}

/// Emulators sharded by AWS account (bench/fleet): each account's calls reach the emulator
/// that issued its session, so each account lives wholly in one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_sharded_by_account_keeps_each_account_in_one_emulator() {
    use garrison_testkit::proxy::Shard;
    let motos: Vec<Moto> = (0..2).map(|_| Moto::start().expect("the AWS emulator is required for this test")).collect();
    let proxy = Proxy::start_sharded_by(&motos.iter().map(|m| m.url.clone()).collect::<Vec<_>>(), Shard::ByAccount)
        .await
        .unwrap();
    let sessions = Sessions::new(Aws::from_config(sdk_config(&proxy.url, "us-east-1").await));
    // 210000000000 is even (shard 0), 210000000001 odd (shard 1).
    let mut vpcs = vec![];
    for acct in ["210000000000", "210000000001"] {
        let aws = sessions.assume(&format!("arn:aws:iam::{acct}:role/admin"), "x").await.unwrap();
        let v = aws.ec2().create_vpc().cidr_block("10.9.0.0/16").send().await.unwrap();
        let id = v.vpc().unwrap().vpc_id().unwrap().to_string();
        // Through the proxy each account sees its own VPC only.
        let seen = aws.ec2().describe_vpcs().send().await.unwrap();
        let ids: Vec<&str> = seen.vpcs().iter().filter_map(|v| v.vpc_id()).collect();
        assert!(ids.contains(&id.as_str()), "{acct}: {ids:?}");
        assert!(vpcs.iter().all(|(_, other): &(Aws, String)| !ids.contains(&other.as_str())), "{acct}: {ids:?}");
        vpcs.push((aws, id));
    }
    // Straight to each emulator with each account's keys: only the issuing one knows them.
    for (shard, m) in motos.iter().enumerate() {
        for (i, (aws, id)) in vpcs.iter().enumerate() {
            let direct = aws.with_config(aws.config.to_builder().endpoint_url(&m.url).build());
            let seen = direct.ec2().describe_vpcs().send().await.unwrap();
            let has = seen.vpcs().iter().any(|v| v.vpc_id() == Some(id.as_str()));
            assert_eq!(has, i == shard, "account {i}'s VPC in emulator {shard}: {has}");
        }
    }
}

/// Every session's SDK clients share one HTTP client: a second discovery of two accounts
/// reuses the connections the first opened (before, each call made a client of its own and
/// opened a connection, and parsed the TLS roots, again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_share_one_http_client_and_keep_their_connections() {
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let proxy = Proxy::start(&moto.url).await.unwrap();
    let sessions = Sessions::new(Aws::from_config(sdk_config(&proxy.url, "us-east-1").await));
    let mut accounts = vec![];
    for acct in ["210000000010", "210000000011"] {
        accounts.push(sessions.assume(&format!("arn:aws:iam::{acct}:role/admin"), "x").await.unwrap());
    }
    let regions = vec!["us-east-1".to_string()];
    let pass = || async {
        for aws in &accounts {
            let snap = garrison_cloud::discovery::discover(aws, &regions, 0).await;
            assert!(snap.regions["us-east-1"].status.values().all(|s| *s == ReadStatus::Complete), "{snap:?}");
        }
    };
    pass().await;
    let (calls, conns) =
        (proxy.faults.requests.load(Ordering::Relaxed), proxy.faults.connections.load(Ordering::Relaxed));
    pass().await;
    let calls = proxy.faults.requests.load(Ordering::Relaxed) - calls;
    let conns = proxy.faults.connections.load(Ordering::Relaxed) - conns;
    assert!(calls >= 26, "two accounts' discovery: {calls} calls");
    assert!(conns <= 2, "{calls} calls opened {conns} new connections");
}

/// A multi-region trail homed in us-east-1, discovered from eu-west-1 only: its shadow copy
/// carries the logging status read in the home region (by ARN), so adoption can judge it
/// whatever the regions in scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_trail_carries_the_status_of_its_home_copy() {
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let aws = Aws::from_config(moto.sdk_config("us-east-1").await);
    aws.s3().create_bucket().bucket("customer-logs").send().await.unwrap();
    let ct = aws.cloudtrail();
    ct.create_trail().name("org").s3_bucket_name("customer-logs").is_multi_region_trail(true).send().await.unwrap();
    ct.start_logging().name("org").send().await.unwrap();
    let west = ["eu-west-1".to_string()];
    let snap = discovery::discover(&aws, &west, 0).await;
    let shadow = &snap.regions["eu-west-1"].trails;
    assert_eq!(shadow.len(), 1, "{shadow:?}");
    assert_eq!((shadow[0].home_region.as_str(), shadow[0].logging), ("us-east-1", Some(true)));
    assert_eq!(aws.calls.count("GetTrailStatus"), 1, "one read, in the home region");
    // Read from both regions, the home copy has it and the shadow is not read again.
    ct.stop_logging().name("org").send().await.unwrap();
    aws.calls.reset();
    let both = ["eu-west-1".to_string(), "us-east-1".to_string()];
    let snap = discovery::discover(&aws, &both, 0).await;
    assert_eq!(snap.regions["us-east-1"].trails[0].logging, Some(false));
    assert_eq!(snap.regions["eu-west-1"].trails[0].logging, None);
    assert_eq!(aws.calls.count("GetTrailStatus"), 1);
}
