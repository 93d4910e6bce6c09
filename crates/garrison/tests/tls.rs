//! TLS end to end: a CA and certificates made by the test (openssl), `garrison serve` over
//! TLS, the CLI verifying the server against `--ca-bundle` / `GARRISON_CA_BUNDLE`, a wrong
//! CA refused with words that say what to do, TLS 1.1 refused and 1.2 taken, HSTS on the
//! dashboard, a certificate swapped and SIGHUP'd served on new connections, and a worker's
//! `/metrics` over TLS.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{KEY_ID, SECRET, pki};

fn cli(url: &str, home: &Path, bundle: Option<&Path>, args: &[&str]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_garrison"));
    c.args(args)
        .env("GARRISON_ENDPOINT", url)
        .env("GARRISON_ACCESS_KEY_ID", KEY_ID)
        .env("GARRISON_SECRET_KEY", SECRET)
        .env("HOME", home)
        .env_remove("GARRISON_CA_BUNDLE")
        .env_remove("SSL_CERT_FILE");
    if let Some(b) = bundle {
        c.env("GARRISON_CA_BUNDLE", b);
    }
    c.output().unwrap()
}

fn client(ca: &Path) -> reqwest::Client {
    let pem = std::fs::read(ca).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// What `openssl s_client` says of a handshake with `version` (`-tls1_1`, `-tls1_2`), and
/// whether it completed. Security level 0: the client offers TLS 1.1, so that a refusal is
/// the server's.
fn try_handshake(port: &str, version: &str, ca: &Path) -> (bool, String) {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            version,
            "-cipher",
            "DEFAULT@SECLEVEL=0",
            "-CAfile",
        ])
        .arg(ca)
        .args(["-verify_return_error", "-brief"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    (out.status.success() && text.contains("CONNECTION ESTABLISHED"), text)
}

fn handshake(port: &str, version: &str, ca: &Path) -> bool {
    try_handshake(port, version, ca).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_speaks_tls_the_cli_verifies_it_and_a_new_certificate_is_taken_on_sighup() {
    let dir = std::env::temp_dir().join(format!("garrison-tls-{}-{:x}", std::process::id(), common::rand_u64()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca1, cert1, key1) = pki(&dir, "one");
    let (ca2, cert2, key2) = pki(&dir, "two");
    // The server reads the files it is given; the test swaps their contents later.
    let (cert, key) = (dir.join("server-cert.pem"), dir.join("server-key.pem"));
    std::fs::copy(&cert1, &cert).unwrap();
    std::fs::copy(&key1, &key).unwrap();
    let server = common::serve_with(&["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    assert!(server.url.starts_with("https://127.0.0.1:"), "{}", server.url);
    let port = server.url.rsplit(':').next().unwrap().to_string();

    // The CLI with the CA that signed the server's certificate.
    let ok = cli(&server.url, &server.dir, Some(&ca1), &["deployments", "list_deployments"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&ok.stdout).unwrap(), serde_json::json!([]));
    // Without it, or with another CA: refused, saying what to do; exit 3 (unreachable).
    for bundle in [None, Some(ca2.as_path())] {
        let no = cli(&server.url, &server.dir, bundle, &["deployments", "list_deployments"]);
        let err = String::from_utf8_lossy(&no.stderr);
        assert_eq!(no.status.code(), Some(3), "{err}");
        assert!(err.contains("TLS certificate is not trusted") && err.contains("--ca-bundle"), "{err}");
    }
    // A bundle that is not PEM is named.
    std::fs::write(dir.join("junk.pem"), "not a certificate").unwrap();
    let junk = cli(&server.url, &server.dir, Some(&dir.join("junk.pem")), &["deployments", "list_deployments"]);
    assert!(String::from_utf8_lossy(&junk.stderr).contains("junk.pem"), "{}", String::from_utf8_lossy(&junk.stderr));
    assert_ne!(junk.status.code(), Some(0));

    // TLS 1.2 and 1.3 only; HSTS on the dashboard; no plain HTTP on the port.
    assert!(handshake(&port, "-tls1_2", &ca1), "TLS 1.2 is taken");
    assert!(handshake(&port, "-tls1_3", &ca1), "TLS 1.3 is taken");
    let (done, said) = try_handshake(&port, "-tls1_1", &ca1);
    assert!(!done && said.contains("alert"), "TLS 1.1 is refused by the server: {said}");
    let page = client(&ca1).get(format!("{}/", server.url)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["strict-transport-security"], "max-age=31536000");
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/health")).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success(), "no plain HTTP");

    // A connection opened before the swap; then the files swapped for CA two's, SIGHUP.
    let before = client(&ca1);
    std::fs::copy(&cert2, &cert).unwrap();
    std::fs::copy(&key2, &key).unwrap();
    let hup = Command::new("kill").args(["-HUP", &server.child.id().to_string()]).status().unwrap();
    assert!(hup.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !handshake(&port, "-tls1_3", &ca2) {
        assert!(std::time::Instant::now() < deadline, "the new certificate is never served");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let ok = cli(&server.url, &server.dir, Some(&ca2), &["deployments", "list_deployments"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let old = cli(&server.url, &server.dir, Some(&ca1), &["deployments", "list_deployments"]);
    assert_eq!(old.status.code(), Some(3), "the old CA no longer verifies new connections");
    assert!(
        before.get(format!("{}/health", server.url)).send().await.is_err(),
        "a new connection sees the new certificate"
    );
    // A bad file on SIGHUP: the certificate in use stays.
    std::fs::write(&cert, "garbage").unwrap();
    Command::new("kill").args(["-HUP", &server.child.id().to_string()]).status().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(handshake(&port, "-tls1_2", &ca2), "still served after a failed reload");

    // A worker's /metrics over TLS.
    let db = format!("sqlite://{}?mode=rwc", dir.join("w.db").display());
    let metrics = common::free_port();
    let listen = format!("127.0.0.1:{metrics}");
    let mut w = common::worker_command(
        "tls",
        &dir,
        &db,
        &garrison_store::SealKey::generate().to_hex(),
        "http://127.0.0.1:9",
        &["--metrics-listen", &listen, "--tls-cert", cert2.to_str().unwrap(), "--tls-key", key2.to_str().unwrap()],
    )
    .spawn()
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let scraped = loop {
        if let Ok(r) = client(&ca2).get(format!("https://{listen}/metrics")).send().await {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "the worker's metrics never answered over TLS");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(scraped.status(), 200);
    let plain = reqwest::get(format!("http://{listen}/metrics")).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success(), "no plain HTTP");
    let _ = w.kill();
    let _ = w.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
