//! Store behaviour that needs a real database: two processes' views of one database
//! (cache coherence), sealing at rest, and a wrong key refused at open.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use garrison_model::credential::{NewCredential, RoleSecret};
use garrison_model::deployment::{Refs, parse_request};
use garrison_store::{SealKey, Store, StoreError};

async fn urls() -> Vec<(String, String)> {
    let dir = std::env::temp_dir().join(format!("garrison-store-{}-{:x}", std::process::id(), rand_u64()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut v = vec![("sqlite".to_string(), format!("sqlite://{}?mode=rwc", dir.join("s.db").display()))];
    match std::env::var("GARRISON_TEST_DATABASE_URL") {
        Ok(admin) => v.push(("postgres".into(), garrison_testkit::postgres::fresh_postgres(&admin).await.unwrap())),
        Err(_) => eprintln!("NOTE: GARRISON_TEST_DATABASE_URL is not set; PostgreSQL variant not run"),
    }
    v
}

fn rand_u64() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

async fn seed(store: &Store) -> (String, String) {
    let root = store.init_root(None, None).await.unwrap().unwrap();
    let cred = store
        .create_credential(
            &root.account_id,
            &NewCredential {
                name: "c".into(),
                secret: RoleSecret { arn: "arn:aws:iam::123412341234:role/secret-role-name".into() },
            },
            "u",
        )
        .await
        .unwrap();
    let policies: HashSet<String> = ["D12D5E67-166C-474F-87AA-6F86FC9FB9BC".to_string()].into();
    let creds: HashMap<String, String> = [(cred.id.clone(), "123412341234".to_string())].into();
    let body = serde_json::json!({"name": "d", "platform": {"type": "aws", "id": "123412341234"}, "mode": "readonly",
        "credentials": [{"id": cred.id, "purpose": "discover"}], "scope": {"include": [{"type": "region", "key": "/aws/us-east-1"}]}});
    let spec = parse_request(&body, None, &Refs { policies: &policies, credentials: &creds }).unwrap().spec;
    let d = store.create_deployment(&root.account_id, spec, "u").await.unwrap();
    (root.account_id, d.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_one_process_is_seen_by_another() {
    for (name, url) in urls().await {
        let key = SealKey::generate();
        let a = Store::open(&url, &key).await.unwrap();
        let b = Store::open(&url, &key).await.unwrap();
        let (acct, id) = seed(&a).await;
        // b caches version 1.
        assert_eq!(b.get_deployment(&acct, &id).await.unwrap().unwrap().version, 1);
        let mut d = a.get_deployment(&acct, &id).await.unwrap().unwrap();
        d.name = "renamed".into();
        a.update_deployment(&acct, &id, 1, d.spec(), "u").await.unwrap();
        // a reads its own write at once; b within the poll interval.
        assert_eq!(a.get_deployment(&acct, &id).await.unwrap().unwrap().name, "renamed");
        let t = Instant::now();
        loop {
            if b.get_deployment(&acct, &id).await.unwrap().unwrap().name == "renamed" {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(2), "{name}: b never saw the write");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // A stale base version is refused even when a cache holds the old one.
        let err = b.update_deployment(&acct, &id, 1, d.spec(), "u").await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{name}");
        // Deletion through b disappears from a too.
        assert!(b.delete_deployment(&acct, &id).await.unwrap());
        let t = Instant::now();
        while a.get_deployment(&acct, &id).await.unwrap().is_some() {
            assert!(t.elapsed() < Duration::from_secs(2), "{name}: a still serves a deleted deployment");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// GET's JSON path: the deployment as its serializer writes it, cached or not, in its own
/// account only, and another process's write visible through it as through the parsed path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployments_json_is_the_deployment_in_its_account_only() {
    for (name, url) in urls().await {
        let key = SealKey::generate();
        let a = Store::open(&url, &key).await.unwrap();
        let b = Store::open(&url, &key).await.unwrap();
        let (acct, id) = seed(&a).await;
        // b reads it from the database (a miss), then from its cache (a hit): the same bytes.
        let miss = b.get_deployment_json(&acct, &id).await.unwrap().unwrap();
        let hit = b.get_deployment_json(&acct, &id).await.unwrap().unwrap();
        let d = b.get_deployment(&acct, &id).await.unwrap().unwrap();
        assert_eq!(miss, serde_json::to_vec(&d).unwrap(), "{name}");
        assert_eq!(hit, miss, "{name}");
        // Another account does not see it, cached or not; an unknown id is none.
        assert!(b.get_deployment_json("99999999", &id).await.unwrap().is_none(), "{name}");
        assert!(a.get_deployment_json("99999999", &id).await.unwrap().is_none(), "{name}");
        assert!(b.get_deployment_json(&acct, "NO-SUCH-ID").await.unwrap().is_none(), "{name}");
        // a's write reaches b's JSON within the poll interval.
        let mut renamed = d.clone();
        renamed.name = "renamed".into();
        a.update_deployment(&acct, &id, d.version, renamed.spec(), "u").await.unwrap();
        let t = Instant::now();
        loop {
            let json = b.get_deployment_json(&acct, &id).await.unwrap().unwrap();
            let got: serde_json::Value = serde_json::from_slice(&json).unwrap();
            if got["name"] == "renamed" {
                assert_eq!(got["version"], d.version + 1, "{name}");
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(2), "{name}: b's JSON never showed the write");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// An account's deployments a page at a time: in id order, after the position given, at most
/// the limit, its own account's only — on SQLite read as one joined row, on PostgreSQL row by
/// row, the same answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_are_listed_by_keyset_in_their_account_only() {
    for (name, url) in urls().await {
        let store = Store::open(&url, &SealKey::generate()).await.unwrap();
        let (acct, first) = seed(&store).await;
        let d = store.get_deployment(&acct, &first).await.unwrap().unwrap();
        let mut ids = vec![first];
        for _ in 0..6 {
            ids.push(store.create_deployment(&acct, d.spec(), "u").await.unwrap().id);
        }
        ids.sort();
        let page = |after: Option<String>, n: usize| {
            let store = store.clone();
            let acct = acct.clone();
            async move { store.deployments_after(&acct, after.as_deref(), n).await.unwrap() }
        };
        let all = page(None, 100).await;
        assert_eq!(all.iter().map(|l| l.id.clone()).collect::<Vec<_>>(), ids, "{name}");
        for l in &all {
            let want = serde_json::to_vec(&store.get_deployment(&acct, &l.id).await.unwrap().unwrap()).unwrap();
            assert_eq!(l.json, want, "{name}: {}", l.id);
        }
        let second = page(Some(ids[2].clone()), 3).await;
        assert_eq!(second.iter().map(|l| l.id.clone()).collect::<Vec<_>>(), ids[3..6], "{name}");
        assert!(page(Some(ids[6].clone()), 3).await.is_empty(), "{name}: nothing after the last");
        assert!(store.deployments_after("99999999", None, 100).await.unwrap().is_empty(), "{name}");
    }
}

/// A body stored in the current shape is answered as it is stored; one written by an older
/// release (another `format`) is parsed and written in the current shape first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_of_an_older_shape_are_written_again_and_current_ones_sent_as_stored() {
    use garrison_model::deployment::JSON_FORMAT;
    sqlx::any::install_default_drivers();
    for (name, url) in urls().await {
        let key = SealKey::generate();
        let a = Store::open(&url, &key).await.unwrap();
        let (acct, id) = seed(&a).await;
        let d = a.get_deployment(&acct, &id).await.unwrap().unwrap();
        let canonical = serde_json::to_vec(&d).unwrap();
        let listed = a.deployments_after(&acct, None, 10).await.unwrap();
        assert_eq!((listed.len(), listed[0].id.as_str()), (1, id.as_str()), "{name}");
        assert_eq!(listed[0].json, canonical, "{name}: a new row is stored in the current shape");
        // The same deployment as an older release might have stored it: another layout.
        let pretty = serde_json::to_string_pretty(&d).unwrap();
        let raw = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(&url).await.unwrap();
        let set = |format: i64| {
            sqlx::query("UPDATE deployments SET body = $1, format = $2 WHERE id = $3")
                .bind(pretty.clone())
                .bind(format)
                .bind(id.clone())
                .execute(&raw)
        };
        set(0).await.unwrap();
        let b = Store::open(&url, &key).await.unwrap();
        assert_eq!(b.deployments_after(&acct, None, 10).await.unwrap()[0].json, canonical, "{name}");
        assert_eq!(b.get_deployment_json(&acct, &id).await.unwrap().unwrap(), canonical, "{name}");
        // Marked as the current shape, the stored text itself is what is sent.
        set(JSON_FORMAT).await.unwrap();
        let c = Store::open(&url, &key).await.unwrap();
        assert_eq!(c.deployments_after(&acct, None, 10).await.unwrap()[0].json, pretty.as_bytes(), "{name}");
        assert_eq!(c.get_deployment_json(&acct, &id).await.unwrap().unwrap(), pretty.as_bytes(), "{name}");
        // Writing it again stores the current shape.
        let mut renamed = d.clone();
        renamed.name = "renamed".into();
        let after = c.update_deployment(&acct, &id, d.version, renamed.spec(), "u").await.unwrap();
        let listed = c.deployments_after(&acct, None, 10).await.unwrap();
        assert_eq!(listed[0].json, serde_json::to_vec(&after).unwrap(), "{name}");
        raw.close().await;
    }
}

/// Everything the store holds, as text: the SQLite file (WAL included), or every row of
/// every PostgreSQL table.
async fn at_rest(name: &str, url: &str) -> String {
    if name == "postgres" {
        return garrison_testkit::postgres::postgres_text(url).await.unwrap();
    }
    let file = url.trim_start_matches("sqlite://").trim_end_matches("?mode=rwc");
    let mut bytes = std::fs::read(file).unwrap();
    if let Ok(w) = std::fs::read(format!("{file}-wal")) {
        bytes.extend(w);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_rotated_and_a_wrong_key_is_refused() {
    for (name, url) in urls().await {
        let key = SealKey::generate();
        let store = Store::open(&url, &key).await.unwrap();
        let (acct, _) = seed(&store).await;
        let ext = store.external_id(&acct).await.unwrap();
        let token_key = store.sealed_secret("token_signing_key").await.unwrap();
        let cred_id = store.list_credentials(&acct).await.unwrap()[0].id.clone();
        let hook = garrison_model::notify::parse_connection(
            &serde_json::json!({"name": "h", "type": "webhook", "target_url": "https://hooks.example.com/x",
                                "auth_header": "Bearer hook-auth-value"}),
            false,
        )
        .unwrap();
        let (conn, signing) = store.create_connection(&acct, hook, "u").await.unwrap();
        drop(store);
        let text = at_rest(&name, &url).await;
        assert!(!text.contains(&signing) && !text.contains("hook-auth-value"), "{name}: webhook secrets in plaintext");
        assert!(text.contains("123412341234"), "{name}: the dump reads the rows");
        assert!(!text.contains("secret-role-name"), "{name}: role ARN in plaintext");
        assert!(!text.contains(&ext), "{name}: external id in plaintext");
        assert!(!text.contains(&hex::encode(&token_key)), "{name}: token key in plaintext");
        match Store::open(&url, &SealKey::generate()).await {
            Err(StoreError::WrongKey) => {}
            other => panic!("{name}: a wrong key must fail at open, got {other:?}"),
        }

        // Rotation: everything re-sealed under the new key, the old one refused after.
        let store = Store::open(&url, &key).await.unwrap();
        let new = SealKey::generate();
        let r = store.rotate_key(&new).await.unwrap();
        assert_eq!((r.external_ids, r.credentials, r.connections), (1, 1, 1), "{name}: {r:?}");
        assert!(r.meta >= 2, "{name}: the key check and the token key: {r:?}");
        drop(store);
        let before = at_rest(&name, &url).await;
        assert!(!before.contains("secret-role-name") && !before.contains(&ext), "{name}: still sealed");
        match Store::open(&url, &key).await {
            Err(StoreError::WrongKey) => {}
            other => panic!("{name}: the old key must fail after rotation, got {other:?}"),
        }
        let store = Store::open(&url, &new).await.unwrap();
        assert_eq!(store.external_id(&acct).await.unwrap(), ext, "{name}");
        assert_eq!(store.sealed_secret("token_signing_key").await.unwrap(), token_key, "{name}: tokens stay valid");
        let cred = store.get_credential(&acct, &cred_id).await.unwrap().unwrap();
        assert_eq!(cred.secrets.arn, "arn:aws:iam::123412341234:role/secret-role-name", "{name}");
        let (_, secrets) = store.connection_row(&acct, &conn.id).await.unwrap().unwrap();
        assert_eq!((secrets.signing_secret, secrets.auth_header.as_deref()), (signing, Some("Bearer hook-auth-value")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protection_records_generations_audit_and_removal() {
    use garrison_model::protection::{OwnedItem, ResKind};
    use garrison_store::AuditEntry;
    for (name, url) in urls().await {
        let store = Store::open(&url, &SealKey::generate()).await.unwrap();
        let (acct, id) = seed(&store).await;
        let item = |key: &str, rid: &str| OwnedItem {
            key: key.into(),
            region: "us-east-1".into(),
            kind: ResKind::Subnet,
            id: rid.into(),
            arn: None,
            adopted: false,
            spec: None,
            token: Some("t".into()),
            tags: Default::default(),
        };
        store.put_owned(&acct, &id, &item("a", "")).await.unwrap();
        store.put_owned(&acct, &id, &item("a", "subnet-1")).await.unwrap();
        store.put_owned(&acct, &id, &item("b", "subnet-2")).await.unwrap();
        store.remove_owned(&id, "b").await.unwrap();
        let owned = store.owned(&id).await.unwrap();
        assert_eq!(owned.items.len(), 1, "{name}");
        assert_eq!(owned.items["a"].id, "subnet-1", "{name}: the outcome replaces the intent");
        // Across deployments by key (the collector's queues): only those owning one, with it.
        store.put_owned(&acct, &id, &item("queue", "https://sqs/q")).await.unwrap();
        let owning = store.deployments_owning("queue").await.unwrap();
        assert_eq!(owning.len(), 1, "{name}");
        assert_eq!((owning[0].0.id.as_str(), owning[0].1.id.as_str()), (id.as_str(), "https://sqs/q"), "{name}");
        assert!(store.deployments_owning("b").await.unwrap().is_empty(), "{name}: removed");
        store.remove_owned(&id, "queue").await.unwrap();
        // Generations: each claim supersedes the previous one.
        let g1 = store.claim_generation(&acct, &id).await.unwrap();
        let g2 = store.claim_generation(&acct, &id).await.unwrap();
        assert_eq!((g2, store.generation(&id).await.unwrap()), (g1 + 1, g2), "{name}");
        let report = garrison_model::report::Report {
            deployment_id: id.clone(),
            mode: garrison_model::deployment::Mode::Automatic,
            at: 1,
            generation: g2,
            reason: garrison_model::deployment::Reason::ActionsFailed,
            plan: Default::default(),
            outcomes: vec![],
            audit_source: Default::default(),
            vpcs: vec![],
            scope: vec![],
            monthly_appliance_usd: 12.5,
            option_costs: vec![],
            trigger: None,
            freshness: None,
        };
        store.put_report(&acct, &id, &report).await.unwrap();
        // The collector's input times: the newest per path, per tenant.
        use garrison_store::{FeedPath, FeedSeen};
        assert_eq!(store.feed_seen(&acct, &id).await.unwrap(), FeedSeen::default(), "{name}");
        store.note_feed_input(&acct, &id, FeedPath::Events, 2_000).await.unwrap();
        store.note_feed_input(&acct, &id, FeedPath::Events, 1_000).await.unwrap();
        store.note_feed_input(&acct, &id, FeedPath::TrailFiles, 1_500).await.unwrap();
        assert_eq!(
            store.feed_seen(&acct, &id).await.unwrap(),
            FeedSeen { events_ms: Some(2_000), trail_files_ms: Some(1_500) },
            "{name}: an older input does not replace a newer one"
        );
        assert_eq!(store.feed_seen("99999999", &id).await.unwrap(), FeedSeen::default(), "{name}: tenancy");
        // Organization enrollments: versioned, per tenant, the status garrison's own.
        use garrison_model::enrollment::{EnrollmentSpec, EnrollmentStatus, Member, MemberState};
        use garrison_model::organization::{Selection, UnitItem};
        let spec = |n: &str| EnrollmentSpec {
            name: n.into(),
            credential_id: "C1".into(),
            selection: Selection {
                include: vec![UnitItem { unit: "ou-ab12-cd34ef56".into(), children: true }],
                exclude_units: vec![],
                exclude_accounts: vec!["123456789012".into()],
            },
            template: serde_json::json!({"mode": "automatic"}),
            stack_set: "garrison-role".into(),
            event_feed: Default::default(),
        };
        let en = store.create_enrollment(&acct, spec("org"), "u").await.unwrap();
        assert_eq!(store.get_enrollment(&acct, &en.id).await.unwrap(), Some(en.clone()), "{name}");
        assert!(store.get_enrollment("99999999", &en.id).await.unwrap().is_none(), "{name}: tenancy");
        assert_eq!(store.list_enrollments(&acct).await.unwrap().len(), 1, "{name}");
        let renamed = store.update_enrollment(&acct, &en.id, 1, spec("org2"), "u").await.unwrap();
        assert_eq!((renamed.version, renamed.name.as_str()), (2, "org2"), "{name}");
        assert!(matches!(
            store.update_enrollment(&acct, &en.id, 1, spec("org3"), "u").await,
            Err(garrison_store::StoreError::Conflict(_))
        ));
        let st = EnrollmentStatus {
            updated: 5,
            status: "ok".into(),
            message: None,
            members: vec![Member {
                aws_account: "111122223333".into(),
                state: MemberState::Enrolled,
                deployment_id: Some("D".into()),
                credential_id: None,
                reason: None,
                template_version: Some(1),
            }],
            excluded: vec![],
            events: None,
            role: Some("ci_full 2026-12-06".into()),
        };
        store.set_enrollment_status(&en.id, &st).await.unwrap();
        let got = store.get_enrollment(&acct, &en.id).await.unwrap().unwrap();
        assert_eq!((got.status, got.version), (st, 2), "{name}: the status does not move the version");
        assert_eq!(store.all_enrollments().await.unwrap().len(), 1, "{name}");
        assert!(!store.delete_enrollment("99999999", &en.id).await.unwrap(), "{name}: tenancy");
        assert!(store.delete_enrollment(&acct, &en.id).await.unwrap(), "{name}");
        assert!(store.list_enrollments(&acct).await.unwrap().is_empty(), "{name}");
        assert!(store.get_enrollment(&acct, &en.id).await.unwrap().is_none(), "{name}: gone from the API");
        let left = store.all_enrollments().await.unwrap();
        assert!(left.len() == 1 && left[0].deleting, "{name}: kept for the engine to tear down");
        assert!(!store.delete_enrollment(&acct, &en.id).await.unwrap(), "{name}: deleted once");
        assert!(store.forget_enrollment(&acct, &en.id).await.unwrap(), "{name}");
        assert!(store.all_enrollments().await.unwrap().is_empty(), "{name}");
        assert_eq!(store.generation(&id).await.unwrap(), g2, "{name}: a report does not move the generation");
        assert_eq!(store.get_report(&acct, &id).await.unwrap(), Some(report), "{name}: read back typed");
        assert!(store.get_report("99999999", &id).await.unwrap().is_none(), "{name}: tenancy");
        let entry = |at: i64, call: &str| AuditEntry {
            at_ms: at,
            deployment_id: id.clone(),
            generation: g2,
            region: "us-east-1".into(),
            call: call.into(),
            resource: "subnet-1".into(),
            outcome: "ok".into(),
            key: None,
            message: None,
        };
        store.append_audit(&acct, &[entry(2, "ec2:CreateRouteTable"), entry(1, "ec2:CreateSubnet")]).await.unwrap();
        let log = store.audit_log(&acct, &id, 10).await.unwrap();
        assert_eq!(
            log.iter().map(|e| e.call.as_str()).collect::<Vec<_>>(),
            ["ec2:CreateSubnet", "ec2:CreateRouteTable"]
        );
        assert!(store.audit_log("99999999", &id, 10).await.unwrap().is_empty(), "{name}: tenancy");
        // Write-ahead: an intent is an entry at once (outcome pending) and is completed once;
        // another tenant cannot complete it, and an outcome is never rewritten.
        let intent =
            AuditEntry { key: Some("subnet/a".into()), outcome: "pending".into(), ..entry(3, "ec2:CreateSubnet") };
        let entry_id = store.audit_intent(&acct, &intent).await.unwrap();
        assert_eq!(store.audit_log(&acct, &id, 10).await.unwrap()[2], intent, "{name}: durable before the call");
        store.audit_outcome("99999999", &entry_id, "ok", Some("created subnet-9")).await.unwrap();
        assert_eq!(store.audit_log(&acct, &id, 10).await.unwrap()[2].outcome, "pending", "{name}: tenancy");
        store.audit_outcome(&acct, &entry_id, "ok", Some("created subnet-9")).await.unwrap();
        store.audit_outcome(&acct, &entry_id, "Throttling", None).await.unwrap();
        let done = &store.audit_log(&acct, &id, 10).await.unwrap()[2];
        assert_eq!(
            (done.outcome.as_str(), done.message.as_deref(), done.key.as_deref()),
            ("ok", Some("created subnet-9"), Some("subnet/a")),
            "{name}"
        );
        // Removal: gone from the API at once, fenced, queued until finished; the log stays.
        assert!(store.request_removal(&acct, &id, "u").await.unwrap());
        assert!(store.get_deployment(&acct, &id).await.unwrap().is_none(), "{name}");
        assert_eq!(store.generation(&id).await.unwrap(), g2 + 1, "{name}: a running executor is fenced");
        assert_eq!(store.removals().await.unwrap().len(), 1);
        assert!(!store.request_removal(&acct, &id, "u").await.unwrap(), "{name}: already removed");
        store.finish_removal(&id).await.unwrap();
        assert!(store.removals().await.unwrap().is_empty() && store.owned(&id).await.unwrap().items.is_empty());
        assert_eq!(store.audit_log(&acct, &id, 10).await.unwrap().len(), 3, "{name}: the audit log outlives it");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_keep_reason_and_a_bounded_excerpt_per_tenant() {
    use garrison_store::{DeadLetter, EXCERPT_CHARS};
    for (name, url) in urls().await {
        let store = Store::open(&url, &SealKey::generate()).await.unwrap();
        let (acct, id) = seed(&store).await;
        let letter = |at: i64, source: &str| DeadLetter {
            at_ms: at,
            deployment_id: id.clone(),
            source: source.into(),
            reason: "message body is not JSON".into(),
            excerpt: "x".repeat(10_000),
        };
        store.add_dead_letter(&acct, &letter(1, "m-1")).await.unwrap();
        store.add_dead_letter(&acct, &letter(2, "s3://b/k.json.gz")).await.unwrap();
        let got = store.dead_letters(&acct, &id, 10).await.unwrap();
        assert_eq!(got.iter().map(|d| d.source.as_str()).collect::<Vec<_>>(), ["s3://b/k.json.gz", "m-1"], "{name}");
        assert_eq!(got[0].excerpt.len(), EXCERPT_CHARS, "{name}");
        assert_eq!(got[0].reason, "message body is not JSON");
        assert_eq!(store.dead_letters(&acct, &id, 1).await.unwrap().len(), 1, "{name}: limit");
        assert!(store.dead_letters("99999999", &id, 10).await.unwrap().is_empty(), "{name}: tenancy");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_exclusive_expire_and_fence_the_loser() {
    for (name, url) in urls().await {
        let store = std::sync::Arc::new(Store::open(&url, &SealKey::generate()).await.unwrap());
        let (t0, ttl) = (1_000_000i64, 30_000i64);
        let a = store.claim_lease("d1", "worker-a", t0, ttl).await.unwrap().expect("free");
        assert_eq!((a.fence, a.taken_from.as_deref()), (1, None), "{name}");
        assert_eq!(store.claim_lease("d1", "worker-b", t0 + 1, ttl).await.unwrap(), None, "{name}: held");
        assert!(store.renew_lease(&a, "worker-a", t0 + 10_000, ttl).await.unwrap(), "{name}");
        // Renewed to t0 + 40 s: still held at t0 + 35 s, taken over after.
        assert_eq!(store.claim_lease("d1", "worker-b", t0 + 35_000, ttl).await.unwrap(), None, "{name}");
        let b = store.claim_lease("d1", "worker-b", t0 + 40_000, ttl).await.unwrap().expect("expired");
        assert_eq!((b.fence, b.taken_from.as_deref()), (2, Some("worker-a")), "{name}: a takeover, fenced");
        // The old holder finds out at its next renewal; its release changes nothing.
        assert!(!store.renew_lease(&a, "worker-a", t0 + 41_000, ttl).await.unwrap(), "{name}");
        store.release_lease(&a, "worker-a").await.unwrap();
        assert_eq!(store.claim_lease("d1", "worker-c", t0 + 41_000, ttl).await.unwrap(), None, "{name}");
        // Released: free at once — a hand-over, not a takeover — and a holder may claim its
        // own again.
        store.release_lease(&b, "worker-b").await.unwrap();
        let c = store.claim_lease("d1", "worker-c", t0 + 41_000, ttl).await.unwrap().expect("released");
        assert_eq!((c.fence, c.taken_from.as_deref()), (3, None), "{name}");
        assert_eq!(store.claim_lease("d1", "worker-c", t0 + 42_000, ttl).await.unwrap().unwrap().fence, 4, "{name}");
        // Due: a version not reconciled yet, or the next periodic run has come.
        let l = store.claim_due("d3", 1, "w", t0, ttl).await.unwrap().expect("never run");
        assert!(store.finish_lease(&l, "w", 1, t0 + 300_000).await.unwrap(), "{name}");
        assert_eq!(store.claim_due("d3", 1, "w2", t0 + 1, ttl).await.unwrap(), None, "{name}: done, not due");
        let l = store.claim_due("d3", 2, "w2", t0 + 2, ttl).await.unwrap().expect("a new version is due");
        assert_eq!(l.taken_from, None, "{name}: a finished run's lease is handed over, not taken over");
        assert!(store.finish_lease(&l, "w2", 2, t0 + 300_000).await.unwrap(), "{name}");
        assert!(store.claim_due("d3", 2, "w3", t0 + 300_000, ttl).await.unwrap().is_some(), "{name}: resync due");
        assert!(!store.finish_lease(&l, "w2", 2, t0).await.unwrap(), "{name}: a lost lease cannot finish");
        // Twenty workers at once on a new deployment: exactly one wins.
        let mut tasks = vec![];
        for i in 0..20 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move { s.claim_lease("d2", &format!("w{i}"), t0, ttl).await.unwrap() }));
        }
        let mut won = vec![];
        for t in tasks {
            won.extend(t.await.unwrap());
        }
        assert_eq!(won.len(), 1, "{name}: {won:?}");
        assert_eq!((won[0].fence, won[0].taken_from.as_deref()), (1, None), "{name}");
    }
}

/// Writers that read first (deleting a credential checks who uses it) run beside other
/// writers, as concurrent API requests do: none may fail with a database error. On SQLite
/// a deferred transaction that read before another connection committed could not take
/// the write lock and failed at once with "database is locked" (a 500 schemathesis found).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_read_then_write_transactions_never_fail_with_a_database_error() {
    for (name, url) in urls().await {
        let store = Store::open(&url, &SealKey::generate()).await.unwrap();
        let (acct, dep) = seed(&store).await;
        let mut tasks = Vec::new();
        for i in 0..24 {
            let (s, acct, dep) = (store.clone(), acct.clone(), dep.clone());
            tasks.push(tokio::spawn(async move {
                let c = s
                    .create_credential(
                        &acct,
                        &NewCredential {
                            name: format!("c{i}"),
                            secret: RoleSecret { arn: format!("arn:aws:iam::123412341234:role/r{i}") },
                        },
                        "u",
                    )
                    .await?;
                // Read-then-write transactions interleaved with plain writers.
                let d = s.get_deployment_fresh(&acct, &dep).await?.unwrap();
                let mut spec = d.spec();
                spec.name = format!("d{i}");
                match s.update_deployment(&acct, &dep, d.version, spec, "u").await {
                    Ok(_) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
                assert!(s.delete_credential(&acct, &c.id).await?, "credential {i} deleted");
                Ok::<_, StoreError>(())
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        // The seed credential is in use and stays; every created one is gone.
        assert_eq!(store.list_credentials(&acct).await.unwrap().len(), 1, "{name}");
    }
}

/// Two processes (two store handles) drawing on one bucket stay inside one budget: calls
/// made after their waits are paced at the bucket's rate overall, not at twice it, and the
/// other buckets are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_budget_holds_across_processes_sharing_the_store() {
    for (name, url) in urls().await {
        let key = SealKey::generate();
        let (a, b) = (Store::open(&url, &key).await.unwrap(), Store::open(&url, &key).await.unwrap());
        let (rate, burst, per_task) = (40.0, 5.0, 10);
        let t0 = Instant::now();
        let mut tasks = vec![];
        for s in [a.clone(), b.clone(), a.clone(), b.clone()] {
            tasks.push(tokio::spawn(async move {
                let mut at = vec![];
                for _ in 0..per_task {
                    let wait = s.take_token("111122223333/us-east-1/ec2", rate, burst).await.unwrap();
                    tokio::time::sleep(wait).await;
                    at.push(t0.elapsed().as_secs_f64());
                }
                at
            }));
        }
        let mut at: Vec<f64> = vec![];
        for t in tasks {
            at.extend(t.await.unwrap());
        }
        at.sort_by(f64::total_cmp);
        // 40 calls: 5 at once, 35 at 40/s → the last no sooner than 0.875 s (a little
        // slack for the clocks' granularity). Two unshared buckets would finish in half that.
        let n = at.len() as f64;
        let last = *at.last().unwrap();
        assert!(last >= (n - burst) / rate * 0.95, "{name}: {n} calls done after {last:.3} s");
        // No window of 0.5 s holds more calls than the budget allows.
        for (i, t) in at.iter().enumerate() {
            let within = at[i..].iter().take_while(|u| **u < t + 0.5).count() as f64;
            assert!(within <= burst + rate * 0.5 + 1.0, "{name}: {within} calls within 0.5 s of {t:.3}");
        }
        // Another account's bucket is full.
        assert_eq!(a.take_token("444455556666/us-east-1/ec2", rate, burst).await.unwrap(), Duration::ZERO, "{name}");
        assert!(last < 5.0, "{name}: pacing took {last:.1} s");
        if name == "postgres" {
            // Every AWS call takes a token: on PostgreSQL the buckets skip the write-ahead log
            // (a take is not a flushed commit); losing them in a crash only refills them.
            let pg = sqlx::postgres::PgPool::connect(&url).await.unwrap();
            let p: String =
                sqlx::query_scalar("SELECT relpersistence::text FROM pg_class WHERE relname = 'rate_budgets'")
                    .fetch_one(&pg)
                    .await
                    .unwrap();
            assert_eq!(p, "u", "rate_budgets is an unlogged table");
        }
    }
}

/// A tenant with four deployments like `seed`'s.
async fn seed_four(store: &Store) -> (String, Vec<String>) {
    let (acct, first) = seed(store).await;
    let mut ids = vec![first];
    for i in 0..3 {
        let d = store.get_deployment_fresh(&acct, &ids[0]).await.unwrap().unwrap();
        let mut spec = d.spec();
        spec.name = format!("d{i}");
        ids.push(store.create_deployment(&acct, spec, "u").await.unwrap().id);
    }
    (acct, ids)
}

/// What a worker pass claims (`claim_next`, one at a time here to see the order): a dead
/// worker's lapsed run first, then changed deployments, then the worker's own from before,
/// then the longest overdue; nothing held by another worker or not due yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_next_takes_lapsed_then_changed_then_own_then_longest_overdue() {
    for (name, url) in urls().await {
        let store = Store::open(&url, &SealKey::generate()).await.unwrap();
        let (acct, ids) = seed_four(&store).await;
        let t0 = 10_000_000i64;
        let next = |w: &'static str, at: i64| {
            let store = store.clone();
            async move {
                let mut v = store.claim_next(w, at, 1000, 1).await.unwrap();
                assert!(v.len() <= 1, "limit 1, got {v:?}");
                v.pop()
            }
        };
        // Never run: all four due, each claimed once (first claim: fence 1, taken from nobody).
        let mut all = store.claim_next("w", t0, 1000, 10).await.unwrap();
        all.sort_by(|a, b| a.deployment_id.cmp(&b.deployment_id));
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(all.iter().map(|l| l.deployment_id.clone()).collect::<Vec<_>>(), sorted, "{name}");
        assert!(all.iter().all(|l| l.fence == 1 && l.taken_from.is_none()), "{name}: {all:?}");
        assert_eq!(store.claim_next("w2", t0, 1000, 10).await.unwrap(), vec![], "{name}: all held");
        // ids[0] next due at t0 + 300, ids[1] at t0 + 100, ids[2] at t0 + 200; ids[3] due at
        // once, and then held by "other" until t0 + 1000.
        let lease = |id: &str| all.iter().find(|l| l.deployment_id == id).unwrap().clone();
        for (i, due) in [(0, 300), (1, 100), (2, 200), (3, 0)] {
            assert!(store.finish_lease(&lease(&ids[i]), "w", 1, t0 + due).await.unwrap(), "{name}");
        }
        store.claim_due(&ids[3], 1, "other", t0, 1000).await.unwrap().unwrap();
        assert_eq!(next("w", t0 + 50).await, None, "{name}: nothing due yet");
        // w2 at t0 + 500: the longest overdue first, the held one left out.
        let mut got = vec![];
        while let Some(l) = next("w2", t0 + 500).await {
            got.push(l);
        }
        assert_eq!(
            got.iter().map(|l| l.deployment_id.clone()).collect::<Vec<_>>(),
            vec![ids[1].clone(), ids[2].clone(), ids[0].clone()],
            "{name}"
        );
        // Finished by w2 with the same due times; then w3 runs ids[0], due again at t0 + 400.
        for (l, due) in got.iter().zip([100, 200, 300]) {
            assert!(store.finish_lease(l, "w2", 1, t0 + due).await.unwrap(), "{name}");
        }
        let l = store.claim_due(&ids[0], 1, "w3", t0 + 500, 1).await.unwrap().unwrap();
        assert!(store.finish_lease(&l, "w3", 1, t0 + 400).await.unwrap());
        // A worker takes first those it ran last, then the longest overdue.
        let l = next("w3", t0 + 500).await.unwrap();
        assert_eq!(l.deployment_id, ids[0], "{name}: its own first");
        store.release_lease(&l, "w3").await.unwrap();
        let l = next("w", t0 + 500).await.unwrap();
        assert_eq!(l.deployment_id, ids[1], "{name}: none of its own: the longest overdue");
        store.release_lease(&l, "w").await.unwrap();
        // A change to ids[0] makes it due, whatever its resync time; the limit holds.
        let mut d = store.get_deployment_fresh(&acct, &ids[0]).await.unwrap().unwrap();
        d.name = "changed".into();
        store.update_deployment(&acct, &ids[0], 1, d.spec(), "u").await.unwrap();
        let l = store.claim_next("w", t0 + 60, 1000, 10).await.unwrap();
        assert_eq!(l.iter().map(|l| l.deployment_id.clone()).collect::<Vec<_>>(), vec![ids[0].clone()], "{name}");
        store.release_lease(&l[0], "w").await.unwrap();
        let two = store.claim_next("w", t0 + 500, 1000, 2).await.unwrap();
        assert_eq!(two.len(), 2, "{name}");
        assert!(two.iter().any(|l| l.deployment_id == ids[0]), "{name}: the changed one among them: {two:?}");
        for l in &two {
            store.release_lease(l, "w").await.unwrap();
        }
        // Once its holder's lease lapses, the held one comes first, marked as taken over:
        // a dead worker's run is taken over before anything else.
        let l = next("w", t0 + 1000).await.unwrap();
        assert_eq!((l.deployment_id.as_str(), l.taken_from.as_deref()), (ids[3].as_str(), Some("other")), "{name}");
    }
}

/// What a worker takes over beyond its free slots (`claim_lapsed`): only runs left unfinished
/// (a lease lapsed, not finished nor given back), due or not, the longest lapsed first, up to
/// the limit; never a live lease, a finished one, a released one or an audit queue's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_lapsed_takes_only_unfinished_runs_oldest_first() {
    for (name, url) in urls().await {
        let store = Store::open(&url, &SealKey::generate()).await.unwrap();
        let (_, ids) = seed_four(&store).await;
        let t0 = 10_000_000i64;
        assert_eq!(
            store.claim_lapsed("w", t0, 1000, 10).await.unwrap(),
            vec![],
            "{name}: never claimed: nothing lapsed"
        );
        // "dead" holds ids[0] until t0 + 2000 and ids[1] until t0 + 1000; ids[2] finished
        // (next due far away); ids[3] released; an audit queue's lease lapsed too.
        let l0 = store.claim_lease(&ids[0], "dead", t0 + 1000, 1000).await.unwrap().unwrap();
        store.claim_lease(&ids[1], "dead", t0, 1000).await.unwrap().unwrap();
        let l2 = store.claim_lease(&ids[2], "dead", t0, 1000).await.unwrap().unwrap();
        assert!(store.finish_lease(&l2, "dead", 1, t0 + 1_000_000).await.unwrap());
        let l3 = store.claim_lease(&ids[3], "dead", t0, 1000).await.unwrap().unwrap();
        store.release_lease(&l3, "dead").await.unwrap();
        store.claim_lease(&format!("collect:{}", ids[0]), "dead", t0, 1000).await.unwrap().unwrap();
        assert_eq!(store.claim_lapsed("w", t0 + 999, 1000, 10).await.unwrap(), vec![], "{name}: none lapsed yet");
        let got = store.claim_lapsed("w", t0 + 5000, 1000, 1).await.unwrap();
        assert_eq!(got.len(), 1, "{name}: the limit holds");
        assert_eq!(
            (got[0].deployment_id.as_str(), got[0].taken_from.as_deref()),
            (ids[1].as_str(), Some("dead")),
            "{name}"
        );
        let got = store.claim_lapsed("w2", t0 + 5000, 1000, 10).await.unwrap();
        assert_eq!(
            got.iter().map(|l| l.deployment_id.as_str()).collect::<Vec<_>>(),
            vec![ids[0].as_str()],
            "{name}: the rest, w's claim left alone"
        );
        assert!(got[0].fence > l0.fence, "{name}: the dead worker is fenced off");
        assert!(!store.renew_lease(&l0, "dead", t0 + 5000, 1000).await.unwrap(), "{name}");
    }
}

/// Workers claiming at the same moment through their own connections never get the same
/// deployment: every one of 120 due deployments is claimed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_never_get_the_same_deployment() {
    for (name, url) in urls().await {
        let key = SealKey::generate();
        let store = Store::open(&url, &key).await.unwrap();
        let (acct, first) = seed(&store).await;
        let d = store.get_deployment_fresh(&acct, &first).await.unwrap().unwrap();
        for i in 0..119 {
            let mut spec = d.spec();
            spec.name = format!("d{i}");
            store.create_deployment(&acct, spec, "u").await.unwrap();
        }
        let mut tasks = vec![];
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(6));
        for w in 0..6 {
            // Separate handles: separate pools, as separate processes have.
            let s = Store::open(&url, &key).await.unwrap();
            let start = start.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = vec![];
                start.wait().await;
                loop {
                    let got = s.claim_next(&format!("w{w}"), 10_000, 60_000, 2).await.unwrap();
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got.into_iter().map(|l| l.deployment_id));
                }
            }));
        }
        let mut claimed = vec![];
        for t in tasks {
            claimed.extend(t.await.unwrap());
        }
        let unique: HashSet<&String> = claimed.iter().collect();
        assert_eq!((claimed.len(), unique.len()), (120, 120), "{name}: {claimed:?}");
    }
}

/// Key secrets are stored as salted argon2id hashes: two keys with the same secret do not
/// share a hash, the secret is nowhere in the store, and a key stored by an earlier release
/// (unsalted SHA-256) still signs in once and is then re-hashed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_secrets_are_slow_salted_hashes_and_old_ones_are_upgraded() {
    use garrison_store::Verdict;
    use sqlx::Row;
    for (name, url) in urls().await {
        let store = Store::open(&url, &SealKey::generate()).await.unwrap();
        let secret = "s".repeat(40);
        let root =
            store.init_root(Some("10000001".into()), Some(("rootkey".into(), secret.clone()))).await.unwrap().unwrap();
        assert!(store.init_root(None, Some(("other".into(), "short".into()))).await.unwrap().is_none());
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        let stored: String = sqlx::query("SELECT secret_hash FROM access_keys WHERE id = 'rootkey'")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
        assert!(stored.starts_with("$argon2id$"), "{name}: {stored}");
        assert!(!stored.contains(&secret));
        let rec = store.find_key(&root.access_key_id).await.unwrap().unwrap();
        assert_eq!(rec.verify(&secret), Verdict::Match, "{name}");
        assert_eq!(rec.verify("wrong"), Verdict::NoMatch, "{name}");
        // A second key with the same secret gets another salt, hence another hash.
        let user = store.list_users(&root.account_id).await.unwrap().remove(0);
        let k = store.create_access_key(&root.account_id, &user.id, None, "t").await.unwrap();
        let theirs: String = sqlx::query("SELECT secret_hash FROM access_keys WHERE id = $1")
            .bind(&k.access_key_id)
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
        assert_ne!(theirs, stored);
        // A key as an earlier release stored it: its SHA-256, no salt.
        let legacy = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(secret.as_bytes()));
        sqlx::query("UPDATE access_keys SET secret_hash = $1 WHERE id = 'rootkey'")
            .bind(&legacy)
            .execute(&pool)
            .await
            .unwrap();
        let rec = store.find_key("rootkey").await.unwrap().unwrap();
        assert_eq!(rec.verify(&secret), Verdict::MatchLegacy, "{name}");
        store.upgrade_key_hash("rootkey", &secret).await.unwrap();
        let rec = store.find_key("rootkey").await.unwrap().unwrap();
        assert_eq!(rec.verify(&secret), Verdict::Match, "{name}");
        assert!(rec.stored_hash().starts_with("$argon2id$"));
        pool.close().await;
    }
}

/// An operator-given root secret shorter than 32 characters is refused, and nothing is made.
#[tokio::test]
async fn a_short_root_secret_is_refused() {
    let (_, url) = urls().await.remove(0);
    let store = Store::open(&url, &SealKey::generate()).await.unwrap();
    let err = store.init_root(None, Some(("rootkey".into(), "x".into()))).await.unwrap_err();
    assert!(err.to_string().contains("at least 32 characters"), "{err}");
    // Nothing was created: a valid start afterwards still makes the root.
    assert!(store.init_root(None, Some(("rootkey".into(), "k".repeat(32)))).await.unwrap().is_some());
}

/// Migration 10 on a store made by an earlier release: each account's first user becomes
/// its Administrator, the others Power Users, and emails become unique per account only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_of_an_earlier_release_get_their_roles() {
    use garrison_model::account::{ADMINISTRATOR_ROLE_ID, POWER_USER_ROLE_ID};
    for (name, url) in urls().await {
        let key = SealKey::generate();
        drop(Store::open(&url, &key).await.unwrap());
        // Back to the schema before migration 10, with users in two accounts.
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        for st in [
            "DELETE FROM schema_migrations WHERE version = 10",
            "DROP TABLE users",
            "CREATE TABLE users (id TEXT PRIMARY KEY, account_id TEXT NOT NULL, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE, created_at BIGINT NOT NULL, created_by TEXT NOT NULL)",
            "INSERT INTO users VALUES ('U2', 'A', 'second', 'b@x', 20, 'u'), ('U1', 'A', 'first', 'a@x', 10, 'system'), ('U3', 'B', 'only', 'c@x', 30, 'u')",
        ] {
            sqlx::query(st).execute(&pool).await.unwrap();
        }
        pool.close().await;
        let store = Store::open(&url, &key).await.unwrap();
        let role = |u: &garrison_model::account::User| u.role_ids[0].clone();
        let a = store.list_users("A").await.unwrap();
        assert_eq!(
            a.iter().map(|u| (u.id.as_str(), role(u))).collect::<Vec<_>>(),
            vec![("U1", ADMINISTRATOR_ROLE_ID.to_string()), ("U2", POWER_USER_ROLE_ID.to_string())],
            "{name}"
        );
        assert_eq!(role(&store.list_users("B").await.unwrap()[0]), ADMINISTRATOR_ROLE_ID, "{name}");
        assert!(a.iter().all(|u| u.active && u.version == 1), "{name}");
        // The same email in another account is no longer a conflict; in the same one it is.
        store.create_user("B", "dup", "a@x", None, "t").await.unwrap();
        assert!(
            matches!(store.create_user("A", "dup", "a@x", None, "t").await, Err(StoreError::Conflict(_))),
            "{name}"
        );
    }
}

/// sqlx keeps a prepared statement's columns from its first preparation, while SQLite
/// re-prepares it after another connection changed the schema: a `SELECT *` then returns
/// more columns than sqlx knows and its reader panics (seen in CI after migration 10 rebuilt
/// `users`). Every query names its columns.
#[test]
fn no_query_selects_every_column() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let upper = line.to_uppercase();
            assert!(
                !upper.contains("SELECT *") && !upper.contains("RETURNING *") && !upper.contains(".* FROM"),
                "{}:{}: name the columns: {line}",
                path.display(),
                n + 1
            );
        }
    }
}

/// The appliance channel's records: a bootstrap token works once, only for the instance its
/// launch became and before it expires; every refusal is recorded; a credential works until
/// revoked; neither is kept in the clear; a removal forgets them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_tokens_are_one_time_bound_and_kept_as_hashes() {
    use garrison_store::Refused;
    for (name, url) in urls().await {
        let store = Store::open(&url, &SealKey::generate()).await.unwrap();
        let (acct, dep) = seed(&store).await;
        let t0 = 1_000_000i64;
        let launch = |key: &'static str, role: &'static str, launch_token: &'static str| garrison_store::NewLaunch {
            account_id: &acct,
            deployment_id: &dep,
            key,
            role,
            launch_token,
        };
        let ids = launch("us-east-1/vpc-1/ids", "ids", "launch-1");
        let token = store.mint_bootstrap(&ids, t0, 600_000).await.unwrap();
        // A second try of the same launch mints its own; both bind to the instance.
        let retry = store.mint_bootstrap(&ids, t0, 600_000).await.unwrap();
        let late =
            store.mint_bootstrap(&launch("us-east-1/vpc-1/scanner", "scan", "launch-2"), t0, 1000).await.unwrap();
        assert_ne!(token, retry, "{name}");
        let reg = |t: &str, i: &str, at: i64| {
            let (store, t, i) = (store.clone(), t.to_string(), i.to_string());
            async move { store.register_appliance(&t, &i, "1.0", at).await.unwrap() }
        };
        assert_eq!(reg(&token, "i-0aaa", t0).await.unwrap_err(), Refused::ForeignInstance, "{name}: not bound yet");
        store.bind_bootstrap(&dep, "launch-1", "i-0aaa").await.unwrap();
        store.bind_bootstrap(&dep, "launch-2", "i-0bbb").await.unwrap();
        assert_eq!(reg(&token, "i-0ccc", t0).await.unwrap_err(), Refused::ForeignInstance, "{name}");
        assert_eq!(reg("gbt_nonsense", "i-0aaa", t0).await.unwrap_err(), Refused::Unknown, "{name}");
        assert_eq!(reg(&late, "i-0bbb", t0 + 5000).await.unwrap_err(), Refused::Expired, "{name}");
        let (a, credential) = reg(&token, "i-0aaa", t0 + 10).await.unwrap();
        assert_eq!((a.key.as_str(), a.role.as_str(), a.instance_id.as_str()), ("us-east-1/vpc-1/ids", "ids", "i-0aaa"));
        assert!(credential.starts_with("gap_"), "{name}");
        assert_eq!(reg(&token, "i-0aaa", t0 + 20).await.unwrap_err(), Refused::Replayed, "{name}");
        let launches = store.launches(&dep).await.unwrap();
        assert_eq!(launches.len(), 3, "{name}: {launches:?}");
        assert_eq!(launches.iter().filter(|l| l.used).count(), 1, "{name}");
        // Heartbeats: the last work becomes the previous.
        let a = store.appliance_by_credential(&credential).await.unwrap().unwrap();
        let w1 = garrison_model::health::Work::Ids { packets: 5, alerts: 0 };
        let w2 = garrison_model::health::Work::Ids { packets: 9, alerts: 1 };
        assert!(store.heartbeat(&a, "1.0", 3, &w1, t0 + 100).await.unwrap());
        let a = store.appliance_by_credential(&credential).await.unwrap().unwrap();
        assert!(!store.heartbeat(&a, "1.1", 4, &w2, t0 + 200).await.unwrap(), "{name}: too soon, not written");
        assert!(store.heartbeat(&a, "1.1", 4, &w2, t0 + 400).await.unwrap());
        let a = store.appliances(&dep).await.unwrap().remove(0);
        assert_eq!(
            (a.previous_work, a.work, a.last_heartbeat_ms, a.version.as_str()),
            (Some(w1), Some(w2), Some(t0 + 400), "1.1")
        );
        // Refusals recorded, newest first, without the token.
        let refusals = store.refusals(&dep, 10).await.unwrap();
        let reasons: Vec<Refused> = refusals.iter().map(|r| r.reason).collect();
        assert_eq!(
            reasons,
            vec![Refused::Expired, Refused::Replayed, Refused::ForeignInstance, Refused::ForeignInstance],
            "{name}: by time"
        );
        // A spent token replayed without end fills nothing: the newest refusals are kept.
        for i in 0..(garrison_store::KEPT_REFUSALS + 20) {
            assert_eq!(reg(&token, "i-0aaa", t0 + 10_000 + i).await.unwrap_err(), Refused::Replayed);
        }
        let kept = store.refusals(&dep, 1000).await.unwrap();
        assert_eq!(kept.len() as i64, garrison_store::KEPT_REFUSALS, "{name}");
        assert_eq!(kept[0].at_ms, t0 + 10_000 + garrison_store::KEPT_REFUSALS + 19, "{name}: the newest kept");
        // Health items round-trip.
        let mut items = std::collections::BTreeMap::new();
        garrison_model::health::reconcile(
            &mut items,
            &[garrison_model::health::Cause::ApplianceSilent { appliance: "us-east-1/vpc-1/ids".into() }],
            t0,
        );
        let opened = garrison_model::health::Change::Opened("x".into());
        store.put_health_items(&acct, &dep, &items.values().map(|i| (i, &opened)).collect::<Vec<_>>()).await.unwrap();
        assert_eq!(store.health_items(&dep).await.unwrap(), items, "{name}");
        let text = at_rest(&name, &url).await;
        assert!(!text.contains(&token) && !text.contains(&credential), "{name}: a token or credential in the clear");
        // Revoked once its instance is no longer garrison's.
        assert_eq!(store.revoke_appliances(&dep, &["i-0aaa".into()], t0).await.unwrap(), 0);
        assert_eq!(store.revoke_appliances(&dep, &[], t0).await.unwrap(), 1);
        assert_eq!(store.appliance_by_credential(&credential).await.unwrap().unwrap_err(), Refused::Revoked, "{name}");
        assert_eq!(store.appliances(&dep).await.unwrap(), vec![], "{name}");
        // The deployment removed: its appliance records go with it.
        assert!(store.request_removal(&acct, &dep, "u").await.unwrap());
        store.finish_removal(&dep).await.unwrap();
        assert_eq!(store.appliance_by_credential(&credential).await.unwrap().unwrap_err(), Refused::Unknown, "{name}");
        assert_eq!(store.launches(&dep).await.unwrap(), vec![], "{name}");
        assert!(
            store.health_items(&dep).await.unwrap().is_empty() && store.refusals(&dep, 10).await.unwrap().is_empty()
        );
    }
}

// SQLite's write-ahead log is copied back into the database beside the writers, not by the
// commit that crosses a threshold (which paid the checkpoint's fsyncs: the 99th percentile
// of creates, bench/api): after a burst of writes and one checkpoint interval, the log
// starts over instead of holding every frame of the burst.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_log_is_checkpointed_beside_the_writers() {
    let dir = std::env::temp_dir().join(format!("garrison-wal-{}-{:x}", std::process::id(), rand_u64()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("s.db").display());
    let store = Store::open(&url, &SealKey::generate()).await.unwrap();
    let (acct, _) = seed(&store).await;
    let cred =
        NewCredential { name: "c".into(), secret: RoleSecret { arn: "arn:aws:iam::123412341234:role/r".into() } };
    for _ in 0..300 {
        store.create_credential(&acct, &cred, "u").await.unwrap();
    }
    let raw = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(&url).await.unwrap();
    let frames = |raw: sqlx::AnyPool| async move {
        use sqlx::Row;
        let r = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&raw).await.unwrap();
        r.get::<i64, _>(1)
    };
    // Automatic checkpoints are off: the burst is all in the log (a page or more per commit).
    let wal = std::fs::metadata(dir.join("s.db-wal")).unwrap().len();
    assert!(wal >= 300 * 4096, "{wal} bytes of log after 300 commits");
    tokio::time::sleep(garrison_store::CHECKPOINT_EVERY * 3).await;
    store.create_credential(&acct, &cred, "u").await.unwrap();
    let after = frames(raw).await;
    assert!(after < 20, "the log started over after the checkpointer ran: {after} frames");
    assert_eq!(store.list_credentials(&acct).await.unwrap().len(), 302);
}
