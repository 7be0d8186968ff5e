//! Test helpers for modules that need users in the database.

use time::OffsetDateTime;
use uuid::Uuid;

use super::users::Username;
use crate::storage::Storage;

/// Creates a user named `name` (with a password hash nothing verifies) the way
/// registration does, and returns its id.
pub async fn create_user(storage: &Storage, name: &str) -> String {
    let now = OffsetDateTime::now_utc();
    let id = Uuid::now_v7();
    let username = Username::parse(name).unwrap();
    assert!(
        storage
            .stores()
            .users
            .insert_user(id, &username, "$argon2id$not-a-hash", now)
            .await
            .unwrap(),
        "username {name} taken"
    );
    id.to_string()
}
