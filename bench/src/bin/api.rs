//! bench/api: GET deployment throughput and latency of garrison (release build, embedded
//! SQLite) against a minimal axum handler serving the same bytes — the framework's ceiling —
//! measured in the same run, interleaved, with the same load generator; then the same at
//! scale (`scale.rs`): 10,000 deployments in one account and in 100, on SQLite and PostgreSQL.

#[path = "api/scale.rs"]
mod scale;

use std::process::{Command, Stdio};
use std::time::Instant;

use base64::Engine as _;
use bytes::Bytes;
use garrison_bench::{LoadResult, Proc, call, free_port, run, wait_port};
use serde_json::json;

pub(crate) const KEY_ID: &str = "0123456789abcdef";
pub(crate) const SECRET: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// `garrison serve` without a worker on `port`, its store in `dir`, the bench's root key.
pub(crate) fn serve(garrison: &std::path::Path, port: u16, dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(garrison);
    cmd.args(["serve", "--no-worker", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir)
        .env("GARRISON_ROOT_ACCESS_KEY_ID", KEY_ID)
        .env("GARRISON_ROOT_SECRET_KEY", SECRET)
        .env("GARRISON_ROOT_ACCOUNT_ID", "12345678")
        .env("GARRISON_LOG", "warn")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::null());
    cmd
}

/// The same bytes from bare handlers: a deployment for GET and POST (201), and a page of the
/// list when its file is given.
async fn ceiling_server(port: u16, body_file: &str, page_file: Option<&String>) -> anyhow::Result<()> {
    let body = Bytes::from(std::fs::read(body_file)?);
    let page = Bytes::from(match page_file {
        Some(f) => std::fs::read(f)?,
        None => b"[]".to_vec(),
    });
    let b2 = body.clone();
    let app = axum::Router::new()
        .route(
            "/deployments/v1/{account_id}/deployments/{id}",
            axum::routing::get(move || {
                let b = body.clone();
                async move { ([("content-type", "application/json")], b) }
            }),
        )
        .route(
            "/deployments/v1/{account_id}/deployments",
            axum::routing::get(move || {
                let p = page.clone();
                async move { ([("content-type", "application/json")], p) }
            })
            .post(move |_: Bytes| {
                let b = b2.clone();
                async move { (axum::http::StatusCode::CREATED, [("content-type", "application/json")], b) }
            }),
        );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

fn line(name: &str, r: &LoadResult) -> String {
    format!(
        "| {name} | {:.0} | {:.2} | {:.2} | {} |",
        r.rps(),
        r.p50_us as f64 / 1000.0,
        r.p99_us as f64 / 1000.0,
        r.errors
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--ceiling-server") {
        return ceiling_server(args[2].parse()?, &args[3], args.get(4)).await;
    }
    let secs: f64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(8.0);
    let conns: usize = std::env::var("BENCH_CONNECTIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(32);
    let exe = std::env::current_exe()?;
    let garrison = exe.with_file_name("garrison");
    anyhow::ensure!(garrison.exists(), "{} not found: build it first (bench/api/run does)", garrison.display());
    let dir = std::env::temp_dir().join(format!("garrison-bench-api-{}", std::process::id()));

    // garrison, with one deployment to read.
    let gport = free_port();
    let _g = Proc(serve(&garrison, gport, &dir).spawn()?);
    wait_port(gport);
    let gaddr = format!("127.0.0.1:{gport}");
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{KEY_ID}:{SECRET}")));
    let (_, auth) = call(&gaddr, "POST", "/aims/v1/authenticate", &[("authorization", basic)], None).await?;
    let token = auth["authentication"]["token"].as_str().unwrap_or_default().to_string();
    let h = [("x-aims-auth-token", token.clone())];
    let (_, cred) = call(&gaddr, "POST", "/credentials/v2/12345678/credentials", &h,
        Some(json!({"name": "bench", "secrets": {"type": "aws_iam_role", "arn": "arn:aws:iam::123412341234:role/garrison"}}))).await?;
    let (st, dep) = call(&gaddr, "POST", "/deployments/v1/12345678/deployments", &h, Some(json!({
        "name": "bench", "platform": {"type": "aws", "id": "123412341234"}, "mode": "automatic",
        "credentials": [{"id": cred["id"], "purpose": "discover"}],
        "scope": {"include": [{"type": "region", "key": "/aws/us-east-1", "policy": {"id": "D12D5E67-166C-474F-87AA-6F86FC9FB9BC"}}], "exclude": []}}))).await?;
    anyhow::ensure!(st == 201, "create_deployment: {st} {dep}");
    let path = format!("/deployments/v1/12345678/deployments/{}", dep["id"].as_str().unwrap_or_default());
    let (_, body) = call(&gaddr, "GET", &path, &h, None).await?;
    let body_file = dir.join("deployment.json");
    std::fs::write(&body_file, serde_json::to_vec(&body)?)?;

    // The ceiling: the same bytes from a bare axum handler, in its own process too.
    let cport = free_port();
    let _c = Proc(Command::new(&exe).args(["--ceiling-server", &cport.to_string()]).arg(&body_file).spawn()?);
    wait_port(cport);
    let caddr = format!("127.0.0.1:{cport}");

    println!(
        "bench/api: GET deployment, {conns} keep-alive connections, {secs}s per round, 2 interleaved rounds, best round kept"
    );
    run(&caddr, &path, &[], conns, 1.0).await?;
    run(&gaddr, &path, &h, conns, 1.0).await?;
    let mut best_c: Option<LoadResult> = None;
    let mut best_g: Option<LoadResult> = None;
    for _ in 0..2 {
        let c = run(&caddr, &path, &[], conns, secs).await?;
        let g = run(&gaddr, &path, &h, conns, secs).await?;
        if best_c.as_ref().is_none_or(|b| c.rps() > b.rps()) {
            best_c = Some(c);
        }
        if best_g.as_ref().is_none_or(|b| g.rps() > b.rps()) {
            best_g = Some(g);
        }
    }
    let (c, g) = (best_c.unwrap(), best_g.unwrap());
    let ratio = g.rps() / c.rps();
    println!("\n| server | req/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|");
    println!("{}", line("minimal axum handler (ceiling)", &c));
    println!("{}", line("garrison get_deployment (SQLite)", &g));
    println!("\nratio garrison / ceiling: {ratio:.2} (target >= 0.5); garrison {:.0} req/s (target >= 20000)", g.rps());
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("out");
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("api.json"),
        serde_json::to_vec_pretty(&json!({
            "connections": conns, "seconds": secs,
            "ceiling": {"rps": c.rps(), "p50_ms": c.p50_us as f64 / 1e3, "p99_ms": c.p99_us as f64 / 1e3, "errors": c.errors},
            "garrison": {"rps": g.rps(), "p50_ms": g.p50_us as f64 / 1e3, "p99_ms": g.p99_us as f64 / 1e3, "errors": g.errors},
            "ratio": ratio,
        }))?,
    )?;
    anyhow::ensure!(g.errors == 0 && c.errors == 0, "errors during the run");
    token_check_cost(g.rps()).await?;

    // At scale: BENCH_DEPLOYMENTS (10,000; 0 skips), each store (PostgreSQL when
    // GARRISON_TEST_DATABASE_URL names a server), each layout.
    let n: usize = std::env::var("BENCH_DEPLOYMENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let scale_secs: f64 = std::env::var("BENCH_SCALE_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(4.0);
    let mut figures = vec![];
    if n > 0 {
        println!("\nbench/api at scale: {n} deployments, each with its own credential; {scale_secs}s per load round");
        let admin = std::env::var("GARRISON_TEST_DATABASE_URL").ok();
        for layout in &scale::LAYOUTS {
            figures.push(scale::measure(&garrison, &exe, &dir, "SQLite", None, layout, n, scale_secs).await?);
            if let Some(admin) = &admin {
                let url = garrison_testkit::postgres::fresh_postgres(admin).await?;
                let f = scale::measure(&garrison, &exe, &dir, "PostgreSQL", Some(&url), layout, n, scale_secs).await;
                drop_database(admin, &url).await;
                figures.push(f?);
            }
        }
    }
    let scale = scale::print(&figures);
    let file = out.join("api.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file)?)?;
    v["scale"] = scale;
    std::fs::write(&file, serde_json::to_vec_pretty(&v)?)?;
    let _ = std::fs::remove_dir_all(&dir);
    anyhow::ensure!(figures.iter().all(|f| f.get.errors == 0 && f.page.errors == 0), "errors during the scale run");
    Ok(())
}

async fn drop_database(admin: &str, url: &str) {
    let Some((_, name)) = url.rsplit_once('/') else { return };
    let _ = Command::new("psql")
        .args([admin, "-qAtc", &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// What the per-request revocation check costs: the token's signature and expiry alone,
/// against the whole check (signature, expiry, and the key's state from the process's
/// memory, refreshed from the store once a second), in-process, same run.
async fn token_check_cost(garrison_rps: f64) -> anyhow::Result<()> {
    use axum::extract::FromRequestParts;
    let dir = std::env::temp_dir().join(format!("garrison-bench-tokens-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}?mode=rwc", dir.join("g.db").display());
    let store = garrison_store::Store::open(&url, &garrison_store::SealKey::generate()).await?;
    let root = store.init_root(Some("12345678".into()), None).await?.expect("a fresh store");
    let config = garrison_api::ApiConfig {
        public_url: "http://127.0.0.1".into(),
        aws_principal: "123456789012".into(),
        template_bucket: None,
        token_ttl_secs: 3600,
        allow_private_webhooks: true,
        heartbeat_s: 60,
    };
    let state = garrison_api::AppState::new(store.clone(), config).await?;
    let user = store.list_users(&root.account_id).await?.remove(0).id;
    let (token, _) = state.tokens.mint(&root.account_id, &user, &root.access_key_id);
    let n = 200_000u32;
    let parts = || {
        hyper::Request::builder()
            .uri("/deployments/v1/12345678/deployments")
            .header("x-aims-auth-token", &token)
            .body(())
            .map(|r| r.into_parts().0)
    };
    let mut best_verify = f64::MAX;
    let mut best_full = f64::MAX;
    for _ in 0..3 {
        // Both loops build the same request head, so that the difference is the check alone.
        let t = Instant::now();
        for _ in 0..n {
            let p = parts()?;
            let header = p.headers.get("x-aims-auth-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
            std::hint::black_box(state.tokens.verify(header).is_ok());
        }
        best_verify = best_verify.min(t.elapsed().as_nanos() as f64 / n as f64);
        let t = Instant::now();
        for _ in 0..n {
            let mut p = parts()?;
            let caller = garrison_api::Caller::from_request_parts(&mut p, &state).await;
            std::hint::black_box(caller.is_ok());
        }
        best_full = best_full.min(t.elapsed().as_nanos() as f64 / n as f64);
    }
    let added = best_full - best_verify;
    // Per request the server spends 2 cores / rps; the check's share of that.
    let per_request_ns = 2.0e9 / garrison_rps;
    println!(
        "\ntoken check per request: signature and expiry {best_verify:.0} ns; with the revocation check {best_full:.0} ns \
         (+{added:.0} ns, {:.1}% of a GET deployment's {per_request_ns:.0} ns of CPU at the rate above)",
        100.0 * added / per_request_ns
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
