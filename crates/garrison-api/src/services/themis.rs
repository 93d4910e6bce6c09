//! themis: the IAM roles garrison asks customers to create, their CloudFormation
//! templates, and validation of a customer's role.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use garrison_catalog::roles::LookupError;
use garrison_catalog::{RoleDef, cft};
use garrison_model::FieldError;
use garrison_model::credential::is_role_arn;
use garrison_model::error::describe;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::body;
use crate::error::{ApiError, ApiResult};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_role))
        .routes(routes!(get_roles))
        .routes(routes!(get_role_template))
        .routes(routes!(validate_credentials))
}

fn lookup_error(e: LookupError) -> ApiError {
    match e {
        LookupError::Platform(p) => ApiError::field(FieldError::new("platform_type", "\"aws\"", format!("{p:?}"))),
        LookupError::RoleType { found, known } => {
            ApiError::field(FieldError::new("role_type", format!("one of [{known}]"), format!("{found:?}")))
        }
        e @ (LookupError::Retired(..) | LookupError::Version { .. }) => ApiError::NotFound(e.to_string()),
    }
}

/// Where the role's template can be fetched: the operator's bucket when templates are
/// published there, else this server's public template route.
pub fn cft_location(s: &AppState, role: &RoleDef) -> Value {
    let key = format!("{}/{}", role.role_type, role.version);
    match &s.config.template_bucket {
        Some(bucket) => {
            json!({"s3_bucket": bucket, "s3_key": key, "s3_url": format!("https://{bucket}.s3.amazonaws.com/{key}")})
        }
        None => json!({
            "s3_bucket": "",
            "s3_key": key,
            "s3_url": format!("{}/themis/v1/templates/aws/{}/{}", s.config.public_url.trim_end_matches('/'), role.role_type, role.version),
        }),
    }
}

/// The 12-digit account of garrison's principal.
fn principal_account(s: &AppState) -> String {
    let p = &s.config.aws_principal;
    if p.len() == 12 { p.clone() } else { p.split(':').nth(4).unwrap_or_default().to_string() }
}

fn role_info(s: &AppState, role: &RoleDef, external_id: &str) -> Value {
    json!({
        "type": role.role_type,
        "platform_type": "aws",
        "policy_document": role.policy_document,
        "external_id": external_id,
        "aws_account_id": principal_account(s),
        "version": role.version,
        "cft": cft_location(s, role),
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
struct RoleQuery {
    /// json (default) | terraform (HCL text equivalent to the CloudFormation template)
    format: Option<String>,
}

/// The role to create for garrison, with its external id and template; `format=terraform`
/// gives the role as a Terraform configuration instead (text/plain).
#[utoipa::path(get, path = "/themis/v1/{account_id}/roles/{platform_type}/{role_type}/{role_version}", tag = "themis", operation_id = "get_role",
    params(("account_id" = String, Path), ("platform_type" = String, Path), ("role_type" = String, Path), ("role_version" = String, Path, description = "YYYY-MM-DD or latest"), RoleQuery),
    security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "ThemisRoleInfo, or HCL text with format=terraform"), (status = 404, description = "no such version")))]
async fn get_role(
    State(s): State<AppState>,
    caller: Caller,
    Path((account_id, platform, role_type, version)): Path<(String, String, String, String)>,
    Query(q): Query<RoleQuery>,
) -> ApiResult<Response> {
    s.authorize(&caller, &account_id).await?;
    let terraform = match q.format.as_deref() {
        None | Some("json") => false,
        Some("terraform") => true,
        Some(other) => {
            return Err(ApiError::field(FieldError::new("format", "one of [json, terraform]", format!("{other:?}"))));
        }
    };
    let role = s.catalog.get(&platform, &role_type, &version).map_err(lookup_error)?;
    if terraform {
        let hcl = garrison_catalog::terraform::render(role, &s.config.aws_principal);
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], hcl).into_response());
    }
    let ext = s.store.external_id(&account_id).await?;
    Ok(Json(role_info(&s, role, &ext)).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
struct PlatformQuery {
    platform_type: Option<String>,
}

/// The latest version of every role type.
#[utoipa::path(get, path = "/themis/v1/{account_id}/roles", tag = "themis", operation_id = "get_roles",
    params(("account_id" = String, Path), PlatformQuery), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "[ThemisRoleInfo]")))]
async fn get_roles(
    State(s): State<AppState>,
    caller: Caller,
    Path(account_id): Path<String>,
    Query(q): Query<PlatformQuery>,
) -> ApiResult<Json<Vec<Value>>> {
    s.authorize(&caller, &account_id).await?;
    match q.platform_type.as_deref() {
        None | Some("aws") => {}
        // A platform of the reference that garrison has no roles for.
        Some("azure") => return Ok(Json(vec![])),
        Some(other) => {
            return Err(ApiError::field(FieldError::new("platform_type", "one of [aws, azure]", format!("{other:?}"))));
        }
    }
    let ext = s.store.external_id(&account_id).await?;
    Ok(Json(s.catalog.latest().into_iter().map(|r| role_info(&s, r, &ext)).collect()))
}

/// The CloudFormation template of a role version (public: it holds no tenant data; the
/// external id is a stack parameter).
#[utoipa::path(get, path = "/themis/v1/templates/{platform_type}/{role_type}/{role_version}", tag = "themis", operation_id = "get_role_template",
    params(("platform_type" = String, Path), ("role_type" = String, Path), ("role_version" = String, Path)),
    responses((status = 200, description = "CloudFormation template (JSON)")))]
async fn get_role_template(
    State(s): State<AppState>,
    Path((platform, role_type, version)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let role = s.catalog.get(&platform, &role_type, &version).map_err(lookup_error)?;
    Ok(Json(cft::render(role, &s.config.aws_principal)))
}

/// Checks a role against the role type. Until the AWS layer reads the role itself, this
/// checks what garrison knows: ARN shape, the tenant's external id, the role version.
#[utoipa::path(post, path = "/themis/v1/validate/{platform_type}/{role_type}", tag = "themis", operation_id = "validate_credentials",
    params(("platform_type" = String, Path), ("role_type" = String, Path)), security(("X-AIMS-Auth-Token" = [])),
    responses((status = 200, description = "{status, message, version}"), (status = 400, description = "{status, message}")))]
async fn validate_credentials(
    State(s): State<AppState>,
    caller: Caller,
    Path((platform, role_type)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let v = body::parse(&bytes)?;
    let Some(c) = v.get("credential") else {
        return Err(ApiError::field(FieldError::new(
            "credential",
            "an object {platform_type, role_type, arn, external_id, role_version?}",
            "nothing",
        )));
    };
    let get = |k: &str| c.get(k).and_then(Value::as_str);
    let mut errors = garrison_model::ValidationError::default();
    if !c.is_object() {
        return Err(ApiError::field(FieldError::new("credential", "an object", describe(c))));
    }
    if get("platform_type").is_some_and(|p| p != platform) {
        errors.push(FieldError::new(
            "credential.platform_type",
            format!("{platform:?} (as in the path)"),
            describe(&c["platform_type"]),
        ));
    }
    if get("role_type").is_some_and(|r| r != role_type) {
        errors.push(FieldError::new(
            "credential.role_type",
            format!("{role_type:?} (as in the path)"),
            describe(&c["role_type"]),
        ));
    }
    match get("arn") {
        Some(a) if is_role_arn(a) => {}
        _ => errors.push(FieldError::new(
            "credential.arn",
            "an IAM role ARN",
            c.get("arn").map_or("nothing".into(), describe),
        )),
    }
    let ext = s.store.external_id(&caller.account_id).await?;
    match get("external_id") {
        Some(e) if e == ext => {}
        Some(_) => errors.push(
            FieldError::new("credential.external_id", "this account's external id", "another value")
                .hint("use the external_id from themis get_role"),
        ),
        None => errors.push(FieldError::new("credential.external_id", "this account's external id", "nothing")),
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let latest = s.catalog.get(&platform, &role_type, "latest").map_err(lookup_error)?;
    let asked = get("role_version").unwrap_or(&latest.version);
    let role = s.catalog.get(&platform, &role_type, asked).map_err(lookup_error)?;
    let freshness = if role.version == latest.version { "latest" } else { "outdated" };
    let Some(engine) = &s.engine else {
        // API-only test setups have no AWS layer: only what garrison stores is checked.
        return Ok((
            StatusCode::OK,
            Json(json!({"status": freshness, "message": "Validation successful", "version": role.version})),
        ));
    };
    let arn = get("arn").unwrap_or_default();
    let v = garrison_engine::validation::validate(engine, arn, &ext, role, engine.propagation.0).await;
    let details = serde_json::to_value(&v).unwrap_or(Value::Null);
    if v.status == garrison_engine::validation::ValidationStatus::Ok {
        let message = if freshness == "latest" {
            "Validation successful".to_string()
        } else {
            format!("Validation successful; version {} is superseded by {}", role.version, latest.version)
        };
        Ok((
            StatusCode::OK,
            Json(json!({"status": freshness, "message": message, "version": role.version, "validation": details})),
        ))
    } else {
        Ok((
            StatusCode::BAD_REQUEST,
            Json(
                json!({"status": details["status"], "message": v.message, "version": role.version, "validation": details}),
            ),
        ))
    }
}
