//! Paging cursors (`continue`): opaque to clients, authenticated with a MAC under the
//! server's token key, and bound to the account, the route and the query they came from.
//! A forged, altered or borrowed cursor is a 400 naming `continue`; a cursor never says
//! more than its page (offset and size) and the query it continues.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use garrison_model::FieldError;

use crate::AppState;
use crate::auth::Tokens;
use crate::error::ApiError;

/// Where a page starts and how many rows it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: usize,
    pub size: usize,
}

impl Page {
    /// The rows of this page out of `total`, and where the next one starts (if any).
    /// Arithmetic on client-given numbers is checked: nothing overflows.
    pub fn window(&self, total: usize) -> (std::ops::Range<usize>, Option<usize>) {
        let start = self.offset.min(total);
        let end = start.checked_add(self.size).map_or(total, |e| e.min(total));
        (start..end, (end < total).then_some(end))
    }
}

/// What a cursor is bound to: the account, the route (operation and its path ids) and the
/// query parameters that shape the rows (carried in the cursor, so that a bare `continue`
/// continues the same query; a request that names other parameters is refused).
pub struct Binding<'a> {
    pub account_id: &'a str,
    pub route: &'a str,
    pub query: &'a str,
}

/// A cursor's content once its MAC checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub page: Page,
    pub query: String,
}

const MAC_BYTES: usize = 16;

fn mac_input(account_id: &str, route: &str, body: &str) -> Vec<u8> {
    // Lengths first, so that no two different bindings give the same bytes.
    let mut out = Vec::new();
    for part in [account_id, route, body] {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

impl AppState {
    /// The cursor of the page that starts at `next`.
    pub fn cursor(&self, b: &Binding<'_>, next: Page) -> String {
        seal(&self.tokens, b, next)
    }

    /// The page and query a cursor names, if it was made by this installation for exactly
    /// this account and route.
    pub fn open_cursor(&self, account_id: &str, route: &str, cursor: &str) -> Result<Opened, ApiError> {
        open(&self.tokens, account_id, route, cursor)
    }
}

/// The cursor of the page that starts at `next`, under `tokens`' key.
pub fn seal(tokens: &Tokens, b: &Binding<'_>, next: Page) -> String {
    let body = format!("{}.{}.{}", next.offset, next.size, b.query);
    let mac = tokens.mac("paging cursor", &mac_input(b.account_id, b.route, &body));
    format!("{}.{}", B64.encode(body), B64.encode(&mac[..MAC_BYTES]))
}

/// What a cursor names, if it was sealed under `tokens`' key for this account and route.
pub fn open(tokens: &Tokens, account_id: &str, route: &str, cursor: &str) -> Result<Opened, ApiError> {
    let bad = |found: &str| {
        ApiError::field(
            FieldError::new("continue", "the continue token of the previous page of this same query", found).hint(
                "send the token unchanged, with the same account, route and query parameters; or start again without continue",
            ),
        )
    };
    if cursor.len() > 2048 {
        return Err(bad("a token longer than any garrison makes"));
    }
    let (body, tag) = cursor.split_once('.').ok_or_else(|| bad("a token garrison did not make"))?;
    let body = B64.decode(body).ok().and_then(|b| String::from_utf8(b).ok());
    let tag = B64.decode(tag).ok();
    let (Some(body), Some(tag)) = (body, tag) else { return Err(bad("a token garrison did not make")) };
    if tag.len() != MAC_BYTES || !tokens.verify_mac("paging cursor", &mac_input(account_id, route, &body), &tag) {
        return Err(bad("a token that was altered, or made for another route or account"));
    }
    let mut parts = body.splitn(3, '.');
    let (Some(offset), Some(size), Some(query)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("a token garrison did not make"));
    };
    match (offset.parse(), size.parse()) {
        (Ok(offset), Ok(size)) => Ok(Opened { page: Page { offset, size }, query: query.to_string() }),
        _ => Err(bad("a token garrison did not make")),
    }
}

/// The 400 for a cursor sent with query parameters other than those it continues.
pub fn mismatched_query() -> ApiError {
    ApiError::field(
        FieldError::new(
            "continue",
            "the continue token of the previous page of this same query",
            "a token made for other query parameters",
        )
        .hint("send the same asset_types and scope as the first request, or none, with continue"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tokens() -> Tokens {
        Tokens::new(vec![7; 32], 60)
    }

    proptest! {
        // Any text sent as a cursor is refused cleanly (no panic), unless garrison made it.
        #[test]
        fn arbitrary_cursors_are_refused(text in "\\PC{0,300}") {
            prop_assert!(open(&tokens(), "12345678", "query_assets", &text).is_err());
        }

        // A cursor opens to what was sealed, and only for its own account and route.
        #[test]
        fn cursors_round_trip_and_stay_bound(offset in any::<usize>(), size in 1usize..10_001, query in "[a-z,|]{0,40}") {
            let t = tokens();
            let b = Binding { account_id: "12345678", route: "query_assets", query: &query };
            let c = seal(&t, &b, Page { offset, size });
            let opened = open(&t, "12345678", "query_assets", &c).unwrap();
            prop_assert_eq!(opened, Opened { page: Page { offset, size }, query: query.clone() });
            prop_assert!(open(&t, "12345679", "query_assets", &c).is_err());
            prop_assert!(open(&t, "12345678", "query_deployment_assets/X", &c).is_err());
            prop_assert!(open(&Tokens::new(vec![8; 32], 60), "12345678", "query_assets", &c).is_err());
        }

        #[test]
        fn a_window_never_overflows_and_stays_in_bounds(offset in any::<usize>(), size in 1usize.., total in 0usize..100_000) {
            let (range, next) = Page { offset, size }.window(total);
            prop_assert!(range.start <= range.end && range.end <= total);
            if let Some(n) = next {
                prop_assert!(n > range.start && n < total);
            }
        }
    }
}
