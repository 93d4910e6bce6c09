//! Instance types and on-demand prices (a dated data file with its source), and the
//! choice of the cheapest type that is offered where it must run and is big enough.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Spec {
    pub vcpu: u32,
    pub memory_gib: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PriceTable {
    pub date: String,
    pub source: String,
    pub currency: String,
    pub specs: BTreeMap<String, Spec>,
    pub regions: BTreeMap<String, BTreeMap<String, f64>>,
    /// The types garrison chooses among by itself (absent: every type of `specs`); an
    /// operator's option may name any type of `specs`.
    #[serde(default)]
    pub defaults: Vec<String>,
    /// A traffic mirror session's price per hour (otis `span_port_enabled`), any region.
    #[serde(default)]
    pub mirror_session_per_hour: f64,
}

/// Minimum sizes of the appliances.
pub const SCANNER_MIN: Spec = Spec { vcpu: 1, memory_gib: 3.5 };
pub const IDS_MIN: Spec = Spec { vcpu: 4, memory_gib: 7.5 };

/// The reference's default types, in its order of preference.
pub const REFERENCE_SCANNER: [&str; 3] = ["m3.medium", "c5.large", "c4.large"];
pub const REFERENCE_IDS: [&str; 3] = ["c5.xlarge", "m5.xlarge", "c4.xlarge"];

/// The least an IDS appliance type named by `ids_appliance_instance_type_test` may be: the
/// reference's "at least two cores" with the memory of its smallest listed type.
pub const IDS_TEST_MIN: Spec = Spec { vcpu: 2, memory_gib: 4.0 };
pub const HOURS_PER_MONTH: f64 = 730.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    pub per_hour: f64,
    /// True when the region is not in the table and us-east-1's figure stands in.
    pub estimated: bool,
}

impl PriceTable {
    pub fn builtin() -> PriceTable {
        serde_json::from_str(include_str!("../data/prices/2026-12-07.json")).expect("embedded price table is valid")
    }

    /// An operator's table (same shape as the built-in file), checked: every priced type has
    /// a size, every price is positive.
    pub fn from_json(text: &str) -> Result<PriceTable, String> {
        let t: PriceTable = serde_json::from_str(text).map_err(|e| format!("not a price table: {e}"))?;
        for (region, types) in &t.regions {
            for (ty, p) in types {
                if !t.specs.contains_key(ty) {
                    return Err(format!("regions.{region}.{ty}: no entry in specs (vcpu, memory_gib)"));
                }
                if !(p.is_finite() && *p > 0.0) {
                    return Err(format!("regions.{region}.{ty}: expected a positive hourly price, found {p}"));
                }
            }
        }
        if t.regions.is_empty() {
            return Err("regions: expected at least one region's prices, found none".into());
        }
        if let Some(d) = t.defaults.iter().find(|d| !t.specs.contains_key(*d)) {
            return Err(format!("defaults: {d} has no entry in specs (vcpu, memory_gib)"));
        }
        Ok(t)
    }

    pub fn price(&self, region: &str, instance_type: &str) -> Option<Price> {
        match self.regions.get(region).and_then(|r| r.get(instance_type)) {
            Some(p) => Some(Price { per_hour: *p, estimated: false }),
            None => self
                .regions
                .get("us-east-1")
                .and_then(|r| r.get(instance_type))
                .map(|p| Price { per_hour: *p, estimated: true }),
        }
    }

    /// Why `instance_type` cannot serve as an appliance needing `min`, if it cannot: its
    /// size unknown to the table, or below `min`.
    pub fn unfit(&self, instance_type: &str, min: Spec) -> Option<String> {
        match self.specs.get(instance_type) {
            None => Some(format!("{instance_type} is not in the price table (its size is unknown)")),
            Some(s) if s.vcpu < min.vcpu || s.memory_gib < min.memory_gib => Some(format!(
                "{instance_type} has {} vCPU and {} GiB, less than the {} vCPU and {} GiB an appliance needs",
                s.vcpu, s.memory_gib, min.vcpu, min.memory_gib
            )),
            Some(_) => None,
        }
    }

    /// The cheapest of the types garrison chooses among by itself (`defaults`) that `offered`
    /// allows and that meets `min`.
    pub fn cheapest_default(&self, region: &str, offered: &dyn Fn(&str) -> bool, min: Spec) -> Option<(String, Price)> {
        let defaults: Vec<&str> = self.defaults.iter().map(String::as_str).collect();
        self.cheapest(region, &defaults, offered, min)
    }

    /// The cheapest type of `candidates` (all known types when empty) that `offered` allows
    /// and that meets `min`; ties go to the earlier candidate.
    pub fn cheapest(
        &self,
        region: &str,
        candidates: &[&str],
        offered: &dyn Fn(&str) -> bool,
        min: Spec,
    ) -> Option<(String, Price)> {
        let all: Vec<&str> =
            if candidates.is_empty() { self.specs.keys().map(String::as_str).collect() } else { candidates.to_vec() };
        let mut best: Option<(String, Price)> = None;
        for t in all {
            let Some(spec) = self.specs.get(t) else { continue };
            if spec.vcpu < min.vcpu || spec.memory_gib < min.memory_gib || !offered(t) {
                continue;
            }
            let Some(p) = self.price(region, t) else { continue };
            if best.as_ref().is_none_or(|(_, b)| p.per_hour < b.per_hour) {
                best = Some((t.to_string(), p));
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operator_table_is_checked() {
        let ok = r#"{"date": "2027-01-01", "source": "s", "currency": "USD",
            "specs": {"m3.medium": {"vcpu": 1, "memory_gib": 3.75}}, "regions": {"us-east-1": {"m3.medium": 0.05}}}"#;
        assert_eq!(PriceTable::from_json(ok).unwrap().price("us-east-1", "m3.medium").unwrap().per_hour, 0.05);
        let unsized_ = ok.replace(
            r#""regions": {"us-east-1": {"m3.medium": 0.05}}"#,
            r#""regions": {"us-east-1": {"x1.huge": 0.05}}"#,
        );
        assert!(PriceTable::from_json(&unsized_).unwrap_err().contains("regions.us-east-1.x1.huge"));
        let negative = ok.replace("0.05", "-1");
        assert!(PriceTable::from_json(&negative).unwrap_err().contains("positive"));
        assert!(PriceTable::from_json("{}").unwrap_err().starts_with("not a price table"));
    }

    #[test]
    fn cheapest_fit_respects_size_and_offer() {
        let t = PriceTable::builtin();
        let any = |_: &str| true;
        assert_eq!(t.cheapest_default("us-east-1", &any, SCANNER_MIN).unwrap().0, "t3a.medium");
        let no_t3a = |x: &str| x != "t3a.medium";
        assert_eq!(t.cheapest_default("us-east-1", &no_t3a, SCANNER_MIN).unwrap().0, "t3.medium");
        assert_eq!(t.cheapest_default("us-east-1", &any, IDS_MIN).unwrap().0, "c5.xlarge");
        assert_eq!(t.cheapest("us-east-1", &REFERENCE_SCANNER, &any, SCANNER_MIN).unwrap().0, "m3.medium");
        assert!(t.cheapest_default("us-east-1", &|_: &str| false, SCANNER_MIN).is_none());
        let est = t.cheapest_default("eu-west-1", &any, SCANNER_MIN).unwrap().1;
        assert!(est.estimated);
        assert!(!t.price("us-east-1", "c5.xlarge").unwrap().estimated);
        // Every priced type has a spec.
        for r in t.regions.values() {
            for ty in r.keys() {
                assert!(t.specs.contains_key(ty), "{ty}");
            }
        }
    }
}
