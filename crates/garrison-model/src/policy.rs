use serde::{Deserialize, Serialize};

/// A protection policy as the policies service returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Policy {
    pub id: String,
    pub name: String,
    pub product_family: String,
    pub features: Vec<PolicyFeature>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PolicyFeature {
    #[serde(rename = "type")]
    pub kind: String,
}

impl Policy {
    pub fn has_feature(&self, f: &str) -> bool {
        self.features.iter().any(|x| x.kind == f)
    }
}
