//! Sessions: a signed and encrypted cookie (AES-256-GCM, the `cookie`
//! crate's private jar) holding the user's name and the session's end.
//! Nothing is kept on the server, so instances sharing one
//! `--session-secret` serve the same users; the role is read from the
//! config on every request, so removing a user ends their sessions.

use axum::http::HeaderMap;
use axum_extra::extract::cookie::{Cookie, Key, PrivateCookieJar, SameSite};
use serde::{Deserialize, Serialize};

/// The session cookie's name.
pub const COOKIE: &str = "eventscope_session";

/// The `Set-Cookie` value that removes the session cookie (sign-out, or a
/// cookie refused).
pub const END_COOKIE: &str = "eventscope_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax";

/// Shortest `--session-secret`, in bytes.
pub const MIN_SECRET: usize = 32;

/// What the cookie holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The user's name.
    #[serde(rename = "u")]
    pub user: String,
    /// When the session ends, Unix seconds.
    #[serde(rename = "e")]
    pub ends: i64,
    /// The role, for a sign-in whose role is not in the config file
    /// (OpenID Connect: the provider's groups decided it at sign-in).
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub role: Option<super::Role>,
    /// The subject scope decided with that role, if any.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// The key and lifetime of sessions.
#[derive(Clone)]
pub struct Sessions {
    key: Key,
    lifetime: std::time::Duration,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// Why a session cookie was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// It could not be decrypted or read: made with another secret (a
    /// restart without `--session-secret`), or forged.
    Unreadable,
    /// Its time is up.
    Expired,
}

impl Sessions {
    /// Sessions keyed from `secret` (at least [`MIN_SECRET`] bytes; checked
    /// by the caller), or from a random key when there is none.
    pub fn new(secret: Option<&[u8]>, lifetime: std::time::Duration) -> Sessions {
        let key = match secret {
            Some(s) => Key::derive_from(s),
            None => Key::generate(),
        };
        Sessions { key, lifetime }
    }

    /// The decrypted value of cookie `name`: `None` when the request has
    /// none, `Some(None)` when it cannot be read with this key.
    pub fn open(&self, headers: &HeaderMap, name: &str) -> Option<Option<String>> {
        let plain = axum_extra::extract::cookie::CookieJar::from_headers(headers);
        plain.get(name)?;
        let jar = PrivateCookieJar::from_headers(headers, self.key.clone());
        Some(jar.get(name).map(|c| c.value().to_string()))
    }

    /// A jar setting cookie `name` to `value`, encrypted, for `age`.
    pub fn seal(
        &self,
        name: &'static str,
        value: String,
        age: std::time::Duration,
        secure: bool,
    ) -> PrivateCookieJar {
        let cookie = Cookie::build((name, value))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(secure)
            .max_age(cookie_age(age))
            .build();
        PrivateCookieJar::new(self.key.clone()).add(cookie)
    }

    /// The session of a request's cookie: `None` when it has none.
    pub fn read(&self, headers: &HeaderMap, now_s: i64) -> Option<Result<Session, Refused>> {
        let Some(value) = self.open(headers, COOKIE)? else {
            return Some(Err(Refused::Unreadable));
        };
        let Ok(session) = serde_json::from_str::<Session>(&value) else {
            return Some(Err(Refused::Unreadable));
        };
        if session.ends <= now_s {
            return Some(Err(Refused::Expired));
        }
        Some(Ok(session))
    }

    /// A jar setting a new session cookie for `user`. `secure`: the page
    /// was served over HTTPS (the cookie then never travels in clear).
    /// `grant`: the role and scope, kept in the cookie when the config
    /// file does not say them (OpenID Connect).
    pub fn start(
        &self,
        user: &str,
        grant: Option<&super::users::Grant>,
        now_s: i64,
        secure: bool,
    ) -> PrivateCookieJar {
        let session = Session {
            user: user.to_string(),
            ends: now_s + i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX / 2),
            role: grant.map(|g| g.role),
            scope: grant.and_then(|g| g.scope.clone()),
        };
        let value = serde_json::to_string(&session).unwrap_or_default();
        self.seal(COOKIE, value, self.lifetime, secure)
    }
}

fn cookie_age(d: std::time::Duration) -> time::Duration {
    time::Duration::seconds(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use axum::response::IntoResponse;

    /// The `Cookie` header a browser sends back for a jar's `Set-Cookie`.
    fn sent_back(jar: PrivateCookieJar) -> HeaderMap {
        let response = jar.into_response();
        let set = response
            .headers()
            .get("set-cookie")
            .expect("a cookie is set")
            .to_str()
            .expect("ascii");
        let pair = set.split(';').next().expect("name=value");
        let mut h = HeaderMap::new();
        h.insert("cookie", HeaderValue::from_str(pair).expect("header"));
        h
    }

    #[test]
    fn a_session_reads_back_until_it_ends_and_only_with_its_key() {
        let hour = std::time::Duration::from_secs(3600);
        let sessions = Sessions::new(Some(&[7u8; 32]), hour);
        let headers = sent_back(sessions.start("ana", None, 1_000, false));
        let cookie = headers["cookie"].to_str().expect("ascii").to_string();
        assert!(!cookie.contains("ana"), "the name is encrypted: {cookie}");
        assert_eq!(
            sessions.read(&headers, 1_000),
            Some(Ok(Session {
                user: "ana".into(),
                ends: 4_600,
                role: None,
                scope: None,
            }))
        );
        assert_eq!(sessions.read(&headers, 4_600), Some(Err(Refused::Expired)));
        // Another instance with the same secret reads it; another secret
        // (or a restart with a random key) does not.
        let twin = Sessions::new(Some(&[7u8; 32]), hour);
        assert!(matches!(twin.read(&headers, 1_000), Some(Ok(_))));
        let other = Sessions::new(Some(&[8u8; 32]), hour);
        assert_eq!(other.read(&headers, 1_000), Some(Err(Refused::Unreadable)));
        // A forged or altered value.
        let mut forged = HeaderMap::new();
        forged.insert(
            "cookie",
            HeaderValue::from_static("eventscope_session={\"u\":\"admin\",\"e\":9999999999}"),
        );
        assert_eq!(
            sessions.read(&forged, 1_000),
            Some(Err(Refused::Unreadable))
        );
        assert_eq!(sessions.read(&HeaderMap::new(), 1_000), None);
    }
}
