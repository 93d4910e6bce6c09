//! What a client asks of PostgreSQL, counted on the wire: a TCP relay between the processes
//! under measurement and the server that reads the server's answers as they pass. Every
//! statement the server completes sends one CommandComplete message whose tag says what it
//! did and to how many rows ("INSERT 0 3", "UPDATE 1", "SELECT 12", "COMMIT"), for the simple
//! and the extended protocol alike, so counting those tags counts statements and rows exactly,
//! whatever the client library, without asking the server to keep statistics
//! (`pg_stat_statements` needs a restart with a preloaded library; `pg_stat_database` is
//! flushed late and counts every client of the database, the bench's own included).
//!
//! The client's side is read too, for a breakdown: the SQL of each statement executed (a
//! simple Query's text, or the text an extended-protocol Execute's portal was bound from)
//! is queued per connection, and each CommandComplete is counted against the statement at
//! the head of the queue (answers come back in order; ReadyForQuery empties the queue).
//!
//! The relay refuses TLS (answers `N` to SSLRequest and GSSENCRequest, as a server without
//! TLS does), so a client in the default `prefer` mode carries on in the clear.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Totals since the relay started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Statements the server completed (transaction control included).
    pub statements: u64,
    /// Of which COMMIT.
    pub commits: u64,
    /// Rows inserted, updated, deleted or merged.
    pub rows_written: u64,
    /// Rows SELECT returned.
    pub rows_read: u64,
    /// Statements that failed (ErrorResponse).
    pub errors: u64,
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, b: Counts) -> Counts {
        Counts {
            statements: self.statements - b.statements,
            commits: self.commits - b.commits,
            rows_written: self.rows_written - b.rows_written,
            rows_read: self.rows_read - b.rows_read,
            errors: self.errors - b.errors,
        }
    }
}

/// One statement's share: executions and rows (written for INSERT/UPDATE/DELETE/MERGE, read for SELECT).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Share {
    pub executed: u64,
    pub rows: u64,
}

#[derive(Default)]
struct Totals {
    by_sql: std::sync::Mutex<std::collections::HashMap<Arc<str>, Share>>,
    statements: AtomicU64,
    commits: AtomicU64,
    rows_written: AtomicU64,
    rows_read: AtomicU64,
    errors: AtomicU64,
}

impl Totals {
    fn counts(&self) -> Counts {
        Counts {
            statements: self.statements.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
            rows_written: self.rows_written.load(Ordering::Relaxed),
            rows_read: self.rows_read.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }

    /// One CommandComplete tag, for the statement `sql` when known.
    fn complete(&self, tag: &[u8], sql: Option<Arc<str>>) {
        self.statements.fetch_add(1, Ordering::Relaxed);
        let tag = String::from_utf8_lossy(tag.strip_suffix(b"\0").unwrap_or(tag)).into_owned();
        let mut words = tag.split(' ');
        let verb = words.next().unwrap_or("");
        // The row count is the tag's last word ("INSERT <oid> <rows>", "UPDATE <rows>").
        let rows: u64 = tag.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
        {
            let mut by = self.by_sql.lock().expect("by_sql");
            let share = by.entry(sql.unwrap_or_else(|| Arc::from(verb))).or_default();
            share.executed += 1;
            share.rows += rows;
        }
        match verb {
            "INSERT" | "UPDATE" | "DELETE" | "MERGE" => {
                self.rows_written.fetch_add(rows, Ordering::Relaxed);
            }
            "SELECT" => {
                self.rows_read.fetch_add(rows, Ordering::Relaxed);
            }
            "COMMIT" => {
                self.commits.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// The relay: point a client at `url` instead of the server's.
pub struct PgCounter {
    pub port: u16,
    totals: Arc<Totals>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PgCounter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PgCounter {
    /// Relays to `upstream` ("host:port").
    pub async fn start(upstream: String) -> std::io::Result<PgCounter> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let totals = Arc::new(Totals::default());
        let t = totals.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (t, upstream) = (t.clone(), upstream.clone());
                tokio::spawn(async move {
                    let _ = relay(client, &upstream, t).await;
                });
            }
        });
        Ok(PgCounter { port, totals, task })
    }

    pub fn counts(&self) -> Counts {
        self.totals.counts()
    }

    /// Executions and rows by statement (its SQL with whitespace runs folded), since the start.
    pub fn by_statement(&self) -> std::collections::HashMap<Arc<str>, Share> {
        self.totals.by_sql.lock().expect("by_sql").clone()
    }

    /// `url` (a postgres:// URL) with its host and port replaced by the relay's.
    pub fn url(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
        let (auth, rest) = match rest.split_once('/') {
            Some((a, r)) => (a, format!("/{r}")),
            None => (rest, String::new()),
        };
        let user = auth.rsplit_once('@').map(|(u, _)| format!("{u}@")).unwrap_or_default();
        format!("{scheme}://{user}127.0.0.1:{}{rest}", self.port)
    }

    /// The `host:port` of `url`, the server to relay to.
    pub fn upstream_of(url: &str) -> String {
        let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
        let auth = rest.split('/').next().unwrap_or(rest);
        let host = auth.rsplit_once('@').map(|(_, h)| h).unwrap_or(auth);
        if host.contains(':') { host.to_string() } else { format!("{host}:5432") }
    }
}

/// SSLRequest and GSSENCRequest codes of the startup packet.
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;

async fn relay(mut client: TcpStream, upstream: &str, totals: Arc<Totals>) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    // The startup packet (length-prefixed, no type byte), after any encryption requests.
    let startup = loop {
        let len = client.read_u32().await? as usize;
        if !(8..=10_000).contains(&len) {
            return Err(std::io::Error::other("bad startup packet"));
        }
        let mut body = vec![0u8; len - 4];
        client.read_exact(&mut body).await?;
        let code = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        if code == SSL_REQUEST || code == GSSENC_REQUEST {
            client.write_all(b"N").await?;
            continue;
        }
        let mut packet = (len as u32).to_be_bytes().to_vec();
        packet.extend_from_slice(&body);
        break packet;
    };
    let mut server = TcpStream::connect(upstream).await?;
    server.set_nodelay(true)?;
    server.write_all(&startup).await?;
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let pending = Arc::new(std::sync::Mutex::new(Pending::default()));
    let asked = pending.clone();
    let up = tokio::spawn(async move {
        let mut reader = Messages::default();
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = cr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            reader.feed(&buf[..n], |kind, body| asked.lock().expect("pending").asked(kind, body));
            if sw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = sw.shutdown().await;
    });
    let mut reader = Messages::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = sr.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        reader.feed(&buf[..n], |kind, body| match kind {
            b'C' => totals.complete(body, pending.lock().expect("pending").answered()),
            b'E' => {
                totals.errors.fetch_add(1, Ordering::Relaxed);
            }
            b'Z' => pending.lock().expect("pending").ready(),
            _ => {}
        });
        cw.write_all(&buf[..n]).await?;
    }
    let _ = cw.shutdown().await;
    up.abort();
    Ok(())
}

/// A message stream read as it passes in chunks of any size: a message is a type byte, a
/// length (itself included) and the body. Bodies are kept only for the kinds the counting
/// reads: CommandComplete, Query, Parse, Bind, Execute.
#[derive(Default)]
struct Messages {
    header: Vec<u8>,
    kind: u8,
    left: usize,
    body: Vec<u8>,
}

impl Messages {
    fn feed(&mut self, mut bytes: &[u8], mut done: impl FnMut(u8, &[u8])) {
        while !bytes.is_empty() {
            if self.left == 0 {
                let want = 5 - self.header.len();
                let take = want.min(bytes.len());
                self.header.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if self.header.len() < 5 {
                    return;
                }
                self.kind = self.header[0];
                let len = u32::from_be_bytes([self.header[1], self.header[2], self.header[3], self.header[4]]) as usize;
                self.header.clear();
                self.left = len.saturating_sub(4);
                self.body.clear();
                if self.left == 0 {
                    done(self.kind, &self.body);
                }
                continue;
            }
            let take = self.left.min(bytes.len());
            if matches!(self.kind, b'C' | b'Q' | b'P' | b'B' | b'E') {
                self.body.extend_from_slice(&bytes[..take]);
            }
            self.left -= take;
            bytes = &bytes[take..];
            if self.left == 0 {
                done(self.kind, &self.body);
            }
        }
    }
}

/// One connection's statements: prepared ones by name, the portal's, and those executed
/// and not answered yet, in order.
#[derive(Default)]
struct Pending {
    prepared: std::collections::HashMap<Vec<u8>, Arc<str>>,
    portals: std::collections::HashMap<Vec<u8>, Arc<str>>,
    queued: std::collections::VecDeque<Arc<str>>,
}

/// A NUL-terminated string at the start of `b`, and what follows it.
fn cstr(b: &[u8]) -> (&[u8], &[u8]) {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    (&b[..end], b.get(end + 1..).unwrap_or(&[]))
}

fn folded(sql: &[u8]) -> Arc<str> {
    let text = String::from_utf8_lossy(sql);
    Arc::from(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

impl Pending {
    /// A client message.
    fn asked(&mut self, kind: u8, body: &[u8]) {
        match kind {
            b'Q' => self.queued.push_back(folded(cstr(body).0)),
            b'P' => {
                let (name, rest) = cstr(body);
                self.prepared.insert(name.to_vec(), folded(cstr(rest).0));
            }
            b'B' => {
                let (portal, rest) = cstr(body);
                let statement = cstr(rest).0;
                if let Some(sql) = self.prepared.get(statement).cloned() {
                    self.portals.insert(portal.to_vec(), sql);
                }
            }
            b'E' => {
                let portal = cstr(body).0;
                let sql = self.portals.get(portal).cloned().unwrap_or_else(|| Arc::from("?"));
                self.queued.push_back(sql);
            }
            _ => {}
        }
    }

    /// The statement a CommandComplete answers.
    fn answered(&mut self) -> Option<Arc<str>> {
        self.queued.pop_front()
    }

    /// ReadyForQuery: nothing before it is still to be answered (a failed statement's
    /// pipeline is skipped up to its Sync).
    fn ready(&mut self) {
        self.queued.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn tags_are_counted_however_the_stream_is_cut() {
        let mut stream = vec![];
        stream.extend(message(b'1', b""));
        stream.extend(message(b'D', b"\0\x01\0\0\0\x01x"));
        stream.extend(message(b'C', b"SELECT 12\0"));
        stream.extend(message(b'C', b"INSERT 0 3\0"));
        stream.extend(message(b'C', b"UPDATE 2\0"));
        stream.extend(message(b'C', b"DELETE 1\0"));
        stream.extend(message(b'C', b"COMMIT\0"));
        stream.extend(message(b'E', b"SERROR\0"));
        stream.extend(message(b'Z', b"I"));
        let want = Counts { statements: 5, commits: 1, rows_written: 6, rows_read: 12, errors: 1 };
        for cut in [1, 2, 3, 5, 7, 64, stream.len()] {
            let totals = Totals::default();
            let mut m = Messages::default();
            for chunk in stream.chunks(cut) {
                m.feed(chunk, |kind, body| match kind {
                    b'C' => totals.complete(body, None),
                    b'E' => {
                        totals.errors.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                });
            }
            assert_eq!(totals.counts(), want, "chunks of {cut}");
        }
    }

    #[test]
    fn extended_protocol_executions_are_counted_against_their_sql() {
        let totals = Totals::default();
        let mut p = Pending::default();
        p.asked(b'P', b"sqlx_s_1\0UPDATE leases\n   SET x = $1\0\0\0");
        p.asked(b'P', b"sqlx_s_2\0SELECT 1\0\0\0");
        for statement in [&b"sqlx_s_1"[..], b"sqlx_s_2", b"sqlx_s_1"] {
            let mut bind = b"\0".to_vec();
            bind.extend_from_slice(statement);
            bind.extend_from_slice(b"\0\0\0\0\0\0\0");
            p.asked(b'B', &bind);
            p.asked(b'E', b"\0\0\0\0\0");
        }
        p.asked(b'Q', b"COMMIT\0");
        for tag in [&b"UPDATE 2\0"[..], b"SELECT 1\0", b"UPDATE 3\0", b"COMMIT\0"] {
            totals.complete(tag, p.answered());
        }
        let by = totals.by_sql.lock().expect("by_sql").clone();
        assert_eq!(by[&Arc::from("UPDATE leases SET x = $1")], Share { executed: 2, rows: 5 });
        assert_eq!(by[&Arc::from("SELECT 1")], Share { executed: 1, rows: 1 });
        assert_eq!(by[&Arc::from("COMMIT")], Share { executed: 1, rows: 0 });
        // An error skips the rest of the pipeline: ReadyForQuery forgets what was queued.
        p.asked(b'E', b"\0\0\0\0\0");
        p.ready();
        assert_eq!(p.answered(), None);
    }

    #[tokio::test]
    async fn urls_point_at_the_relay() {
        let c = PgCounter::start("127.0.0.1:5432".into()).await.expect("relay");
        let p = c.port;
        assert_eq!(
            c.url("postgres://postgres@127.0.0.1:5432/db_1?x=y"),
            format!("postgres://postgres@127.0.0.1:{p}/db_1?x=y")
        );
        assert_eq!(c.url("postgres://u:p@db.example:6000/x"), format!("postgres://u:p@127.0.0.1:{p}/x"));
        assert_eq!(PgCounter::upstream_of("postgres://postgres@127.0.0.1:5432/db"), "127.0.0.1:5432");
        assert_eq!(PgCounter::upstream_of("postgres://u:p@db.example/x"), "db.example:5432");
    }

    /// Through the machine's PostgreSQL with psql, which asks for TLS first: the relay
    /// refuses it and counts what the server did.
    #[tokio::test]
    async fn counts_what_the_server_did() {
        let admin = std::env::var("GARRISON_TEST_DATABASE_URL")
            .expect("GARRISON_TEST_DATABASE_URL (PostgreSQL) is needed: scripts/test sets it");
        let c = PgCounter::start(PgCounter::upstream_of(&admin)).await.expect("relay");
        let url = c.url(&admin);
        let sql = "create temp table t(x int); insert into t values (1),(2),(3); update t set x = x + 1; \
                   delete from t where x > 2; select * from t; begin; insert into t values (9); commit;";
        let out = tokio::process::Command::new("psql")
            .args([url.as_str(), "-v", "ON_ERROR_STOP=1", "-X", "-q", "-c", sql])
            .env("PGSSLMODE", "prefer")
            .output()
            .await
            .expect("psql runs");
        assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
        // Give the relay a moment to read the last answer after psql's exit.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(
            c.counts(),
            Counts { statements: 8, commits: 1, rows_written: 3 + 3 + 2 + 1, rows_read: 1, errors: 0 },
            "create, insert 3, update 3, delete 2, select 1, begin, insert 1, commit"
        );
        let by = c.by_statement();
        assert_eq!(by.values().map(|s| s.executed).sum::<u64>(), 8, "{by:?}");
        assert_eq!(
            by.get(sql.split_whitespace().collect::<Vec<_>>().join(" ").as_str()).map(|s| s.executed),
            Some(1),
            "the query's own text, for its first answer: {by:?}"
        );
    }
}
