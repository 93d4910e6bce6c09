//! For tests and benchmarks on the emulator: a tenant in a fresh store whose credential is
//! an automatic-mode role created in the emulated account, and deployments created from
//! request bodies as the API would.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

use garrison_catalog::{Catalog, cft};
use garrison_cloud::Aws;
use garrison_model::audit::AuditEntry;
use garrison_model::credential::{NewCredential, RoleSecret};
use garrison_model::deployment::{Deployment, Refs, parse_request};
use garrison_model::protection::{KINDS, Owned, ResKind, TAG_DEPLOYMENT, TAG_KEY};
use garrison_model::snapshot::Tags;
use garrison_store::{SealKey, Store};
use serde_json::{Value, json};

/// garrison's principal on the emulator (its default account).
pub const GARRISON: &str = "123456789012";

pub struct Tenant {
    pub store: Store,
    /// garrison's tenant account.
    pub account: String,
    pub credential: String,
    /// Where the store lives (the caller may remove it).
    pub dir: PathBuf,
}

/// A SQLite store in a new temporary directory.
pub async fn store(name: &str) -> anyhow::Result<(Store, PathBuf)> {
    store_with(name, &SealKey::generate()).await
}

/// A SQLite store at `<dir>/g.db` in a new temporary directory, sealed with `key` (another
/// process, a worker, can open it with the same key).
pub async fn store_with(name: &str, key: &SealKey) -> anyhow::Result<(Store, PathBuf)> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
    let dir = std::env::temp_dir().join(format!("garrison-{name}-{}-{nanos:x}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = Store::open(&format!("sqlite://{}?mode=rwc", dir.join("g.db").display()), key).await?;
    Ok((store, dir))
}

/// A fresh store's root tenant with a credential for the ci_full role `garrison-<name>`,
/// created in the emulated account as the template would, trusting garrison with the
/// tenant's external id.
pub async fn tenant(aws: &Aws, name: &str) -> anyhow::Result<Tenant> {
    tenant_with(aws, name, &SealKey::generate()).await
}

/// `tenant` with a store sealed under `key`.
pub async fn tenant_with(aws: &Aws, name: &str, key: &SealKey) -> anyhow::Result<Tenant> {
    let (store, dir) = store_with(name, key).await?;
    let root = store.init_root(None, None).await?.ok_or_else(|| anyhow::anyhow!("the store is not fresh"))?;
    let ext = store.external_id(&root.account_id).await?;
    let catalog = Catalog::builtin();
    let full = catalog.get("aws", "ci_full", "latest")?;
    let arn = garrison_cloud::estate::create_role(
        aws,
        &format!("garrison-{name}"),
        &cft::trust_policy(GARRISON, json!(ext)),
        &cft::split_policy(&full.policy_document, cft::MANAGED_POLICY_LIMIT),
    )
    .await?;
    let cred = store
        .create_credential(&root.account_id, &NewCredential { name: name.into(), secret: RoleSecret { arn } }, "test")
        .await?;
    Ok(Tenant { store, account: root.account_id, credential: cred.id, dir })
}

impl Tenant {
    /// A role of `role_type` named `name` in the emulator's account, trusting garrison with
    /// the tenant's external id as its stack would, and its credential's id (e.g. an
    /// organization's management account: `ci_organization`).
    pub async fn role_credential(&self, aws: &Aws, name: &str, role_type: &str) -> anyhow::Result<String> {
        let ext = self.store.external_id(&self.account).await?;
        let def = Catalog::builtin().get("aws", role_type, "latest")?.clone();
        let arn = garrison_cloud::estate::create_role(
            aws,
            name,
            &cft::trust_policy(GARRISON, json!(ext)),
            &cft::split_policy(&def.policy_document, cft::MANAGED_POLICY_LIMIT),
        )
        .await?;
        let secret = RoleSecret { arn };
        Ok(self.store.create_credential(&self.account, &NewCredential { name: name.into(), secret }, "test").await?.id)
    }

    /// An automatic-mode deployment of garrison's emulated account with one include item
    /// per region, the i-th region under policy `policy(i)`.
    pub async fn automatic(
        &self,
        name: &str,
        regions: &[String],
        policy: impl Fn(usize) -> &'static str,
    ) -> anyhow::Result<Deployment> {
        let include: Vec<Value> = regions
            .iter()
            .enumerate()
            .map(|(i, r)| json!({"type": "region", "key": format!("/aws/{r}"), "policy": {"id": policy(i)}}))
            .collect();
        self.deployment(&json!({"name": name, "platform": {"type": "aws", "id": GARRISON}, "mode": "automatic",
            "credentials": [{"id": self.credential, "purpose": "discover"}], "scope": {"include": include}}))
            .await
    }

    /// A deployment created from a request body, validated as the API would.
    pub async fn deployment(&self, body: &Value) -> anyhow::Result<Deployment> {
        let policies: HashSet<String> = garrison_catalog::policies::all().into_iter().map(|p| p.id).collect();
        let creds: HashMap<String, String> = [(self.credential.clone(), GARRISON.to_string())].into();
        let spec = parse_request(body, None, &Refs { policies: &policies, credentials: &creds })
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .spec;
        Ok(self.store.create_deployment(&self.account, spec, "test").await?)
    }
}

/// What garrison left in an account for a deployment, read directly (not through faults):
/// to count duplicates and orphans.
#[derive(Default, Debug)]
pub struct Leftovers {
    /// (kind, garrison key) → ids carrying that key.
    pub by_key: BTreeMap<(ResKind, String), Vec<String>>,
    /// Named audit resources (bucket, topic, queue) whose name says garrison made them.
    pub named: BTreeSet<String>,
}

impl Leftovers {
    /// Keys carried by more than one resource of a kind.
    pub fn duplicates(&self) -> Vec<String> {
        self.by_key
            .iter()
            .filter(|(_, ids)| ids.len() > 1)
            .map(|((k, key), ids)| format!("{} {key}: {ids:?}", k.as_str()))
            .collect()
    }

    pub fn ids(&self) -> BTreeSet<String> {
        self.by_key.values().flatten().cloned().chain(self.named.iter().cloned()).collect()
    }
}

fn ours(tags: &Tags, d: &str) -> Option<String> {
    (tags.get(TAG_DEPLOYMENT).map(String::as_str) == Some(d)).then(|| tags.get(TAG_KEY).cloned().unwrap_or_default())
}

/// Everything in `regions` that carries deployment `d`'s tag, and its named audit resources.
pub async fn leftovers(aws: &Aws, regions: &[String], d: &str) -> Leftovers {
    let snap = garrison_cloud::discovery::discover(aws, regions, 0).await;
    assert!(snap.gaps().is_empty(), "the check itself must read everything: {:?}", snap.gaps());
    let mut f = Leftovers::default();
    let mut add = |kind: ResKind, key: Option<String>, id: &str| {
        if let Some(key) = key {
            f.by_key.entry((kind, key)).or_default().push(id.to_string());
        }
    };
    for rs in snap.regions.values() {
        for i in rs.instances.iter().filter(|i| i.state != "terminated" && i.state != "shutting-down") {
            add(ResKind::Appliance, ours(&i.tags, d), &i.id);
        }
        for s in &rs.subnets {
            add(ResKind::Subnet, ours(&s.tags, d), &s.id);
        }
        for g in &rs.security_groups {
            add(ResKind::SecurityGroup, ours(&g.tags, d), &g.id);
        }
        for t in &rs.route_tables {
            add(ResKind::RouteTable, ours(&t.tags, d), &t.id);
        }
        for a in &rs.network_acls {
            add(ResKind::NetworkAcl, ours(&a.tags, d), &a.id);
        }
        for g in &rs.internet_gateways {
            add(ResKind::InternetGateway, ours(&g.tags, d), &g.id);
        }
        for l in &rs.flow_logs {
            add(ResKind::FlowLogs, ours(&l.tags, d), &l.id);
        }
        for det in &rs.detectors {
            add(ResKind::Detector, ours(&det.tags, d), &det.id);
        }
        for m in &rs.mirror_targets {
            add(ResKind::MirrorTarget, ours(&m.tags, d), &m.id);
        }
        for m in &rs.mirror_filters {
            add(ResKind::MirrorFilter, ours(&m.tags, d), &m.id);
        }
        for m in &rs.mirror_sessions {
            add(ResKind::MirrorSession, ours(&m.tags, d), &m.id);
        }
    }
    let short = d[..8].to_ascii_lowercase();
    for b in aws.s3().list_buckets().send().await.unwrap().buckets() {
        let name = b.name().unwrap_or_default();
        if name.starts_with("garrison-audit-") {
            f.named.insert(name.to_string());
        }
    }
    for region in regions {
        let a = aws.in_region(region);
        for t in a.sns().list_topics().send().await.unwrap().topics() {
            let arn = t.topic_arn().unwrap_or_default();
            if arn.contains(":garrison-") && arn.contains(&short) {
                f.named.insert(arn.to_string());
            }
        }
        for q in a.sqs().list_queues().queue_name_prefix("garrison-").send().await.unwrap().queue_urls() {
            if q.contains(&short) {
                f.named.insert(q.to_string());
            }
        }
        for t in a.cloudtrail().describe_trails().send().await.unwrap().trail_list() {
            if t.name().is_some_and(|n| n.starts_with("garrison-") && n.contains(&short)) {
                f.named.insert(t.name().unwrap().to_string());
            }
        }
        // The event feed: rules on the default bus, garrison's bus and its rules.
        let feed = format!("garrison-feed-{short}");
        let ev = a.events();
        for bus in ev.list_event_buses().name_prefix(&feed).send().await.unwrap().event_buses() {
            let name = bus.name().unwrap_or_default();
            f.named.insert(bus.arn().unwrap_or(name).to_string());
            for r in ev.list_rules().event_bus_name(name).send().await.unwrap().rules() {
                f.named.insert(r.arn().unwrap_or_default().to_string());
            }
        }
        for r in ev.list_rules().name_prefix(&feed).send().await.unwrap().rules() {
            f.named.insert(r.arn().unwrap_or_default().to_string());
        }
    }
    for r in aws.iam().list_roles().send().await.unwrap().roles() {
        if r.role_name().starts_with(&format!("garrison-feed-{short}")) {
            f.named.insert(r.arn().to_string());
        }
    }
    f
}

impl Leftovers {
    /// Resources found that garrison does not record (orphans), and recorded ones not found.
    pub fn orphans_and_missing(&self, owned: &Owned) -> (Vec<String>, Vec<String>) {
        let recorded: BTreeSet<String> = owned
            .items
            .values()
            .filter(|o| !o.adopted && !o.id.is_empty())
            .flat_map(|o| [o.id.clone()].into_iter().chain(o.arn.clone()))
            .collect();
        // Queue URLs carry the endpoint they were read through: names are compared.
        let name = |s: &str| s.rsplit(['/', ':']).next().unwrap_or(s).to_string();
        let recorded: BTreeSet<String> = recorded.iter().map(|r| name(r)).collect();
        let seen: BTreeSet<String> = self.ids().iter().map(|s| name(s)).collect();
        let orphans = seen.iter().filter(|id| !recorded.contains(*id)).cloned().collect();
        let checked_kinds =
            ["appliance", "subnet", "security_group", "route_table", "network_acl", "internet_gateway", "flow_logs"];
        let missing = owned
            .items
            .values()
            .filter(|o| !o.adopted && checked_kinds.contains(&o.kind.as_str()) && !seen.contains(&o.id))
            .map(|o| format!("{} {}", o.key, o.id))
            .collect();
        (orphans, missing)
    }

    /// Resources found without their create entry in `log`: each tagged one needs an entry
    /// for its key with its kind's create call; each named one (bucket, topic, queue,
    /// trail) a create entry naming it. The write-ahead audit log makes this hold wherever a
    /// process died.
    pub fn unaudited(&self, log: &[AuditEntry]) -> Vec<String> {
        let name = |s: &str| s.rsplit(['/', ':']).next().unwrap_or(s).to_string();
        let made =
            |e: &AuditEntry| e.outcome == garrison_model::audit::PENDING || e.outcome == garrison_model::audit::OK;
        let mut out = vec![];
        for ((kind, key), ids) in &self.by_key {
            let call = kind.facts().create_call;
            if !log.iter().any(|e| made(e) && e.call == call && e.key.as_deref() == Some(key.as_str())) {
                out.push(format!("{} {key} {ids:?}: no {call} entry", kind.as_str()));
            }
        }
        for n in &self.named {
            let creates = |e: &AuditEntry| KINDS.iter().any(|k| k.create_call == e.call);
            if !log.iter().any(|e| made(e) && creates(e) && name(&e.resource) == name(n)) {
                out.push(format!("{n}: no create entry"));
            }
        }
        out
    }
}
