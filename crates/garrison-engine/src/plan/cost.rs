//! What protection costs a month: the appliances (and traffic mirror sessions) as they run
//! now and as a plan leaves them, per VPC, and what each tuning option adds or saves. Prices
//! are the catalog's dated table (or the operator's); stopped appliances cost no compute.

use std::collections::BTreeMap;

use garrison_catalog::prices::{HOURS_PER_MONTH, PriceTable};
use garrison_model::deployment::Deployment;
use garrison_model::otis::{Effect, OptionScope, effect};
use garrison_model::protection::{Owned, Spec};
use garrison_model::report::{CostChange, OptionCost, VpcCost};
use garrison_model::snapshot::Snapshot;

use super::desired::{Desired, Inputs, Want, desired, keys};

type Vpc = (String, String);

pub fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The monthly price of one running `instance_type` in `region` (0 when unpriced).
pub fn monthly(prices: &PriceTable, region: &str, instance_type: &str) -> f64 {
    cents(prices.price(region, instance_type).map_or(0.0, |p| p.per_hour) * HOURS_PER_MONTH)
}

/// A traffic mirror session's monthly price.
pub fn monthly_session(prices: &PriceTable) -> f64 {
    cents(prices.mirror_session_per_hour * HOURS_PER_MONTH)
}

/// The running appliances and the mirror sessions `want` asks for, priced, per VPC.
pub fn planned(want: &Desired, prices: &PriceTable) -> BTreeMap<Vpc, f64> {
    let mut out = BTreeMap::new();
    for (key, w) in &want.items {
        match w {
            Want::Build { region, spec: Spec::Appliance { vpc, instance_type, .. }, running: true, .. } => {
                *out.entry((region.clone(), vpc.clone())).or_default() += monthly(prices, region, instance_type);
            }
            Want::Build { region, spec: Spec::MirrorSession { .. }, .. } => {
                if let Some(vpc) = keys::vpc_of(key) {
                    *out.entry((region.clone(), vpc.to_string())).or_default() += monthly_session(prices);
                }
            }
            _ => {}
        }
    }
    out
}

/// The appliances garrison runs now, as the snapshot shows them (their type as AWS says),
/// per VPC.
pub fn now(snap: &Snapshot, owned: &Owned, prices: &PriceTable) -> BTreeMap<Vpc, f64> {
    let mut out = BTreeMap::new();
    for o in owned.items.values().filter(|o| !o.adopted && !o.id.is_empty()) {
        if let (Some(Spec::MirrorSession { .. }), Some(vpc)) = (&o.spec, keys::vpc_of(&o.key)) {
            *out.entry((o.region.clone(), vpc.to_string())).or_default() += monthly_session(prices);
            continue;
        }
        let Some(Spec::Appliance { vpc, .. }) = &o.spec else { continue };
        let Some(i) = snap.regions.get(&o.region).and_then(|rs| rs.instances.iter().find(|i| i.id == o.id)) else {
            continue;
        };
        if matches!(i.state.as_str(), "running" | "pending") {
            *out.entry((o.region.clone(), vpc.clone())).or_default() += monthly(prices, &o.region, &i.instance_type);
        }
    }
    out
}

/// From the cost now to the cost planned, in all and per VPC.
pub fn change(now: &BTreeMap<Vpc, f64>, planned: &BTreeMap<Vpc, f64>) -> CostChange {
    let mut keys: Vec<&Vpc> = now.keys().chain(planned.keys()).collect();
    keys.sort();
    keys.dedup();
    let vpcs: Vec<VpcCost> = keys
        .into_iter()
        .map(|k| VpcCost {
            region: k.0.clone(),
            vpc_id: k.1.clone(),
            now_usd_month: cents(now.get(k).copied().unwrap_or(0.0)),
            planned_usd_month: cents(planned.get(k).copied().unwrap_or(0.0)),
        })
        .collect();
    let (a, b) = (cents(now.values().sum()), cents(planned.values().sum()));
    CostChange { now_usd_month: a, planned_usd_month: b, delta_usd_month: cents(b - a), vpcs }
}

/// What each applied option that can reach `d` changes in the monthly cost: the protection
/// designed from scratch (nothing kept from earlier choices) with all options, and again
/// without that one.
pub fn option_costs(d: &Deployment, snap: &Snapshot, inputs: &Inputs<'_>) -> Vec<OptionCost> {
    let fresh = Owned::default();
    let total = |options: &[garrison_model::otis::TuningOption]| -> f64 {
        let want = desired(d, snap, &fresh, &Inputs { options, ..*inputs });
        planned(&want, inputs.prices).values().sum()
    };
    let reaches = |s: &OptionScope| s.deployment_id.as_ref().is_none_or(|id| *id == d.id);
    let mine: Vec<_> =
        inputs.options.iter().filter(|o| reaches(&o.scope) && effect(&o.name) == Some(Effect::Applied)).collect();
    if mine.is_empty() {
        return vec![];
    }
    let with = total(inputs.options);
    mine.into_iter()
        .map(|o| {
            let without: Vec<_> = inputs.options.iter().filter(|x| x.id != o.id).cloned().collect();
            OptionCost { option_id: o.id.clone(), name: o.name.clone(), monthly_usd: cents(with - total(&without)) }
        })
        .collect()
}
