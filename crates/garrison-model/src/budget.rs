//! A rate budget several processes share. AWS meters API calls per account (and region),
//! not per garrison process: when several workers act in one account — two deployments
//! of it, a reconcile and the collector — their calls must come out of one bucket. The
//! store keeps that bucket (garrison-store); the AWS edge (garrison-cloud) draws on it.
//! The trait lives here, in the pure crate, so neither edge depends on the other.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub type TakeFuture<'a> = Pin<Box<dyn Future<Output = Result<Duration, String>> + Send + 'a>>;

pub trait SharedBudget: Send + Sync + std::fmt::Debug {
    /// Takes one token from the token bucket `key` (refilled at `rate_per_sec`, holding at
    /// most `burst`), and says how long the caller must wait before its call: tokens are
    /// reserved in arrival order, so a wait is a place in the queue, not a retry.
    fn take<'a>(&'a self, key: &'a str, rate_per_sec: f64, burst: f64) -> TakeFuture<'a>;
}

/// The token bucket arithmetic: `tokens` left `elapsed_secs` ago, refilled since, one
/// taken. Returns the tokens left (negative: owed to callers already queued) and the wait.
pub fn take_token(tokens: f64, elapsed_secs: f64, rate_per_sec: f64, burst: f64) -> (f64, Duration) {
    let refilled = (tokens + elapsed_secs.max(0.0) * rate_per_sec).min(burst);
    let left = refilled - 1.0;
    let wait = if left >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-left / rate_per_sec) };
    (left, wait)
}

/// A token bucket's documented size: at most `capacity` tokens, `refill` added a second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub capacity: f64,
    pub refill: f64,
}

impl Bucket {
    const fn of(capacity: f64, refill: f64) -> Bucket {
        Bucket { capacity, refill }
    }

    /// The least time `n` calls take from a full bucket: what exceeds the capacity, at the
    /// refill rate.
    pub fn floor_secs(&self, n: u32) -> f64 {
        (f64::from(n) - self.capacity).max(0.0) / self.refill
    }
}

/// EC2's request-rate categories (Amazon EC2 Developer Guide, "Request throttling for the
/// Amazon EC2 API", request token bucket sizes and refill rates). Each action has a bucket
/// of its own, of its category's size ("limits are applied to individual API actions, not
/// API action categories"), per account and region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ec2Category {
    /// `Describe*`, `List*`, `Search*`, `Get*` not in another category: 100, 20/s.
    NonMutating,
    /// Seven describes when called without a filter or pagination: 50, 10/s (garrison
    /// counts them so whatever it passes).
    UnfilteredNonMutating,
    /// Every other mutating action: 50, 5/s.
    Mutating,
    /// Mutating actions that cost EC2 the most: 50, 5/s, metered apart from the others.
    ResourceIntensive,
    /// An action with a size of its own, named in the reference.
    Uncategorized,
}

const UNFILTERED: &[&str] = &[
    "DescribeInstances",
    "DescribeInstanceStatus",
    "DescribeNetworkInterfaces",
    "DescribeSecurityGroups",
    "DescribeSnapshots",
    "DescribeSpotInstanceRequests",
    "DescribeVolumes",
];

const RESOURCE_INTENSIVE: &[&str] = &[
    "AcceptVpcPeeringConnection",
    "AuthorizeSecurityGroupIngress",
    "CancelSpotInstanceRequests",
    "CreateKeyPair",
    "CreateVpcPeeringConnection",
    "DeleteVpcPeeringConnection",
    "RejectVpcPeeringConnection",
    "RevokeSecurityGroupIngress",
    "RequestSpotInstances",
];

/// The uncategorized actions garrison calls or could call on the way to them, with their
/// documented (capacity, refill). An action of that table not listed here falls back to
/// its category, which for every one of them is at least as strict or the difference is
/// noted in the test below.
const UNCATEGORIZED: &[(&str, Bucket)] = &[
    ("AssignPrivateIpAddresses", Bucket::of(100.0, 5.0)),
    ("AssociateIamInstanceProfile", Bucket::of(100.0, 5.0)),
    ("CreateNatGateway", Bucket::of(10.0, 1.0)),
    ("CreateNetworkInterface", Bucket::of(100.0, 5.0)),
    ("CreateTags", Bucket::of(100.0, 10.0)),
    ("CreateVolume", Bucket::of(100.0, 5.0)),
    ("CreateVpcEndpoint", Bucket::of(4.0, 0.3)),
    ("DeleteNatGateway", Bucket::of(10.0, 1.0)),
    ("DeleteNetworkInterface", Bucket::of(100.0, 5.0)),
    ("DeleteTags", Bucket::of(100.0, 10.0)),
    ("DeleteVolume", Bucket::of(100.0, 5.0)),
    ("DeleteVpcEndpoints", Bucket::of(4.0, 0.3)),
    ("DescribeSecurityGroupReferences", Bucket::of(20.0, 5.0)),
    ("DescribeStaleSecurityGroups", Bucket::of(20.0, 5.0)),
    ("DisassociateIamInstanceProfile", Bucket::of(100.0, 5.0)),
    ("ModifyInstanceMetadataOptions", Bucket::of(100.0, 5.0)),
    ("ModifyNetworkInterfaceAttribute", Bucket::of(100.0, 5.0)),
    ("ModifyVpcEndpoint", Bucket::of(4.0, 0.3)),
    ("RunInstances", Bucket::of(5.0, 2.0)),
    ("StartInstances", Bucket::of(5.0, 2.0)),
    ("TerminateInstances", Bucket::of(100.0, 5.0)),
    ("UnassignPrivateIpAddresses", Bucket::of(100.0, 5.0)),
];

/// Actions metered by the instances they act on too (resource rate limiting), one token per
/// instance; garrison acts on one instance per call.
const RESOURCE: &[(&str, Bucket)] = &[
    ("RunInstances", Bucket::of(1000.0, 2.0)),
    ("TerminateInstances", Bucket::of(1000.0, 20.0)),
    ("StartInstances", Bucket::of(1000.0, 2.0)),
    ("StopInstances", Bucket::of(1000.0, 20.0)),
];

fn non_mutating(action: &str) -> bool {
    ["Describe", "List", "Search", "Get"].iter().any(|p| action.starts_with(p))
}

impl Ec2Category {
    pub fn of(action: &str) -> Ec2Category {
        if UNCATEGORIZED.iter().any(|(a, _)| *a == action) {
            Ec2Category::Uncategorized
        } else if UNFILTERED.contains(&action) {
            Ec2Category::UnfilteredNonMutating
        } else if non_mutating(action) {
            Ec2Category::NonMutating
        } else if RESOURCE_INTENSIVE.contains(&action) {
            Ec2Category::ResourceIntensive
        } else {
            Ec2Category::Mutating
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Ec2Category::NonMutating => "non-mutating",
            Ec2Category::UnfilteredNonMutating => "unfiltered non-mutating",
            Ec2Category::Mutating => "mutating",
            Ec2Category::ResourceIntensive => "resource-intensive",
            Ec2Category::Uncategorized => "uncategorized",
        }
    }
}

/// The request bucket of one EC2 action (its own, of its category's size).
pub fn ec2_request(action: &str) -> Bucket {
    match Ec2Category::of(action) {
        Ec2Category::Uncategorized => UNCATEGORIZED.iter().find(|(a, _)| *a == action).map(|(_, b)| *b).unwrap_or(
            // Unreachable: `of` said it is listed.
            Bucket::of(50.0, 5.0),
        ),
        Ec2Category::NonMutating => Bucket::of(100.0, 20.0),
        Ec2Category::UnfilteredNonMutating => Bucket::of(50.0, 10.0),
        Ec2Category::Mutating | Ec2Category::ResourceIntensive => Bucket::of(50.0, 5.0),
    }
}

/// The resource bucket of an action metered by instances too.
pub fn ec2_resource(action: &str) -> Option<Bucket> {
    RESOURCE.iter().find(|(a, _)| *a == action).map(|(_, b)| *b)
}

/// The least time a set of EC2 calls in one account and region can take under the
/// documented budget: each action's bucket drained from full, the slowest one (buckets
/// refill side by side). `calls`: action → number of calls (one instance each).
pub fn ec2_floor_secs<'a>(calls: impl IntoIterator<Item = (&'a str, u32)>) -> f64 {
    calls
        .into_iter()
        .map(|(action, n)| {
            let request = ec2_request(action).floor_secs(n);
            let resource = ec2_resource(action).map_or(0.0, |b| b.floor_secs(n));
            request.max(resource)
        })
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ec2_action_garrison_calls_has_its_documented_bucket() {
        let b = |c: f64, r: f64| Bucket { capacity: c, refill: r };
        for (action, want, category) in [
            ("DescribeVpcs", b(100.0, 20.0), Ec2Category::NonMutating),
            ("DescribeInstances", b(50.0, 10.0), Ec2Category::UnfilteredNonMutating),
            ("CreateSecurityGroup", b(50.0, 5.0), Ec2Category::Mutating),
            ("AuthorizeSecurityGroupEgress", b(50.0, 5.0), Ec2Category::Mutating),
            ("AuthorizeSecurityGroupIngress", b(50.0, 5.0), Ec2Category::ResourceIntensive),
            ("RevokeSecurityGroupIngress", b(50.0, 5.0), Ec2Category::ResourceIntensive),
            ("RunInstances", b(5.0, 2.0), Ec2Category::Uncategorized),
            ("StartInstances", b(5.0, 2.0), Ec2Category::Uncategorized),
            ("TerminateInstances", b(100.0, 5.0), Ec2Category::Uncategorized),
            ("CreateTags", b(100.0, 10.0), Ec2Category::Uncategorized),
            ("CreateVpcEndpoint", b(4.0, 0.3), Ec2Category::Uncategorized),
            ("CreateTrafficMirrorSession", b(50.0, 5.0), Ec2Category::Mutating),
        ] {
            assert_eq!((ec2_request(action), Ec2Category::of(action)), (want, category), "{action}");
        }
        assert_eq!(ec2_resource("RunInstances"), Some(b(1000.0, 2.0)));
        assert_eq!(ec2_resource("StopInstances"), Some(b(1000.0, 20.0)));
        assert_eq!(ec2_resource("CreateTags"), None);
    }

    #[test]
    fn the_floor_is_the_slowest_bucket_drained_from_full() {
        assert_eq!(ec2_floor_secs([("CreateSecurityGroup", 50)]), 0.0);
        assert_eq!(ec2_floor_secs([("CreateSecurityGroup", 60), ("CreateTags", 200)]), 10.0);
        // RunInstances: 5 at once then 2/s by requests; 1,000 instances at once by resources.
        assert_eq!(ec2_floor_secs([("RunInstances", 25)]), 10.0);
        assert_eq!(ec2_floor_secs([("RunInstances", 3000)]), 1497.5);
    }

    #[test]
    fn a_bucket_bursts_then_queues_callers_at_its_rate() {
        let (mut tokens, mut waits) = (3.0, vec![]);
        for _ in 0..5 {
            let (left, wait) = take_token(tokens, 0.0, 10.0, 3.0);
            tokens = left;
            waits.push(wait.as_millis());
        }
        assert_eq!(waits, [0, 0, 0, 100, 200]);
        // Refill never exceeds the burst, however long the bucket was idle.
        assert_eq!(take_token(0.0, 3600.0, 10.0, 3.0).0, 2.0);
        // A clock that went backwards refills nothing.
        assert_eq!(take_token(1.0, -1.0, 10.0, 3.0).0, 0.0);
    }
}
