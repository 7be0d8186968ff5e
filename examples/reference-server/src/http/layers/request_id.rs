//! Request ids: an incoming `x-request-id` is kept only if it is a sane token (1 to 64
//! characters of `A-Z a-z 0-9 - _ .`); otherwise a UUIDv7 is generated. The id is echoed
//! in the response, stored in the request extensions and recorded in the request's
//! tracing span.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use uuid::Uuid;

/// The request id header.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming request id accepted.
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// The id of the request being served (in the request extensions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `id` is acceptable as a request id from a client: 1 to
/// [`MAX_REQUEST_ID_LEN`] characters of `A-Z a-z 0-9 - _ .`.
pub fn is_sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Middleware for [`axum::middleware::from_fn`]: settles the request id (incoming if sane,
/// else a new UUIDv7), replaces the request header with it, and echoes it in the response.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_sane(id))
        .map_or_else(generate, str::to_owned);
    // Both a sane token and a UUID are valid header values; the fallible conversion is
    // still handled rather than assumed.
    let value = HeaderValue::from_str(&id).ok();
    match &value {
        Some(value) => {
            request.headers_mut().insert(X_REQUEST_ID, value.clone());
        }
        None => {
            request.headers_mut().remove(X_REQUEST_ID);
        }
    }
    request.extensions_mut().insert(RequestId(id));
    let mut response = next.run(request).await;
    if let Some(value) = value {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    response
}

/// A new request id: a UUIDv7 (time-ordered, so ids sort by arrival in logs).
fn generate() -> String {
    Uuid::now_v7().hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanity_rules() {
        for ok in [
            "a",
            "abc-DEF_123.x",
            &"a".repeat(64),
            "0190b5b4-7c3e-7000-8000-000000000000",
        ] {
            assert!(is_sane(ok), "{ok}");
        }
        for bad in [
            "",
            &"a".repeat(65),
            "a b",
            "a/b",
            "a\nb",
            "ä",
            "a;b",
            "<script>",
            "a\0",
        ] {
            assert!(!is_sane(bad), "{bad:?}");
        }
    }

    #[test]
    fn generated_ids_are_uuid_v7() {
        let id = generate();
        assert!(is_sane(&id));
        assert!(HeaderValue::from_str(&id).is_ok());
        assert_eq!(Uuid::parse_str(&id).unwrap().get_version_num(), 7);
    }
}
