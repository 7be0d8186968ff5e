//! OpenAPI links: how the id a creating operation answers with feeds the operations on
//! that resource, so that clients (and schema-driven testers) can follow them.
//!
//! The derive has no attribute for links, so they are added to the generated document
//! here, in one place: [`document`] is called wherever the document is built, and
//! [`to_json`] serialises it.
//!
//! utoipa 5's `Link` serialises its fields in snake case (`operation_id`), which OpenAPI
//! tools do not read; [`to_json`] writes them as the specification spells them
//! (`operationId`, `operationRef`, `requestBody`).

use serde_json::Value;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{OpenApi, RefOr};

/// A link from a response to an operation, passing the response body's `id` as the
/// operation's `id` path parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdLink {
    /// The creating operation's path (a `POST`).
    pub from_path: &'static str,
    /// The statuses of its responses that carry the created resource.
    pub statuses: &'static [&'static str],
    /// The link's name.
    pub name: &'static str,
    /// The `operationId` of the operation the id is passed to.
    pub operation_id: &'static str,
    /// What following the link does.
    pub description: &'static str,
}

/// Every link the document declares.
pub const LINKS: &[IdLink] = &[
    IdLink {
        from_path: "/orders",
        statuses: &["201", "202"],
        name: "GetOrder",
        operation_id: "get_order",
        description: "Read the order just placed",
    },
    IdLink {
        from_path: "/orders",
        statuses: &["201", "202"],
        name: "ApproveOrder",
        operation_id: "approve_order",
        description: "Approve the order just placed (only a pending order can be approved, \
                      and never by its initiator)",
    },
    IdLink {
        from_path: "/api-keys",
        statuses: &["201"],
        name: "DeleteApiKey",
        operation_id: "delete_api_key",
        description: "Revoke the key just created",
    },
];

/// The body pointer every link reads the id from.
const ID_FROM_BODY: &str = "$response.body#/id";

/// Whether the document has an operation with this `operationId`.
fn has_operation(api: &OpenApi, operation_id: &str) -> bool {
    api.paths.paths.values().any(|item| {
        [
            &item.get,
            &item.put,
            &item.post,
            &item.delete,
            &item.patch,
            &item.head,
            &item.options,
            &item.trace,
        ]
        .into_iter()
        .flatten()
        .any(|op: &Operation| op.operation_id.as_deref() == Some(operation_id))
    })
}

/// Adds [`LINKS`] to the responses of the creating operations. A link whose source
/// response or target operation is not in the document is left out (and logged), so the
/// document never points at something it does not describe.
pub fn document(api: &mut OpenApi) {
    for link in LINKS {
        if !has_operation(api, link.operation_id) {
            tracing::warn!(
                operation_id = link.operation_id,
                "openapi link target missing"
            );
            continue;
        }
        let Some(post) = api
            .paths
            .paths
            .get_mut(link.from_path)
            .and_then(|item| item.post.as_mut())
        else {
            tracing::warn!(path = link.from_path, "openapi link source missing");
            continue;
        };
        for status in link.statuses {
            let Some(RefOr::T(response)) = post.responses.responses.get_mut(*status) else {
                tracing::warn!(
                    path = link.from_path,
                    status,
                    "openapi link response missing"
                );
                continue;
            };
            let built = LinkBuilder::new()
                .operation_id(link.operation_id)
                .parameter("id", ID_FROM_BODY)
                .description(link.description)
                .build();
            response.links.insert(link.name.to_owned(), RefOr::T(built));
        }
    }
}

/// The link fields utoipa writes in snake case, with their OpenAPI names.
const LINK_FIELDS: [(&str, &str); 3] = [
    ("operation_id", "operationId"),
    ("operation_ref", "operationRef"),
    ("request_body", "requestBody"),
];

/// Renames the snake-case fields of every link of every response in `doc`.
fn fix_link_fields(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    let links = paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses"))
        .filter_map(Value::as_object_mut)
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links"))
        .filter_map(Value::as_object_mut)
        .flat_map(|links| links.values_mut())
        .filter_map(Value::as_object_mut);
    for link in links {
        for (snake, camel) in LINK_FIELDS {
            if let Some(value) = link.remove(snake) {
                link.insert(camel.to_owned(), value);
            }
        }
    }
}

/// The document as JSON, with its links spelled as OpenAPI specifies.
///
/// # Errors
/// The document cannot be serialised.
pub fn to_json(api: &OpenApi) -> Result<String, serde_json::Error> {
    let mut doc = serde_json::to_value(api)?;
    fix_link_fields(&mut doc);
    serde_json::to_string(&doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_written_in_camel_case() {
        let api = crate::http::openapi();
        let doc: Value = serde_json::from_str(&to_json(&api).unwrap()).unwrap();
        let link = &doc["paths"]["/api-keys"]["post"]["responses"]["201"]["links"]["DeleteApiKey"];
        assert_eq!(link["operationId"], "delete_api_key", "{link}");
        assert!(link.get("operation_id").is_none(), "{link}");
        // Everything else is what utoipa writes.
        let mut plain = serde_json::to_value(&api).unwrap();
        fix_link_fields(&mut plain);
        assert_eq!(doc, plain);
    }
}
