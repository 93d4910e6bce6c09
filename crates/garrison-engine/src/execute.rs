//! The executor: applies a plan in dependency order, independent actions concurrently.
//! Before each action it checks that its generation is still the deployment's current one
//! (a newer executor or a removal fences it off); before a create it records the intent
//! with the idempotency token, after it the outcome; every AWS call it makes is in the
//! audit log before it is made (`StoreJournal`) and completed with its outcome after. Throttling and transient conflicts are retried, other errors are final for
//! this run and reported.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use garrison_cloud::writes::{self, AuditSink, BoxFuture, Created, Ctx, Journal};
use garrison_cloud::{Aws, CloudError};
use garrison_model::protection::{
    Action, Op, Owned, OwnedItem, ResKind, Spec, TAG_DEPLOYMENT, TAG_KEY, TAG_OWNER, TAG_TENANT,
};
use garrison_model::report::{ActionOutcome, ActionResult};
use garrison_store::{AuditEntry, Store};
use tokio::sync::Mutex;

/// The audit log as a write-ahead journal for the writes of `id` (a deployment, or an
/// organization enrollment's own).
pub(crate) fn store_journal(store: &Store, account_id: &str, id: &str, generation: i64) -> writes::Journal {
    writes::Journal::new(std::sync::Arc::new(StoreJournal {
        store: store.clone(),
        account_id: account_id.into(),
        deployment_id: id.into(),
        generation,
    }))
}

/// The audit log as a write-ahead journal: an intent is committed before its call is made.
struct StoreJournal {
    store: Store,
    account_id: String,
    deployment_id: String,
    generation: i64,
}

impl AuditSink for StoreJournal {
    fn intent(&self, e: writes::Entry) -> BoxFuture<'_, Result<String, String>> {
        let entry = AuditEntry {
            at_ms: e.at_ms,
            deployment_id: self.deployment_id.clone(),
            generation: self.generation,
            region: e.region,
            call: e.call,
            resource: e.resource,
            key: e.key,
            outcome: e.outcome,
            message: e.message,
        };
        Box::pin(async move { self.store.audit_intent(&self.account_id, &entry).await.map_err(|e| e.to_string()) })
    }

    fn outcome(&self, id: String, outcome: String, message: Option<String>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // The call was made: a failure here leaves the entry `pending`, which still says so.
            if let Err(err) = self.store.audit_outcome(&self.account_id, &id, &outcome, message.as_deref()).await {
                tracing::error!(deployment = %self.deployment_id, error = %err, "cannot complete an audit entry");
            }
        })
    }
}

/// Ids (and ARNs) by key, for resolving references, and the records as they change.
struct State {
    resolved: BTreeMap<String, Created>,
    owned: Owned,
}

pub struct Executor {
    pub store: Store,
    pub aws: Aws,
    /// The tenant (garrison account) and deployment the resources belong to.
    pub account_id: String,
    pub deployment_id: String,
    pub generation: i64,
    /// At most this many actions at once.
    pub parallel: usize,
    /// First pause before a retry (doubling up to 16×).
    pub retry_pause: Duration,
    /// Appliances get a one-time bootstrap token in their user data when set.
    pub appliances: Option<crate::appliances::Channel>,
}

/// Codes AWS gives while a dependency is still going away (an instance terminating, a
/// gateway detaching): worth another try shortly.
const SETTLING: &[&str] =
    &["DependencyViolation", "InvalidGroup.InUse", "IncorrectState", "InvalidInstanceID.NotFound"];

/// A ClientToken: the deployment, the key and the generation that first meant to create it.
fn token(deployment: &str, key: &str, generation: i64) -> String {
    let h = crate::fnv1a(deployment.bytes().chain(key.bytes()));
    format!("garrison-{h:016x}-{generation}")
}

impl Executor {
    /// Garrison's own tags, then the operator's (`extra`) where they do not name one of
    /// garrison's keys.
    fn tags(
        &self,
        key: &str,
        spec: Option<&Spec>,
        kind: ResKind,
        extra: &BTreeMap<String, String>,
    ) -> Vec<(String, String)> {
        let mut t: Vec<(String, String)> = vec![
            (TAG_OWNER.0.into(), TAG_OWNER.1.into()),
            (TAG_TENANT.into(), self.account_id.clone()),
            (TAG_DEPLOYMENT.into(), self.deployment_id.clone()),
            ("Name".into(), kind.name_tag(spec).into()),
            (TAG_KEY.into(), key.into()),
        ];
        for (k, v) in extra {
            if !t.iter().any(|(own, _)| own == k) {
                t.push((k.clone(), v.clone()));
            }
        }
        t
    }

    async fn current(&self) -> bool {
        self.store.generation(&self.deployment_id).await.map(|g| g == self.generation).unwrap_or(false)
    }

    /// The audit journal of this deployment's writes: each recorded in the store before
    /// it is made.
    fn journal(&self) -> Journal {
        Journal::new(Arc::new(StoreJournal {
            store: self.store.clone(),
            account_id: self.account_id.clone(),
            deployment_id: self.deployment_id.clone(),
            generation: self.generation,
        }))
    }

    /// Applies `actions`; `owned` is updated as records change.
    pub async fn run(&self, actions: &[Action], owned: &mut Owned) -> Vec<ActionOutcome> {
        let resolved: BTreeMap<String, Created> = owned
            .items
            .values()
            .filter(|o| !o.id.is_empty())
            .map(|o| (o.key.clone(), Created { id: o.id.clone(), arn: o.arn.clone() }))
            .collect();
        let state = Arc::new(Mutex::new(State { resolved, owned: owned.clone() }));
        let mut outcomes: BTreeMap<String, ActionOutcome> = BTreeMap::new();
        let mut done: BTreeSet<String> = BTreeSet::new();
        let keys: BTreeSet<&str> = actions.iter().map(|a| a.key.as_str()).collect();
        // Each action starts as soon as what it comes after is done (not when the whole
        // wave it was ready with is: a wave paced by one API's budget would hold back every
        // action of the next, e.g. the launches behind the network ACLs' entries), at most
        // `parallel` at once; a slow action holds one slot.
        let mut started: BTreeSet<&str> = BTreeSet::new();
        let mut running = futures_util::stream::FuturesUnordered::new();
        loop {
            // Skipping one action can block another: look again until nothing changes.
            let mut changed = true;
            while changed {
                changed = false;
                for a in actions {
                    if outcomes.contains_key(&a.key) || started.contains(a.key.as_str()) {
                        continue;
                    }
                    let blocked =
                        a.after.iter().find(|k| outcomes.get(*k).is_some_and(|o| o.result != ActionResult::Done));
                    if let Some(k) = blocked {
                        outcomes.insert(
                            a.key.clone(),
                            ActionOutcome {
                                key: a.key.clone(),
                                op: a.op.verb().into(),
                                result: ActionResult::Skipped,
                                error: Some(format!("{k} did not complete")),
                            },
                        );
                        changed = true;
                        continue;
                    }
                    if running.len() < self.parallel.max(1)
                        && a.after.iter().all(|k| done.contains(k) || !keys.contains(k.as_str()))
                    {
                        started.insert(a.key.as_str());
                        running.push(self.apply(a, state.clone()));
                    }
                }
            }
            let Some(o) = running.next().await else { break };
            if o.result == ActionResult::Done {
                done.insert(o.key.clone());
            }
            outcomes.insert(o.key.clone(), o);
        }
        *owned = state.lock().await.owned.clone();
        actions.iter().filter_map(|a| outcomes.remove(&a.key)).collect()
    }

    async fn apply(&self, a: &Action, state: Arc<Mutex<State>>) -> ActionOutcome {
        let outcome = |result: ActionResult, error: Option<String>| ActionOutcome {
            key: a.key.clone(),
            op: a.op.verb().into(),
            result,
            error,
        };
        if !self.current().await {
            return outcome(ActionResult::Fenced, Some("a newer run or a removal took over this deployment".into()));
        }
        tracing::debug!(deployment = %self.deployment_id, key = %a.key, op = a.op.verb(), "action starting");
        let journal = self.journal();
        let mut attempt = 0u32;
        let r = loop {
            let r = self.try_apply(a, &journal, &state).await;
            match &r {
                Err(e) if (e.is_retryable() || SETTLING.contains(&e.code.as_str())) && attempt < 6 => {
                    attempt += 1;
                    tracing::debug!(deployment = %self.deployment_id, key = %a.key, code = %e.code, attempt, "retrying");
                    tokio::time::sleep(self.retry_pause * 2u32.pow(attempt.min(5) - 1)).await;
                }
                _ => break r,
            }
        };
        tracing::debug!(deployment = %self.deployment_id, key = %a.key, op = a.op.verb(), ok = r.is_ok(), "action finished");
        match r {
            Ok(()) => outcome(ActionResult::Done, None),
            Err(e) => {
                tracing::warn!(deployment = %self.deployment_id, key = %a.key, error = %e, "action failed");
                outcome(ActionResult::Failed, Some(e.to_string()))
            }
        }
    }

    /// An appliance's first-boot script with a token minted for this launch (each try
    /// mints its own; a retried RunInstances returns the first try's instance, and
    /// `bind_bootstrap` binds every token of the launch to it). None for anything else.
    async fn bootstrap(&self, a: &Action, spec: &Spec, launch_token: &str) -> Result<Option<String>, CloudError> {
        let (Some(ch), Spec::Appliance { role, .. }) = (&self.appliances, spec) else { return Ok(None) };
        let role = role.as_str();
        let token = self
            .store
            .mint_bootstrap(
                &garrison_store::NewLaunch {
                    account_id: &self.account_id,
                    deployment_id: &self.deployment_id,
                    key: &a.key,
                    role,
                    launch_token,
                },
                crate::now_ms(),
                ch.token_ttl_ms(),
            )
            .await
            .map_err(|e| CloudError::terminal("garrison", "Record", "StoreError", &e.to_string()))?;
        Ok(Some(ch.user_data(&token, role)))
    }

    async fn record(&self, state: &Mutex<State>, item: OwnedItem) -> Result<(), CloudError> {
        self.store
            .put_owned(&self.account_id, &self.deployment_id, &item)
            .await
            .map_err(|e| CloudError::terminal("garrison", "Record", "StoreError", &e.to_string()))?;
        let mut s = state.lock().await;
        if !item.id.is_empty() {
            s.resolved.insert(item.key.clone(), Created { id: item.id.clone(), arn: item.arn.clone() });
        }
        s.owned.items.insert(item.key.clone(), item);
        Ok(())
    }

    async fn forget(&self, state: &Mutex<State>, key: &str) -> Result<(), CloudError> {
        self.store
            .remove_owned(&self.deployment_id, key)
            .await
            .map_err(|e| CloudError::terminal("garrison", "Record", "StoreError", &e.to_string()))?;
        let mut s = state.lock().await;
        s.resolved.remove(key);
        s.owned.items.remove(key);
        Ok(())
    }

    async fn try_apply(&self, a: &Action, journal: &Journal, state: &Mutex<State>) -> Result<(), CloudError> {
        let aws = self.aws.in_region(&a.region);
        let (resolved, prior) = {
            let s = state.lock().await;
            (s.resolved.clone(), s.owned.items.get(&a.key).cloned())
        };
        let (spec, extra) = match &a.op {
            Op::Create { spec, tags, .. } => (Some(spec), tags.clone()),
            _ => (None, BTreeMap::new()),
        };
        let ctx = Ctx {
            aws,
            region: a.region.clone(),
            account: self.aws.account.clone(),
            tags: self.tags(&a.key, spec.or(prior.as_ref().and_then(|p| p.spec.as_ref())), a.kind, &extra),
            journal,
            key: Some(a.key.clone()),
            resolved: &resolved,
            user_data: None,
        };
        match &a.op {
            Op::Create { spec, running, tags, retire } => {
                // The intent, with the token a retry after a crash will reuse.
                let token = prior
                    .as_ref()
                    .filter(|p| p.id.is_empty())
                    .and_then(|p| p.token.clone())
                    // A replacement's token differs from its predecessor's, whatever the run.
                    .unwrap_or_else(|| {
                        let replaces = prior.as_ref().map_or("", |p| p.id.as_str());
                        token(&self.deployment_id, &format!("{}{replaces}", a.key), self.generation)
                    });
                let mut item = OwnedItem {
                    key: a.key.clone(),
                    region: a.region.clone(),
                    kind: a.kind,
                    id: String::new(),
                    arn: None,
                    adopted: false,
                    spec: Some(spec.clone()),
                    token: Some(token.clone()),
                    tags: tags.clone(),
                };
                // What this create replaces (an appliance or ACL of ours) is recorded under
                // its retired key first, so that it stays garrison's until it is removed —
                // after the replacement, or once a silent appliance's replacement registers.
                if let (Some(key), Some(p)) = (retire, prior.as_ref().filter(|p| !p.adopted && !p.id.is_empty())) {
                    self.record(state, OwnedItem { key: key.clone(), ..p.clone() }).await?;
                }
                self.record(state, item.clone()).await?;
                // A removal may have begun between the first check and the intent.
                if !self.current().await {
                    return Err(CloudError::terminal(
                        "garrison",
                        "Execute",
                        "Fenced",
                        "a removal or newer run took over",
                    ));
                }
                let ctx = Ctx { user_data: self.bootstrap(a, spec, &token).await?, ..ctx };
                let made = Box::pin(writes::create(&ctx, spec, *running, &token)).await?;
                if ctx.user_data.is_some() {
                    self.store
                        .bind_bootstrap(&self.deployment_id, &token, &made.id)
                        .await
                        .map_err(|e| CloudError::terminal("garrison", "Record", "StoreError", &e.to_string()))?;
                }
                item.id = made.id;
                item.arn = made.arn;
                item.token = None;
                self.record(state, item).await
            }
            Op::Adopt { id } => {
                let arn = match &a.op {
                    Op::Adopt { .. } if id.starts_with("arn:") => Some(id.clone()),
                    _ => None,
                };
                self.record(
                    state,
                    OwnedItem {
                        key: a.key.clone(),
                        region: a.region.clone(),
                        kind: a.kind,
                        id: id.clone(),
                        arn,
                        adopted: true,
                        spec: None,
                        token: None,
                        tags: BTreeMap::new(),
                    },
                )
                .await
            }
            Op::Forget { .. } => self.forget(state, &a.key).await,
            Op::Delete { id } => {
                writes::delete(&ctx, a.kind, id).await?;
                // A terminated appliance's credential dies with it, at once.
                if a.kind == ResKind::Appliance {
                    self.store
                        .revoke_instance(&self.deployment_id, id, crate::now_ms())
                        .await
                        .map_err(|e| CloudError::terminal("garrison", "Record", "StoreError", &e.to_string()))?;
                }
                self.forget(state, &a.key).await
            }
            Op::Start { id } => writes::start(&ctx, a.kind, id).await,
            Op::Stop { id } => writes::stop(&ctx, id).await,
            Op::SetRules { id, add_ingress, remove_ingress, add_egress, remove_egress } => {
                writes::set_rules(&ctx, id, (add_ingress, add_egress), (remove_ingress, remove_egress)).await
            }
            Op::Modify { id, spec } => {
                writes::modify(&ctx, id, spec).await?;
                let Some(item) = prior else { return Ok(()) };
                self.record(state, OwnedItem { spec: Some(spec.clone()), ..item }).await
            }
            Op::Tag { id, set, unset } => {
                writes::tag(&ctx, id, set, unset).await?;
                let Some(mut item) = prior else { return Ok(()) };
                item.tags.retain(|k, _| !unset.contains(k));
                item.tags.extend(set.clone());
                self.record(state, item).await
            }
        }
    }
}
