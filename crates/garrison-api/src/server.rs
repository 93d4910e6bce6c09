//! The API's accept loop: hostile clients cannot hold the process. Every connection must
//! send a request's headers within `header_timeout` (also the longest a keep-alive
//! connection may sit idle between requests) and its body within `body_timeout`
//! (`limits::read_body`); at most `max_connections` are open at once — past that a new
//! connection is closed at once rather than queued behind the ones holding the slots.
//! With TLS (`serve_tls`), the handshake is held to `header_timeout` as well, and every
//! answer says `Strict-Transport-Security`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// To receive a request's headers, and the longest idle time between requests.
    pub header_timeout: Duration,
    /// To receive a request's body once its headers are in.
    pub body_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// How long a graceful shutdown waits for requests in flight.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            drain: Duration::from_secs(10),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in flight end
/// (up to `limits.drain`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    serve_tls(listener, app, limits, None, shutdown).await
}

/// HSTS for a year: a browser that once reached garrison over TLS never tries plain HTTP.
const HSTS: &str = "max-age=31536000";

/// `serve`, over TLS when `tls` is given (each connection takes the configuration current at
/// its accept: a reload reaches new connections only).
pub async fn serve_tls(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<Arc<crate::tls::Tls>>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let body_timeout = limits.body_timeout;
    let mut app =
        app.layer(axum::middleware::from_fn(move |req, next| crate::limits::read_body(body_timeout, req, next)));
    if tls.is_some() {
        app = app.layer(axum::middleware::map_response(|mut r: axum::response::Response| async move {
            r.headers_mut()
                .insert(axum::http::header::STRICT_TRANSPORT_SECURITY, axum::http::HeaderValue::from_static(HSTS));
            r
        }));
    }
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!("garrison_http_connections_refused_total").increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let Some(tls) = &tls else {
            let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                // Timeouts and resets end here as errors; nothing to do but free the slot.
                let _ = conn.await;
                drop(slot);
            });
            continue;
        };
        let (acceptor, watcher, builder) = (tls.acceptor(), graceful.watcher(), builder.clone());
        let handshake_timeout = limits.header_timeout;
        tokio::spawn(async move {
            // A client that never finishes its handshake is cut off like one that never
            // sends its headers.
            match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    let _ = watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await;
                }
                Ok(Err(e)) => {
                    metrics::counter!("garrison_tls_handshakes_failed_total").increment(1);
                    tracing::debug!(error = %e, "TLS handshake failed");
                }
                Err(_) => metrics::counter!("garrison_tls_handshakes_failed_total").increment(1),
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(limits.drain, graceful.shutdown()).await;
    Ok(())
}
