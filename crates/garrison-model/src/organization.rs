//! An AWS organization as garrison reads it (units, accounts and their state), and which of
//! its accounts a selection of units enrolls: the pure centre of organization enrollment.
//! The AWS reads are garrison-cloud's (`organizations::tree`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// AWS allows organizational units five levels deep under the root; a longer chain is a
/// cycle in bad input, and is cut there.
pub const MAX_DEPTH: usize = 8;

/// An account's state in its organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccountState {
    Active,
    Suspended,
    PendingClosure,
    Closed,
}

impl AccountState {
    /// From the `Status` (or `State`) AWS reports; what it does not name is not active.
    pub fn parse(s: &str) -> AccountState {
        match s {
            "ACTIVE" => AccountState::Active,
            "PENDING_CLOSURE" => AccountState::PendingClosure,
            "CLOSED" => AccountState::Closed,
            _ => AccountState::Suspended,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgAccount {
    /// The root or unit the account sits in.
    pub parent: String,
    pub name: String,
    pub state: AccountState,
}

/// The organization's tree: every unit with its parent, every account with its place.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgTree {
    pub id: String,
    pub management_account: String,
    pub root: String,
    /// Unit id → its parent (the root or another unit).
    pub units: BTreeMap<String, String>,
    pub accounts: BTreeMap<String, OrgAccount>,
}

impl OrgTree {
    /// `node` and the units above it, nearest first, up to the root (bounded).
    pub fn lineage(&self, node: &str) -> Vec<String> {
        let mut out = vec![node.to_string()];
        let mut at = node;
        while let Some(parent) = self.units.get(at) {
            if out.len() > MAX_DEPTH || out.iter().any(|n| n == parent) {
                break;
            }
            out.push(parent.clone());
            at = parent;
        }
        out
    }
}

/// A unit to enroll, alone or with every unit below it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UnitItem {
    /// `ou-…` or the root `r-…`.
    pub unit: String,
    #[serde(default)]
    pub children: bool,
}

/// What an enrollment covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Selection {
    pub include: Vec<UnitItem>,
    #[serde(default)]
    pub exclude_units: Vec<String>,
    #[serde(default)]
    pub exclude_accounts: Vec<String>,
}

/// Why an account of the organization is not enrolled (for the enrollment's status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Left {
    /// In no included unit.
    OutsideUnits,
    /// In an excluded unit (or below one).
    ExcludedUnit,
    ExcludedAccount,
    /// Suspended, closing or closed.
    NotActive,
    /// The management account: service-managed StackSets do not reach it.
    Management,
}

/// Whether `account` is enrolled by `sel`, or why not. Exclusions win over inclusions.
pub fn judge(tree: &OrgTree, sel: &Selection, account: &str) -> Result<(), Left> {
    let Some(a) = tree.accounts.get(account) else { return Err(Left::OutsideUnits) };
    if account == tree.management_account {
        return Err(Left::Management);
    }
    if a.state != AccountState::Active {
        return Err(Left::NotActive);
    }
    if sel.exclude_accounts.iter().any(|x| x == account) {
        return Err(Left::ExcludedAccount);
    }
    let lineage = tree.lineage(&a.parent);
    if lineage.iter().any(|u| sel.exclude_units.contains(u)) {
        return Err(Left::ExcludedUnit);
    }
    let included = sel.include.iter().any(|i| if i.children { lineage.contains(&i.unit) } else { a.parent == i.unit });
    if included { Ok(()) } else { Err(Left::OutsideUnits) }
}

/// Every account `sel` enrolls now.
pub fn enrolled(tree: &OrgTree, sel: &Selection) -> BTreeSet<String> {
    tree.accounts.keys().filter(|a| judge(tree, sel, a).is_ok()).cloned().collect()
}

/// An organizational unit id (`ou-` root part `-` unit part) or a root id (`r-…`), as AWS
/// documents them.
pub fn is_unit_id(s: &str) -> bool {
    let lower_alnum = |p: &str, min: usize, max: usize| {
        (min..=max).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    };
    if let Some(rest) = s.strip_prefix("ou-") {
        return rest.split_once('-').is_some_and(|(r, u)| lower_alnum(r, 4, 32) && lower_alnum(u, 8, 32));
    }
    s.strip_prefix("r-").is_some_and(|r| lower_alnum(r, 4, 32))
}

pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// root r-0001 ─ ou-0001-aaaaaaaa (prod) ─ ou-0001-bbbbbbbb (prod/web)
    ///             └ ou-0001-cccccccc (sandbox)
    fn tree() -> OrgTree {
        let mut t = OrgTree {
            id: "o-1".into(),
            management_account: "000000000001".into(),
            root: "r-0001".into(),
            ..Default::default()
        };
        t.units.insert("ou-0001-aaaaaaaa".into(), "r-0001".into());
        t.units.insert("ou-0001-bbbbbbbb".into(), "ou-0001-aaaaaaaa".into());
        t.units.insert("ou-0001-cccccccc".into(), "r-0001".into());
        for (a, parent, state) in [
            ("000000000001", "r-0001", AccountState::Active),
            ("111111111111", "ou-0001-aaaaaaaa", AccountState::Active),
            ("222222222222", "ou-0001-bbbbbbbb", AccountState::Active),
            ("333333333333", "ou-0001-cccccccc", AccountState::Active),
            ("444444444444", "ou-0001-aaaaaaaa", AccountState::Suspended),
        ] {
            t.accounts.insert(a.into(), OrgAccount { parent: parent.into(), name: a.into(), state });
        }
        t
    }

    fn sel(include: &[(&str, bool)], units: &[&str], accounts: &[&str]) -> Selection {
        Selection {
            include: include.iter().map(|(u, c)| UnitItem { unit: u.to_string(), children: *c }).collect(),
            exclude_units: units.iter().map(|s| s.to_string()).collect(),
            exclude_accounts: accounts.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn units_alone_or_with_their_children_and_exclusions_win() {
        let t = tree();
        assert_eq!(enrolled(&t, &sel(&[("ou-0001-aaaaaaaa", false)], &[], &[])), set(&["111111111111"]));
        assert_eq!(
            enrolled(&t, &sel(&[("ou-0001-aaaaaaaa", true)], &[], &[])),
            set(&["111111111111", "222222222222"]),
            "the suspended account is left out"
        );
        assert_eq!(
            enrolled(&t, &sel(&[("ou-0001-aaaaaaaa", true)], &["ou-0001-bbbbbbbb"], &[])),
            set(&["111111111111"])
        );
        assert_eq!(
            enrolled(&t, &sel(&[("r-0001", true)], &[], &["333333333333"])),
            set(&["111111111111", "222222222222"]),
            "the whole organization but one account, never the management account"
        );
        assert_eq!(judge(&t, &sel(&[("r-0001", true)], &[], &[]), "000000000001"), Err(Left::Management));
        assert_eq!(judge(&t, &sel(&[("r-0001", true)], &[], &[]), "444444444444"), Err(Left::NotActive));
        assert_eq!(judge(&t, &sel(&[("r-0001", false)], &[], &[]), "111111111111"), Err(Left::OutsideUnits));
    }

    #[test]
    fn a_cycle_in_the_tree_ends_the_lineage() {
        let mut t = tree();
        t.units.insert("ou-0001-aaaaaaaa".into(), "ou-0001-bbbbbbbb".into());
        assert!(t.lineage("ou-0001-bbbbbbbb").len() <= MAX_DEPTH + 1);
        assert!(enrolled(&t, &sel(&[("r-0001", true)], &[], &[])).contains("333333333333"));
    }

    #[test]
    fn ids_as_aws_documents_them() {
        assert!(is_unit_id("ou-ab12-cd34ef56") && is_unit_id("r-ab12"));
        for bad in ["ou-ab12", "ou-AB12-cd34ef56", "ou-ab12-cd34", "r-", "x-ab12-cd34ef56", ""] {
            assert!(!is_unit_id(bad), "{bad}");
        }
        assert!(is_account_id("123456789012") && !is_account_id("12345678901") && !is_account_id("12345678901a"));
    }

    fn arb_tree() -> impl Strategy<Value = OrgTree> {
        // Units u0..u5, each under the root or an earlier unit; accounts under any node.
        (proptest::collection::vec(0usize..6, 6), proptest::collection::vec((0usize..7, 0u8..4), 0..20)).prop_map(
            |(parents, accounts)| {
                let unit = |i: usize| format!("ou-0001-unit000{i}");
                let mut t = OrgTree {
                    id: "o".into(),
                    management_account: "999999999999".into(),
                    root: "r-0001".into(),
                    ..Default::default()
                };
                for (i, p) in parents.iter().enumerate() {
                    let parent = if *p < i { unit(*p) } else { "r-0001".into() };
                    t.units.insert(unit(i), parent);
                }
                for (n, (node, st)) in accounts.iter().enumerate() {
                    let parent = if *node == 6 { "r-0001".to_string() } else { unit(*node) };
                    let state =
                        [AccountState::Active, AccountState::Active, AccountState::Suspended, AccountState::Closed]
                            [*st as usize];
                    t.accounts.insert(format!("{:012}", n + 1), OrgAccount { parent, name: n.to_string(), state });
                }
                t
            },
        )
    }

    fn arb_sel() -> impl Strategy<Value = Selection> {
        let unit = |i: usize| if i == 6 { "r-0001".to_string() } else { format!("ou-0001-unit000{i}") };
        (
            proptest::collection::vec((0usize..7, any::<bool>()), 0..4),
            proptest::collection::vec(0usize..7, 0..2),
            proptest::collection::vec(1usize..21, 0..3),
        )
            .prop_map(move |(inc, exu, exa)| Selection {
                include: inc.into_iter().map(|(u, children)| UnitItem { unit: unit(u), children }).collect(),
                exclude_units: exu.into_iter().map(unit).collect(),
                exclude_accounts: exa.into_iter().map(|n| format!("{n:012}")).collect(),
            })
    }

    proptest! {
        /// Only active accounts other than the management account, never an excluded one,
        /// always inside an included unit; children only add; exclusions only remove.
        #[test]
        fn enrollment_obeys_its_selection(t in arb_tree(), s in arb_sel()) {
            let got = enrolled(&t, &s);
            for a in &got {
                let acc = &t.accounts[a];
                prop_assert_eq!(acc.state, AccountState::Active);
                prop_assert!(a != &t.management_account && !s.exclude_accounts.contains(a));
                let lineage = t.lineage(&acc.parent);
                prop_assert!(s.include.iter().any(|i| lineage.contains(&i.unit)));
                prop_assert!(!lineage.iter().any(|u| s.exclude_units.contains(u)));
            }
            let mut wider = s.clone();
            for i in &mut wider.include { i.children = true; }
            prop_assert!(enrolled(&t, &wider).is_superset(&got));
            let mut fewer_exclusions = s.clone();
            fewer_exclusions.exclude_units.clear();
            fewer_exclusions.exclude_accounts.clear();
            prop_assert!(enrolled(&t, &fewer_exclusions).is_superset(&got));
        }
    }
}
