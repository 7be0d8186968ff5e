//! Loading policies from TOML, YAML and JSON: one policy in three formats loads the same,
//! and every kind of mistake is an error naming where it is.

#![cfg(test)]

use finsec_rbac::{Error, Permission, Policy, Principal, Request, Resource, RoleName};

const TOML: &str = r#"
[roles.base]
rules = [{ effect = "allow", permissions = ["market_data:read"] }]

[roles.desk]
inherits = ["base"]
rules = [
    { effect = "allow", permissions = ["orders:*"], conditions = [
        { kind = "attr_match", principal = "desk", resource = "desk" },
        { kind = "ip", networks = ["10.0.0.0/8", "2001:db8::/32"] },
    ] },
    { effect = "deny", permissions = ["orders:delete"] },
    { effect = "allow", permissions = ["reports:read"], conditions = [
        { kind = "principal_attr", key = "clearance", value = "high" },
        { kind = "resource_attr", key = "class", value = "internal" },
    ] },
    { effect = "allow", permissions = ["portfolio:read"], conditions = [{ kind = "owner" }] },
]
"#;

const YAML: &str = r#"
roles:
  desk:
    inherits: [base]
    rules:
      - effect: allow
        permissions: ["orders:*"]
        conditions:
          - { kind: attr_match, principal: desk, resource: desk }
          - { kind: ip, networks: ["10.0.0.0/8", "2001:db8::/32"] }
      - { effect: deny, permissions: ["orders:delete"] }
      - effect: allow
        permissions: ["reports:read"]
        conditions:
          - { kind: principal_attr, key: clearance, value: high }
          - { kind: resource_attr, key: class, value: internal }
      - effect: allow
        permissions: ["portfolio:read"]
        conditions: [{ kind: owner }]
  base:
    rules:
      - { effect: allow, permissions: ["market_data:read"] }
"#;

const JSON: &str = r#"{
  "roles": {
    "desk": {
      "inherits": ["base"],
      "rules": [
        { "effect": "allow", "permissions": ["orders:*"], "conditions": [
            { "kind": "attr_match", "principal": "desk", "resource": "desk" },
            { "kind": "ip", "networks": ["10.0.0.0/8", "2001:db8::/32"] } ] },
        { "effect": "deny", "permissions": ["orders:delete"] },
        { "effect": "allow", "permissions": ["reports:read"], "conditions": [
            { "kind": "principal_attr", "key": "clearance", "value": "high" },
            { "kind": "resource_attr", "key": "class", "value": "internal" } ] },
        { "effect": "allow", "permissions": ["portfolio:read"], "conditions": [{ "kind": "owner" }] }
      ]
    },
    "base": { "rules": [{ "effect": "allow", "permissions": ["market_data:read"] }] }
  }
}"#;

#[test]
fn three_formats_load_the_same_policy() {
    let t = Policy::from_toml(TOML).unwrap();
    let y = Policy::from_yaml(YAML).unwrap();
    let j = Policy::from_json(JSON).unwrap();
    assert_eq!(t.roles(), y.roles());
    assert_eq!(t.roles(), j.roles());
    assert_eq!(t.roles().len(), 2);
    assert_eq!(t.role("desk").unwrap().rules().len(), 4);

    let p = Principal::new("ann")
        .unwrap()
        .with_role(RoleName::new("desk").unwrap())
        .with_attribute("desk", "fx")
        .unwrap()
        .with_attribute("clearance", "high")
        .unwrap();
    let fx = Resource::new().with_attribute("desk", "fx").unwrap();
    let rates = Resource::new().with_attribute("desk", "rates").unwrap();
    let cancel = Permission::new("orders:cancel").unwrap();
    let delete = Permission::new("orders:delete").unwrap();
    let md = Permission::new("market_data:read").unwrap();
    let office = "10.9.8.7".parse().unwrap();
    let v6 = "2001:db8::1".parse().unwrap();
    for policy in [&t, &y, &j] {
        let ok = |r: Request<'_>| policy.check(&r).is_allowed();
        assert!(ok(Request::new(&p, &cancel).on(&fx).from_ip(office)));
        assert!(ok(Request::new(&p, &cancel).on(&fx).from_ip(v6)));
        assert!(!ok(Request::new(&p, &cancel).on(&rates).from_ip(office)));
        assert!(!ok(Request::new(&p, &cancel).on(&fx)));
        assert!(!ok(Request::new(&p, &delete).on(&fx).from_ip(office)));
        assert!(ok(Request::new(&p, &md)), "inherited from base");
    }
}

/// (name, format, document, expected error message)
const BAD: &[(&str, &str, &str, &str)] = &[
    (
        "unknown parent",
        "toml",
        "[roles.a]\ninherits = [\"ghost\"]\n",
        "role \"a\" inherits unknown role \"ghost\"",
    ),
    (
        "cycle",
        "toml",
        "[roles.a]\ninherits = [\"b\"]\n[roles.b]\ninherits = [\"c\"]\n[roles.c]\ninherits = [\"a\"]\n",
        "role inheritance cycle: a -> b -> c -> a",
    ),
    (
        "self cycle",
        "yaml",
        "roles:\n  a:\n    inherits: [a]\n",
        "role inheritance cycle: a -> a",
    ),
    (
        "malformed pattern",
        "toml",
        "[roles.a]\nrules = [{ effect = \"allow\", permissions = [\"ok:x\", \"trade*\"] }]\n",
        "role \"a\" rule 0 field `permissions[1]`: invalid permission \"trade*\" at byte 5: `*` must be a whole segment",
    ),
    (
        "unknown condition",
        "json",
        r#"{"roles":{"a":{"rules":[{"effect":"allow","permissions":["x"]},{"effect":"allow","permissions":["y"],"conditions":[{"kind":"owner"},{"kind":"time_of_day"}]}]}}}"#,
        "role \"a\" rule 1 condition 1: unknown condition kind \"time_of_day\" (expected owner, principal_attr, resource_attr, attr_match or ip)",
    ),
    (
        "bad effect",
        "yaml",
        "roles:\n  a:\n    rules:\n      - { effect: permit, permissions: [x] }\n",
        "role \"a\" rule 0 field `effect`: expected \"allow\" or \"deny\", found \"permit\"",
    ),
    (
        "no permissions",
        "toml",
        "[roles.a]\nrules = [{ effect = \"deny\", permissions = [] }]\n",
        "role \"a\" rule 0 field `permissions`: a rule needs at least one permission",
    ),
    (
        "missing condition field",
        "toml",
        "[roles.a]\nrules = [{ effect = \"allow\", permissions = [\"x\"], conditions = [{ kind = \"principal_attr\", key = \"desk\" }] }]\n",
        "role \"a\" rule 0 field `conditions[0].value`: missing",
    ),
    (
        "foreign condition field",
        "toml",
        "[roles.a]\nrules = [{ effect = \"allow\", permissions = [\"x\"], conditions = [{ kind = \"owner\", key = \"desk\" }] }]\n",
        "role \"a\" rule 0 field `conditions[0].key`: not a field of a \"owner\" condition",
    ),
    (
        "bad network",
        "toml",
        "[roles.a]\nrules = [{ effect = \"allow\", permissions = [\"x\"], conditions = [{ kind = \"ip\", networks = [\"10.0.0.0/33\"] }] }]\n",
        "role \"a\" rule 0 field `conditions[0].networks[0]`: \"10.0.0.0/33\" is not a CIDR network such as 10.0.0.0/8",
    ),
    (
        "empty networks",
        "toml",
        "[roles.a]\nrules = [{ effect = \"allow\", permissions = [\"x\"], conditions = [{ kind = \"ip\", networks = [] }] }]\n",
        "role \"a\" rule 0 field `conditions[0].networks`: an ip condition needs at least one network",
    ),
    (
        "approval on deny",
        "toml",
        "[roles.a]\nrules = [{ effect = \"deny\", permissions = [\"x\"], approval = { approver = \"y\", quorum = 1, within_seconds = 60 } }]\n",
        "role \"a\" rule 0 field `approval`: only allow rules can require approval",
    ),
    (
        "zero quorum",
        "toml",
        "[roles.a]\nrules = [{ effect = \"allow\", permissions = [\"x\"], approval = { approver = \"y\", quorum = 0, within_seconds = 60 } }]\n",
        "role \"a\" rule 0 field `approval`: quorum must be 1 to 16, found 0",
    ),
    (
        "approver wildcard",
        "toml",
        "[roles.a]\nrules = [{ effect = \"allow\", permissions = [\"x\"], approval = { approver = \"y:*\", quorum = 1, within_seconds = 60 } }]\n",
        "role \"a\" rule 0 field `approval.approver`: invalid permission \"y:*\" at byte 2: a concrete permission cannot contain `*`",
    ),
    (
        "window too long",
        "toml",
        "[roles.a]\nrules = [{ effect = \"allow\", permissions = [\"x\"], approval = { approver = \"y\", quorum = 1, within_seconds = 99999999 } }]\n",
        "role \"a\" rule 0 field `approval`: approval window must be 1 second to 30 days, found 99999999 seconds",
    ),
    (
        "bad role name",
        "yaml",
        "roles:\n  Admin: {}\n",
        "invalid role name \"Admin\": it must start with a-z or 0-9",
    ),
    (
        "duplicate role in json",
        "json",
        r#"{"roles":{"a":{},"a":{"rules":[{"effect":"allow","permissions":["*"]}]}}}"#,
        "policy json does not parse: role \"a\" is defined more than once at line 1 column 72",
    ),
];

fn load(format: &str, text: &str) -> Result<Policy, Error> {
    match format {
        "toml" => Policy::from_toml(text),
        "yaml" => Policy::from_yaml(text),
        "json" => Policy::from_json(text),
        other => panic!("format {other}"),
    }
}

#[test]
fn every_mistake_is_named() {
    let mut ran = 0;
    for (name, format, text, expected) in BAD {
        let err = load(format, text).expect_err(name);
        assert_eq!(err.to_string(), *expected, "{name}");
        ran += 1;
    }
    assert_eq!(ran, 17);
}

#[test]
fn syntax_errors_name_the_line() {
    let toml_err = Policy::from_toml("[roles.a]\nrules = [{ effect = \"allow\" }]\n")
        .unwrap_err()
        .to_string();
    assert!(
        toml_err.starts_with("policy toml does not parse"),
        "{toml_err}"
    );
    assert!(toml_err.contains("line 2"), "{toml_err}");
    assert!(toml_err.contains("permissions"), "{toml_err}");
    let unknown_field = Policy::from_yaml("roles:\n  a:\n    rulez: []\n")
        .unwrap_err()
        .to_string();
    assert!(unknown_field.contains("rulez"), "{unknown_field}");
    assert!(unknown_field.contains("line 3"), "{unknown_field}");
    let yaml_dup = Policy::from_yaml("roles:\n  a: {}\n  a: {}\n").unwrap_err();
    assert!(
        matches!(yaml_dup, Error::Parse { format: "yaml", .. }),
        "{yaml_dup}"
    );
    assert!(Policy::from_json("{").is_err());
}

#[test]
fn oversized_documents_are_refused_before_parsing() {
    let big = " ".repeat(finsec_rbac::policy::MAX_POLICY_BYTES + 1);
    assert!(matches!(
        Policy::from_toml(&big),
        Err(Error::PolicyTooLarge { .. })
    ));
    assert!(matches!(
        Policy::from_json(&big),
        Err(Error::PolicyTooLarge { .. })
    ));
    assert!(matches!(
        Policy::from_yaml(&big),
        Err(Error::PolicyTooLarge { .. })
    ));
}

#[test]
fn diamond_inheritance_dedups_and_empty_policy_denies() {
    let p = Policy::from_toml(
        "[roles.top]\nrules = [{ effect = \"allow\", permissions = [\"a\"] }]\n\
         [roles.l]\ninherits = [\"top\"]\n[roles.r]\ninherits = [\"top\"]\n\
         [roles.bottom]\ninherits = [\"l\", \"r\"]\n",
    )
    .unwrap();
    let who = Principal::new("x")
        .unwrap()
        .with_role(RoleName::new("bottom").unwrap());
    let a = Permission::new("a").unwrap();
    let d = p.check(&Request::new(&who, &a));
    assert!(d.is_allowed());
    assert_eq!(d.rule().unwrap().role().as_str(), "top");
    let empty = Policy::from_json(r#"{"roles":{}}"#).unwrap();
    assert!(empty.check(&Request::new(&who, &a)).is_denied());
}
