//! A JSON extractor whose rejections are problems.
//!
//! axum's own [`axum::Json`] answers a body it cannot use (malformed JSON, a missing or wrong
//! `Content-Type`, a missing field, a field of the wrong type, a body too large) with plain
//! text. [`Json`] is the same extractor with the same statuses (400, 413, 415, 422), but the
//! body is a [`Problem`] (`bad-request`, `payload-too-large`, `unsupported-media-type`,
//! `validation`) whose `detail` is axum's explanation, like every other error of the API. As
//! a response it is [`axum::Json`].

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, OptionalFromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::problem::{Problem, ProblemType};

/// A JSON body (extractor) or a JSON response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

/// Why a [`Json`] body was refused: axum's rejection, answered as JSON with axum's status.
#[derive(Debug)]
pub struct BodyRejection {
    status: StatusCode,
    message: String,
}

impl BodyRejection {
    /// The status of the answer (400, 413, 415 or 422).
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What is wrong with the body.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<JsonRejection> for BodyRejection {
    fn from(rejection: JsonRejection) -> Self {
        Self {
            status: rejection.status(),
            message: rejection.body_text(),
        }
    }
}

impl BodyRejection {
    /// The problem answered for this rejection.
    pub fn problem(&self) -> Problem {
        let kind = match self.status {
            StatusCode::PAYLOAD_TOO_LARGE => ProblemType::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ProblemType::UnsupportedMediaType,
            StatusCode::UNPROCESSABLE_ENTITY => ProblemType::Validation,
            _ => ProblemType::BadRequest,
        };
        Problem::new(kind)
            .with_status(self.status)
            .detail(self.message.clone())
    }
}

impl IntoResponse for BodyRejection {
    fn into_response(self) -> Response {
        self.problem().into_response()
    }
}

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = BodyRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) =
            <axum::Json<T> as FromRequest<S>>::from_request(request, state).await?;
        Ok(Self(value))
    }
}

/// `Option<Json<T>>`: `None` without a `Content-Type`; a JSON rejection otherwise, as for
/// [`axum::Json`].
impl<T, S> OptionalFromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = BodyRejection;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let value = <axum::Json<T> as OptionalFromRequest<S>>::from_request(request, state).await?;
        Ok(value.map(|axum::Json(v)| Self(v)))
    }
}

/// A body that must be a JSON object. serde's derived structs also accept an array of
/// their fields in order (`[60, null]`), which no client of this API means to send: for a
/// struct whose fields are all optional, any short array of nulls would pass. `Object<T>`
/// reads `T` from an object only; anything else is the usual 422.
#[derive(Debug, Clone, Copy, Default)]
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(Object)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Named {
        #[expect(dead_code, reason = "only deserialised")]
        name: String,
    }

    async fn extract(content_type: Option<&str>, body: &str) -> Result<Json<Named>, BodyRejection> {
        let mut builder = Request::builder().method("POST").uri("/");
        if let Some(ct) = content_type {
            builder = builder.header("content-type", ct);
        }
        let request = builder.body(Body::from(body.to_owned())).unwrap();
        <Json<Named> as FromRequest<()>>::from_request(request, &()).await
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Optional {
        a: Option<u32>,
        b: Option<u32>,
    }

    #[test]
    fn an_object_body_refuses_an_array_of_fields() {
        let parse = |text: &str| serde_json::from_str::<Object<Optional>>(text).map(|o| o.0);
        assert_eq!(
            parse(r#"{"a":1}"#).unwrap(),
            Optional {
                a: Some(1),
                b: None
            }
        );
        assert!(
            parse(r#"{"a":1,"c":2}"#).is_err(),
            "unknown fields still refused"
        );
        // The derived struct alone takes these; as an Object none passes.
        assert!(serde_json::from_str::<Optional>("[null, null]").is_ok());
        for bad in ["[null, null]", "[1, 2]", "null", "1", "\"a\""] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("a JSON object"), "{bad}: {err}");
        }
    }

    #[tokio::test]
    async fn every_rejection_keeps_axums_status() {
        let json = Some("application/json");
        assert!(extract(json, r#"{"name":"x"}"#).await.is_ok());
        for (content_type, body, status) in [
            (json, "{not json", StatusCode::BAD_REQUEST),
            (None, r#"{"name":"x"}"#, StatusCode::UNSUPPORTED_MEDIA_TYPE),
            (
                Some("text/plain"),
                r#"{"name":"x"}"#,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (json, "{}", StatusCode::UNPROCESSABLE_ENTITY),
            (json, r#"{"name":7}"#, StatusCode::UNPROCESSABLE_ENTITY),
        ] {
            let rejection = extract(content_type, body).await.unwrap_err();
            assert_eq!(rejection.status(), status, "{body}");
            assert!(!rejection.message().is_empty());
            let response = rejection.into_response();
            assert_eq!(response.status(), status);
            assert_eq!(
                response.headers()["content-type"],
                crate::problem::PROBLEM_JSON
            );
        }
    }
}
