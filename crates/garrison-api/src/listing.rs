//! Lists that grow with an account (deployments, credentials): the whole list as one JSON
//! array, as the reference answers it, but written a batch at a time while it is sent, so
//! the server never holds it; or, with `limit` or `continue`, one page in the same array
//! shape with the next page named in a `Link: <…>; rel="next"` header (RFC 8288).
//!
//! Both read the store by keyset (after the last row sent), so a page costs the same at the
//! start of a list of 10,000 as at its end. The cursor is `paging`'s: signed, bound to the
//! account and route, carrying the page size and the position only.

use std::future::Future;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use garrison_model::FieldError;
use garrison_model::credential::Credential;
use garrison_store::{ListedDeployment, StoreError};
use serde::Deserialize;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::paging::{Binding, Page};

/// An item of a list, written into its JSON array.
pub trait Item: Send + 'static {
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error>;
}

impl Item for Credential {
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        serde_json::to_writer(out, self)
    }
}

/// A deployment's JSON as the store holds it: copied, not parsed and written again.
impl Item for ListedDeployment {
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        out.extend_from_slice(&self.json);
        Ok(())
    }
}

/// Items as one JSON array.
fn json_array<T: Item>(items: &[T]) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(items.len() * 1024 + 2);
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item.write_json(&mut out)?;
    }
    out.push(b']');
    Ok(out)
}

/// Rows read from the store per batch of a whole-list answer.
pub const BATCH: usize = 500;
/// The largest page a client may ask for.
pub const MAX_LIMIT: i64 = 1000;

#[derive(Deserialize, utoipa::IntoParams, Default)]
pub struct ListQuery {
    /// At most this many items, 1 to 1000. With it (or with `continue`) the answer is one
    /// page, and a `Link: <…>; rel="next"` header names the next one while more remain;
    /// without either, the whole list.
    pub limit: Option<i64>,
    /// The token of the next page, as the previous page's `Link` header gave it.
    #[serde(rename = "continue")]
    pub cont: Option<String>,
}

/// What a list request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    All,
    /// `size` items after the position `after` (from the start when `None`).
    Page {
        after: Option<String>,
        size: usize,
    },
}

fn bad_limit(found: String) -> ApiError {
    ApiError::field(FieldError::new("limit", format!("an integer from 1 to {MAX_LIMIT}"), found))
}

impl ListQuery {
    fn wanted(&self, s: &AppState, account_id: &str, route: &str) -> ApiResult<Wanted> {
        let limit = match self.limit {
            Some(l) if (1..=MAX_LIMIT).contains(&l) => Some(l as usize),
            Some(l) => return Err(bad_limit(l.to_string())),
            None => None,
        };
        match (&self.cont, limit) {
            (None, None) => Ok(Wanted::All),
            (None, Some(size)) => Ok(Wanted::Page { after: None, size }),
            (Some(token), limit) => {
                let opened = s.open_cursor(account_id, route, token)?;
                if limit.is_some_and(|l| l != opened.page.size) {
                    return Err(ApiError::field(
                        FieldError::new(
                            "limit",
                            format!("the limit the token was made with ({}), or none", opened.page.size),
                            limit.unwrap_or_default().to_string(),
                        )
                        .hint("send continue alone, or start again without it to change the page size"),
                    ));
                }
                Ok(Wanted::Page { after: Some(opened.query), size: opened.page.size })
            }
        }
    }
}

/// Answers a list request: the page it asks for, or the whole list written as it is read.
/// `fetch(after, n)` reads at most `n` items after a position (from the start when none);
/// `position` says where an item is, for the next page or batch.
pub async fn answer<T, F, Fut>(
    s: &AppState,
    q: &ListQuery,
    account_id: &str,
    route: &str,
    path: &str,
    position: fn(&T) -> String,
    fetch: F,
) -> ApiResult<Response>
where
    T: Item,
    F: Fn(Option<String>, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<T>, StoreError>> + Send + 'static,
{
    match q.wanted(s, account_id, route)? {
        Wanted::Page { after, size } => {
            let rows = fetch(after, size + 1).await?;
            Ok(page(s, account_id, route, path, rows, size, position))
        }
        Wanted::All => {
            let first = fetch(None, BATCH).await?;
            Ok(stream_all(first, position, move |after| fetch(Some(after), BATCH)))
        }
    }
}

/// One page: `rows` holds up to `size + 1` items read after the position; the one past
/// `size`, if there, only says that a next page exists, which starts after the last item
/// sent (`position` of it).
fn page<T: Item>(
    s: &AppState,
    account_id: &str,
    route: &str,
    path: &str,
    mut rows: Vec<T>,
    size: usize,
    position: fn(&T) -> String,
) -> Response {
    let more = rows.len() > size;
    rows.truncate(size);
    let link = match rows.last() {
        Some(last) if more => {
            let at = position(last);
            let token = s.cursor(&Binding { account_id, route, query: &at }, Page { offset: 0, size });
            // The token is URL-safe base64 and a dot: it goes into the URL as it is.
            HeaderValue::from_str(&format!("<{path}?continue={token}>; rel=\"next\"")).ok()
        }
        _ => None,
    };
    let mut r = match json_array(&rows) {
        Ok(body) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response(),
        Err(e) => ApiError::Internal(format!("a list item could not be written: {e}")).into_response(),
    };
    if let Some(link) = link {
        r.headers_mut().insert(header::LINK, link);
    }
    r
}

/// The whole list as one JSON array, `first` (read already, so that a store that cannot
/// be read is a clean error before anything is sent) and then batches of `BATCH` from
/// `fetch(position of the last item)` until one comes back short. A store error in the
/// middle ends the body early (the client sees a truncated answer, never a wrong one).
fn stream_all<T, F, Fut>(first: Vec<T>, position: fn(&T) -> String, fetch: F) -> Response
where
    T: Item,
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<T>, StoreError>> + Send + 'static,
{
    enum Next<T> {
        Rows(Vec<T>),
        After(String),
        Done,
    }
    struct State<T, F> {
        next: Next<T>,
        /// An item was written (the next one needs a comma before it).
        started: bool,
        opened: bool,
        fetch: F,
    }
    let state = State { next: Next::Rows(first), started: false, opened: false, fetch };
    let body = stream::unfold(state, move |mut st| async move {
        let rows = match std::mem::replace(&mut st.next, Next::Done) {
            Next::Done => return None,
            Next::Rows(rows) => rows,
            Next::After(at) => match (st.fetch)(at).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "a listing could not be read to its end; the answer was cut short");
                    return Some((Err(std::io::Error::other("store error while listing")), st));
                }
            },
        };
        let mut chunk = Vec::with_capacity(rows.len() * 1024 + 2);
        if !st.opened {
            st.opened = true;
            chunk.push(b'[');
        }
        for r in &rows {
            if st.started {
                chunk.push(b',');
            }
            st.started = true;
            if let Err(e) = r.write_json(&mut chunk) {
                return Some((Err(std::io::Error::other(e)), st));
            }
        }
        if rows.len() < BATCH {
            chunk.push(b']');
        } else if let Some(last) = rows.last() {
            st.next = Next::After(position(last));
        }
        Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), st))
    });
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], Body::from_stream(body)).into_response()
}
