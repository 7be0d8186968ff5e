//! The OpenAPI document. Paths are not listed here: each handler registers itself and its
//! documentation together through `utoipa_axum`, so the document always matches the
//! routes served.

use utoipa::OpenApi;

/// The document's fixed part: title, description, tags.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "finsec reference server",
        description = "The finsec reference server: the finsec crates wired into one HTTP service."
    ),
    tags((name = "operations", description = "Health and service description"))
)]
pub struct ApiDoc;
