//! The OpenAPI document. Paths are not listed here: each handler registers itself and its
//! documentation together through `utoipa_axum`, so the document always matches the
//! routes served. [`document_errors`] then makes every error response a `Problem`
//! (`application/problem+json`) and adds the statuses the pipeline can answer on every route.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::problem::{FieldError, PROBLEM_JSON, Problem};

/// Every operation of the document, with its path.
pub(crate) fn operations_mut(
    api: &mut utoipa::openapi::OpenApi,
) -> impl Iterator<Item = (&str, &mut utoipa::openapi::path::Operation)> {
    api.paths.paths.iter_mut().flat_map(|(path, item)| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
        .map(move |operation| (path.as_str(), operation))
    })
}

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
        (name = "orders", description = "Order entry: validated, RBAC-guarded, maker-checker approval of large orders"),
        (name = "audit", description = "The audit log for auditors: search, signed checkpoints, inclusion and consistency proofs, incidents"),
        (name = "compliance", description = "MiFID II: transaction reports (ISO 20022 auth.016 XML or CSV), cancellations, best execution, the firm's clients")
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

/// The statuses every route may answer whatever it does: the global layers' 429 (rate
/// limited), 503 (unavailable) and 500 (a failure, logged).
const EVERY_ROUTE: [(&str, &str); 3] = [
    ("429", "Rate limited (see `Retry-After`)"),
    (
        "500",
        "The server failed; the cause is in its log under the request id",
    ),
    (
        "503",
        "The service is unavailable (see `Retry-After` when present)",
    ),
];

/// The statuses of a route with a JSON request body: a body that cannot be read.
const WITH_BODY: [(&str, &str); 4] = [
    ("400", "The body is not JSON"),
    ("413", "The body is too large"),
    ("415", "The body is not declared as application/json"),
    ("422", "The body has invalid fields"),
];

/// Makes every error response of `api` a [`Problem`]: each status of 400 and above (those a
/// route documents, plus those the pipeline and extractors can answer: 429, 500 and 503 on
/// every route, 400/413/415/422 on a route with a body, 400 on one with path parameters, 401
/// on one that needs a credential) refers to the `Problem` schema as
/// `application/problem+json`. A 429 also documents its headers.
pub fn document_errors(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{Content, Header, Ref, RefOr, Response, ResponseBuilder};

    let components = api.components.get_or_insert_with(Default::default);
    components.schemas.insert(
        "Problem".to_owned(),
        <Problem as utoipa::PartialSchema>::schema(),
    );
    components.schemas.insert(
        "FieldError".to_owned(),
        <FieldError as utoipa::PartialSchema>::schema(),
    );
    let header = |description: &str, kind: Type| {
        Header::builder()
            .schema(ObjectBuilder::new().schema_type(kind))
            .description(Some(description))
            .build()
    };
    let rate_headers = [
        (
            "Retry-After",
            header("Seconds to wait before retrying", Type::Integer),
        ),
        (
            "RateLimit-Policy",
            header(
                "The quota that denied (draft-ietf-httpapi-ratelimit-headers)",
                Type::String,
            ),
        ),
        (
            "RateLimit",
            header("What is left of that quota, and when", Type::String),
        ),
    ];
    let problem_content = Content::new(Some(Ref::from_schema_name("Problem")));
    let new_response =
        |description: &str| -> Response { ResponseBuilder::new().description(description).build() };
    for (_, operation) in operations_mut(api) {
        let mut implied: Vec<(&str, &str)> = EVERY_ROUTE.to_vec();
        if operation.request_body.is_some() {
            implied.extend(WITH_BODY);
        }
        let has_path_params = operation
            .parameters
            .iter()
            .flatten()
            .any(|p| matches!(p.parameter_in, ParameterIn::Path));
        if has_path_params {
            implied.push(("400", "A path parameter cannot be parsed"));
        }
        let needs_credential = operation
            .security
            .as_ref()
            .is_some_and(|requirements| !requirements.is_empty());
        if needs_credential {
            implied.push(("401", "Not authenticated (the uniform 401)"));
        }
        let responses = &mut operation.responses.responses;
        for (status, description) in implied {
            responses
                .entry(status.to_owned())
                .or_insert_with(|| RefOr::T(new_response(description)));
        }
        for (status, response) in responses.iter_mut() {
            let is_error = status.parse::<u16>().is_ok_and(|code| code >= 400);
            let RefOr::T(response) = response else {
                continue;
            };
            if !is_error {
                continue;
            }
            response.content.clear();
            response
                .content
                .insert(PROBLEM_JSON.to_owned(), problem_content.clone());
            if status == "429" {
                for (name, value) in &rate_headers {
                    response
                        .headers
                        .entry((*name).to_owned())
                        .or_insert_with(|| value.clone());
                }
            }
        }
    }
}
