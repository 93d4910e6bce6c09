//! Appliance machine images per region, as data (see the file's `_source`).

use std::collections::BTreeMap;

use garrison_model::protection::Role;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Images {
    pub scan: BTreeMap<String, String>,
    pub ids: BTreeMap<String, String>,
}

impl Images {
    pub fn builtin() -> Images {
        serde_json::from_str(include_str!("../data/appliances/images.json")).expect("embedded image table is valid")
    }

    /// The image for `role` in `region`, else the table's default.
    pub fn image(&self, role: Role, region: &str) -> String {
        let t = match role {
            Role::Scan => &self.scan,
            Role::Ids => &self.ids,
        };
        t.get(region).or_else(|| t.get("default")).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_then_default() {
        let mut i = Images::builtin();
        assert!(i.image(Role::Scan, "eu-west-1").starts_with("ami-"));
        i.ids.insert("eu-west-1".into(), "ami-1".into());
        assert_eq!(i.image(Role::Ids, "eu-west-1"), "ami-1");
        assert_ne!(i.image(Role::Ids, "us-east-1"), "ami-1");
    }
}
