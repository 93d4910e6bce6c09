//! bench/api at scale: 10,000 deployments (each with its own credential, as an enrolled
//! organization has them) in one account and in 100 accounts of 100, on SQLite and on
//! PostgreSQL. Create, get, a page of 100 and the whole list, each against the minimal
//! handler answering the same bytes in the same run, and the server's memory.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use garrison_bench::{
    LoadResult, Memory, Proc, call, free_port, keep_smaps, memory_mib, post_all, run_paths, wait_port,
};
use serde_json::{Value, json};

use super::{KEY_ID, SECRET};

pub const PROFESSIONAL: &str = "D12D5E67-166C-474F-87AA-6F86FC9FB9BC";

pub struct Layout {
    pub name: &'static str,
    pub accounts: usize,
}

pub const LAYOUTS: [Layout; 2] =
    [Layout { name: "one account", accounts: 1 }, Layout { name: "100 accounts", accounts: 100 }];

fn aws_account(i: usize) -> String {
    format!("{:012}", 100_000_000_000u64 + i as u64)
}

/// Latency percentile of µs samples, in ms.
fn pct(samples: &[u32], p: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort_unstable();
    s.get(((s.len() as f64 * p) as usize).min(s.len().saturating_sub(1))).copied().unwrap_or(0) as f64 / 1000.0
}

pub struct Figures {
    pub backend: &'static str,
    pub layout: &'static str,
    pub n: usize,
    /// Create deployment: (p50, p99) ms of the first 1,000 and of the last 1,000, and creates/s.
    pub create_first: (f64, f64),
    pub create_last: (f64, f64),
    pub create_rps: f64,
    pub get: LoadResult,
    pub page: LoadResult,
    /// The whole list of the largest account: best of three, ms, and its size in MB.
    pub whole_ms: f64,
    pub whole_mb: f64,
    /// After the creates, and at the end (after every load).
    pub mem_created: Memory,
    pub mem: Memory,
    /// The ceiling's figures in the same run: create (rps, p99), get, page.
    pub ceil_create: (f64, f64),
    pub ceil_get: LoadResult,
    pub ceil_page: LoadResult,
}

/// One backend × layout: a fresh server and store, `n` deployments, the measurements.
#[allow(clippy::too_many_arguments)]
pub async fn measure(
    garrison: &Path,
    exe: &Path,
    dir: &Path,
    backend: &'static str,
    database_url: Option<&str>,
    layout: &Layout,
    n: usize,
    secs: f64,
) -> anyhow::Result<Figures> {
    let data = dir.join(format!("{backend}-{}", layout.accounts));
    let port = free_port();
    let mut cmd = super::serve(garrison, port, &data);
    if let Some(url) = database_url {
        cmd.args(["--database-url", url]);
    }
    let server = Proc(cmd.spawn()?);
    wait_port(port);
    keep_smaps(server.0.id(), &format!("{backend}-{}-started", layout.accounts));
    let addr = format!("127.0.0.1:{port}");
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{KEY_ID}:{SECRET}"))
    );
    let (_, auth) = call(&addr, "POST", "/aims/v1/authenticate", &[("authorization", basic)], None).await?;
    let token = auth["authentication"]["token"].as_str().unwrap_or_default().to_string();
    let h = [("x-aims-auth-token", token.clone())];

    let mut accounts = vec!["12345678".to_string()];
    if layout.accounts > 1 {
        accounts.clear();
        for i in 0..layout.accounts {
            let (st, a) = call(
                &addr,
                "POST",
                "/aims/v1/12345678/managed_accounts",
                &h,
                Some(json!({"name": format!("tenant {i}")})),
            )
            .await?;
            anyhow::ensure!(st == 201, "create account: {st} {a}");
            accounts.push(a["id"].as_str().unwrap_or_default().to_string());
        }
    }
    let accounts = Arc::new(accounts);
    // Item i lives in account i % accounts: every account grows at the same pace.
    let acct = {
        let a = accounts.clone();
        move |i: usize| a[i % a.len()].clone()
    };

    // Credentials first (their own pass), then the deployments, each naming its own.
    let a2 = acct.clone();
    let (creds, _) = post_all(&addr, n, 4, &h, Arc::new(move |i| {
        (format!("/credentials/v2/{}/credentials", a2(i)),
         json!({"name": format!("member {i}"), "secrets": {"type": "aws_iam_role", "arn": format!("arn:aws:iam::{}:role/garrison", aws_account(i))}}))
    })).await?;
    anyhow::ensure!(
        creds.iter().all(|c| c.0 == 200),
        "a credential was refused: {:?}",
        creds.iter().find(|c| c.0 != 200)
    );
    let cred_ids: Arc<Vec<String>> =
        Arc::new(creds.iter().map(|c| c.1["id"].as_str().unwrap_or_default().to_string()).collect());
    let body = {
        let ids = cred_ids.clone();
        move |i: usize| {
            json!({"name": format!("member {i}"), "platform": {"type": "aws", "id": aws_account(i)}, "mode": "automatic",
                "credentials": [{"id": ids[i], "purpose": "discover"}],
                "scope": {"include": [{"type": "region", "key": "/aws/us-east-1", "policy": {"id": PROFESSIONAL}}], "exclude": []}})
        }
    };
    let (a3, b3) = (acct.clone(), body.clone());
    let (deps, create_secs) =
        post_all(&addr, n, 1, &h, Arc::new(move |i| (format!("/deployments/v1/{}/deployments", a3(i)), b3(i)))).await?;
    anyhow::ensure!(
        deps.iter().all(|d| d.0 == 201),
        "a deployment was refused: {:?}",
        deps.iter().find(|d| d.0 != 201)
    );
    let mem_created = memory_mib(server.0.id());
    keep_smaps(server.0.id(), &format!("{backend}-{}-created", layout.accounts));
    let lat: Vec<u32> = deps.iter().map(|d| d.2).collect();
    let k = 1000.min(n);
    let create_first = (pct(&lat[..k], 0.5), pct(&lat[..k], 0.99));
    let create_last = (pct(&lat[n - k..], 0.5), pct(&lat[n - k..], 0.99));
    let dep_paths: Vec<String> = deps
        .iter()
        .enumerate()
        .map(|(i, d)| format!("/deployments/v1/{}/deployments/{}", acct(i), d.1["id"].as_str().unwrap_or_default()))
        .collect();
    // Read in a scattered order: no two neighbours share a cache line of the store.
    let mut scattered: Vec<String> = (0..n).map(|i| dep_paths[(i * 7919) % n].clone()).collect();
    scattered.dedup();

    // Pages of 100 of the largest account, every one of them, by their links.
    let big = accounts[0].clone();
    let list = format!("/deployments/v1/{big}/deployments");
    let mut pages = vec![format!("{list}?limit=100")];
    loop {
        let (st, next) = link(&addr, pages.last().unwrap(), &token).await?;
        anyhow::ensure!(st == 200, "page: {st}");
        match next {
            Some(p) => pages.push(p),
            None => break,
        }
    }
    let (_, page_body) = call(&addr, "GET", &pages[0], &h, None).await?;

    // The whole list of the largest account, best of three.
    let mut whole_ms = f64::MAX;
    let mut whole_bytes = 0usize;
    for _ in 0..3 {
        let t = Instant::now();
        let (st, v) = call(&addr, "GET", &list, &h, None).await?;
        whole_ms = whole_ms.min(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(st == 200 && v.as_array().map(Vec::len) == Some(n / accounts.len()), "whole list: {st}");
        whole_bytes = v.to_string().len();
    }

    // The ceiling: the same bytes from a bare handler in its own process.
    let dep_file = data.join("ceiling-deployment.json");
    let page_file = data.join("ceiling-page.json");
    let (_, one) = call(&addr, "GET", &dep_paths[0], &h, None).await?;
    std::fs::write(&dep_file, serde_json::to_vec(&one)?)?;
    std::fs::write(&page_file, serde_json::to_vec(&page_body)?)?;
    let cport = free_port();
    let _c =
        Proc(Command::new(exe).args(["--ceiling-server", &cport.to_string()]).arg(&dep_file).arg(&page_file).spawn()?);
    wait_port(cport);
    let caddr = format!("127.0.0.1:{cport}");
    let (a4, b4) = (acct.clone(), body.clone());
    let (ceil, ceil_secs) =
        post_all(&caddr, n, 1, &[], Arc::new(move |i| (format!("/deployments/v1/{}/deployments", a4(i)), b4(i))))
            .await?;
    let ceil_lat: Vec<u32> = ceil.iter().map(|c| c.2).collect();

    let scattered = Arc::new(scattered);
    let pages = Arc::new(pages);
    run_paths(&addr, scattered.clone(), &h, 32, 1.0).await?;
    let get = run_paths(&addr, scattered.clone(), &h, 32, secs).await?;
    let ceil_get = run_paths(&caddr, scattered, &[], 32, secs).await?;
    let page = run_paths(&addr, pages.clone(), &h, 32, secs).await?;
    let ceil_page = run_paths(&caddr, pages, &[], 32, secs).await?;
    let mem = memory_mib(server.0.id());
    keep_smaps(server.0.id(), &format!("{backend}-{}-loaded", layout.accounts));
    drop(server);
    Ok(Figures {
        backend,
        layout: layout.name,
        n,
        create_first,
        create_last,
        create_rps: n as f64 / create_secs,
        get,
        page,
        whole_ms,
        whole_mb: whole_bytes as f64 / 1e6,
        mem_created,
        mem,
        ceil_create: (n as f64 / ceil_secs, pct(&ceil_lat, 0.99)),
        ceil_get,
        ceil_page,
    })
}

/// A GET's status and the target of its `Link: <…>; rel="next"` header.
async fn link(addr: &str, path: &str, token: &str) -> anyhow::Result<(u16, Option<String>)> {
    use http_body_util::{BodyExt, Empty};
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = hyper::Request::get(path).header("host", addr).header("x-aims-auth-token", token);
    let resp = send.send_request(req.body(Empty::<bytes::Bytes>::new())?).await?;
    let next = resp
        .headers()
        .get("link")
        .and_then(|l| l.to_str().ok())
        .and_then(|l| l.strip_prefix('<'))
        .and_then(|l| l.split_once('>'))
        .map(|(t, _)| t.to_string());
    let status = resp.status().as_u16();
    resp.into_body().collect().await?;
    Ok((status, next))
}

pub fn print(all: &[Figures]) -> Value {
    println!(
        "\n| store | layout | create p50/p99 ms (first 1,000 → last 1,000) | creates/s (ceiling) | get req/s, p99 ms (ratio to ceiling) | page of 100 req/s, p99 ms (ratio) | whole list of the largest account | RSS after creates / after the loads / peak MiB (own data of it: after the loads) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut out = vec![];
    for f in all {
        println!(
            "| {} | {} × {} | {:.2}/{:.2} → {:.2}/{:.2} | {:.0} ({:.0}, p99 {:.2}) | {:.0}, {:.2} ({:.2}) | {:.0}, {:.2} ({:.2}) | {:.0} ms, {:.1} MB | {:.0} / {:.0} / {:.0} ({:.0}) |",
            f.backend,
            f.layout,
            f.n,
            f.create_first.0,
            f.create_first.1,
            f.create_last.0,
            f.create_last.1,
            f.create_rps,
            f.ceil_create.0,
            f.ceil_create.1,
            f.get.rps(),
            f.get.p99_us as f64 / 1e3,
            f.get.rps() / f.ceil_get.rps(),
            f.page.rps(),
            f.page.p99_us as f64 / 1e3,
            f.page.rps() / f.ceil_page.rps(),
            f.whole_ms,
            f.whole_mb,
            f.mem_created.rss,
            f.mem.rss,
            f.mem.peak,
            f.mem.anon
        );
        out.push(json!({
            "store": f.backend, "layout": f.layout, "deployments": f.n,
            "create": {"first_p50_ms": f.create_first.0, "first_p99_ms": f.create_first.1, "last_p50_ms": f.create_last.0, "last_p99_ms": f.create_last.1,
                "rps": f.create_rps, "ceiling_rps": f.ceil_create.0, "ceiling_p99_ms": f.ceil_create.1},
            "get": {"rps": f.get.rps(), "p99_ms": f.get.p99_us as f64 / 1e3, "errors": f.get.errors, "ceiling_rps": f.ceil_get.rps(), "ratio": f.get.rps() / f.ceil_get.rps()},
            "page": {"rps": f.page.rps(), "p99_ms": f.page.p99_us as f64 / 1e3, "errors": f.page.errors, "ceiling_rps": f.ceil_page.rps(), "ratio": f.page.rps() / f.ceil_page.rps()},
            "whole_list": {"ms": f.whole_ms, "mb": f.whole_mb},
            "rss_after_creates_mib": f.mem_created.rss, "rss_mib": f.mem.rss, "peak_rss_mib": f.mem.peak,
            "anon_rss_mib": f.mem.anon, "file_rss_mib": f.mem.file,
        }));
    }
    println!(
        "\ntargets: RSS <= 50 MiB on SQLite; create p99 <= 5 ms at 10,000 (and no growth from the first 1,000); a page of 100 p99 <= 20 ms; get >= 0.5 of the ceiling"
    );
    Value::Array(out)
}
