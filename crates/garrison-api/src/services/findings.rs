//! findings v1 (a garrison service): the GuardDuty and Inspector findings of the tenant's
//! deployments as the collector keeps them, highest severity first, paged with `continue`
//! like assets_query.

use axum::Json;
use axum::extract::{Path, Query, State};
use garrison_model::FieldError;
use garrison_model::finding::{Finding, FindingStatus, Severity, Source, parse_time};
use garrison_store::FindingFilter;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::paging::{self, Binding, Page};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_findings)).routes(routes!(get_finding))
}

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;
const ROUTE: &str = "list_findings";

#[derive(Deserialize, utoipa::IntoParams, Default)]
struct FindingsQuery {
    /// Only this deployment's findings.
    deployment_id: Option<String>,
    /// This severity and above: informational, low, medium, high, critical.
    severity: Option<String>,
    /// active | resolved
    status: Option<String>,
    /// guardduty | inspector2
    source: Option<String>,
    /// Last seen at or after: an RFC 3339 time or milliseconds since the epoch.
    since: Option<String>,
    /// Findings per page (first call; with `continue` only the same value), 1 to 1000.
    page_size: Option<usize>,
    /// Opaque token from the previous page (send the same filters, or none).
    #[serde(rename = "continue")]
    cont: Option<String>,
}

fn invalid(field: &str, expected: &str, found: &str) -> ApiError {
    ApiError::field(FieldError::new(field, expected, found))
}

/// The filter a request names, every bad parameter at once.
fn filter_of(q: &FindingsQuery) -> ApiResult<FindingFilter> {
    let mut errors = vec![];
    let severity = q.severity.as_deref().map(|s| {
        Severity::parse(s).ok_or_else(|| {
            FieldError::new("severity", "one of informational, low, medium, high, critical", format!("{s:?}"))
        })
    });
    let status = q.status.as_deref().map(|s| match s {
        "active" => Ok(FindingStatus::Active),
        "resolved" => Ok(FindingStatus::Resolved),
        other => Err(FieldError::new("status", "active or resolved", format!("{other:?}"))),
    });
    let source = q.source.as_deref().map(|s| {
        Source::parse(s).ok_or_else(|| FieldError::new("source", "guardduty or inspector2", format!("{s:?}")))
    });
    let since = q.since.as_deref().map(|s| {
        s.parse::<i64>().ok().filter(|n| *n >= 0).or_else(|| parse_time(s)).ok_or_else(|| {
            FieldError::new(
                "since",
                "an RFC 3339 time (2026-12-06T10:00:00Z) or milliseconds since the epoch",
                format!("{s:?}"),
            )
        })
    });
    fn take<T>(errors: &mut Vec<FieldError>, r: Option<Result<T, FieldError>>) -> Option<T> {
        match r {
            Some(Ok(v)) => Some(v),
            Some(Err(e)) => {
                errors.push(e);
                None
            }
            None => None,
        }
    }
    let f = FindingFilter {
        deployment_id: q.deployment_id.clone(),
        severity: take(&mut errors, severity),
        status: take(&mut errors, status),
        source: take(&mut errors, source),
        since_ms: take(&mut errors, since),
    };
    if errors.is_empty() { Ok(f) } else { Err(ApiError::Invalid(garrison_model::ValidationError { errors })) }
}

/// The tenant's findings: highest severity first, then the most recently seen.
#[utoipa::path(get, path = "/findings/v1/{account_id}/findings", tag = "findings", operation_id = "list_findings",
    params(("account_id" = String, Path), FindingsQuery), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "{findings: [Finding], count, continue?, total?}"), (status = 400, description = "invalid parameter")))]
async fn list_findings(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
    Query(q): Query<FindingsQuery>,
) -> ApiResult<Json<Value>> {
    s.authorize(&caller, &account_id).await?;
    if let Some(size) = q.page_size
        && (size == 0 || size > MAX_PAGE)
    {
        return Err(invalid("page_size", "1 to 1000", &size.to_string()));
    }
    let (filter, page) = match &q.cont {
        None => (filter_of(&q)?, Page { offset: 0, size: q.page_size.unwrap_or(DEFAULT_PAGE) }),
        Some(token) => {
            let opened = s.open_cursor(&account_id, ROUTE, token)?;
            let filter: FindingFilter = serde_json::from_str(&opened.query).map_err(|_| paging::mismatched_query())?;
            let sent = FindingsQuery { page_size: None, cont: None, ..q };
            let named = [&sent.deployment_id, &sent.severity, &sent.status, &sent.source, &sent.since]
                .iter()
                .any(|x| x.is_some());
            if (named && filter_of(&sent)? != filter) || q.page_size.is_some_and(|n| n != opened.page.size) {
                return Err(paging::mismatched_query());
            }
            (filter, opened.page)
        }
    };
    let (rows, total) = s.store.list_findings(&account_id, &filter, page.offset, page.size).await?;
    let (_, next) = page.window(total);
    let mut body = json!({"findings": rows, "count": rows.len()});
    if let Some(next) = next {
        // The filter the cursor is bound to, normalised.
        let query = serde_json::to_string(&filter).map_err(|e| ApiError::Internal(e.to_string()))?;
        let binding = Binding { account_id: &account_id, route: ROUTE, query: &query };
        body["continue"] = json!(s.cursor(&binding, Page { offset: next, size: page.size }));
        body["total"] = json!(total);
    }
    Ok(Json(body))
}

/// One finding.
#[utoipa::path(get, path = "/findings/v1/{account_id}/findings/{finding_id}", tag = "findings", operation_id = "get_finding",
    params(("account_id" = String, Path), ("finding_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, body = Finding), (status = 404, description = "no such finding")))]
async fn get_finding(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
) -> ApiResult<Json<Finding>> {
    s.authorize(&caller, &account_id).await?;
    s.store
        .get_finding(&account_id, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no finding {id:?} in account {account_id}")))
}
