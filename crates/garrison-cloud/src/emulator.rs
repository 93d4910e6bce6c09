//! The AWS emulator (moto server) on a free loopback port, for tests, benchmarks and the
//! demo: start, wait until it answers, reset between uses, stop on drop. It is found at
//! `$GARRISON_MOTO_SERVER`, else `.venv/bin/moto_server` in this directory or any parent of
//! it or of the running executable, else `moto_server` on PATH; `scripts/setup-python`
//! installs it. When it cannot be found, `start` fails loudly and says how to install it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};

pub struct Moto {
    child: Child,
    pub port: u16,
    pub url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn candidates() -> Vec<PathBuf> {
    let mut out = vec![];
    if let Ok(p) = std::env::var("GARRISON_MOTO_SERVER") {
        out.push(PathBuf::from(p));
    }
    let mut roots = vec![];
    if let Ok(cwd) = std::env::current_dir() {
        roots.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.push(exe);
    }
    for root in roots {
        for dir in root.ancestors() {
            out.push(dir.join(".venv/bin/moto_server"));
        }
    }
    if let Ok(path) = std::env::var("PATH") {
        out.extend(std::env::split_paths(&path).map(|d| d.join("moto_server")));
    }
    out
}

pub fn find_moto() -> anyhow::Result<PathBuf> {
    candidates().into_iter().find(|p| p.is_file()).ok_or_else(|| {
        anyhow::anyhow!("the AWS emulator (moto_server) was not found: run scripts/setup-python (pip install 'moto[server]' into .venv) or set GARRISON_MOTO_SERVER")
    })
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A small HTTP/1.0 exchange; enough for moto's control API.
fn http(port: u16, method: &str, path: &str) -> std::io::Result<String> {
    http_with(port, method, path, "")
}

fn http_with(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let len = body.len();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n{body}"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

impl Moto {
    pub fn start() -> anyhow::Result<Moto> {
        Moto::start_with(&[])
    }

    /// `start` with these environment variables set for the emulator (its settings, such as
    /// `MOTO_EC2_LOAD_DEFAULT_AMIS`).
    pub fn start_with(env: &[(&str, &str)]) -> anyhow::Result<Moto> {
        let bin = find_moto()?;
        let port = free_port()?;
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting {}: {e}", bin.display()))?;
        let moto = Moto { child, port, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http(port, "GET", "/moto-api/data.json")
                && r.starts_with("HTTP/1.")
                && r.contains(" 200 ")
            {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "moto_server on port {port} did not become ready in 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(moto)
    }

    /// The emulator's process id (benchmarks read its CPU time and memory).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Forgets every resource in every emulated account.
    pub fn reset(&self) -> anyhow::Result<()> {
        let r = http(self.port, "POST", "/moto-api/reset")?;
        anyhow::ensure!(r.contains(" 200 "), "moto reset failed: {}", r.lines().next().unwrap_or(""));
        Ok(())
    }

    /// What Inspector's `ListFindings` answers next in `account`'s `region`: each item of
    /// `results` is the findings of one call with new arguments (moto's own control API; the
    /// same arguments again get the same answer). The findings are in the API's shape.
    pub fn seed_inspector_findings(
        &self,
        account: &str,
        region: &str,
        results: &[Vec<serde_json::Value>],
    ) -> anyhow::Result<()> {
        let body = serde_json::json!({"results": results, "account_id": account, "region": region}).to_string();
        let r = http_with(self.port, "POST", "/moto-api/static/inspector2/findings-results", &body)?;
        anyhow::ensure!(
            r.contains(" 201 ") || r.contains(" 200 "),
            "seeding Inspector findings failed: {}",
            r.lines().next().unwrap_or("")
        );
        Ok(())
    }

    /// SDK configuration pointing at the emulator with test credentials.
    pub async fn sdk_config(&self, region: &str) -> SdkConfig {
        sdk_config(&self.url, region).await
    }
}

/// SDK configuration for an emulator (or a proxy in front of it) at `endpoint`.
pub async fn sdk_config(endpoint: &str, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "garrison-emulator",
        ))
        .load()
        .await
}
