//! assets_query: the discovered assets of deployments (region → vpc → subnet → host) in
//! the reference shapes: rows of asset tuples, `page_size`/`continue` paging, topology.

use axum::Json;
use axum::extract::{Path, Query, State};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use garrison_model::FieldError;
use garrison_model::assets::{self, AssetType};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

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
    /// Rows per page (first call only), at most 10000.
    page_size: Option<usize>,
    /// Opaque token from the previous page.
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

/// Assets of one deployment.
#[utoipa::path(get, path = "/assets_query/v1/{account_id}/deployments/{deployment_id}/assets", tag = "assets_query", operation_id = "query_deployment_assets",
    params(("account_id" = String, Path), ("deployment_id" = String, Path), AssetsQuery), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "{assets: [[asset…]], rows}"), (status = 400, description = "invalid asset type")))]
async fn query_deployment_assets(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, id)): Path<(String, String)>,
    Query(q): Query<AssetsQuery>,
) -> ApiResult<Json<Value>> {
    s.authorize(&caller, &account_id).await?;
    let types = parse_types(q.asset_types.as_deref())?;
    let rows = deployment_rows(&s, &account_id, &id, &types, q.scope.unwrap_or(false)).await?;
    Ok(Json(json!({"assets": rows, "rows": rows.len()})))
}

fn token(types: &str, scope: bool, offset: usize, page: usize) -> String {
    B64.encode(format!("1|{types}|{scope}|{offset}|{page}"))
}

fn untoken(t: &str) -> Option<(String, bool, usize, usize)> {
    let text = String::from_utf8(B64.decode(t).ok()?).ok()?;
    let p: Vec<&str> = text.split('|').collect();
    match p.as_slice() {
        ["1", types, scope, offset, page] => {
            Some((types.to_string(), scope.parse().ok()?, offset.parse().ok()?, page.parse().ok()?))
        }
        _ => None,
    }
}

/// Assets of every deployment of the account, paged.
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
    let (types_s, scope, offset, page) = match &q.cont {
        Some(t) => untoken(t).ok_or_else(|| {
            invalid("invalid_parameter", "continue", "the token of the previous page", "an unknown token")
        })?,
        None => {
            let page = q.page_size.unwrap_or(1000);
            if page == 0 || page > MAX_PAGE {
                return Err(invalid("invalid_parameter", "page_size", "1 to 10000", &page.to_string()));
            }
            (q.asset_types.clone().unwrap_or_default(), q.scope.unwrap_or(false), 0, page)
        }
    };
    let types = parse_types(Some(&types_s).filter(|t| !t.is_empty()).map(String::as_str))?;
    let mut all = vec![];
    for d in s.store.list_deployments(&account_id).await? {
        all.extend(deployment_rows(&s, &account_id, &d.id, &types, scope).await?);
    }
    let total = all.len();
    let end = (offset + page).min(total);
    let rows: Vec<Vec<Value>> = all.into_iter().skip(offset).take(end.saturating_sub(offset)).collect();
    let mut body = json!({"assets": rows, "rows": rows.len()});
    if end < total {
        body["continue"] = json!(token(&types_s, scope, end, page));
        body["total_assets"] = json!(total);
    }
    Ok(Json(body))
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
