//! The asset model the assets_query service answers from: a deployment's snapshot as
//! region → vpc → subnet → host assets with reference keys, in-scope flags, and rows for
//! chained asset types.

use serde_json::{Value, json};

use crate::coverage::{Place, coverage};
use crate::deployment::Deployment;
use crate::snapshot::Snapshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AssetType {
    Region = 0,
    Vpc = 1,
    Subnet = 2,
    Host = 3,
}

impl AssetType {
    pub fn parse(s: &str) -> Option<AssetType> {
        Some(match s {
            "region" => AssetType::Region,
            "vpc" => AssetType::Vpc,
            "subnet" => AssetType::Subnet,
            "host" => AssetType::Host,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AssetType::Region => "region",
            AssetType::Vpc => "vpc",
            AssetType::Subnet => "subnet",
            AssetType::Host => "host",
        }
    }
}

/// One asset with its ancestors' keys (region, vpc, subnet) for joins.
#[derive(Debug, Clone)]
pub struct Asset {
    pub kind: AssetType,
    pub key: String,
    pub in_scope: bool,
    /// Keys of the region, VPC and subnet above it (itself included at its level).
    pub path: [Option<String>; 3],
    pub body: Value,
}

fn tags_json(t: &crate::snapshot::Tags) -> Value {
    Value::Array(t.iter().map(|(k, v)| json!({"key": k, "value": v})).collect())
}

/// All assets of a deployment's snapshot, parents before children.
pub fn build(d: &Deployment, snap: &Snapshot) -> Vec<Asset> {
    let ms = snap.taken_at * 1000;
    let base = |kind: AssetType, key: &str, name: &str, native: &str, in_scope: bool| {
        json!({"account_id": d.account_id, "deployment_id": d.id, "type": kind.as_str(), "key": key, "name": name,
               "native_type": native, "in_scope": in_scope, "declared": true, "created_on": ms, "modified_on": ms, "version": 1})
    };
    let mut out = vec![];
    for (region, rs) in &snap.regions {
        let rkey = format!("/aws/{region}");
        let r_in = coverage(&d.scope, Place { region, ..Default::default() }).is_included()
            || rs.vpcs.iter().any(|v| {
                coverage(&d.scope, Place { region, vpc: Some(&v.id), vpc_tags: Some(&v.tags), ..Default::default() })
                    .is_included()
            });
        out.push(Asset {
            kind: AssetType::Region,
            key: rkey.clone(),
            in_scope: r_in,
            path: [Some(rkey.clone()), None, None],
            body: base(AssetType::Region, &rkey, region, "region", r_in),
        });
        for v in &rs.vpcs {
            let vkey = format!("/aws/{region}/vpc/{}", v.id);
            let v_in =
                coverage(&d.scope, Place { region, vpc: Some(&v.id), vpc_tags: Some(&v.tags), ..Default::default() })
                    .is_included();
            let name = v.tags.get("Name").cloned().unwrap_or_else(|| v.id.clone());
            let mut b = base(AssetType::Vpc, &vkey, &name, "vpc", v_in);
            b["region"] = json!(region);
            b["cidr_block"] = json!(v.cidr);
            b["is_default"] = json!(v.is_default);
            b["tags"] = tags_json(&v.tags);
            out.push(Asset {
                kind: AssetType::Vpc,
                key: vkey.clone(),
                in_scope: v_in,
                path: [Some(rkey.clone()), Some(vkey.clone()), None],
                body: b,
            });
            for s in rs.subnets.iter().filter(|s| s.vpc_id == v.id) {
                let skey = format!("/aws/{region}/subnet/{}", s.id);
                let s_in = coverage(
                    &d.scope,
                    Place { region, vpc: Some(&v.id), subnet: Some(&s.id), host: None, vpc_tags: Some(&v.tags) },
                )
                .is_included();
                let mut b = base(AssetType::Subnet, &skey, s.tags.get("Name").unwrap_or(&s.id), "subnet", s_in);
                b["region"] = json!(region);
                b["vpc_key"] = json!(vkey);
                b["availability_zone"] = json!(s.zone);
                b["cidr_block"] = json!(s.cidr);
                b["tags"] = tags_json(&s.tags);
                out.push(Asset {
                    kind: AssetType::Subnet,
                    key: skey.clone(),
                    in_scope: s_in,
                    path: [Some(rkey.clone()), Some(vkey.clone()), Some(skey.clone())],
                    body: b,
                });
                for i in rs.instances.iter().filter(|i| i.subnet_id.as_deref() == Some(s.id.as_str())) {
                    let hkey = format!("/aws/{region}/host/{}", i.id);
                    let h_in = coverage(
                        &d.scope,
                        Place {
                            region,
                            vpc: Some(&v.id),
                            subnet: Some(&s.id),
                            host: Some(&i.id),
                            vpc_tags: Some(&v.tags),
                        },
                    )
                    .is_included();
                    let mut b = base(AssetType::Host, &hkey, i.tags.get("Name").unwrap_or(&i.id), "host", h_in);
                    b["region"] = json!(region);
                    b["vpc_key"] = json!(vkey);
                    b["subnet_key"] = json!(skey);
                    b["availability_zone"] = json!(i.zone);
                    b["state"] = json!(i.state);
                    b["instance_type"] = json!(i.instance_type);
                    b["private_ip_address"] = json!(i.private_ip);
                    b["tags"] = tags_json(&i.tags);
                    out.push(Asset {
                        kind: AssetType::Host,
                        key: hkey,
                        in_scope: h_in,
                        path: [Some(rkey.clone()), Some(vkey.clone()), Some(skey.clone())],
                        body: b,
                    });
                }
            }
        }
    }
    out
}

/// Rows for the requested types: one per asset of the deepest type, with its ancestors
/// of the other requested types, in the requested column order.
pub fn rows(assets: &[Asset], types: &[AssetType], in_scope_only: bool) -> Vec<Vec<Value>> {
    let Some(deepest) = types.iter().max().copied() else { return vec![] };
    let by_key: std::collections::HashMap<&str, &Asset> = assets.iter().map(|a| (a.key.as_str(), a)).collect();
    assets
        .iter()
        .filter(|a| a.kind == deepest && (!in_scope_only || a.in_scope))
        .map(|a| {
            types
                .iter()
                .map(|t| {
                    if *t == deepest {
                        a.body.clone()
                    } else {
                        a.path[*t as usize]
                            .as_deref()
                            .and_then(|k| by_key.get(k))
                            .map(|x| x.body.clone())
                            .unwrap_or(Value::Null)
                    }
                })
                .collect()
        })
        .collect()
}

/// The deployment's topology: one row per deepest path (region, vpc, subnet, host).
pub fn topology(assets: &[Asset]) -> Vec<Vec<Value>> {
    let brief = |a: &Asset| json!({"key": a.key, "type": a.kind.as_str(), "name": a.body["name"], "in_scope": a.in_scope, "created_on": a.body["created_on"]});
    let by_key: std::collections::HashMap<&str, &Asset> = assets.iter().map(|a| (a.key.as_str(), a)).collect();
    let has_child = |a: &Asset| {
        assets.iter().any(|c| {
            c.kind as usize == a.kind as usize + 1 && c.path[a.kind as usize].as_deref() == Some(a.key.as_str())
        })
    };
    assets
        .iter()
        .filter(|a| a.kind == AssetType::Host || !has_child(a))
        .map(|a| {
            let mut row: Vec<Value> = a
                .path
                .iter()
                .take(a.kind as usize + (a.kind != AssetType::Host) as usize)
                .flatten()
                .filter_map(|k| by_key.get(k.as_str()).map(|x| brief(x)))
                .collect();
            if a.kind == AssetType::Host {
                row.push(brief(a));
            }
            row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::*;

    fn snap() -> Snapshot {
        let r = RegionSnapshot {
            vpcs: vec![
                Vpc { id: "vpc-0000000a".into(), cidr: "10.0.0.0/16".into(), is_default: false, tags: Tags::new() },
                Vpc { id: "vpc-0000000b".into(), cidr: "10.1.0.0/16".into(), is_default: false, tags: Tags::new() },
            ],
            subnets: vec![Subnet {
                id: "subnet-0000000a".into(),
                vpc_id: "vpc-0000000a".into(),
                zone: "us-east-1a".into(),
                cidr: "10.0.0.0/24".into(),
                tags: Tags::new(),
            }],
            instances: vec![Instance {
                id: "i-0000000a".into(),
                vpc_id: Some("vpc-0000000a".into()),
                subnet_id: Some("subnet-0000000a".into()),
                zone: "us-east-1a".into(),
                state: "running".into(),
                instance_type: "t3.micro".into(),
                private_ip: None,
                interfaces: vec![],
                security_groups: vec![],
                tags: Tags::new(),
            }],
            ..Default::default()
        };
        Snapshot { aws_account: "1".into(), taken_at: 10, regions: [("us-east-1".to_string(), r)].into() }
    }

    fn dep() -> Deployment {
        serde_json::from_value(json!({
            "id": "D", "account_id": "10000001", "name": "n", "platform": {"type": "aws", "id": "123412341234", "monitor": {"enabled": false}},
            "mode": "readonly", "enabled": true, "discover": true, "scan": true,
            "scope": {"include": [{"type": "region", "key": "/aws/us-east-1"}], "exclude": [{"type": "vpc", "key": "/aws/us-east-1/vpc/vpc-0000000b"}]},
            "cloud_defender": {"enabled": false}, "credentials": [], "status": {"status": "ok", "updated": 0},
            "created": {"at": 0, "by": "u"}, "modified": {"at": 0, "by": "u"}, "version": 1, "is_control_tower": false
        }))
        .unwrap()
    }

    #[test]
    fn keys_rows_scope_and_topology() {
        let a = build(&dep(), &snap());
        let keys: Vec<&str> = a.iter().map(|x| x.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "/aws/us-east-1",
                "/aws/us-east-1/vpc/vpc-0000000a",
                "/aws/us-east-1/subnet/subnet-0000000a",
                "/aws/us-east-1/host/i-0000000a",
                "/aws/us-east-1/vpc/vpc-0000000b"
            ]
        );
        let r = rows(&a, &[AssetType::Region, AssetType::Vpc], false);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0][0]["key"], "/aws/us-east-1");
        assert_eq!(rows(&a, &[AssetType::Vpc], true).len(), 1, "the excluded VPC is out of scope");
        let h = rows(&a, &[AssetType::Host, AssetType::Subnet], false);
        assert_eq!(h[0][1]["key"], "/aws/us-east-1/subnet/subnet-0000000a");
        let t = topology(&a);
        assert_eq!(t.len(), 2);
        let keys: Vec<&str> = t[0].iter().map(|x| x["key"].as_str().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "/aws/us-east-1",
                "/aws/us-east-1/vpc/vpc-0000000a",
                "/aws/us-east-1/subnet/subnet-0000000a",
                "/aws/us-east-1/host/i-0000000a"
            ]
        );
        let keys: Vec<&str> = t[1].iter().map(|x| x["key"].as_str().unwrap()).collect();
        assert_eq!(keys, ["/aws/us-east-1", "/aws/us-east-1/vpc/vpc-0000000b"]);
    }
}
