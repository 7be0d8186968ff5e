//! Security headers set on every response: routes, the 404 fallback, 405s and errors.
//!
//! The API serves JSON only, so the policy is as strict as it gets: nothing may be loaded,
//! framed, submitted or cached. The Content-Security-Policy has no `unsafe-eval` and no
//! `unsafe-inline`.

use axum::http::HeaderValue;
use axum::http::header::{self, HeaderName};
use axum::response::Response;

/// `Strict-Transport-Security`: two years, subdomains included.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=63072000; includeSubDomains";
/// `Content-Security-Policy`: deny everything; JSON responses need nothing.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
/// `Permissions-Policy`: no powerful browser features.
pub const PERMISSIONS_POLICY: &str = "camera=(), microphone=(), geolocation=(), payment=()";

/// Every header this layer sets, with its value.
pub const SECURITY_HEADERS: [(HeaderName, HeaderValue); 9] = [
    (
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
    ),
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    (
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    ),
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    ),
    (
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static(PERMISSIONS_POLICY),
    ),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    ),
    (
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    ),
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
];

/// Response mapper for [`axum::middleware::map_response`]: sets every header of
/// [`SECURITY_HEADERS`], replacing any value a handler set.
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, value);
    }
    response
}
