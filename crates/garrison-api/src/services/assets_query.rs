//! assets_query: the discovered assets of deployments (region → vpc → subnet → host) in
//! the reference shapes: rows of asset tuples, `page_size`/`continue` paging, topology.

use axum::Json;
use axum::extract::{Path, Query, State};
use garrison_model::FieldError;
use garrison_model::assets::{self, AssetType};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::paging::{self, Binding, Page};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(query_assets))
        .routes(routes!(query_deployment_assets))
        .routes(routes!(query_topology))
}

pub const MAX_PAGE: usize = 10_000;

#[derive(Deserialize, utoipa::IntoParams, Default)]
struct AssetsQuery {
    /// Comma-separated types, each optionally aliased: `r:region,v:vpc,s:subnet,h:host`.
    asset_types: Option<String>,
    /// Only assets in the deployment's scope.
    scope: Option<bool>,
    /// Rows per page (first call; with `continue` only the same value), at most 10000.
    page_size: Option<usize>,
    /// Opaque token from the previous page (send the same asset_types and scope, or none).
    #[serde(rename = "continue")]
    cont: Option<String>,
}

fn invalid(error_type: &'static str, field: &str, expected: &str, found: &str) -> ApiError {
    ApiError::InvalidTyped(error_type, garrison_model::ValidationError::one(FieldError::new(field, expected, found)))
}

fn parse_types(s: Option<&str>) -> ApiResult<Vec<AssetType>> {
    let s = s.ok_or_else(|| invalid("invalid_parameter", "asset_types", "a list such as r:region,v:vpc", "nothing"))?;
    let mut out = vec![];
    for item in s.split(',') {
        let t = item.rsplit(':').next().unwrap_or_default().trim();
        match AssetType::parse(t) {
            Some(t) if !out.contains(&t) => out.push(t),
            Some(_) => return Err(invalid("query_item_redefinition", "asset_types", "each type once", item)),
            None => {
                return Err(invalid(
                    "invalid_asset_type",
                    "asset_types",
                    "types among region, vpc, subnet, host",
                    item,
                ));
            }
        }
    }
    Ok(out)
}

async fn deployment_rows(
    s: &AppState,
    account_id: &str,
    id: &str,
    types: &[AssetType],
    in_scope: bool,
) -> ApiResult<Vec<Vec<Value>>> {
    let d = s
        .store
        .get_deployment(account_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no deployment {id:?} in account {account_id}")))?;
    let Some(snap) = s.store.get_snapshot(account_id, id).await? else { return Ok(vec![]) };
    Ok(assets::rows(&assets::build(&d, &snap), types, in_scope))
}

/// The rows of one page and the body around them: `continue` when rows are left (with
/// `total_assets`, as the reference does).
fn paged_body(s: &AppState, binding: &Binding<'_>, all: Vec<Vec<Value>>, page: Page) -> Value {
    let total = all.len();
    let (range, next) = page.window(total);
    let rows: Vec<Vec<Value>> = all.into_iter().skip(range.start).take(range.len()).collect();
    let mut body = json!({"assets": rows, "rows": rows.len()});
    if let Some(next) = next {
        body["continue"] = json!(s.cursor(binding, Page { offset: next, size: page.size }));
        body["total_assets"] = json!(total);
    }
    body
}

/// The query and page a request asks for. With `continue`, the token's query and page
/// (parameters sent alongside must be the same: a different `page_size`, `asset_types` or
/// `scope` is refused); else the first page of `page_size`, or `default` (`None`: no paging).
fn requested(
    s: &AppState,
    account_id: &str,
    route: &str,
    q: &AssetsQuery,
    default: Option<usize>,
) -> ApiResult<(Vec<AssetType>, bool, Option<Page>)> {
    if let Some(size) = q.page_size
        && (size == 0 || size > MAX_PAGE)
    {
        return Err(invalid("invalid_parameter", "page_size", "1 to 10000", &size.to_string()));
    }
    let Some(token) = &q.cont else {
        let types = parse_types(q.asset_types.as_deref())?;
        let page = q.page_size.or(default).map(|size| Page { offset: 0, size });
        return Ok((types, q.scope.unwrap_or(false), page));
    };
    let opened = s.open_cursor(account_id, route, token)?;
    let (types, scope) = unbind_query(&opened.query).ok_or_else(paging::mismatched_query)?;
    let sent_types = q.asset_types.as_deref().map(|t| parse_types(Some(t))).transpose()?;
    if sent_types.is_some_and(|t| t != types)
        || q.scope.is_some_and(|sc| sc != scope)
        || q.page_size.is_some_and(|size| size != opened.page.size)
    {
        return Err(paging::mismatched_query());
    }
    Ok((types, scope, Some(opened.page)))
}

/// The query a cursor is bound to: the parameters that shape the rows, normalised.
fn query_binding(types: &[AssetType], scope: bool) -> String {
    let names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
    format!("{}|{scope}", names.join(","))
}

fn unbind_query(q: &str) -> Option<(Vec<AssetType>, bool)> {
    let (types, scope) = q.split_once('|')?;
    let types: Option<Vec<AssetType>> = types.split(',').map(AssetType::parse).collect();
    Some((types?, scope.parse().ok()?))
}

/// Assets of one deployment; paged when `page_size` (or `continue`) is given.
#[utoipa::path(get, path = "/assets_query/v1/{account_id}/deployments/{deployment_id}/assets", tag = "assets_query", operation_id = "query_deployment_assets",
    params(("account_id" = String, Path), ("deployment_id" = String, Path), AssetsQuery), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "{assets: [[asset…]], rows, continue?, total_assets?}"), (status = 400, description = "invalid asset type")))]
async fn query_deployment_assets(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
    Query(q): Query<AssetsQuery>,
) -> ApiResult<Json<Value>> {
    s.authorize(&caller, &account_id).await?;
    let route = format!("query_deployment_assets/{id}");
    let (types, scope, page) = requested(&s, &account_id, &route, &q, None)?;
    let query = query_binding(&types, scope);
    let binding = Binding { account_id: &account_id, route: &route, query: &query };
    let rows = deployment_rows(&s, &account_id, &id, &types, scope).await?;
    match page {
        Some(page) => Ok(Json(paged_body(&s, &binding, rows, page))),
        None => Ok(Json(json!({"assets": rows, "rows": rows.len()}))),
    }
}

/// Assets of every deployment of the account, paged (1000 rows unless `page_size` says).
#[utoipa::path(get, path = "/assets_query/v1/{account_id}/assets", tag = "assets_query", operation_id = "query_assets",
    params(("account_id" = String, Path), AssetsQuery), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "{assets, rows, continue?, total_assets?}"), (status = 400, description = "invalid parameter")))]
async fn query_assets(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
    Query(q): Query<AssetsQuery>,
) -> ApiResult<Json<Value>> {
    s.authorize(&caller, &account_id).await?;
    let (types, scope, page) = requested(&s, &account_id, "query_assets", &q, Some(1000))?;
    let page = page.unwrap_or(Page { offset: 0, size: 1000 });
    let query = query_binding(&types, scope);
    let binding = Binding { account_id: &account_id, route: "query_assets", query: &query };
    let mut all = vec![];
    for d in s.store.list_deployments(&account_id).await? {
        all.extend(deployment_rows(&s, &account_id, &d.id, &types, scope).await?);
    }
    Ok(Json(paged_body(&s, &binding, all, page)))
}

/// The deployment's topology: region → vpc → subnet → host paths.
#[utoipa::path(get, path = "/assets_query/v1/{account_id}/deployments/{deployment_id}/topology", tag = "assets_query", operation_id = "query_topology",
    params(("account_id" = String, Path), ("deployment_id" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "{topology: {assets, rows}}")))]
async fn query_topology(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    s.authorize(&caller, &account_id).await?;
    let d = s
        .store
        .get_deployment(&account_id, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no deployment {id:?} in account {account_id}")))?;
    let rows = match s.store.get_snapshot(&account_id, &id).await? {
        Some(snap) => assets::topology(&assets::build(&d, &snap)),
        None => vec![],
    };
    Ok(Json(json!({"topology": {"assets": rows, "rows": rows.len()}})))
}
