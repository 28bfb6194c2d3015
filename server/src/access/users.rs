//! Local users (argon2 password hashes) and API tokens (their SHA-256), as
//! the config file lists them in `[[users]]` and `[[tokens]]`. Only hashes
//! are ever configured; `eventscope hash-password` and
//! `eventscope new-token` make them.

use super::Role;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// A `[[users]]` entry of the config file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// The name signed in with.
    pub name: String,
    /// Its password's argon2 hash in PHC form (`$argon2id$v=19$…`).
    pub password_hash: String,
    /// What the user may do.
    pub role: Role,
    /// The subject scope (`[scopes.NAME]`) limiting what they see; none:
    /// every subject.
    #[serde(default)]
    pub scope: Option<String>,
}

impl std::fmt::Debug for UserEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserEntry")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// A `[[tokens]]` entry: an API token for scripts
/// (`Authorization: Bearer <token>`), configured by its SHA-256.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// A name for the audit trail (`ci`, `grafana`).
    pub name: String,
    /// The token's SHA-256, 64 hex digits.
    pub sha256: String,
    /// What the token may do.
    pub role: Role,
    /// The subject scope limiting what it reads; none: every subject.
    #[serde(default)]
    pub scope: Option<String>,
}

impl std::fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEntry")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Why an entry is refused (the config names the file, line and key).
pub fn check_user(entry: &UserEntry) -> Result<(), (&'static str, String)> {
    if entry.name.is_empty() || entry.name.len() > MAX_NAME {
        return Err(("name", format!("a user name has 1 to {MAX_NAME} bytes")));
    }
    let hash = PasswordHash::new(&entry.password_hash).map_err(|e| {
        (
            "password_hash",
            format!("not a password hash ({e}); make one with `eventscope hash-password`"),
        )
    })?;
    if !hash.algorithm.as_str().starts_with("argon2") {
        return Err((
            "password_hash",
            format!(
                "{} is not argon2; make one with `eventscope hash-password`",
                hash.algorithm
            ),
        ));
    }
    Ok(())
}

/// Why a token entry is refused.
pub fn check_token(entry: &TokenEntry) -> Result<(), (&'static str, String)> {
    if entry.name.is_empty() || entry.name.len() > MAX_NAME {
        return Err(("name", format!("a token name has 1 to {MAX_NAME} bytes")));
    }
    if entry.sha256.len() != 64 || hex::decode(&entry.sha256).is_err() {
        return Err((
            "sha256",
            "not a SHA-256 (64 hex digits); make a token with `eventscope new-token`".to_string(),
        ));
    }
    Ok(())
}

/// Longest user or token name, in bytes.
pub const MAX_NAME: usize = 128;

/// Longest password checked, in bytes (a longer one is refused unread:
/// hashing it would cost time for nothing).
pub const MAX_PASSWORD: usize = 1024;

/// What a user or token is given: a role and, maybe, a subject scope (by
/// name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// What they may do.
    pub role: Role,
    /// The scope limiting what they see, if any.
    pub scope: Option<String>,
}

/// The users and tokens, for checking sign-ins and requests.
pub struct Users {
    users: HashMap<String, (String, Grant)>,
    tokens: HashMap<[u8; 32], (String, Grant)>,
    /// A hash of nobody's password, checked for unknown names so a wrong
    /// name takes as long as a wrong password.
    decoy: String,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users")
            .field("users", &self.users.len())
            .field("tokens", &self.tokens.len())
            .finish_non_exhaustive()
    }
}

impl Users {
    /// From the config's entries (already checked).
    pub fn new(users: &[UserEntry], tokens: &[TokenEntry]) -> Users {
        Users {
            users: users
                .iter()
                .map(|u| {
                    let grant = Grant {
                        role: u.role,
                        scope: u.scope.clone(),
                    };
                    (u.name.clone(), (u.password_hash.clone(), grant))
                })
                .collect(),
            tokens: tokens
                .iter()
                .filter_map(|t| {
                    let digest: [u8; 32] = hex::decode(&t.sha256).ok()?.try_into().ok()?;
                    let grant = Grant {
                        role: t.role,
                        scope: t.scope.clone(),
                    };
                    Some((digest, (t.name.clone(), grant)))
                })
                .collect(),
            decoy: hash_password(&random_token()).unwrap_or_default(),
        }
    }

    /// Whether any user or token is configured.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.tokens.is_empty()
    }

    /// What user `name` is given, if it is (still) configured.
    pub fn grant_of(&self, name: &str) -> Option<&Grant> {
        self.users.get(name).map(|(_, g)| g)
    }

    /// The user `name` with password `password`: its role, or `None`.
    /// Slow on purpose (argon2): call it off the async workers.
    pub fn verify(&self, name: &str, password: &str) -> Option<Role> {
        let (hash, role) = match self.users.get(name) {
            Some((hash, grant)) => (hash.as_str(), Some(grant.role)),
            None => (self.decoy.as_str(), None),
        };
        if password.len() > MAX_PASSWORD {
            return None;
        }
        let parsed = PasswordHash::new(hash).ok()?;
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        role.filter(|_| ok)
    }

    /// The token's name and grant, if it is configured.
    pub fn token(&self, token: &str) -> Option<(&str, &Grant)> {
        let digest: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        self.tokens.get(&digest).map(|(n, g)| (n.as_str(), g))
    }
}

/// An argon2id hash (PHC string) of `password` with a random salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no random numbers: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// A new API token: `es_` and 32 random bytes, base64url.
pub fn random_token() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    // A machine with no random numbers cannot make tokens: fail loudly.
    getrandom::fill(&mut bytes).expect("the OS gives random numbers");
    format!(
        "es_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// A token's SHA-256, as `[[tokens]]` has it.
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_tokens_are_checked_by_their_hashes() {
        let hash = hash_password("correct horse").expect("hash");
        let token = random_token();
        let users = Users::new(
            &[UserEntry {
                name: "ana".into(),
                password_hash: hash.clone(),
                role: Role::Operator,
                scope: None,
            }],
            &[TokenEntry {
                name: "ci".into(),
                sha256: token_sha256(&token),
                role: Role::Viewer,
                scope: Some("payments".into()),
            }],
        );
        assert_eq!(users.verify("ana", "correct horse"), Some(Role::Operator));
        assert_eq!(users.verify("ana", "correct horse "), None);
        assert_eq!(users.verify("bob", "correct horse"), None);
        assert_eq!(users.verify("ana", &"x".repeat(MAX_PASSWORD + 1)), None);
        assert_eq!(
            users.token(&token),
            Some((
                "ci",
                &Grant {
                    role: Role::Viewer,
                    scope: Some("payments".into())
                }
            ))
        );
        assert_eq!(users.token(&random_token()), None);
        assert!(!hash.contains("correct horse"));
        assert!(
            check_user(&UserEntry {
                name: "ana".into(),
                password_hash: hash,
                role: Role::Admin,
                scope: None,
            })
            .is_ok()
        );
        assert_eq!(
            check_user(&UserEntry {
                name: "ana".into(),
                password_hash: "hunter2".into(),
                role: Role::Admin,
                scope: None,
            })
            .map_err(|(k, _)| k),
            Err("password_hash")
        );
        assert_eq!(
            check_token(&TokenEntry {
                name: "ci".into(),
                sha256: "abc".into(),
                role: Role::Admin,
                scope: None,
            })
            .map_err(|(k, _)| k),
            Err("sha256")
        );
    }
}
