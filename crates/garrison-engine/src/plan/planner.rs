//! `plan(desired, observed, owned) -> Plan`: the difference between what should be and
//! what is, as ordered actions. Only resources garrison owns are ever changed; adoption
//! and forgetting are records. Nothing is removed in a region whose discovery was
//! incomplete, and what the snapshot cannot show (bucket, topic, queue) is trusted to
//! exist while its record does.

use std::collections::{BTreeMap, BTreeSet};

use garrison_model::protection::{Action, Op, Owned, OwnedItem, Perm, Plan, ResKind, Spec, TAG_DEPLOYMENT, TAG_KEY};
use garrison_model::snapshot::{Kind, RegionSnapshot, Snapshot, Tags};

use super::desired::{Desired, Want, region_complete};

/// What the snapshot says of an owned resource.
#[derive(Debug, PartialEq)]
pub enum Seen<'a> {
    Present(Observed<'a>),
    Gone,
    /// Not read (a failed read, or a kind discovery does not list).
    Unknown,
}

#[derive(Debug, PartialEq)]
pub enum Observed<'a> {
    Instance {
        state: &'a str,
        instance_type: &'a str,
    },
    Group {
        ingress: Vec<Perm>,
        egress: Vec<Perm>,
    },
    /// Whether it logs (read for trails homed in the region).
    Trail {
        logging: Option<bool>,
    },
    MirrorTarget {
        interface: Option<&'a str>,
    },
    /// How many rules it has each way.
    MirrorFilter {
        ingress: usize,
        egress: usize,
    },
    MirrorSession {
        target: &'a str,
        filter: &'a str,
    },
    Other,
}

fn kind_of(k: ResKind) -> Option<Kind> {
    k.facts().discovered_as
}

pub fn flatten(rules: &[garrison_model::snapshot::Rule]) -> Vec<Perm> {
    let mut v: Vec<Perm> = rules
        .iter()
        .flat_map(|r| {
            r.cidrs.iter().map(|c| Perm::new(&r.protocol, r.from_port.unwrap_or(0), r.to_port.unwrap_or(0), c))
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

pub fn seen<'a>(snap: &'a Snapshot, o: &OwnedItem) -> Seen<'a> {
    let Some(kind) = kind_of(o.kind) else { return Seen::Unknown };
    let Some(rs) = snap.regions.get(&o.region) else { return Seen::Unknown };
    if !rs.complete(kind) {
        return Seen::Unknown;
    }
    let id = o.id.as_str();
    let found = match o.kind {
        ResKind::Subnet => rs.subnets.iter().any(|s| s.id == id).then_some(Observed::Other),
        ResKind::InternetGateway => rs.internet_gateways.iter().any(|g| g.id == id).then_some(Observed::Other),
        ResKind::RouteTable => rs.route_tables.iter().any(|t| t.id == id).then_some(Observed::Other),
        ResKind::NetworkAcl => rs.network_acls.iter().any(|t| t.id == id).then_some(Observed::Other),
        ResKind::SecurityGroup => rs
            .security_groups
            .iter()
            .find(|g| g.id == id)
            .map(|g| Observed::Group { ingress: flatten(&g.ingress), egress: flatten(&g.egress) }),
        ResKind::Appliance => rs
            .instances
            .iter()
            .find(|i| i.id == id && !matches!(i.state.as_str(), "terminated" | "shutting-down"))
            .map(|i| Observed::Instance { state: i.state.as_str(), instance_type: i.instance_type.as_str() }),
        ResKind::FlowLogs => rs.flow_logs.iter().any(|f| f.id == id).then_some(Observed::Other),
        ResKind::Detector => rs.detectors.iter().any(|d| d.id == id).then_some(Observed::Other),
        ResKind::Recorder => rs.config_recorders.iter().any(|r| r.name == id).then_some(Observed::Other),
        ResKind::Trail => {
            rs.trails.iter().find(|t| t.name == id || t.arn == id).map(|t| Observed::Trail { logging: t.logging })
        }
        ResKind::MirrorTarget => rs
            .mirror_targets
            .iter()
            .find(|t| t.id == id)
            .map(|t| Observed::MirrorTarget { interface: t.interface.as_deref() }),
        ResKind::MirrorFilter => rs
            .mirror_filters
            .iter()
            .find(|f| f.id == id)
            .map(|f| Observed::MirrorFilter { ingress: f.ingress_rules, egress: f.egress_rules }),
        ResKind::MirrorSession => rs
            .mirror_sessions
            .iter()
            .find(|m| m.id == id)
            .map(|m| Observed::MirrorSession { target: m.target.as_str(), filter: m.filter.as_str() }),
        _ => None,
    };
    found.map(Seen::Present).unwrap_or(Seen::Gone)
}

/// Adds to `owned` what the snapshot shows garrison made for this deployment but has no
/// record of (a create whose outcome was lost in a crash). A second resource under a key
/// that already has one is recorded as an orphan, which the planner then removes.
pub fn recover(owned: &mut Owned, snap: &Snapshot, deployment: &str) {
    let mut found: Vec<(String, String, ResKind, String)> = vec![];
    for (region, rs) in &snap.regions {
        let mut note = |tags: &Tags, kind: ResKind, id: &str| {
            if tags.get(TAG_DEPLOYMENT).is_some_and(|d| d == deployment)
                && let Some(k) = tags.get(TAG_KEY)
            {
                found.push((k.clone(), region.clone(), kind, id.to_string()));
            }
        };
        scan_region(rs, &mut note);
    }
    for (key, region, kind, id) in found {
        // Recorded under another key: a retired resource still carries its old key's tag.
        if owned.items.values().any(|o| o.id == id) {
            continue;
        }
        match owned.items.get(&key) {
            Some(o) if o.id == id => {}
            Some(o) if !o.id.is_empty() => {
                let orphan = format!("orphan/{id}");
                owned.items.entry(orphan.clone()).or_insert(OwnedItem {
                    key: orphan,
                    region,
                    kind,
                    id,
                    arn: None,
                    adopted: false,
                    spec: None,
                    token: None,
                    tags: Default::default(),
                });
            }
            prior => {
                let spec = prior.and_then(|p| p.spec.clone());
                owned.items.insert(
                    key.clone(),
                    OwnedItem {
                        key,
                        region,
                        kind,
                        id,
                        arn: None,
                        adopted: false,
                        spec,
                        token: None,
                        tags: prior.map(|p| p.tags.clone()).unwrap_or_default(),
                    },
                );
            }
        }
    }
}

fn scan_region(rs: &RegionSnapshot, note: &mut impl FnMut(&Tags, ResKind, &str)) {
    for s in &rs.subnets {
        note(&s.tags, ResKind::Subnet, &s.id);
    }
    for g in &rs.internet_gateways {
        note(&g.tags, ResKind::InternetGateway, &g.id);
    }
    for t in &rs.route_tables {
        note(&t.tags, ResKind::RouteTable, &t.id);
    }
    for t in &rs.network_acls {
        note(&t.tags, ResKind::NetworkAcl, &t.id);
    }
    for g in &rs.security_groups {
        note(&g.tags, ResKind::SecurityGroup, &g.id);
    }
    for i in rs.instances.iter().filter(|i| !matches!(i.state.as_str(), "terminated" | "shutting-down")) {
        note(&i.tags, ResKind::Appliance, &i.id);
    }
    for f in &rs.flow_logs {
        note(&f.tags, ResKind::FlowLogs, &f.id);
    }
    for d in &rs.detectors {
        note(&d.tags, ResKind::Detector, &d.id);
    }
    for t in &rs.mirror_targets {
        note(&t.tags, ResKind::MirrorTarget, &t.id);
    }
    for f in &rs.mirror_filters {
        note(&f.tags, ResKind::MirrorFilter, &f.id);
    }
    for m in &rs.mirror_sessions {
        note(&m.tags, ResKind::MirrorSession, &m.id);
    }
}

/// The primary network interface of the instance owned under `appliance`, as discovery saw it.
fn appliance_interface<'a>(snap: &'a Snapshot, owned: &Owned, appliance: &str) -> Option<&'a str> {
    let o = owned.get(appliance).filter(|o| !o.id.is_empty())?;
    let rs = snap.regions.get(&o.region)?;
    rs.instances.iter().find(|i| i.id == o.id)?.interfaces.first().map(String::as_str)
}

/// The id owned under `key`, if made.
fn owned_id<'a>(owned: &'a Owned, key: &str) -> Option<&'a str> {
    owned.get(key).map(|o| o.id.as_str()).filter(|id| !id.is_empty())
}

/// The tags AWS shows on an owned resource of a kind that takes the operator's tags.
fn observed_tags<'a>(snap: &'a Snapshot, o: &OwnedItem) -> Option<&'a Tags> {
    let rs = snap.regions.get(&o.region)?;
    let id = o.id.as_str();
    match o.kind {
        ResKind::Subnet => rs.subnets.iter().find(|x| x.id == id).map(|x| &x.tags),
        ResKind::InternetGateway => rs.internet_gateways.iter().find(|x| x.id == id).map(|x| &x.tags),
        ResKind::RouteTable => rs.route_tables.iter().find(|x| x.id == id).map(|x| &x.tags),
        ResKind::NetworkAcl => rs.network_acls.iter().find(|x| x.id == id).map(|x| &x.tags),
        ResKind::SecurityGroup => rs.security_groups.iter().find(|x| x.id == id).map(|x| &x.tags),
        ResKind::Appliance => rs.instances.iter().find(|x| x.id == id).map(|x| &x.tags),
        _ => None,
    }
}

/// What to set and take off for an owned resource to carry `want` (the operator's tags):
/// values that differ are set; keys garrison put before (`o.tags`) and no longer wants are
/// taken off; tags anyone else put are left alone.
fn tag_changes(want: &Tags, o: &OwnedItem, have: &Tags) -> Option<(Tags, Vec<String>)> {
    let set: Tags =
        want.iter().filter(|(k, v)| have.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect();
    let unset: Vec<String> =
        o.tags.keys().filter(|k| !want.contains_key(*k) && have.contains_key(*k)).cloned().collect();
    (!set.is_empty() || !unset.is_empty()).then_some((set, unset))
}

fn diff(want: &[Perm], have: &[Perm]) -> (Vec<Perm>, Vec<Perm>) {
    let w: BTreeSet<&Perm> = want.iter().collect();
    let h: BTreeSet<&Perm> = have.iter().collect();
    (w.difference(&h).map(|p| (*p).clone()).collect(), h.difference(&w).map(|p| (*p).clone()).collect())
}

pub fn plan(desired: &Desired, snap: &Snapshot, owned: &Owned) -> Plan {
    let mut actions: Vec<Action> = vec![];
    let act = |key: &str, region: &str, kind: ResKind, op: Op| Action {
        key: key.into(),
        region: region.into(),
        kind,
        op,
        after: vec![],
    };
    for (key, want) in &desired.items {
        match want {
            Want::Adopt { region, kind, id, .. } => {
                if owned.get(key).is_none_or(|o| &o.id != id) {
                    actions.push(act(key, region, *kind, Op::Adopt { id: id.clone() }));
                }
            }
            Want::Build { region, spec, running, tags } => {
                let create = act(
                    key,
                    region,
                    spec.kind(),
                    Op::Create { spec: spec.clone(), running: *running, tags: tags.clone(), retire: None },
                );
                let Some(o) = owned.get(key) else {
                    actions.push(create);
                    continue;
                };
                if o.adopted {
                    // The customer's resource no longer serves (gone, or a trail that
                    // stopped logging): build ours; theirs is left as it is.
                    actions.push(create);
                    continue;
                }
                // A rule made with an older pattern (the events acted on grew) or another
                // target (the feed moved to the organization's bus), or a role for another
                // bus: put again, which PutRule/PutTargets and PutRolePolicy do in place
                // under the same name and ARN.
                let changed = match (spec, &o.spec) {
                    (Spec::EventRule { .. }, Some(had @ Spec::EventRule { .. })) => spec != had,
                    (Spec::EventRole { .. }, Some(had @ Spec::EventRole { .. })) => spec != had,
                    _ => false,
                };
                if changed {
                    actions.push(create);
                    continue;
                }
                let observed = seen(snap, o);
                // Replaced, the new one made first and the old one removed after it
                // (`retired/<key>`): an appliance of another type than wanted or wanted in
                // another subnet (the operator chose them), and an ACL for other peers (a
                // hub's spokes changed; ACL entries are numbered, so a replacement is simpler
                // than renumbering in place).
                let replaced = match (spec, &o.spec, &observed) {
                    (Spec::NetworkAcl { .. }, Some(had @ Spec::NetworkAcl { .. }), Seen::Present(_)) => spec != had,
                    // A target at another interface than its appliance's (the appliance was
                    // replaced in an earlier run).
                    (Spec::MirrorTarget { appliance }, _, Seen::Present(Observed::MirrorTarget { interface })) => {
                        appliance_interface(snap, owned, appliance).is_some_and(|want| Some(want) != *interface)
                    }
                    (
                        Spec::Appliance { instance_type, zone, subnet, .. },
                        had,
                        Seen::Present(Observed::Instance { instance_type: running, .. }),
                    ) => {
                        instance_type != running
                            || matches!(had, Some(Spec::Appliance { zone: z, subnet: s, .. }) if z != zone || s != subnet)
                    }
                    _ => false,
                };
                // A silent appliance (the health watch asks): replaced the same way, its
                // predecessor kept running (`hold`) until the replacement registers, so that
                // coverage never drops to nothing.
                let silent = desired.replace.get(key).is_some_and(|i| *i == o.id);
                if replaced || silent {
                    let rk = retire_key(owned, key, &o.id);
                    let mut create = create;
                    if let Op::Create { retire, .. } = &mut create.op {
                        *retire = Some(rk.clone());
                    }
                    actions.push(create);
                    if !(rk == retired(key) && desired.hold.contains(key)) {
                        actions.push(act(&rk, &o.region, o.kind, Op::Delete { id: o.id.clone() }));
                    }
                    continue;
                }
                if let (Seen::Present(_), Some(have)) = (&observed, observed_tags(snap, o))
                    && let Some((set, unset)) = tag_changes(tags, o, have)
                {
                    actions.push(act(key, region, o.kind, Op::Tag { id: o.id.clone(), set, unset }));
                }
                match observed {
                    Seen::Gone => actions.push(create),
                    Seen::Unknown => {}
                    Seen::Present(Observed::Instance { state, .. }) => {
                        let up = matches!(state, "running" | "pending");
                        if *running && !up {
                            actions.push(act(key, region, o.kind, Op::Start { id: o.id.clone() }));
                        } else if !*running && up {
                            actions.push(act(key, region, o.kind, Op::Stop { id: o.id.clone() }));
                        }
                    }
                    Seen::Present(Observed::Group { ingress, egress }) => {
                        if let Spec::SecurityGroup { ingress: wi, egress: we, .. } = spec {
                            let (add_ingress, remove_ingress) = diff(wi, &ingress);
                            let (add_egress, remove_egress) = diff(we, &egress);
                            if !(add_ingress.is_empty()
                                && remove_ingress.is_empty()
                                && add_egress.is_empty()
                                && remove_egress.is_empty())
                            {
                                actions.push(act(
                                    key,
                                    region,
                                    o.kind,
                                    Op::SetRules {
                                        id: o.id.clone(),
                                        add_ingress,
                                        remove_ingress,
                                        add_egress,
                                        remove_egress,
                                    },
                                ));
                            }
                        }
                    }
                    // Our trail stopped logging (by hand or by an attacker): start it again.
                    Seen::Present(Observed::Trail { logging: Some(false) }) => {
                        actions.push(act(key, region, o.kind, Op::Start { id: o.id.clone() }));
                    }
                    // A filter that lost a rule (or never got one: a create cut off between
                    // the filter and its rules) mirrors nothing that way: given it back.
                    Seen::Present(Observed::MirrorFilter { ingress, egress }) if ingress == 0 || egress == 0 => {
                        actions.push(act(key, region, o.kind, Op::Modify { id: o.id.clone(), spec: spec.clone() }));
                    }
                    // Sent to another appliance, or the target or filter it used is not the
                    // one now under its key: changed in place, the interface mirrored throughout.
                    Seen::Present(Observed::MirrorSession { target, filter }) => {
                        if let Spec::MirrorSession { target: tk, filter: fk, .. } = spec
                            && (o.spec.as_ref() != Some(spec)
                                || owned_id(owned, tk).is_some_and(|t| t != target)
                                || owned_id(owned, fk).is_some_and(|f| f != filter))
                        {
                            actions.push(act(key, region, o.kind, Op::Modify { id: o.id.clone(), spec: spec.clone() }));
                        }
                    }
                    Seen::Present(
                        Observed::Trail { .. }
                        | Observed::MirrorTarget { .. }
                        | Observed::MirrorFilter { .. }
                        | Observed::Other,
                    ) => {}
                }
            }
        }
    }
    for (key, o) in &owned.items {
        if desired.items.contains_key(key) || key.strip_prefix("retired/").is_some_and(|k| desired.hold.contains(k)) {
            continue;
        }
        if o.adopted || o.id.is_empty() {
            actions.push(act(key, &o.region, o.kind, Op::Forget { id: o.id.clone() }));
            continue;
        }
        let complete = if o.kind.is_audit() { true } else { region_complete(snap, &o.region) };
        match seen(snap, o) {
            Seen::Gone => actions.push(act(key, &o.region, o.kind, Op::Forget { id: o.id.clone() })),
            Seen::Unknown if kind_of(o.kind).is_some() => {}
            _ if !complete => {}
            _ => actions.push(act(key, &o.region, o.kind, Op::Delete { id: o.id.clone() })),
        }
    }
    follow_replacements(desired, snap, owned, &mut actions);
    order(&mut actions);
    Plan { actions, problems: desired.problems.clone(), notes: desired.notes.clone() }
}

/// What is built on a resource this plan makes anew follows it: an IDS appliance's mirror
/// target is replaced with the appliance (launch-first, the old one removed once the
/// sessions moved), and the sessions of a target or filter made anew are changed in place to
/// it (`Op::Modify`, after the create).
fn follow_replacements(desired: &Desired, snap: &Snapshot, owned: &Owned, actions: &mut Vec<Action>) {
    let acted: BTreeSet<String> = actions.iter().map(|a| a.key.clone()).collect();
    let creating = |actions: &[Action]| -> BTreeSet<String> {
        actions.iter().filter(|a| matches!(a.op, Op::Create { .. })).map(|a| a.key.clone()).collect()
    };
    let made = creating(actions);
    for (key, want) in &desired.items {
        let Want::Build { region, spec: spec @ Spec::MirrorTarget { appliance }, running, tags } = want else {
            continue;
        };
        let Some(o) = owned.get(key).filter(|o| !o.adopted && !o.id.is_empty()) else { continue };
        if acted.contains(key) || !made.contains(appliance) || !matches!(seen(snap, o), Seen::Present(_)) {
            continue;
        }
        let rk = retire_key(owned, key, &o.id);
        actions.push(Action {
            key: key.clone(),
            region: region.clone(),
            kind: o.kind,
            op: Op::Create { spec: spec.clone(), running: *running, tags: tags.clone(), retire: Some(rk.clone()) },
            after: vec![],
        });
        actions.push(Action {
            key: rk,
            region: o.region.clone(),
            kind: o.kind,
            op: Op::Delete { id: o.id.clone() },
            after: vec![],
        });
    }
    let made = creating(actions);
    for (key, want) in &desired.items {
        let Want::Build { region, spec: spec @ Spec::MirrorSession { target, filter, .. }, .. } = want else {
            continue;
        };
        let Some(o) = owned.get(key).filter(|o| !o.adopted && !o.id.is_empty()) else { continue };
        if acted.contains(key) || !(made.contains(target) || made.contains(filter)) {
            continue;
        }
        if matches!(seen(snap, o), Seen::Present(_)) {
            actions.push(Action {
                key: key.clone(),
                region: region.clone(),
                kind: o.kind,
                op: Op::Modify { id: o.id.clone(), spec: spec.clone() },
                after: vec![],
            });
        }
    }
}

/// The key under which the resource a replacement retires is removed.
pub fn retired(key: &str) -> String {
    format!("retired/{key}")
}

/// Where the executor records resource `id` of `key` when a replacement retires it: under
/// `retired/<key>`, or, when that holds an earlier one kept running (a silent appliance's
/// original while its replacements try to register), under `retired/<key>#<id>`.
pub fn retire_key(owned: &Owned, key: &str, id: &str) -> String {
    let first = retired(key);
    match owned.items.get(&first) {
        Some(o) if o.id != id => format!("{first}#{id}"),
        _ => first,
    }
}

/// Fills `after`: creates and changes in place wait for the creates and adoptions they
/// reference; removals wait for the lower-ranked removals in their region (audit resources:
/// in any region); a retired resource waits for its replacement and for what is moved off it.
fn order(actions: &mut [Action]) {
    let preparing: BTreeSet<String> = actions
        .iter()
        .filter(|a| matches!(a.op, Op::Create { .. } | Op::Adopt { .. }))
        .map(|a| a.key.clone())
        .collect();
    let removing: BTreeMap<String, (String, ResKind)> = actions
        .iter()
        .filter(|a| matches!(a.op, Op::Delete { .. }))
        .map(|a| (a.key.clone(), (a.region.clone(), a.kind)))
        .collect();
    let moving: Vec<(String, Vec<String>)> = actions
        .iter()
        .filter_map(|a| match &a.op {
            Op::Modify { spec, .. } => Some((a.key.clone(), spec.refs().into_iter().map(str::to_string).collect())),
            _ => None,
        })
        .collect();
    for a in actions.iter_mut() {
        a.after = match &a.op {
            Op::Create { spec, .. } | Op::Modify { spec, .. } => {
                spec.refs().into_iter().filter(|r| preparing.contains(*r)).map(str::to_string).collect()
            }
            Op::Delete { .. } => match a.key.strip_prefix("retired/") {
                Some(replacement) => {
                    let replacement = replacement.split('#').next().unwrap_or(replacement).to_string();
                    let mut after: Vec<String> =
                        moving.iter().filter(|(_, refs)| refs.contains(&replacement)).map(|(k, _)| k.clone()).collect();
                    after.insert(0, replacement);
                    after
                }
                None => removing
                    .iter()
                    .filter(|(_, (region, kind))| {
                        kind.removal_rank() < a.kind.removal_rank()
                            && (region == &a.region || a.kind.is_audit() || kind.is_audit())
                    })
                    .map(|(k, _)| k.clone())
                    .collect(),
            },
            _ => vec![],
        };
    }
}
