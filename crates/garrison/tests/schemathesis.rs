//! Hostile input, generated from the contract: schemathesis reads `/openapi.json` of a real
//! `garrison serve` and sends every operation valid and invalid data (a bounded number of
//! cases each, fixed seed), signed in as the tenant the requests name. No answer may be a
//! server error, break the documented response schema or content type.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

fn schemathesis() -> PathBuf {
    let p = std::env::var("GARRISON_SCHEMATHESIS").map(PathBuf::from).unwrap_or_else(|_| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-schemathesis/bin/schemathesis")
    });
    assert!(p.exists(), "schemathesis is needed for this test: run scripts/setup-python ({} is missing)", p.display());
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_get_no_server_error_and_match_the_schema() {
    let bin = schemathesis();
    let s = serve();
    let auth: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/aims/v1/authenticate", s.url))
        .basic_auth(KEY_ID, Some(SECRET))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = auth["authentication"]["token"].as_str().unwrap();
    let hooks = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/schemathesis");
    // schemathesis keeps a run cache (`.schemathesis/`) in its working directory: a
    // scratch one, so that the checkout is left as it was.
    let scratch = std::env::temp_dir().join(format!("garrison-schemathesis-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let out = Command::new(bin)
        .args(["run", &format!("{}/openapi.json", s.url)])
        .args(["-H", &format!("x-aims-auth-token: {token}")])
        .args(["--max-examples", "20", "--seed", "20261130", "-w", "2"])
        .args(["-c", "not_a_server_error,response_schema_conformance,content_type_conformance"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .current_dir(&scratch)
        .env("PYTHONPATH", &hooks)
        .env("SCHEMATHESIS_HOOKS", "garrison_hooks")
        .env("GARRISON_ACCOUNT", ACCOUNT)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&scratch);
    let text = String::from_utf8_lossy(&out.stdout);
    let summary: Vec<&str> = text.lines().filter(|l| l.contains("generated,")).collect();
    println!("schemathesis: {}", summary.join(" "));
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let line = summary.first().expect("a summary line");
    let n: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert!(n.len() >= 2 && n[0] == n[1] && n[0] >= 500, "every generated case passed, and there were many: {line}");
}
