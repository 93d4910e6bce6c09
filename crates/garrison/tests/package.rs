//! The Debian package on a clean Debian: `scripts/package-deb` packs this build's binary; a
//! fresh Debian 12 root (debootstrap's minbase with systemd, `scripts/debian-root`) takes it
//! with `dpkg -i`; `systemd-analyze verify` accepts the units and rates them "OK"; the
//! installed binary starts as the service user, with the unit's command line and
//! environment file and the installed configuration (TLS added as an operator would), and
//! answers `/health` over TLS; an upgrade keeps the keys and the store readable; a purge keeps
//! the store. Needs root (chroot), as CI has.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::pki;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed ({}): {text}", out.status);
    text
}

struct Root(PathBuf);

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The unit's `key=` values, in order.
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines().filter_map(|l| l.strip_prefix(&format!("{key}="))).map(str::to_string).collect()
}

/// `uid` of a user in the root's passwd.
fn uid_of(root: &Path, user: &str) -> u32 {
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    let line = passwd.lines().find(|l| l.starts_with(&format!("{user}:"))).unwrap_or_else(|| panic!("no user {user}"));
    line.split(':').nth(2).unwrap().parse().unwrap()
}

/// `gid` of a group in the root's group file.
fn gid_of(root: &Path, group: &str) -> u32 {
    let groups = std::fs::read_to_string(root.join("etc/group")).unwrap();
    let line =
        groups.lines().find(|l| l.starts_with(&format!("{group}:"))).unwrap_or_else(|| panic!("no group {group}"));
    line.split(':').nth(2).unwrap().parse().unwrap()
}

fn env_file(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Starts the installed unit's command as the unit's user inside the root (its own mount
/// namespace with /proc), with the unit's environment file read as systemd (root) would.
fn start_unit(root: &Path, unit_name: &str) -> Child {
    let unit = std::fs::read_to_string(root.join("lib/systemd/system").join(unit_name)).unwrap();
    let user = unit_values(&unit, "User").pop().expect("User=");
    let group = unit_values(&unit, "Group").pop().expect("Group=");
    let exec = unit_values(&unit, "ExecStart").pop().expect("ExecStart=");
    let env_path = unit_values(&unit, "EnvironmentFile").pop().expect("EnvironmentFile=");
    let env = env_file(&root.join(env_path.trim_start_matches('-').trim_start_matches('/')));
    // Numeric ids: the names are the Debian root's, not this machine's.
    let (uid, gid) = (uid_of(root, &user), gid_of(root, &group));
    let script =
        format!("mount -t proc proc {r}/proc && exec chroot --userspec={uid}:{gid} {r} {exec}", r = root.display());
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "--fork", "--kill-child", "sh", "-c", &script])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().expect("unshare")
}

fn client(ca: &Path) -> reqwest::Client {
    let pem = std::fs::read(ca).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn health(url: &str, ca: &Path, child: &mut Child) -> serde_json::Value {
    let http = client(ca);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("{url}/health")).send().await
            && r.status() == 200
        {
            return r.json().await.unwrap();
        }
        if let Some(status) = child.try_wait().unwrap() {
            use std::io::Read;
            let mut text = String::new();
            child.stdout.take().unwrap().read_to_string(&mut text).unwrap();
            child.stderr.take().unwrap().read_to_string(&mut text).unwrap();
            panic!("garrison ended ({status}): {text}");
        }
        assert!(Instant::now() < deadline, "no /health over TLS at {url} within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let mut out = vec![];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // "pid (comm) state ppid …": comm may hold spaces, so read after its last ')'.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(pid)
            && let Ok(p) = entry.file_name().to_string_lossy().parse()
        {
            out.push(p);
        }
    }
    out
}

/// Stops garrison as systemd would (SIGTERM to the service's process, which dropped its
/// privileges and so outlives `unshare` being killed), then collects what it printed.
fn stop(mut child: Child) -> String {
    for pid in children(child.id()) {
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            for pid in children(child.id()) {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            }
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn mode(p: &Path) -> (u32, u32) {
    let m = std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.permissions().mode() & 0o7777, m.uid())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_package_installs_on_a_clean_debian_and_runs_as_its_service_user_over_tls() {
    assert_eq!(
        run(Command::new("id").arg("-u")).trim(),
        "0",
        "this test installs a package into a Debian root with chroot: run it as root (CI does)"
    );
    let work = std::env::temp_dir().join(format!("garrison-package-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let work = Root(work);
    let root = work.0.join("root");
    std::fs::create_dir_all(&root).unwrap();

    // A clean Debian, and the package made from this build.
    let tarball = run(&mut Command::new(repo().join("scripts/debian-root")));
    run(Command::new("tar").arg("-C").arg(&root).arg("-xf").arg(tarball.trim()));
    let deb = run(Command::new(repo().join("scripts/package-deb")).args([
        "--binary",
        env!("CARGO_BIN_EXE_garrison"),
        "--fast",
        "--out",
        work.0.to_str().unwrap(),
    ]));
    let deb = PathBuf::from(deb.trim());
    let info = run(Command::new("dpkg-deb").arg("--info").arg(&deb));
    assert!(info.contains("Package: garrison") && info.contains("Depends: libc6 (>= 2."), "{info}");
    // Packed relocations (build.rs) run on glibc 2.36 and later only: the package says so.
    let minor: u32 = info
        .split("libc6 (>= 2.")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(minor >= 36, "{info}");
    let contents = run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    for f in [
        "./usr/bin/garrison",
        "./lib/systemd/system/garrison.service",
        "./lib/systemd/system/garrison-worker.service",
        "./etc/garrison/garrison.toml",
        "./usr/share/doc/garrison/README.Debian",
    ] {
        assert!(contents.contains(f), "{f} in the package: {contents}");
    }
    std::fs::copy(&deb, root.join("tmp/garrison.deb")).unwrap();
    let installed = run(Command::new("chroot").arg(&root).args(["dpkg", "-i", "/tmp/garrison.deb"]));
    assert!(installed.contains("Setting up garrison"), "{installed}");
    let status = run(Command::new("chroot").arg(&root).args(["dpkg-query", "-W", "-f", "${Status}", "garrison"]));
    assert_eq!(status, "install ok installed");

    // What the maintainer scripts made: a system user, private state, a sealed-key file only
    // it reads, the root account's key for root only (and never printed).
    let uid = uid_of(&root, "garrison");
    assert!(uid < 1000, "a system user: uid {uid}");
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.contains("garrison:x:") && passwd.contains(":/var/lib/garrison:/usr/sbin/nologin"), "{passwd}");
    assert_eq!(mode(&root.join("var/lib/garrison")), (0o700, uid));
    assert_eq!(mode(&root.join("etc/garrison/seal.key")), (0o600, uid));
    assert_eq!(mode(&root.join("etc/garrison/garrison.env")), (0o600, 0));
    assert_eq!(mode(&root.join("etc/garrison")).0, 0o750);
    let seal = std::fs::read_to_string(root.join("etc/garrison/seal.key")).unwrap();
    assert_eq!(seal.trim().len(), 64, "32 bytes in hex");
    let env = env_file(&root.join("etc/garrison/garrison.env"));
    let secret = env.iter().find(|(k, _)| k == "GARRISON_ROOT_SECRET_KEY").unwrap().1.clone();
    let key_id = env.iter().find(|(k, _)| k == "GARRISON_ROOT_ACCESS_KEY_ID").unwrap().1.clone();
    assert!(!installed.contains(&secret), "the install never prints the root secret");

    // The units: accepted by systemd, and hardened ("OK" is an exposure of 2.0 at most).
    run(Command::new("systemd-analyze").arg(format!("--root={}", root.display())).args([
        "verify",
        "garrison.service",
        "garrison-worker.service",
    ]));
    for unit in ["garrison.service", "garrison-worker.service"] {
        let report = run(Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--threshold=20"])
            .arg(format!("--root={}", root.display()))
            .arg(unit));
        assert!(report.contains("OK"), "{unit}: {report}");
        let text = std::fs::read_to_string(root.join("lib/systemd/system").join(unit)).unwrap();
        for line in
            ["User=garrison", "ProtectSystem=strict", "NoNewPrivileges=true", "ReadWritePaths=/var/lib/garrison"]
        {
            assert!(text.lines().any(|l| l == line), "{unit} has {line}");
        }
    }

    // The operator adds TLS to the installed configuration, as README.Debian says.
    let tls = root.join("etc/garrison/tls");
    std::fs::create_dir_all(&tls).unwrap();
    let (ca, cert, key) = pki(&work.0, "pkg");
    std::fs::copy(&cert, tls.join("cert.pem")).unwrap();
    std::fs::copy(&key, tls.join("key.pem")).unwrap();
    run(Command::new("chroot").arg(&root).args([
        "sh",
        "-c",
        "chgrp -R garrison /etc/garrison/tls && chmod 0750 /etc/garrison/tls && chmod 0640 /etc/garrison/tls/key.pem",
    ]));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = root.join("etc/garrison/garrison.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("listen = \"127.0.0.1:8080\"") && text.contains("data_dir = \"/var/lib/garrison\""));
    let text = text.replace("listen = \"127.0.0.1:8080\"", &format!("listen = \"127.0.0.1:{port}\"")).replace(
        "# tls_cert = \"/etc/garrison/tls/cert.pem\"\n# tls_key = \"/etc/garrison/tls/key.pem\"",
        "tls_cert = \"/etc/garrison/tls/cert.pem\"\ntls_key = \"/etc/garrison/tls/key.pem\"",
    );
    assert!(text.contains("\ntls_cert = "), "the shipped configuration names the TLS keys: {text}");
    std::fs::write(&config, &text).unwrap();

    let url = format!("https://127.0.0.1:{port}");
    let mut child = start_unit(&root, "garrison.service");
    assert_eq!(health(&url, &ca, &mut child).await, serde_json::json!({"status": "ok"}));
    // It ran as the service user: the store it made is that user's, private.
    assert_eq!(mode(&root.join("var/lib/garrison/garrison.db")), (0o600, uid));
    // The root account's key from the environment file signs in.
    let http = client(&ca);
    let auth =
        http.post(format!("{url}/aims/v1/authenticate")).basic_auth(&key_id, Some(&secret)).send().await.unwrap();
    assert_eq!(auth.status(), 200);
    assert!(auth.headers().contains_key("strict-transport-security"));
    let token: serde_json::Value = auth.json().await.unwrap();
    let token = token["authentication"]["token"].as_str().unwrap().to_string();
    let r = http
        .post(format!("{url}/credentials/v2/{}/credentials", "00000000"))
        .header("x-aims-auth-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "another account than the root's");
    let log = stop(child);
    assert!(log.contains("with the access key from the environment"), "{log}");
    assert!(!log.contains(&secret), "the secret never reaches the log");

    // Upgrade (the same package again: postinst's upgrade path): keys kept, the edited
    // configuration kept, the store opened with the kept seal key, the key still signs in.
    let again = run(Command::new("chroot").arg(&root).args(["dpkg", "-i", "/tmp/garrison.deb"]));
    assert!(!again.contains(&secret) && !again.contains("installed. Edit"), "{again}");
    assert_eq!(std::fs::read_to_string(root.join("etc/garrison/seal.key")).unwrap(), seal);
    assert_eq!(env_file(&root.join("etc/garrison/garrison.env")), env);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text, "dpkg keeps the operator's configuration");
    let mut child = start_unit(&root, "garrison.service");
    health(&url, &ca, &mut child).await;
    let auth =
        http.post(format!("{url}/aims/v1/authenticate")).basic_auth(&key_id, Some(&secret)).send().await.unwrap();
    assert_eq!(auth.status(), 200, "the store written before the upgrade opens after it");
    stop(child);

    // Purge: the configuration goes, the store and its seal key stay.
    let purged = run(Command::new("chroot").arg(&root).args(["dpkg", "--purge", "garrison"]));
    assert!(purged.contains("are kept"), "{purged}");
    assert!(!root.join("usr/bin/garrison").exists());
    assert!(!root.join("etc/garrison/garrison.env").exists() && !config.exists());
    assert!(root.join("var/lib/garrison/garrison.db").exists() && root.join("etc/garrison/seal.key").exists());
}
