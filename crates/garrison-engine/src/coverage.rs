//! The coverage picture of a deployment: every region → VPC → availability zone of the
//! latest snapshot, judged protected / unprotected / excluded / idle against what the
//! scope asks for and what garrison runs there (the protection report's appliances).
//! Pure: the dashboard and `deployments get_coverage` read it.

use std::collections::BTreeMap;

use garrison_model::coverage::{Coverage, Place, coverage};
use garrison_model::deployment::Deployment;
use garrison_model::protection::Role;
use garrison_model::report::{ApplianceView, VpcView};
use garrison_model::snapshot::Snapshot;
use serde_json::{Value, json};

use crate::plan::needs::needs;

/// protected: everything the policy asks for runs; unprotected: something it asks for is
/// missing or stopped; excluded: an exclude item or no include item reaches it; idle: in
/// scope with nothing running to protect.
fn verdict(excluded: bool, needed: bool, have: bool) -> &'static str {
    match (excluded, needed, have) {
        (true, _, _) => "excluded",
        (false, false, _) => "idle",
        (false, true, true) => "protected",
        (false, true, false) => "unprotected",
    }
}

fn running_appliance(apps: &[ApplianceView], role: Role, zone: Option<&str>) -> bool {
    apps.iter().any(|a| a.role == role && a.running() && zone.is_none_or(|z| a.zone == z))
}

/// `report_vpcs`: the `vpcs` of the latest protection report (none before the first).
/// `options`: the account's tuning options (an IDS placement moves which zones need an
/// appliance of their own).
pub fn picture(
    d: &Deployment,
    snap: &Snapshot,
    report_vpcs: &[VpcView],
    options: &[garrison_model::otis::TuningOption],
) -> Value {
    let mut all = needs(d, snap, &garrison_catalog::policies::all());
    for n in &mut all {
        crate::plan::needs::place_ids(n, &d.id, options);
    }
    crate::plan::needs::cross_network(&mut all, &d.id, snap, options);
    let needs: BTreeMap<(String, String), _> =
        all.into_iter().map(|n| ((n.region.clone(), n.vpc_id.clone()), n)).collect();
    let mut counts: BTreeMap<&str, usize> = ["protected", "unprotected", "excluded", "idle"].map(|k| (k, 0)).into();
    let mut regions = vec![];
    for (region, rs) in &snap.regions {
        let region_cov = coverage(&d.scope, Place { region, ..Default::default() });
        let mut vpcs = vec![];
        for v in &rs.vpcs {
            let cov =
                coverage(&d.scope, Place { region, vpc: Some(&v.id), vpc_tags: Some(&v.tags), ..Default::default() });
            let need = needs.get(&(region.clone(), v.id.clone()));
            // A spoke is judged by its hub's appliances (which watch it from any zone).
            let hub = need.and_then(|n| n.hub.clone());
            let apps: &[ApplianceView] = report_vpcs
                .iter()
                .find(|x| &x.region == region && x.vpc_id == *hub.as_ref().unwrap_or(&v.id))
                .map(|x| x.appliances.as_slice())
                .unwrap_or_default();
            let excluded = !cov.is_included() && need.is_none_or(|n| n.hosts == 0);
            let mut zones: BTreeMap<String, (usize, usize)> = BTreeMap::new();
            for s in rs.subnets.iter().filter(|s| s.vpc_id == v.id) {
                zones.entry(s.zone.clone()).or_default();
            }
            for i in rs.instances.iter().filter(|i| i.vpc_id.as_deref() == Some(&v.id)) {
                if crate::plan::desired::is_appliance(i) {
                    continue;
                }
                let z = zones.entry(i.zone.clone()).or_default();
                if i.state == "running" { z.0 += 1 } else { z.1 += 1 }
            }
            let scan_needed = need.is_some_and(|n| n.scan);
            let has_scanner = running_appliance(apps, Role::Scan, None);
            let zone_views: Vec<Value> = zones
                .iter()
                .map(|(zone, (running, stopped))| {
                    let counted = need.and_then(|n| n.zone_hosts.get(zone)).copied().unwrap_or(0);
                    let ids_needed = need.is_some_and(|n| n.ids_zones.contains(zone));
                    let needed = counted > 0 && (scan_needed || ids_needed);
                    let ids_zone = if hub.is_some() { None } else { Some(zone.as_str()) };
                    let have =
                        (!scan_needed || has_scanner) && (!ids_needed || running_appliance(apps, Role::Ids, ids_zone));
                    let status = if excluded || (*running > 0 && counted == 0) {
                        "excluded"
                    } else {
                        verdict(false, needed, have)
                    };
                    json!({"zone": zone, "status": status, "hosts_running": running, "hosts_stopped": stopped,
                           "hosts_in_scope": counted,
                           "appliances": apps.iter().filter(|a| hub.is_none() && &a.zone == zone).collect::<Vec<_>>()})
                })
                .collect();
            let needed = need.is_some_and(|n| n.hosts > 0 && (n.scan || !n.ids_zones.is_empty()));
            let have = zone_views.iter().all(|z| z["status"] != "unprotected") && (!scan_needed || has_scanner);
            let status = verdict(excluded, needed, have);
            *counts.entry(status).or_default() += 1;
            let policy = match &cov {
                Coverage::Included(Some(p)) => Some(p.id.clone()),
                _ => need.and_then(|n| n.policy.clone()),
            };
            vpcs.push(json!({
                "vpc_id": v.id, "cidr": v.cidr, "name": v.tags.get("Name"), "status": status,
                "scope": match cov { Coverage::Included(_) => "included", Coverage::Excluded => "excluded", Coverage::OutOfScope => "out_of_scope" },
                "policy": policy.as_deref().and_then(garrison_catalog::policies::get).map(|p| p.name.clone()),
                "hosts_running": zone_views.iter().map(|z| z["hosts_running"].as_u64().unwrap_or(0)).sum::<u64>(),
                "hosts_in_scope": need.map_or(0, |n| n.hosts),
                "zones": zone_views,
                "appliances": apps,
                "protected_by": hub,
            }));
        }
        regions.push(json!({
            "region": region,
            "scope": match region_cov { Coverage::Included(_) => "included", Coverage::Excluded => "excluded", Coverage::OutOfScope => "out_of_scope" },
            "vpcs": vpcs,
        }));
    }
    json!({"deployment_id": d.id, "taken_at": snap.taken_at, "counts": counts, "regions": regions})
}
