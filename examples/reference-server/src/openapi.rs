//! The OpenAPI document. Paths are not listed here: each handler registers itself and its
//! documentation together through `utoipa_axum`, so the document always matches the
//! routes served.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document's fixed part: title, description, tags.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "finsec reference server",
        description = "The finsec reference server: the finsec crates wired into one HTTP service."
    ),
    tags(
        (name = "operations", description = "Health and service description"),
        (name = "auth", description = "Users, sessions, second factor and API keys"),
        (name = "orders", description = "Order entry: validated, RBAC-guarded, maker-checker approval of large orders")
    ),
    modifiers(&SecuritySchemes)
)]
pub struct ApiDoc;

/// Declares the security schemes: `bearer` (an access JWT in `Authorization: Bearer`) and
/// `api_key` (an `fsk_` key in `X-API-Key`, or in `Authorization: Bearer`).
#[derive(Debug)]
pub struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key (fsk_...); it may also be sent as Authorization: Bearer",
            ))),
        );
    }
}
