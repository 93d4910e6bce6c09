use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder};

/// The document's frame; paths and schemas are added by the routes themselves.
pub fn base() -> OpenApi {
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("garrison")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("Alert Logic MDR-compatible control plane for protecting AWS accounts"))
                .build(),
        )
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme(
                    "X-AIMS-Auth-Token",
                    SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-aims-auth-token"))),
                )
                .security_scheme(
                    "BasicAuth",
                    SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
                )
                .build(),
        ))
        .build()
}
