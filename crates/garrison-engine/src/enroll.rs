//! Organization enrollment: keeps an AWS organization's accounts in step with an enrollment.
//! Each run reads the organization from its management account, works out which accounts
//! the enrollment covers now (`garrison_model::organization::enrolled`), and for each new
//! one puts garrison's role there (the StackSet's instance), then its credential and its
//! deployment from the template; for each one that left, it requests the deployment's
//! removal (the worker uninstalls and verifies), then takes the stack instance away. A
//! second run with nothing changed writes nothing. Runs at each resync and when woken.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use garrison_cloud::audit_queue::QueueMessage;
use garrison_cloud::{Aws, org_events, organizations, stacksets};
use garrison_model::credential::{NewCredential, RoleSecret};
use garrison_model::deployment::EventFeed;
use garrison_model::deployment::{Refs, parse_request};
use garrison_model::enrollment::{
    Enrollment, EnrollmentStatus, Excluded, FeedChoice, LifecycleFeed, Member, MemberState,
};
use garrison_model::organization::{OrgTree, enrolled, judge};

use crate::{Engine, now_ms};

/// How long a StackSet operation is waited for within one run.
const STACK_SET_WAIT: Duration = Duration::from_secs(300);

/// The role type of the management account's credential.
pub const MANAGEMENT_ROLE: &str = "ci_organization";

/// The lease key of an enrollment: on a shared store one worker reconciles it at a time.
pub const ENROLLMENT_LEASE: &str = "enroll:";

/// Runs until dropped: every enrollment reconciled at least every minute (or each `every`,
/// when shorter: events can be lost, this is the catch-up), at once when one is created or
/// changed, and within a second or two of a lifecycle event arriving on its queue. On
/// PostgreSQL each run holds the enrollment's lease, long enough for the StackSet
/// operations it waits on. Deleted enrollments are torn down, then forgotten.
pub async fn run(engine: Arc<Engine>, every: Duration) {
    let leased = engine.store.backend() == garrison_store::Backend::Postgres;
    let ttl = (STACK_SET_WAIT * 3).max(engine.lease_ttl).as_millis() as i64;
    let mut states: HashMap<String, crate::collect::State> = HashMap::new();
    loop {
        let mut queues: Vec<Polled> = vec![];
        // Events applied per routed deployment (by event id), between passes.
        match engine.store.all_enrollments().await {
            Ok(list) => {
                for en in list {
                    let key = format!("{ENROLLMENT_LEASE}{}", en.id);
                    let lease = if leased {
                        match engine.store.claim_lease(&key, &engine.worker_id, now_ms(), ttl).await {
                            Ok(Some(l)) => Some(l),
                            _ => continue,
                        }
                    } else {
                        None
                    };
                    if en.deleting {
                        Box::pin(tear_down(&engine, &en)).await;
                    } else {
                        let (st, polled) = Box::pin(reconcile_polled(&engine, &en)).await;
                        queues.extend(polled);
                        if let Err(err) = engine.store.set_enrollment_status(&en.id, &st).await {
                            tracing::warn!(enrollment = %en.id, error = %err, "cannot record the enrollment's status");
                        }
                    }
                    if let Some(l) = lease {
                        let _ = engine.store.release_lease(&l, &engine.worker_id).await;
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "cannot list organization enrollments"),
        }
        wait(&engine, every.min(Duration::from_secs(60)), &queues, &mut states).await;
    }
}

/// A queue the loop listens on: an enrollment's, with the deployment each member account's
/// events go to (an organization feed; none otherwise).
struct Polled {
    aws: Aws,
    url: String,
    /// AWS account → (tenant, deployment id).
    routes: HashMap<String, (String, String)>,
}

/// What a message on an enrollment's queue is.
#[derive(Debug, PartialEq, Eq)]
enum Arrival {
    /// Organizations' or Control Tower's: the organization changed.
    Lifecycle,
    /// A management event of an account, from the organization's feed bus.
    Member(String),
    Unknown,
}

fn arrival(body: &str) -> Arrival {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else { return Arrival::Unknown };
    match (v["source"].as_str(), v["account"].as_str()) {
        (Some("aws.organizations" | "aws.controltower"), _) => Arrival::Lifecycle,
        (Some(_), Some(account)) => Arrival::Member(account.to_string()),
        _ => Arrival::Unknown,
    }
}

/// Until `pause` ends, an enrollment changes, or a lifecycle event arrives (its messages
/// are taken: the next pass reads the organization whole, which is what they announce).
/// A member account's event (organization feed) is applied to its deployment as its own
/// poller would, and the wait goes on.
async fn wait(
    engine: &Engine,
    pause: Duration,
    queues: &[Polled],
    states: &mut HashMap<String, crate::collect::State>,
) {
    let deadline = tokio::time::Instant::now() + pause;
    if queues.is_empty() {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = engine.enrollments_changed.notified() => {}
        }
        return;
    }
    while tokio::time::Instant::now() < deadline {
        for q in queues {
            let got = tokio::select! {
                r = garrison_cloud::audit_queue::receive(&q.aws, &q.url, 1) => r,
                _ = engine.enrollments_changed.notified() => return,
            };
            match got {
                Ok(batch) if !batch.is_empty() => {
                    let mut lifecycle = false;
                    let mut taken = vec![];
                    let mut routed: BTreeMap<(String, String), Vec<QueueMessage>> = BTreeMap::new();
                    for m in batch {
                        match arrival(&m.body) {
                            Arrival::Lifecycle => {
                                lifecycle = true;
                                taken.push(m.receipt);
                            }
                            Arrival::Member(account) => match q.routes.get(&account) {
                                Some(route) => routed.entry(route.clone()).or_default().push(m),
                                None => {
                                    tracing::debug!(aws_account = %account, "organization feed: not an enrolled account's event");
                                    taken.push(m.receipt);
                                }
                            },
                            Arrival::Unknown => taken.push(m.receipt),
                        }
                    }
                    if let Err(err) = garrison_cloud::audit_queue::delete(&q.aws, &q.url, &taken).await {
                        tracing::warn!(error = %err, "cannot delete lifecycle messages; they come back");
                    }
                    for ((tenant, id), msgs) in routed {
                        tracing::debug!(deployment = %id, messages = msgs.len(), "organization feed: routed");
                        let state = states.entry(id.clone()).or_default();
                        crate::collect::handle_routed(engine, &tenant, &id, &q.aws, &q.url, msgs, state).await;
                    }
                    if lifecycle {
                        tracing::info!("organization lifecycle event: reconciling");
                        return;
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::debug!(error = %err, "lifecycle queue not read");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// The management account's session for `en`.
/// The management account's session. With `validated`, its role must also be a safe
/// `ci_organization` role (trust limited to garrison with the tenant's external id, every
/// action the role type lists granted): an enrollment never acts through a role that would
/// fail halfway, and the status says what the role lacks.
async fn management(e: &Engine, en: &Enrollment, validated: bool) -> Result<(Aws, String, String), String> {
    let role_arn = match e.store.get_credential(&en.account_id, &en.credential_id).await {
        Ok(Some(c)) => c.secrets.arn,
        Ok(None) => return Err(format!("credential {} no longer exists", en.credential_id)),
        Err(err) => return Err(format!("reading the credential: {err}")),
    };
    let external_id =
        e.store.external_id(&en.account_id).await.map_err(|err| format!("reading the external id: {err}"))?;
    let aws = e
        .sessions
        .assume(&role_arn, &external_id)
        .await
        .map_err(|err| format!("cannot assume {}: {err}", garrison_model::redact::role_arn(&role_arn)))?;
    if validated {
        let role =
            e.catalog.get("aws", MANAGEMENT_ROLE, "latest").map_err(|err| format!("no role definition: {err}"))?;
        let v = crate::validation::validate(e, &role_arn, &external_id, role, 1).await;
        if v.status != crate::validation::ValidationStatus::Ok {
            return Err(format!(
                "the management account's role is not a usable {MANAGEMENT_ROLE} role {}: {}",
                role.version, v.message
            ));
        }
    }
    Ok((aws, role_arn, external_id))
}

/// A deleted enrollment: its lifecycle rule and queue go, then its record. The deployments
/// it made stay (ordinary deployments now), as do their roles.
pub async fn tear_down(e: &Engine, en: &Enrollment) {
    let journal = crate::execute::store_journal(&e.store, &en.account_id, &en.id, 0);
    // Its deployments stay, with feeds of their own again before the organization's bus goes.
    for id in en.status.members.iter().filter_map(|m| m.deployment_id.as_ref()) {
        let Ok(Some(d)) = e.store.get_deployment(&en.account_id, id).await else { continue };
        if d.event_feed.as_ref().is_some_and(|f| f.organization_id == en.id) {
            let mut spec = d.spec();
            spec.event_feed = None;
            let by = format!("organization:{}", en.id);
            if let Err(err) = e.store.update_deployment(&en.account_id, id, d.version, spec, &by).await {
                tracing::warn!(deployment = %id, error = %err, "the deployment keeps the organization's feed for now");
                return;
            }
            e.wake.notify_one();
        }
    }
    // It never made its lifecycle feed: nothing to take away, no session needed.
    let removed = if en.status.events.is_none() {
        Ok(())
    } else {
        match management(e, en, false).await {
            Ok((aws, _, _)) => {
                garrison_cloud::org_events::remove(&aws, &journal, &en.feed_name()).await.map_err(|e| e.to_string())
            }
            Err(why) => Err(why),
        }
    };
    match removed {
        Ok(()) => {
            if let Err(err) = e.store.forget_enrollment(&en.account_id, &en.id).await {
                tracing::warn!(enrollment = %en.id, error = %err, "cannot forget the deleted enrollment");
            }
        }
        Err(why) => {
            tracing::warn!(enrollment = %en.id, why, "the deleted enrollment's lifecycle feed is not removed yet")
        }
    }
}

fn failed(en: &Enrollment, message: String) -> EnrollmentStatus {
    EnrollmentStatus { updated: now_ms(), status: "error".into(), message: Some(message), ..en.status.clone() }
}

/// One reconciliation of `en` against its organization; the status to record.
pub async fn reconcile(e: &Engine, en: &Enrollment) -> EnrollmentStatus {
    // Boxed: a pass is a large future, kept off the caller's stack.
    Box::pin(reconcile_polled(e, en)).await.0
}

/// `reconcile`, with the lifecycle queue to listen on.
async fn reconcile_polled(e: &Engine, en: &Enrollment) -> (EnrollmentStatus, Option<Polled>) {
    let (aws, _, external_id) = match management(e, en, true).await {
        Ok(x) => x,
        Err(why) => return (failed(en, why), None),
    };
    let journal = crate::execute::store_journal(&e.store, &en.account_id, &en.id, 0);
    let tree = match organizations::tree(&aws).await {
        Ok(t) => t,
        Err(err) => return (failed(en, format!("reading the organization: {err}")), None),
    };
    let pattern = garrison_catalog::feed::lifecycle_pattern();
    let feed_pattern = garrison_catalog::feed::bus_pattern();
    let org = (en.event_feed == FeedChoice::Organization)
        .then(|| org_events::OrgFeed { organization_id: &tree.id, pattern: &feed_pattern });
    let (events, polled, feed_problem) = match org_events::ensure(&aws, &journal, &en.feed_name(), &pattern, org).await
    {
        Ok(f) => {
            let polled =
                Polled { aws: aws.in_region(org_events::REGION), url: f.queue_url.clone(), routes: HashMap::new() };
            (
                Some(LifecycleFeed { queue_url: f.queue_url, rule_arn: f.rule_arn, bus_arn: f.bus_arn }),
                Some(polled),
                None,
            )
        }
        Err(err) => (en.status.events.clone(), None, Some(format!("lifecycle events not set up: {err}"))),
    };
    let control_tower = match organizations::runs_control_tower(&aws).await {
        Ok(ct) => ct,
        Err(err) => {
            tracing::debug!(enrollment = %en.id, error = %err, "Control Tower not known; taken as absent");
            false
        }
    };
    let mut run = Run {
        e,
        en,
        aws,
        journal,
        tree,
        control_tower,
        members: BTreeMap::new(),
        problems: feed_problem.into_iter().collect(),
        role_name: None,
        placed: vec![],
        role: en.status.role.clone(),
        feed: match en.event_feed {
            FeedChoice::Organization => Some(events.as_ref().and_then(|f| f.bus_arn.clone())),
            FeedChoice::PerAccount => None,
        },
        tenant: None,
    };
    for m in &en.status.members {
        run.members.insert(m.aws_account.clone(), m.clone());
    }
    let want = enrolled(&run.tree, &en.selection());
    if !want.is_empty() || !run.members.is_empty() {
        Box::pin(run.role(&external_id)).await;
    }
    Box::pin(run.join(&want)).await;
    Box::pin(run.leave(&want)).await;
    Box::pin(run.follow()).await;
    run.health();
    let mut polled = polled;
    if let (Some(p), Some(_)) = (polled.as_mut(), &run.feed) {
        p.routes = run
            .members
            .values()
            .filter_map(|m| m.deployment_id.clone().map(|d| (m.aws_account.clone(), (en.account_id.clone(), d))))
            .collect();
    }
    let selection = en.selection();
    let excluded = run
        .tree
        .accounts
        .keys()
        .filter(|a| !run.members.contains_key(*a))
        .filter_map(|a| judge(&run.tree, &selection, a).err().map(|why| (a, why)))
        .map(|(a, why)| Excluded {
            aws_account: a.clone(),
            why: serde_json::to_value(why).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
        })
        .collect();
    let members: Vec<Member> = run.members.into_values().collect();
    let failed_n = members.iter().filter(|m| m.state == MemberState::Failed).count();
    let summary = format!(
        "{} account(s) enrolled, {} pending, {} leaving, {failed_n} failed",
        members.iter().filter(|m| m.state == MemberState::Enrolled).count(),
        members.iter().filter(|m| m.state == MemberState::Pending).count(),
        members.iter().filter(|m| m.state == MemberState::Leaving).count(),
    );
    let (status, message) = if run.problems.is_empty() {
        ("ok", summary)
    } else {
        ("warning", format!("{}; {summary}", run.problems.join("; ")))
    };
    // The time moves only when something else did, so that a run that changed nothing
    // writes nothing.
    let mut st = EnrollmentStatus {
        updated: en.status.updated,
        status: status.into(),
        message: Some(message),
        members,
        excluded,
        events,
        role: run.role,
    };
    if st != en.status {
        st.updated = now_ms();
    }
    (st, polled)
}

/// What a pass needs of the tenant, read once: its credentials (id, role ARN; id → AWS
/// account for validation), its deployments (AWS account, credential, id), the policy ids.
struct Tenant {
    credentials: Vec<(String, String)>,
    accounts: std::collections::HashMap<String, String>,
    deployments: Vec<(String, String, String)>,
    policies: std::collections::HashSet<String>,
}

impl Tenant {
    async fn read(e: &Engine, id: &str) -> Result<Tenant, String> {
        let why = |err: garrison_store::StoreError| format!("reading the tenant's credentials and deployments: {err}");
        let credentials = e.store.list_credentials(id).await.map_err(why)?;
        let deployments = e.store.list_deployments(id).await.map_err(why)?;
        Ok(Tenant {
            accounts: e.store.credential_accounts(id).await.map_err(why)?,
            credentials: credentials.into_iter().map(|c| (c.id, c.secrets.arn)).collect(),
            deployments: deployments
                .into_iter()
                .flat_map(|d| {
                    let (acct, id) = (d.platform.id, d.id);
                    d.credentials.into_iter().map(move |c| (acct.clone(), c.id, id.clone()))
                })
                .collect(),
            policies: garrison_catalog::policies::all().into_iter().map(|p| p.id).collect(),
        })
    }
}

struct Run<'a> {
    e: &'a Engine,
    en: &'a Enrollment,
    aws: Aws,
    /// The audit log, written ahead, under the enrollment's id.
    journal: garrison_cloud::writes::Journal,
    tree: OrgTree,
    /// The organization runs Control Tower: its deployments say so (`is_control_tower`).
    control_tower: bool,
    members: BTreeMap<String, Member>,
    problems: Vec<String>,
    /// The role each account gets (its name, fixed for the StackSet), once the StackSet
    /// holds the catalog's current version; None when it could not be made so.
    role_name: Option<String>,
    /// The StackSet's instances, read once a pass.
    placed: Vec<stacksets::Instance>,
    /// The role type and version the StackSet holds.
    role: Option<String>,
    /// With an organization feed: Some, holding its bus once made (None until then).
    feed: Option<Option<String>>,
    /// The tenant's credentials and deployments, once read this pass.
    tenant: Option<Tenant>,
}

impl Run<'_> {
    fn by(&self) -> String {
        format!("organization:{}", self.en.id)
    }

    fn member(&mut self, account: &str, state: MemberState, reason: Option<String>) -> &mut Member {
        let m = self.members.entry(account.to_string()).or_insert_with(|| Member {
            aws_account: account.to_string(),
            state,
            deployment_id: None,
            credential_id: None,
            reason: None,
            template_version: None,
        });
        m.state = state;
        m.reason = reason;
        m
    }

    /// Whether the member's deployment is still there (not deleted, not being removed).
    async fn live(&self, account: &str) -> bool {
        let Some(id) = self.members.get(account).and_then(|m| m.deployment_id.clone()) else { return false };
        matches!(self.e.store.get_deployment(&self.en.account_id, &id).await, Ok(Some(_)))
    }

    /// The StackSet holds the role the catalog's latest version defines: made, or updated
    /// when the catalog's role changed (AWS then updates every instance). After an update
    /// every member's deployment runs again, and each run validates its role first: a role
    /// that lacks what the plan needs is reported as a missing capability, never used.
    /// Then the instances are read (once a pass) for `join`, `leave` and `health`.
    async fn role(&mut self, external_id: &str) {
        let role = match self.e.catalog.get("aws", "ci_full", "latest") {
            Ok(r) => r.clone(),
            Err(err) => {
                self.problems.push(format!("no role definition: {err}"));
                return;
            }
        };
        let (template, role_name) = garrison_catalog::cft::render_named(&role, &self.e.principal);
        let made = stacksets::ensure_with(
            &self.aws,
            &self.journal,
            &self.en.stack_set,
            &template.to_string(),
            external_id,
            false,
            STACK_SET_WAIT,
        )
        .await;
        let version = format!("{} {}", role.role_type, role.version);
        match made {
            Ok(stacksets::Ensured::Updated) => {
                let ids: Vec<String> = self.members.values().filter_map(|m| m.deployment_id.clone()).collect();
                tracing::info!(enrollment = %self.en.id, role = %version, accounts = ids.len(), "role upgraded across the organization");
                if let Err(err) = self.e.store.make_due(&ids).await {
                    self.problems.push(format!("the upgraded accounts are not re-validated yet: {err}"));
                }
                self.e.wake.notify_one();
                self.role = Some(version);
                self.role_name = Some(role_name);
            }
            Ok(_) => {
                self.role = Some(version);
                self.role_name = Some(role_name);
            }
            Err(err) => {
                // The instances' own status names the accounts it failed in (`health`).
                self.problems.push(format!("StackSet {} not at role {version}: {err}", self.en.stack_set));
            }
        }
        match stacksets::instances(&self.aws, &self.en.stack_set).await {
            Ok(list) => self.placed = list,
            Err(err) => self.problems.push(format!("reading StackSet {}'s instances: {err}", self.en.stack_set)),
        }
    }

    /// Members whose stack instance failed are named with AWS's reason; their deployment
    /// stays (it validates its role each run), and the instance is tried again when the
    /// role changes or the enrollment does.
    fn health(&mut self) {
        let failed: Vec<(String, String)> = self
            .placed
            .iter()
            .filter_map(|i| i.problem().map(|p| (i.account.clone(), p)))
            .filter(|(a, _)| self.members.get(a).is_some_and(|m| m.state == MemberState::Enrolled))
            .collect();
        for (a, why) in failed {
            self.problems.push(format!("{a}: {why}"));
            self.member(&a, MemberState::Failed, Some(why));
        }
    }

    /// New accounts: the role through the StackSet, then a credential and a deployment each.
    /// An account counts as done when its deployment is live and the StackSet has its
    /// instance (whatever its status: `health` reports a failed one).
    async fn join(&mut self, want: &BTreeSet<String>) {
        let Some(role_name) = self.role_name.clone() else { return };
        let mut new = vec![];
        for a in want {
            let placed = self.placed.iter().any(|i| &i.account == a);
            let done = self.members.get(a).is_some_and(|m| m.deployment_id.is_some()) && placed && self.live(a).await;
            if !done {
                new.push(a.clone());
            } else if let Some(m) = self.members.get_mut(a)
                && m.state != MemberState::Enrolled
            {
                (m.state, m.reason) = (MemberState::Enrolled, None);
            }
        }
        if new.is_empty() {
            return;
        }
        // A StackSet operation takes minutes on AWS: meanwhile the status says who waits on what.
        let step = format!("waiting for garrison's role: StackSet {} instance", self.en.stack_set);
        for a in &new {
            self.member(a, MemberState::Pending, Some(step.clone()));
        }
        let interim = EnrollmentStatus {
            updated: now_ms(),
            message: Some(format!("placing garrison's role in {} account(s)", new.len())),
            members: self.members.values().cloned().collect(),
            ..self.en.status.clone()
        };
        if let Err(err) = self.e.store.set_enrollment_status(&self.en.id, &interim).await {
            tracing::debug!(enrollment = %self.en.id, error = %err, "the interim status is not recorded");
        }
        let region = self.aws.region();
        let units: BTreeSet<String> =
            new.iter().filter_map(|a| self.tree.accounts.get(a)).map(|a| a.parent.clone()).collect();
        let units: Vec<String> = units.into_iter().collect();
        let placed = stacksets::deploy_accounts(
            &self.aws,
            &self.journal,
            &self.en.stack_set,
            &units,
            &new,
            &region,
            STACK_SET_WAIT,
        );
        if let Err(err) = Box::pin(placed).await {
            for a in &new {
                self.member(a, MemberState::Failed, Some(format!("StackSet {}: {err}", self.en.stack_set)));
            }
            self.problems.push(format!("StackSet {} not deployed: {err}", self.en.stack_set));
            return;
        }
        // The instances just made, for `health` and the next pass.
        if let Ok(list) = stacksets::instances(&self.aws, &self.en.stack_set).await {
            self.placed = list;
        }
        let mut tenant = match self.take_tenant().await {
            Ok(t) => t,
            Err(why) => {
                self.problems.push(why);
                return;
            }
        };
        for a in new {
            let arn = format!("arn:aws:iam::{a}:role/{role_name}");
            match self.connect(&mut tenant, &a, &arn).await {
                Ok((cred, dep)) => {
                    let m = self.member(&a, MemberState::Enrolled, None);
                    m.credential_id = Some(cred);
                    m.deployment_id = Some(dep);
                    // `follow` brings a reused deployment to the template (a new one is).
                    m.template_version = None;
                }
                Err(why) => {
                    self.member(&a, MemberState::Failed, Some(why.clone()));
                    self.problems.push(format!("{a}: {why}"));
                }
            }
        }
        self.tenant = Some(tenant);
    }

    /// The tenant's credentials and deployments, read once a pass (`join` keeps them up to
    /// date as it makes more); the caller puts it back.
    async fn take_tenant(&mut self) -> Result<Tenant, String> {
        match self.tenant.take() {
            Some(t) => Ok(t),
            None => Tenant::read(self.e, &self.en.account_id).await,
        }
    }

    /// The account's credential (reused when one names its role) and deployment (reused
    /// when one of this account runs on that credential).
    async fn connect(&self, tenant: &mut Tenant, account: &str, role_arn: &str) -> Result<(String, String), String> {
        let store = &self.e.store;
        let id = &self.en.account_id;
        let cred = match tenant.credentials.iter().find(|(_, arn)| arn == role_arn) {
            Some((c, _)) => c.clone(),
            None => {
                let name = format!("{} {account}", self.en.name);
                let c = NewCredential { name, secret: RoleSecret { arn: role_arn.into() } };
                let made = store.create_credential(id, &c, &self.by()).await.map_err(|e| e.to_string())?.id;
                tenant.credentials.push((made.clone(), role_arn.to_string()));
                tenant.accounts.insert(made.clone(), account.to_string());
                made
            }
        };
        if let Some(d) = tenant.deployments.iter().find(|(acct, c, _)| acct == account && *c == cred) {
            return Ok((cred, d.2.clone()));
        }
        let body = self.en.deployment_body(account, &cred);
        let mut req = parse_request(&body, None, &Refs { policies: &tenant.policies, credentials: &tenant.accounts })
            .map_err(|e| format!("the template does not make a valid deployment: {e}"))?;
        req.spec.is_control_tower |= self.control_tower;
        req.spec.event_feed = self.event_feed();
        let d = store.create_deployment(id, req.spec, &self.by()).await.map_err(|e| e.to_string())?;
        tracing::info!(enrollment = %self.en.id, aws_account = account, deployment = %d.id, "account enrolled");
        tenant.deployments.push((account.to_string(), cred.clone(), d.id.clone()));
        self.e.wake.notify_one();
        Ok((cred, d.id))
    }

    /// What each member's deployment's event feed should be: the organization's bus, or its
    /// own (None); with the organization's bus not made yet, as it is (None: unchanged).
    fn event_feed(&self) -> Option<EventFeed> {
        match &self.feed {
            Some(Some(bus)) => Some(EventFeed { bus_arn: bus.clone(), organization_id: self.en.id.clone() }),
            _ => None,
        }
    }

    /// Members' deployments follow the enrollment: its template once more each time the
    /// enrollment changed (its version moved on since the member's deployment was last
    /// brought to it; hand edits in between stay until then), its feed choice always.
    async fn follow(&mut self) {
        let feed_known = !matches!(self.feed, Some(None));
        let want_feed = self.event_feed();
        let version = self.en.version;
        let members: Vec<Member> = self
            .members
            .values()
            .filter(|m| m.deployment_id.is_some() && m.state != MemberState::Leaving)
            .cloned()
            .collect();
        let mut tenant: Option<Tenant> = None;
        for m in members {
            let id = m.deployment_id.clone().unwrap_or_default();
            let Ok(Some(d)) = self.e.store.get_deployment(&self.en.account_id, &id).await else { continue };
            let mut spec = d.spec();
            let stale = m.template_version != Some(version);
            if stale {
                if tenant.is_none() {
                    match self.take_tenant().await {
                        Ok(t) => tenant = Some(t),
                        Err(why) => {
                            self.problems.push(why);
                            return;
                        }
                    }
                }
                let t = tenant.as_ref().expect("read above");
                let cred = m.credential_id.clone().unwrap_or_default();
                let body = self.en.deployment_body(&m.aws_account, &cred);
                let refs = Refs { policies: &t.policies, credentials: &t.accounts };
                match parse_request(&body, Some(&d), &refs) {
                    Ok(req) => {
                        spec = req.spec;
                        spec.is_control_tower |= self.control_tower;
                    }
                    Err(err) => {
                        self.problems
                            .push(format!("{}: the template does not fit its deployment: {err}", m.aws_account));
                        continue;
                    }
                }
            }
            // Only what this enrollment set, or nothing: another's choice is not ours to undo.
            let ours = d.event_feed.as_ref().is_none_or(|f| f.organization_id == self.en.id);
            if feed_known && ours {
                spec.event_feed = want_feed.clone();
            }
            if spec != d.spec() {
                match self.e.store.update_deployment(&self.en.account_id, &id, d.version, spec, &self.by()).await {
                    Ok(_) => self.e.wake.notify_one(),
                    Err(err) => {
                        self.problems.push(format!("deployment {id}: not brought to the enrollment: {err}"));
                        continue;
                    }
                }
            }
            if stale && let Some(x) = self.members.get_mut(&m.aws_account) {
                x.template_version = Some(version);
            }
        }
        self.tenant = tenant;
    }

    /// Accounts that left: their deployment is removed first (the worker uninstalls with
    /// the role still in place), then the stack instance, then the record.
    async fn leave(&mut self, want: &BTreeSet<String>) {
        let gone: Vec<String> = self.members.keys().filter(|a| !want.contains(*a)).cloned().collect();
        let removals: BTreeSet<String> = match self.e.store.removals().await {
            Ok(r) => r.into_iter().map(|d| d.id).collect(),
            Err(err) => {
                self.problems.push(format!("cannot read removals: {err}"));
                return;
            }
        };
        for a in gone {
            let m = self.members[&a].clone();
            let tenant = self.en.account_id.clone();
            if let Some(id) = &m.deployment_id
                && self.live(&a).await
            {
                match self.e.store.request_removal(&tenant, id, &self.by()).await {
                    Ok(_) => {
                        self.e.wake.notify_one();
                        self.member(&a, MemberState::Leaving, Some("its deployment is being removed".into()));
                    }
                    Err(err) => {
                        self.member(&a, MemberState::Failed, Some(format!("removing its deployment: {err}")));
                    }
                }
                continue;
            }
            if m.deployment_id.as_ref().is_some_and(|id| removals.contains(id)) {
                self.member(&a, MemberState::Leaving, Some("its deployment is being removed".into()));
                continue;
            }
            // Deployment gone: the role goes (its instance was placed through the unit the
            // account was in then), and the credential made for it.
            let through = self.placed.iter().find(|i| i.account == a).and_then(|i| i.unit.clone());
            let unit = through
                .or_else(|| self.tree.accounts.get(&a).map(|x| x.parent.clone()))
                .unwrap_or_else(|| self.tree.root.clone());
            let region = self.aws.region();
            let removed = stacksets::remove_accounts(
                &self.aws,
                &self.journal,
                &self.en.stack_set,
                std::slice::from_ref(&unit),
                std::slice::from_ref(&a),
                &region,
                STACK_SET_WAIT,
            )
            .await;
            match removed {
                Ok(()) => {
                    if let Some(c) = &m.credential_id
                        && let Err(err) = self.e.store.delete_credential(&tenant, c).await
                    {
                        tracing::warn!(credential = %c, error = %err, "cannot delete the left account's credential");
                    }
                    tracing::info!(enrollment = %self.en.id, aws_account = %a, "account left");
                    self.members.remove(&a);
                }
                Err(err) => {
                    self.member(&a, MemberState::Failed, Some(format!("removing its stack instance: {err}")));
                    self.problems.push(format!("{a}: stack instance not removed: {err}"));
                }
            }
        }
    }
}
