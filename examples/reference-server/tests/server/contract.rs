//! The served OpenAPI document is as strict as the server: every request body is closed to
//! unknown fields, and the documented bounds and patterns are the ones the server checks
//! (compared with the constants, and by running samples through both the pattern and the
//! server's own parser). The links that let clients follow a created resource are there.

use finsec_auth::api_keys::ApiKeyId;
use finsec_auth::mfa::{BackupCodeKey, BackupCodes, MfaUserId, TotpParams};
use finsec_auth::passwords::{DEFAULT_MAX_CHARS, DEFAULT_MIN_CHARS, PasswordPolicy};
use finsec_rbac::PermissionPattern;
use finsec_reference_server::auth::request_schema::{API_KEY_MAX_DAYS, API_KEY_NAME_MAX_CHARS};
use finsec_reference_server::auth::users::{USERNAME_MAX_CHARS, USERNAME_MIN_CHARS, Username};
use finsec_validate::request::AccountId;
use regex::Regex;
use serde_json::Value;

use crate::support::{DataDir, Launch};

/// Follows a `$ref` into `components`.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            let target = &doc["components"]["schemas"][name];
            assert!(target.is_object(), "dangling {reference}");
            resolve(doc, target)
        }
        None => schema,
    }
}

/// The JSON request body schema of an operation (resolved).
fn body<'a>(doc: &'a Value, path: &str, method: &str) -> &'a Value {
    let schema =
        &doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "{method} {path} has no JSON body");
    resolve(doc, schema)
}

/// The object schemas a body may be: the schema itself, or each branch of a
/// `oneOf`/`anyOf` (a `null` branch is skipped).
fn objects<'a>(doc: &'a Value, schema: &'a Value) -> Vec<&'a Value> {
    for key in ["oneOf", "anyOf"] {
        if let Some(branches) = schema[key].as_array() {
            return branches
                .iter()
                .map(|b| resolve(doc, b))
                .filter(|b| b["type"] != "null")
                .flat_map(|b| objects(doc, b))
                .collect();
        }
    }
    vec![schema]
}

fn pattern(schema: &Value) -> Regex {
    let text = schema["pattern"]
        .as_str()
        .unwrap_or_else(|| panic!("no pattern in {schema}"));
    Regex::new(text).unwrap()
}

fn size(schema: &Value, key: &str) -> usize {
    usize::try_from(
        schema[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no {key} in {schema}")),
    )
    .unwrap()
}

/// Whether a string schema (pattern and length bounds) accepts `value`.
fn accepts(schema: &Value, value: &str) -> bool {
    let chars = value.chars().count();
    pattern(schema).is_match(value)
        && schema["minLength"]
            .as_u64()
            .is_none_or(|min| chars >= usize::try_from(min).unwrap())
        && schema["maxLength"]
            .as_u64()
            .is_none_or(|max| chars <= usize::try_from(max).unwrap())
}

async fn served() -> Value {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    server.get_json("/openapi.json", 200).await
}

#[tokio::test]
async fn every_request_body_is_closed_and_constrained() {
    let doc = served().await;
    let mut bodies = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if operation["requestBody"].is_null() {
                continue;
            }
            let schema = body(&doc, path, method);
            for object in objects(&doc, schema) {
                assert_eq!(
                    object["additionalProperties"], false,
                    "{method} {path}: {object}"
                );
                for required in object["required"].as_array().into_iter().flatten() {
                    let name = required.as_str().unwrap();
                    assert!(
                        object["properties"][name].is_object(),
                        "{method} {path}: required {name} is not a property"
                    );
                }
                bodies += 1;
            }
        }
    }
    // register, login, mfa verify, refresh, logout, mfa confirm, api-keys, and the two
    // branches of an order.
    assert!(bodies >= 9, "only {bodies} request body objects");
}

#[tokio::test]
async fn username_and_password_bounds_are_the_servers() {
    let doc = served().await;
    let register = body(&doc, "/auth/register", "post");
    let username = &register["properties"]["username"];
    assert_eq!(size(username, "minLength"), USERNAME_MIN_CHARS);
    assert_eq!(size(username, "maxLength"), USERNAME_MAX_CHARS);
    let mut samples = vec![
        "abc",
        "ab",
        "Alice.W",
        "a b",
        "x@y",
        "zoë",
        "\u{FF21}lice",
        "\u{430}dmin",
        "a-b_c.9",
        "",
        "abc\n",
        "tab\tx",
        "..-",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    samples.push("n".repeat(USERNAME_MAX_CHARS));
    samples.push("n".repeat(USERNAME_MAX_CHARS + 1));
    for sample in &samples {
        assert_eq!(
            accepts(username, sample),
            Username::parse(sample).is_ok(),
            "username {sample:?}"
        );
    }
    assert_eq!(
        register["required"],
        serde_json::json!(["username", "password"])
    );

    let password = &register["properties"]["password"];
    let policy = PasswordPolicy::default();
    assert_eq!(size(password, "minLength"), DEFAULT_MIN_CHARS);
    assert_eq!(size(password, "maxLength"), DEFAULT_MAX_CHARS);
    assert_eq!(
        (policy.min_chars(), policy.max_chars()),
        (DEFAULT_MIN_CHARS, DEFAULT_MAX_CHARS)
    );

    // Login looks up any name and password (an unknown one is a 401), so its schema only
    // closes the object.
    let login = body(&doc, "/auth/login", "post");
    assert!(
        login["properties"]["username"]["pattern"].is_null(),
        "{login}"
    );
    assert!(
        login["properties"]["password"]["minLength"].is_null(),
        "{login}"
    );
}

#[tokio::test]
async fn codes_follow_the_totp_and_backup_code_formats() {
    let doc = served().await;
    let digits = usize::try_from(TotpParams::default().digits().count()).unwrap();
    let confirm = &body(&doc, "/mfa/confirm", "post")["properties"]["code"];
    let verify = &body(&doc, "/auth/mfa/verify", "post")["properties"]["code"];
    let totp = "7".repeat(digits);
    for schema in [confirm, verify] {
        assert!(accepts(schema, &totp), "{schema}");
        for bad in [
            "7".repeat(digits - 1),
            "7".repeat(digits + 1),
            format!(" {totp}"),
            String::new(),
            "12a456".to_owned(),
        ] {
            assert!(!accepts(schema, &bad), "{bad:?} {schema}");
        }
    }
    // Every backup code the server hands out, in the spellings finsec-auth reads, is a
    // valid login code; a confirmation takes TOTP codes only.
    let key = BackupCodeKey::new([7; 32]);
    let user = MfaUserId::new("contract-user").unwrap();
    let codes = BackupCodes::generate(&key, &user).unwrap();
    let mut seen = 0;
    for code in codes.expose_codes() {
        let plain: String = code.chars().filter(|c| *c != '-').collect();
        for spelling in [
            code.to_owned(),
            code.to_lowercase(),
            plain.clone(),
            format!(" {code} "),
        ] {
            assert!(accepts(verify, &spelling), "{spelling:?} {verify}");
            assert!(!accepts(confirm, &spelling), "{spelling:?} {confirm}");
        }
        for bad in [
            format!("{plain}2"),
            plain[1..].to_owned(),
            plain.replace('2', "0"),
        ] {
            if bad != plain {
                assert!(!accepts(verify, &bad), "{bad:?} {verify}");
            }
        }
        seen += 1;
    }
    assert!(seen > 0);
}

#[tokio::test]
async fn api_key_requests_are_bounded_like_the_handler() {
    let doc = served().await;
    let request = body(&doc, "/api-keys", "post");
    let scopes = &request["properties"]["scopes"];
    assert_eq!(scopes["minItems"], 1);
    let scope = resolve(&doc, &scopes["items"]);
    assert_eq!(size(scope, "maxLength"), finsec_rbac::permission::MAX_LEN);
    let mut samples: Vec<String> = [
        "orders:read",
        "orders:*",
        "*",
        "*:*",
        "read:market_data",
        "a.b-c_d",
        "",
        ":",
        "orders:",
        ":read",
        "orders::read",
        "trade*",
        "Not A Pattern!",
        "a:b:c:d:e:f:g:h",
        "a:b:c:d:e:f:g:h:i",
        "ordérs",
        "orders:read\n",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    samples.push("a".repeat(finsec_rbac::permission::MAX_LEN));
    samples.push("a".repeat(finsec_rbac::permission::MAX_LEN + 1));
    for sample in &samples {
        assert_eq!(
            accepts(scope, sample),
            PermissionPattern::new(sample).is_ok(),
            "scope {sample:?}"
        );
    }

    let name = &request["properties"]["name"];
    assert_eq!(size(name, "minLength"), 1);
    assert_eq!(size(name, "maxLength"), API_KEY_NAME_MAX_CHARS);
    for (sample, ok) in [("ci bot", true), (" spaced ", true), ("bell\u{7}", false)] {
        assert_eq!(accepts(name, sample), ok, "name {sample:?}");
    }
    let days = &request["properties"]["expires_in_days"];
    assert_eq!(days["minimum"], 1);
    assert_eq!(days["maximum"], API_KEY_MAX_DAYS);
    assert_eq!(request["required"], serde_json::json!(["name", "scopes"]));

    // The key id in the path is what ApiKeyId parses.
    let id = doc["paths"]["/api-keys/{id}"]["delete"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "id")
        .unwrap();
    let id_schema = &id["schema"];
    for sample in [
        "0123456789abcdef",
        "0123456789ABCDEF",
        "0123",
        "0123456789abcdef0",
    ] {
        assert_eq!(
            pattern(id_schema).is_match(sample),
            sample.parse::<ApiKeyId>().is_ok(),
            "key id {sample:?}"
        );
    }

    // The account in the entitlement paths is what AccountId parses.
    let account = doc["paths"]["/admin/users/{user_id}/accounts/{account_id}"]["put"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "account_id")
        .unwrap();
    let account_schema = &account["schema"];
    let long = "A".repeat(64);
    let longer = "A".repeat(65);
    let mut checked = 0;
    for sample in [
        "ACC-1",
        "a_b-9",
        "0",
        "-",
        long.as_str(),
        "",
        "ACC 1",
        "ACC/1",
        "é",
        "ACC.1",
        longer.as_str(),
    ] {
        assert_eq!(
            pattern(account_schema).is_match(sample),
            sample.parse::<AccountId>().is_ok(),
            "account id {sample:?}"
        );
        checked += 1;
    }
    assert_eq!(checked, 11);
}

#[tokio::test]
async fn created_resources_link_to_their_operations() {
    let doc = served().await;
    let operation_ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    let mut links = 0;
    for (path, status, name, target) in [
        ("/orders", "201", "GetOrder", "get_order"),
        ("/orders", "201", "ApproveOrder", "approve_order"),
        ("/orders", "202", "ApproveOrder", "approve_order"),
        ("/api-keys", "201", "DeleteApiKey", "delete_api_key"),
    ] {
        let link = &doc["paths"][path]["post"]["responses"][status]["links"][name];
        assert_eq!(
            link["operationId"], target,
            "{path} {status} {name}: {link}"
        );
        assert_eq!(link["parameters"]["id"], "$response.body#/id", "{link}");
        assert!(
            operation_ids.contains(&target),
            "{target} not in {operation_ids:?}"
        );
        links += 1;
    }
    assert_eq!(links, 4);
}
