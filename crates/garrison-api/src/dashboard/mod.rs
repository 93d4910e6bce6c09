//! The dashboard at `/`: one static page and its script, a client of the JSON API (sign in
//! with an access key, the token kept in the tab's sessionStorage). Served with a strict
//! content security policy: only these files run, and no other site can frame them.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("index.html");
const APP: &str = include_str!("app.js");
const STYLE: &str = include_str!("style.css");
/// The page's icon: without one, browsers ask for `/favicon.ico` and log the 404.
const ICON: &str = include_str!("icon.svg");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route("/dashboard/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP) }))
        .route("/dashboard/style.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
        .route("/dashboard/icon.svg", get(|| async { asset("image/svg+xml", ICON) }))
}
