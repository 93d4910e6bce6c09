//! The otis options the planner applies, read for one VPC of one deployment: the tags put on
//! what garrison builds there, the appliance types, how many appliances run, and the block
//! of the scanner's subnet. Values were checked when stored (`garrison_model::otis::parse`);
//! here a value that does not fit the estate (a type not offered) becomes a problem.

use garrison_model::cidr::Ipv4Net;
use garrison_model::otis::{OptionScope, TuningOption, resolve};
use garrison_model::snapshot::Tags;

/// The option that places IDS appliances.
pub const PLACEMENT: &str = "ids_appliances_placement";
/// The option that sets the CIDR block of the scanner's subnet.
pub const SCAN_SUBNET: &str = "scan_security_subnet_cidr_block";
pub const SCAN_TYPE: &str = "scan_appliance_instance_type";
pub const IDS_TYPE: &str = "ids_appliance_instance_type";
/// Overrides `IDS_TYPE` with any type (checked against the size an appliance needs).
pub const IDS_TYPE_TEST: &str = "ids_appliance_instance_type_test";
pub const SCAN_SCALING: &str = "scan_appliances_scaling";
pub const IDS_SCALING: &str = "ids_appliances_scaling";
pub const TAGS: &str = "security_resource_tags";
pub const SCAN_TAGS: &str = "scan_security_resource_tags";
pub const IDS_TAGS: &str = "ids_security_resource_tags";
/// Hub and spokes: the protecting VPC of a VPC or region.
pub const CROSS: &str = "cross_network_protection";
/// The customer's subnet for the appliances of its zone (adopted, never changed).
pub const PREDEFINED_SUBNET: &str = "predefined_security_subnet";
/// IDS traffic by VPC Traffic Mirroring: AWS's span port.
pub const SPAN_PORT: &str = "span_port_enabled";

/// The value of option `name` that resolves for a VPC of the deployment, if any.
pub fn option_for<'a>(
    options: &'a [TuningOption],
    name: &str,
    deployment_id: &str,
    region: &str,
    vpc: &str,
) -> Option<&'a TuningOption> {
    let target = OptionScope {
        deployment_id: Some(deployment_id.into()),
        region_key: Some(format!("/aws/{region}")),
        vpc_key: Some(format!("/aws/{region}/vpc/{vpc}")),
    };
    resolve(options.iter().filter(|o| o.name == name), &target)
}

/// What the options say for one VPC.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VpcTuning {
    /// On everything garrison builds in the VPC (`security_resource_tags`).
    pub tags: Tags,
    /// On the scanner and its group: `tags` with `scan_security_resource_tags` over them.
    pub scan_tags: Tags,
    /// On the IDS appliances and their group: `tags` with `ids_security_resource_tags` over them.
    pub ids_tags: Tags,
    pub scan_type: Option<String>,
    /// The IDS type, and whether it came from the test option (any type, size checked).
    pub ids_type: Option<(String, bool)>,
    /// Scanners in the VPC: `None` is the default (one while there is something to scan);
    /// `Some(0)` keeps the scanner stopped.
    pub scanners: Option<u64>,
    /// IDS appliances per protected zone.
    pub ids_per_zone: u64,
    pub scan_block: Option<Ipv4Net>,
    /// The id of the customer's subnet the appliances of its zone go in.
    pub predefined_subnet: Option<String>,
    /// The protected instances' interfaces are mirrored to the IDS appliances
    /// (`span_port_enabled`).
    pub mirroring: bool,
}

fn tag_map(o: Option<&TuningOption>) -> Tags {
    o.and_then(|o| o.value.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|t| Some((t.get("key")?.as_str()?.to_string(), t.get("value")?.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

pub fn for_vpc(options: &[TuningOption], deployment_id: &str, region: &str, vpc: &str) -> VpcTuning {
    let get = |name: &str| option_for(options, name, deployment_id, region, vpc);
    let text = |name: &str| get(name).and_then(|o| o.value.as_str()).map(str::to_string);
    let tags = tag_map(get(TAGS));
    let over = |extra: Tags| {
        let mut t = tags.clone();
        t.extend(extra);
        t
    };
    let scanners =
        get(SCAN_SCALING).filter(|o| o.value["policy"] == "constant").and_then(|o| o.value["num_instances"].as_u64());
    let ids_per_zone = get(IDS_SCALING)
        .and_then(|o| match o.value["policy"].as_str() {
            Some("constant") => o.value["num_instances"].as_u64(),
            // No load is measured yet: automatic runs its lower bound, at least one.
            _ => o.value["min_instances"].as_u64(),
        })
        .unwrap_or(1)
        .max(1);
    VpcTuning {
        scan_tags: over(tag_map(get(SCAN_TAGS))),
        ids_tags: over(tag_map(get(IDS_TAGS))),
        tags,
        scan_type: text(SCAN_TYPE),
        ids_type: text(IDS_TYPE_TEST).map(|t| (t, true)).or_else(|| text(IDS_TYPE).map(|t| (t, false))),
        scanners,
        ids_per_zone,
        scan_block: text(SCAN_SUBNET).and_then(|c| c.parse().ok()),
        predefined_subnet: text(PREDEFINED_SUBNET).and_then(|k| match garrison_model::scope::AssetKey::parse(&k) {
            Some(garrison_model::scope::AssetKey::Subnet { subnet, .. }) => Some(subnet),
            _ => None,
        }),
        mirroring: get(SPAN_PORT).is_some_and(|o| o.value == serde_json::Value::Bool(true)),
    }
}

/// The plan key of the `n`th (from 1) appliance under `base`: the first keeps the base key,
/// so that scaling up never replaces what runs.
pub fn nth(base: &str, n: u64) -> String {
    if n <= 1 { base.to_string() } else { format!("{base}-{n}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opt(name: &str, scope: serde_json::Value, value: serde_json::Value) -> TuningOption {
        garrison_model::otis::parse(&json!({"name": name, "scope": scope, "value": value})).unwrap()
    }

    #[test]
    fn a_vpc_reads_the_most_specific_values_and_role_tags_go_over_the_general_ones() {
        let vpc = json!({"deployment_id": "D", "vpc_key": "/aws/us-east-1/vpc/vpc-00000001"});
        let options = vec![
            opt(TAGS, json!({}), json!([{"key": "Team", "value": "sec"}, {"key": "Cost", "value": "1"}])),
            opt(IDS_TAGS, json!({"deployment_id": "D"}), json!([{"key": "Cost", "value": "ids"}])),
            opt(IDS_TYPE, json!({"deployment_id": "D"}), json!("m5.large")),
            opt(IDS_TYPE_TEST, vpc.clone(), json!("c6i.xlarge")),
            opt(SCAN_TYPE, json!({}), json!("c6a.large")),
            opt(SCAN_SCALING, vpc.clone(), json!({"policy": "constant", "num_instances": 0})),
            opt(IDS_SCALING, json!({}), json!({"policy": "automatic", "min_instances": 2, "max_instances": 3})),
            opt(SPAN_PORT, json!({"deployment_id": "D"}), json!(true)),
            opt(SPAN_PORT, vpc.clone(), json!(false)),
        ];
        let t = for_vpc(&options, "D", "us-east-1", "vpc-00000001");
        assert_eq!(t.tags, Tags::from([("Team".into(), "sec".into()), ("Cost".into(), "1".into())]));
        assert_eq!(t.ids_tags["Cost"], "ids");
        assert_eq!(t.scan_tags["Cost"], "1");
        assert_eq!(t.ids_type, Some(("c6i.xlarge".into(), true)), "the test option wins where it resolves");
        assert_eq!(t.scan_type.as_deref(), Some("c6a.large"));
        assert_eq!(t.scanners, Some(0));
        assert_eq!(t.ids_per_zone, 2);
        assert!(!t.mirroring, "the VPC's own span_port_enabled = false wins over the deployment's");
        let other = for_vpc(&options, "D", "us-east-1", "vpc-00000002");
        assert_eq!(other.ids_type, Some(("m5.large".into(), false)));
        assert_eq!(other.scanners, None, "the scaling option names another VPC");
        assert!(other.mirroring);
        assert_eq!(for_vpc(&[], "D", "us-east-1", "vpc-00000001"), VpcTuning { ids_per_zone: 1, ..Default::default() });
        assert_eq!((nth("k/ids", 1), nth("k/ids", 3)), ("k/ids".to_string(), "k/ids-3".to_string()));
    }
}
