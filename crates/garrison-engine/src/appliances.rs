//! Appliances that report in: the first-boot script that installs and starts the agent
//! with its one-time token, and the health watch — each running appliance judged from its
//! registration and heartbeats (`garrison_model::health::judge`), each deployment's health
//! items brought to the causes seen now (the appliances' and its last run's), credentials of
//! appliances no longer there revoked.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use garrison_model::deployment::Deployment;
use garrison_model::health::{self, ApplianceHealth, Cause, Change, Item, State, Timing};
use garrison_model::report::Report;
use garrison_store::StoreError;

use crate::Engine;

/// How appliances reach garrison, and how soon they must.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    /// The URL appliances register and send heartbeats to.
    pub endpoint: String,
    /// Where first boot downloads the garrison binary from; None: the image holds it.
    pub agent_url: Option<String>,
    pub timing: Timing,
}

impl Channel {
    /// A bootstrap token lives twice the time an appliance has to register: long enough
    /// for a slow first boot, short enough that a leaked user data is soon worthless.
    pub fn token_ttl_ms(&self) -> i64 {
        self.timing.register_within_ms * 2
    }

    /// The appliance's first boot (cloud-init): the token and endpoint in a root-only file,
    /// the agent as a service that restarts, the binary fetched when the image lacks it.
    pub fn user_data(&self, token: &str, role: &str) -> String {
        let fetch = match &self.agent_url {
            Some(u) => format!(
                "  - [sh, -c, \"curl -fsSL --retry 10 '{u}' -o /usr/local/bin/garrison.new && chmod 0755 /usr/local/bin/garrison.new && mv /usr/local/bin/garrison.new /usr/local/bin/garrison\"]\n"
            ),
            None => String::new(),
        };
        format!(
            "#cloud-config\n\
write_files:\n\
  - path: /etc/garrison/appliance.env\n\
    permissions: '0600'\n\
    content: |\n\
      GARRISON_ENDPOINT={endpoint}\n\
      GARRISON_BOOTSTRAP_TOKEN={token}\n\
      GARRISON_APPLIANCE_ROLE={role}\n\
  - path: /etc/systemd/system/garrison-appliance.service\n\
    content: |\n\
      [Unit]\n\
      Description=garrison appliance agent\n\
      After=network-online.target\n\
      Wants=network-online.target\n\
      [Service]\n\
      EnvironmentFile=/etc/garrison/appliance.env\n\
      ExecStart=/usr/local/bin/garrison appliance run --state-dir /var/lib/garrison-appliance\n\
      StateDirectory=garrison-appliance\n\
      Restart=always\n\
      RestartSec=5\n\
      NoNewPrivileges=yes\n\
      ProtectSystem=strict\n\
      [Install]\n\
      WantedBy=multi-user.target\n\
runcmd:\n\
{fetch}  - [systemctl, daemon-reload]\n\
  - [systemctl, enable, --now, garrison-appliance.service]\n",
            endpoint = self.endpoint,
        )
    }
}

/// What the watch found for one deployment.
#[derive(Debug, Clone, Default)]
pub struct Health {
    pub appliances: Vec<ApplianceHealth>,
    pub items: BTreeMap<String, Item>,
    pub changes: Vec<Change>,
}

/// The deployment's running appliances judged at `now` from what they reported, with the
/// causes the silent and degraded ones open. Appliances launched without the agent (no
/// channel then, or before it existed) are not judged: nothing would ever hear from them.
pub async fn judge(
    store: &garrison_store::Store,
    ch: &Channel,
    d: &Deployment,
    report: &Report,
    now: i64,
) -> Result<(Vec<ApplianceHealth>, Vec<Cause>), StoreError> {
    let launches = store.launches(&d.id).await?;
    let registered = store.appliances(&d.id).await?;
    let (mut views, mut causes) = (vec![], vec![]);
    // A retired appliance is kept running only until its replacement registers: the
    // replacement is the one judged.
    for a in report.vpcs.iter().flat_map(|v| &v.appliances).filter(|a| a.running() && !a.key.starts_with("retired/")) {
        let Some(launch) = launches.iter().find(|l| l.instance_id.as_deref() == Some(a.instance_id.as_str())) else {
            continue;
        };
        let reg = registered.iter().find(|r| r.instance_id == a.instance_id);
        let seen = health::Seen {
            launched_ms: launch.minted_ms,
            registered_ms: reg.map(|r| r.registered_ms),
            last_heartbeat_ms: reg.and_then(|r| r.last_heartbeat_ms),
            previous_work: reg.and_then(|r| r.previous_work.clone()),
            work: reg.and_then(|r| r.work.clone()),
        };
        let state = health::judge(&seen, &ch.timing, now);
        match state {
            State::Silent => causes.push(Cause::ApplianceSilent { appliance: a.key.clone() }),
            State::Degraded => causes.push(Cause::ApplianceDegraded { appliance: a.key.clone() }),
            _ => {}
        }
        views.push(ApplianceHealth {
            key: a.key.clone(),
            instance_id: a.instance_id.clone(),
            role: a.role.as_str().into(),
            state,
            launched_ms: launch.minted_ms,
            registered_ms: seen.registered_ms,
            last_heartbeat_ms: seen.last_heartbeat_ms,
            version: reg.map(|r| r.version.clone()),
            work: seen.work,
        });
    }
    Ok((views, causes))
}

/// The replacement of silent appliances, launch-first: a silent appliance gets a
/// replacement (the plan launches it and keeps the silent one running under `retired/`);
/// once the replacement registers, the old one goes. A replacement that never registers is
/// replaced in turn, twice at most (`health::decide`), then garrison gives up: what runs is
/// kept and the cause reported. Returns the causes to report and whether to plan again.
async fn replace(
    e: &Engine,
    d: &Deployment,
    views: &[ApplianceHealth],
    now: i64,
) -> Result<(Vec<Cause>, bool), StoreError> {
    let rows = e.store.replacements(&d.id).await?;
    let (mut causes, mut replan) = (vec![], false);
    for v in views {
        let row = rows.get(&v.key);
        let request = |old: &str, tries: i64, given_up: bool| garrison_store::Replacement {
            key: v.key.clone(),
            old_instance_id: old.to_string(),
            tries,
            given_up,
            updated_ms: now,
        };
        match row {
            // The replacement registered: the one it replaces can go.
            Some(r) if r.old_instance_id != v.instance_id && v.registered_ms.is_some() => {
                e.store.drop_replacement(&d.id, &v.key).await?;
                tracing::info!(deployment = %d.id, key = %v.key, instance = %v.instance_id, "replacement registered");
                metrics::counter!("garrison_appliance_replacements_total", "outcome" => "registered").increment(1);
                replan = true;
            }
            // A replacement on its way: protection stays weakened until it registers, so the
            // silent item stays open (concluding it at launch would tell the team all is well
            // while no IDS watches the zone).
            Some(r) if r.old_instance_id != v.instance_id && v.state != State::Silent => {
                causes.push(Cause::ApplianceSilent { appliance: v.key.clone() });
            }
            _ if v.state != State::Silent => {}
            None => {
                e.store.put_replacement(&d.account_id, &d.id, &request(&v.instance_id, 1, false)).await?;
                tracing::warn!(deployment = %d.id, key = %v.key, instance = %v.instance_id, "appliance silent: replacing it");
                metrics::counter!("garrison_appliance_replacements_total", "outcome" => "launched").increment(1);
                replan = true;
            }
            Some(r) if r.given_up || r.old_instance_id == v.instance_id => {
                if r.given_up {
                    let attempts = vec![health::Attempt { at_ms: r.updated_ms, registered: false }; r.tries as usize];
                    if let health::Decision::GiveUp(why) = health::decide(State::Silent, &attempts, false) {
                        causes.push(Cause::ReplacementGivenUp { appliance: v.key.clone(), why });
                    }
                }
            }
            // The replacement itself never registered.
            Some(r) => {
                let attempts = vec![health::Attempt { at_ms: r.updated_ms, registered: false }; r.tries as usize];
                match health::decide(State::Silent, &attempts, false) {
                    health::Decision::GiveUp(why) => {
                        e.store
                            .put_replacement(&d.account_id, &d.id, &request(&r.old_instance_id, r.tries, true))
                            .await?;
                        tracing::warn!(deployment = %d.id, key = %v.key, tries = r.tries, "replacements never registered: given up");
                        metrics::counter!("garrison_appliance_replacements_total", "outcome" => "given_up")
                            .increment(1);
                        causes.push(Cause::ReplacementGivenUp { appliance: v.key.clone(), why });
                    }
                    _ => {
                        e.store
                            .put_replacement(&d.account_id, &d.id, &request(&v.instance_id, r.tries + 1, false))
                            .await?;
                        tracing::warn!(deployment = %d.id, key = %v.key, tries = r.tries + 1, "replacement silent: trying again");
                        metrics::counter!("garrison_appliance_replacements_total", "outcome" => "launched")
                            .increment(1);
                        replan = true;
                    }
                }
            }
        }
    }
    Ok((causes, replan))
}

/// The causes the deployment's last run shows: as the run noted them (`protect::apply`), or
/// read from the store when another worker ran it or the run stopped before its report (the
/// status's reason changed). The watch comes often, runs seldom, and the discovery snapshot
/// is the largest thing garrison stores.
async fn run_causes(e: &Engine, d: &Deployment, report: &Report) -> Result<Vec<Cause>, StoreError> {
    let reason = e.store.get_deployment(&d.account_id, &d.id).await?.and_then(|d| d.status.reason);
    let seen = (report.generation, reason);
    if let Some((at, causes)) = e.run_causes.lock().expect("run causes").get(&d.id)
        && *at == seen
    {
        return Ok(causes.clone());
    }
    let gaps = e.store.get_snapshot(&d.account_id, &d.id).await?.map(|s| s.gaps()).unwrap_or_default();
    let causes = health::run_causes(report, reason, &gaps);
    e.run_causes.lock().expect("run causes").insert(d.id.clone(), (seen, causes.clone()));
    Ok(causes)
}

/// Judges the deployment's appliances and its last run at `now`, stores the health items
/// that changed, and revokes the credentials of appliances that are no longer garrison's.
pub async fn evaluate(e: &Engine, d: &Deployment, now: i64) -> Result<Health, StoreError> {
    let _turn = e.health_turn.lock().await;
    let report = e.store.get_report(&d.account_id, &d.id).await?;
    let mut causes: Vec<Cause> = vec![];
    let mut appliances = vec![];
    if let Some(report) = &report {
        if let Some(ch) = &e.appliances {
            (appliances, causes) = judge(&e.store, ch, d, report, now).await?;
            let (more, replan) = replace(e, d, &appliances, now).await?;
            causes.extend(more);
            if replan {
                e.store.make_due(std::slice::from_ref(&d.id)).await?;
                e.wake.notify_one();
            }
        }
        // A credential lives as long as its instance is garrison's (a stopped scanner
        // keeps its own): a terminated or replaced appliance's is revoked.
        let kept: Vec<String> = report.vpcs.iter().flat_map(|v| &v.appliances).map(|a| a.instance_id.clone()).collect();
        let revoked = e.store.revoke_appliances(&d.id, &kept, now).await?;
        if revoked > 0 {
            tracing::info!(deployment = %d.id, revoked, "appliance credentials revoked");
        }
        causes.extend(run_causes(e, d, report).await?);
    }
    let mut items = e.store.health_items(&d.id).await?;
    let changes = health::reconcile(&mut items, &causes, now);
    if !changes.is_empty() {
        let changed: Vec<(&Item, &Change)> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Opened(k) | Change::Updated(k) | Change::Concluded(k) => Some((items.get(k)?, c)),
            })
            .collect();
        e.store.put_health_items(&d.account_id, &d.id, &changed).await?;
        for c in &changes {
            let (what, key) = match c {
                Change::Opened(k) => ("opened", k),
                Change::Updated(k) => ("updated", k),
                Change::Concluded(k) => ("concluded", k),
            };
            let cause = key.split('/').next().unwrap_or("").to_string();
            metrics::counter!("garrison_health_items_total", "change" => what, "cause" => cause).increment(1);
            tracing::info!(deployment = %d.id, item = %key, change = what, "health item");
        }
    }
    Ok(Health { appliances, items, changes })
}

/// The lease that makes one worker of a fleet the health watcher.
pub const WATCH_LEASE: &str = "health:watch";

/// With a channel, every deployment judged once per heartbeat interval (appliances fall
/// silent between runs); with a shared store one worker watches at a time. Without one there
/// is nothing to watch between runs: each run is followed by its evaluation (`worker::run_one`).
pub async fn watch(engine: Arc<Engine>) {
    let Some(every) = engine.appliances.as_ref().map(|c| c.timing.heartbeat_ms.clamp(500, 60_000)) else {
        return std::future::pending().await;
    };
    let every = Duration::from_millis(every as u64);
    let shared = engine.store.backend() == garrison_store::Backend::Postgres;
    loop {
        let mine = !shared
            || matches!(
                engine
                    .store
                    .claim_lease(WATCH_LEASE, &engine.worker_id, crate::now_ms(), (every * 3).as_millis() as i64)
                    .await,
                Ok(Some(_))
            );
        if mine {
            match engine.store.all_deployments().await {
                Ok(list) => {
                    let mut gauges: BTreeMap<&'static str, f64> = BTreeMap::new();
                    let mut open = 0usize;
                    for d in &list {
                        match evaluate(&engine, d, crate::now_ms()).await {
                            Ok(h) => {
                                for a in &h.appliances {
                                    *gauges.entry(state_name(a.state)).or_default() += 1.0;
                                }
                                open += h.items.values().filter(|i| i.status == health::ItemStatus::Unhealthy).count();
                            }
                            Err(err) => tracing::warn!(deployment = %d.id, error = %err, "health watch failed"),
                        }
                    }
                    for s in [State::Launching, State::Registered, State::Healthy, State::Degraded, State::Silent] {
                        let n = gauges.get(state_name(s)).copied().unwrap_or(0.0);
                        metrics::gauge!("garrison_appliances", "state" => state_name(s)).set(n);
                    }
                    metrics::gauge!("garrison_health_items_open").set(open as f64);
                }
                Err(err) => tracing::warn!(error = %err, "health watch cannot list deployments"),
            }
        }
        tokio::time::sleep(every).await;
    }
}

pub fn state_name(s: State) -> &'static str {
    match s {
        State::Launching => "launching",
        State::Registered => "registered",
        State::Healthy => "healthy",
        State::Degraded => "degraded",
        State::Silent => "silent",
    }
}
