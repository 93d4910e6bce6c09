//! The appliances' security-group rules, from the reference rule table (a data file kept
//! as re-typed from the public sources; see its `_source`), with the VPC's CIDR filled in.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SgRule {
    /// tcp | udp | -1 (all)
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    pub cidr: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SgRules {
    pub ingress: Vec<SgRule>,
    pub egress: Vec<SgRule>,
}

#[derive(Deserialize)]
struct RawRule {
    proto: String,
    from: i32,
    to: i32,
    cidr: String,
}

fn table() -> Value {
    serde_json::from_str(include_str!("../data/network/appliance-network-rules.json"))
        .expect("embedded rule table is valid")
}

fn rules(v: &Value, vpc_cidr: &str) -> Vec<SgRule> {
    let raw: Vec<RawRule> = serde_json::from_value(v.clone()).expect("rule list");
    let mut out: Vec<SgRule> = raw
        .into_iter()
        .map(|r| SgRule {
            protocol: r.proto,
            from_port: r.from,
            to_port: r.to,
            cidr: r.cidr.replace("{vpc_cidr}", vpc_cidr),
        })
        .collect();
    out.sort();
    out
}

/// Scan appliance: no ingress; egress tcp 22/53/80/443 and udp 53 anywhere, all to the VPC.
pub fn scan_rules(vpc_cidr: &str) -> SgRules {
    let t = table();
    let sg = &t["scan_appliance_security_group"];
    SgRules { ingress: rules(&sg["ingress"], vpc_cidr), egress: rules(&sg["egress"], vpc_cidr) }
}

/// IDS appliance: ingress tcp 7777 and 443 from the VPC; egress 443 and 4138 to the
/// service's data-centre CIDRs, 53 to DNS.
pub fn ids_rules(vpc_cidr: &str) -> SgRules {
    let t = table();
    let sg = &t["ids_appliance_security_group"];
    SgRules { ingress: rules(&sg["ingress"], vpc_cidr), egress: rules(&sg["egress"], vpc_cidr) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(p: &str, f: i32, t: i32, c: &str) -> SgRule {
        SgRule { protocol: p.into(), from_port: f, to_port: t, cidr: c.into() }
    }

    #[test]
    fn rules_as_the_reference_specifies() {
        let s = scan_rules("10.1.0.0/16");
        assert!(s.ingress.is_empty());
        let mut want = vec![
            r("tcp", 22, 22, "0.0.0.0/0"),
            r("tcp", 53, 53, "0.0.0.0/0"),
            r("udp", 53, 53, "0.0.0.0/0"),
            r("tcp", 80, 80, "0.0.0.0/0"),
            r("tcp", 443, 443, "0.0.0.0/0"),
            r("-1", 0, 0, "10.1.0.0/16"),
        ];
        want.sort();
        assert_eq!(s.egress, want);
        let i = ids_rules("10.1.0.0/16");
        let mut want_in = vec![r("tcp", 7777, 7777, "10.1.0.0/16"), r("tcp", 443, 443, "10.1.0.0/16")];
        want_in.sort();
        assert_eq!(i.ingress, want_in);
        assert_eq!(i.egress.len(), 12);
        assert!(i.egress.iter().filter(|x| x.from_port == 4138).all(|x| x.protocol == "tcp"));
        assert_eq!(i.egress.iter().filter(|x| x.from_port == 53).count(), 4);
    }
}
