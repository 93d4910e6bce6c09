//! Helpers shared by the end-to-end tests: `garrison serve` as a process on a port it
//! picks, the CLI against it, the emulator's AWS variables, and the customer's side of
//! creating garrison's role from its template.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

pub const KEY_ID: &str = "0123456789abcdef";
pub const SECRET: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const ACCOUNT: &str = "12345678";
/// Servers under test never reach beyond loopback: AWS calls go to a closed local port.
pub const NO_AWS: [(&str, &str); 5] = [
    ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

pub struct Server {
    pub child: Child,
    pub url: String,
    pub dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The standard AWS variables pointing at the emulator.
pub fn moto_env(url: &str) -> [(&str, &str); 5] {
    [
        ("AWS_ENDPOINT_URL", url),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
}

/// What a customer does with get_role: create the role from garrison's template with the
/// external id. Returns the external id and the stack's outputs.
pub async fn customer_creates_role(
    s: &Server,
    aws: &garrison_cloud::Aws,
    role_type: &str,
    stack: &str,
) -> (String, garrison_cloud::stacks::RoleStack) {
    let role = json_out(&garrison(
        s,
        &["themis", "get_role", "--platform_type", "aws", "--role_type", role_type, "--role_version", "latest"],
    ));
    let ext = role["external_id"].as_str().unwrap().to_string();
    let template = json_out(&garrison(
        s,
        &[
            "themis",
            "get_role_template",
            "--platform_type",
            "aws",
            "--role_type",
            role_type,
            "--role_version",
            "latest",
        ],
    ));
    let made =
        garrison_cloud::stacks::create_role_stack(aws, stack, &template.to_string(), &ext, Duration::from_secs(30))
            .await
            .unwrap();
    (ext, made)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn serve() -> Server {
    serve_with(&[])
}

pub fn serve_with(extra: &[&str]) -> Server {
    serve_env(extra, &NO_AWS)
}

/// A server that runs its discovery worker, with `aws_env`.
pub fn serve_env_worker(aws_env: &[(&str, &str)]) -> Server {
    serve_cmd(&[], aws_env, true)
}

/// A server whose AWS calls use `aws_env` (the standard AWS variables).
pub fn serve_env(extra: &[&str], aws_env: &[(&str, &str)]) -> Server {
    serve_cmd(extra, aws_env, false)
}

pub fn serve_cmd(extra: &[&str], aws_env: &[(&str, &str)], worker: bool) -> Server {
    serve_at("127.0.0.1:0", extra, aws_env, worker)
}

/// A server listening on `listen` (a port the caller must know beforehand, e.g. to tell
/// appliances where it is).
pub fn serve_at(listen: &str, extra: &[&str], aws_env: &[(&str, &str)], worker: bool) -> Server {
    let level = std::env::var("GARRISON_TEST_LOG").unwrap_or_else(|_| "warn".into());
    spawn_server(listen, extra, aws_env, worker, &level, Stdio::inherit())
}

/// A server without a worker whose log, at `level`, goes to `log`.
pub fn serve_logging(level: &str, log: Stdio) -> Server {
    spawn_server("127.0.0.1:0", &[], &NO_AWS, false, level, log)
}

fn spawn_server(
    listen: &str,
    extra: &[&str],
    aws_env: &[(&str, &str)],
    worker: bool,
    level: &str,
    log: Stdio,
) -> Server {
    use std::io::BufRead;
    let dir = std::env::temp_dir().join(format!("garrison-cli-{}-{:x}", std::process::id(), rand_u64()));
    // Port 0: the server picks a free port and says which, so parallel tests cannot collide.
    let mut child = Command::new(env!("CARGO_BIN_EXE_garrison"))
        .args(["serve", "--listen", listen, "--data-dir"])
        .arg(&dir)
        .args(if worker { &[][..] } else { &["--no-worker"][..] })
        .args(extra)
        .envs(aws_env.iter().copied())
        .env("GARRISON_ROOT_ACCESS_KEY_ID", KEY_ID)
        .env("GARRISON_ROOT_SECRET_KEY", SECRET)
        .env("GARRISON_ROOT_ACCOUNT_ID", ACCOUNT)
        .env("GARRISON_LOG", level)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start garrison serve");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(u) = l.strip_prefix("garrison: listening on ") {
                    break u.to_string();
                }
            }
            _ => panic!("garrison serve exited before listening"),
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, url, dir }
}

pub fn rand_u64() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        ^ u64::from(std::process::id())
}

pub fn garrison(s: &Server, args: &[&str]) -> Output {
    garrison_env(s, args, &[])
}

/// The CLI against `s` with more environment (the customer's AWS variables for `onboard`).
pub fn garrison_env(s: &Server, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_garrison"))
        .args(args)
        .envs(env.iter().copied())
        .env("GARRISON_ENDPOINT", &s.url)
        .env("GARRISON_ACCESS_KEY_ID", KEY_ID)
        .env("GARRISON_SECRET_KEY", SECRET)
        .env("HOME", &s.dir)
        .output()
        .unwrap()
}

pub fn json_out(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

/// `garrison worker` on the store at `db`, sealed with `key_hex`, calling the emulator;
/// `name` is its host name (leases carry it).
pub fn worker(name: &str, dir: &std::path::Path, db: &str, key_hex: &str, moto_url: &str, extra: &[&str]) -> Child {
    worker_command(name, dir, db, key_hex, moto_url, extra).spawn().expect("start garrison worker")
}

/// The command `worker` runs, for a caller that wants to change its environment or output.
pub fn worker_command(
    name: &str,
    dir: &std::path::Path,
    db: &str,
    key_hex: &str,
    moto_url: &str,
    extra: &[&str],
) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_garrison"));
    c.args(["worker", "--data-dir"])
        .arg(dir)
        .args(["--database-url", db, "--aws-principal", garrison_testkit::tenants::GARRISON])
        .args(extra)
        .env("GARRISON_SEAL_KEY", key_hex)
        .env("HOSTNAME", name)
        .envs(moto_env(moto_url).iter().copied())
        .env("GARRISON_LOG", std::env::var("GARRISON_TEST_LOG").unwrap_or_else(|_| "error".into()))
        .stdout(Stdio::null());
    c
}

pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is required for this test");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA (`<name>-ca.pem`) and a server certificate for 127.0.0.1 it signed
/// (`<name>-cert.pem`, `<name>-key.pem`).
pub fn pki(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let (ca_key, ca) = (format!("{name}-ca-key.pem"), format!("{name}-ca.pem"));
    let (key, csr, cert) = (format!("{name}-key.pem"), format!("{name}.csr"), format!("{name}-cert.pem"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &ca_key,
            "-out",
            &ca,
            "-days",
            "2",
            "-subj",
            &format!("/CN=garrison test CA {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl(dir, &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", "/CN=127.0.0.1"]);
    std::fs::write(dir.join(format!("{name}.ext")), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
    (dir.join(ca), dir.join(cert), dir.join(key))
}
