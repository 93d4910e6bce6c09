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

    /// An operator's table: `scan` and `ids`, each region → image id, with a `default`.
    pub fn from_json(text: &str) -> Result<Images, String> {
        let i: Images = serde_json::from_str(text).map_err(|e| format!("not an image table: {e}"))?;
        for (role, t) in [("scan", &i.scan), ("ids", &i.ids)] {
            if !t.contains_key("default") {
                return Err(format!("{role}.default: expected an image id for regions not listed, found none"));
            }
            if let Some((r, id)) = t.iter().find(|(_, id)| !id.starts_with("ami-")) {
                return Err(format!("{role}.{r}: expected an image id (ami-…), found {id:?}"));
            }
        }
        Ok(i)
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
    fn an_operator_table_is_checked() {
        assert!(Images::from_json(r#"{"scan": {"default": "ami-1"}, "ids": {"default": "ami-2"}}"#).is_ok());
        assert!(
            Images::from_json(r#"{"scan": {"us-east-1": "ami-1"}, "ids": {"default": "ami-2"}}"#)
                .unwrap_err()
                .contains("scan.default")
        );
        assert!(
            Images::from_json(r#"{"scan": {"default": "ami-1"}, "ids": {"default": "img"}}"#)
                .unwrap_err()
                .contains("ids.default")
        );
    }

    #[test]
    fn region_then_default() {
        let mut i = Images::builtin();
        assert!(i.image(Role::Scan, "eu-west-1").starts_with("ami-"));
        i.ids.insert("eu-west-1".into(), "ami-1".into());
        assert_eq!(i.image(Role::Ids, "eu-west-1"), "ami-1");
        assert_ne!(i.image(Role::Ids, "us-east-1"), "ami-1");
    }
}
