//! Crash safety: `garrison worker` is SIGKILLed at 20 different points of its first apply
//! (a fresh account each time, estate S), a new worker is started on the same store, and
//! the account must converge with no duplicate and no orphaned resource. Client tokens,
//! intents recorded before each create and the `garrison-key` tag let the second worker
//! recognise what the first had made, or had asked AWS to make, before it died; the audit
//! log, written ahead of each call, has the entry of every resource's create.

mod common;

use std::process::Child;
use std::time::{Duration, Instant};

use garrison_cloud::Aws;
use garrison_cloud::emulator::Moto;
use garrison_cloud::estate::{self, EstateSpec};
use garrison_store::SealKey;
use garrison_testkit::tenants::{leftovers, tenant_with};

const TRIALS: u64 = 20;

fn worker(db: &str, key: &SealKey, dir: &std::path::Path, moto_url: &str) -> Child {
    common::worker("crash", dir, db, &key.to_hex(), moto_url, &["--resync-interval", "1"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_anywhere_in_an_apply_leaves_no_duplicate() {
    let moto = Moto::start().expect("the AWS emulator is required for this test");
    let direct = Aws::from_config(moto.sdk_config("us-east-1").await);
    let spec = EstateSpec::s_bare();
    // (journaled writes when killed, writes once converged) per trial.
    let mut points: Vec<(usize, usize)> = vec![];
    for trial in 0..TRIALS {
        moto.reset().unwrap();
        estate::build(&garrison_cloud::Sessions::new(direct.clone()), &spec).await.unwrap();
        let key = SealKey::generate();
        let t = tenant_with(&direct, "crash", &key).await.unwrap();
        let d = t.automatic("crash", &spec.regions, |_| garrison_catalog::policies::PROFESSIONAL).await.unwrap();
        // With traffic mirroring: a kill can land between a filter and its rules too.
        let span = garrison_model::otis::parse(
            &serde_json::json!({"name": "span_port_enabled", "scope": {"deployment_id": d.id}, "value": true}),
        )
        .unwrap();
        assert!(t.store.create_option(&t.account, &span).await.unwrap());
        let db = format!("sqlite://{}?mode=rwc", t.dir.join("g.db").display());

        // Killed once its journal holds a number of writes that moves through the apply
        // from trial to trial (a clean apply makes ~110; each write is journaled before it
        // is made, so the kill can land during the call itself).
        let target = 1 + (trial as usize) * 110 / TRIALS as usize;
        let mut first = worker(&db, &key, &t.dir, &moto.url);
        let started = Instant::now();
        while t.store.audit_log(&t.account, &d.id, 100_000).await.unwrap().len() < target
            && started.elapsed() < Duration::from_secs(30)
        {
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        first.kill().unwrap();
        first.wait().unwrap();
        let writes = t.store.audit_log(&t.account, &d.id, 100_000).await.unwrap().len();

        let mut second = worker(&db, &key, &t.dir, &moto.url);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let r = t.store.get_report(&t.account, &d.id).await.unwrap();
            if r.as_ref().is_some_and(garrison_model::report::Report::settled) {
                break;
            }
            assert!(Instant::now() < deadline, "trial {trial}: not converged; last report: {r:?}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        second.kill().unwrap();
        second.wait().unwrap();

        points.push((writes, t.store.audit_log(&t.account, &d.id, 100_000).await.unwrap().len()));
        let got = leftovers(&direct, &spec.regions, &d.id).await;
        let owned = t.store.owned(&d.id).await.unwrap();
        for kind in [garrison_model::protection::ResKind::Appliance, garrison_model::protection::ResKind::MirrorSession]
        {
            assert!(got.by_key.keys().any(|(k, _)| *k == kind), "trial {trial}: {kind:?} built");
        }
        assert_eq!(got.duplicates(), Vec::<String>::new(), "trial {trial} (killed after {writes} writes): duplicates");
        let (orphans, missing) = got.orphans_and_missing(&owned);
        assert_eq!(orphans, Vec::<String>::new(), "trial {trial} (killed after {writes} writes): orphans");
        assert_eq!(missing, Vec::<String>::new(), "trial {trial}: recorded but not in AWS");
        // Write-ahead audit: whatever the moment of the kill, every resource in AWS has the
        // entry of the call that made it (pending when the worker died during the call).
        let log = t.store.audit_log(&t.account, &d.id, 100_000).await.unwrap();
        assert_eq!(
            got.unaudited(&log),
            Vec::<String>::new(),
            "trial {trial} (killed after {writes} writes): unaudited"
        );
        let _ = std::fs::remove_dir_all(&t.dir);
    }
    println!(
        "crash: {TRIALS} workers SIGKILLed after (journaled writes, of the converged total) {points:?}; every account converged, 0 duplicates, 0 orphans"
    );
    let inside = points.iter().filter(|(at, all)| *at > 0 && at < all).count();
    assert!(inside >= TRIALS as usize / 4, "the kills fell inside the apply: {points:?}");
}
