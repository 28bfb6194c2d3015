//! Serving defences that hold whoever signs in: the `Host` allow-list
//! (against DNS rebinding), the `Origin` check on every state-changing
//! request and on `/ws` (against cross-site requests), and the security
//! headers of every response (docs/SECURITY.md).

use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;

/// The host names this server answers to (besides any IP address and
/// `localhost`): `--public-name`.
#[derive(Clone, Debug, Default)]
pub struct Hosts {
    names: Vec<String>,
}

impl Hosts {
    /// IP addresses, `localhost` and `names`.
    pub fn new(names: &[String]) -> Hosts {
        Hosts {
            names: names
                .iter()
                .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|n| !n.is_empty())
                .collect(),
        }
    }

    /// Whether a request naming `host` (a `Host` header: name or address,
    /// maybe a port) is for this server. A DNS-rebinding page reaches the
    /// server under the attacker's name, so any name not configured is
    /// refused; an IP address is what the browser itself connected to, and
    /// `localhost` never resolves elsewhere in a browser.
    pub fn allows(&self, host: &str) -> bool {
        let name = host_name(host).trim_end_matches('.').to_ascii_lowercase();
        if name.parse::<std::net::IpAddr>().is_ok() || name == "localhost" {
            return true;
        }
        self.names.contains(&name)
    }
}

/// `host` without its port (`[::1]:3000` -> `::1`, `example.com:80` ->
/// `example.com`).
fn host_name(host: &str) -> &str {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        // `[address]` or `[address]:port`; unclosed is no name at all.
        return rest.split_once(']').map_or(host, |(address, _)| address);
    }
    match host.rsplit_once(':') {
        // One colon: name and port. More: a bare IPv6 address.
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// Whether `origin` (an `Origin` header) is this server's own (its host
/// and port are the request's `Host`) or listed in `--allowed-origin`.
pub fn origin_allowed(origin: &str, host: &str, allowed: &[String]) -> bool {
    let origin_host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    (!host.is_empty() && origin_host.eq_ignore_ascii_case(host))
        || allowed.iter().any(|a| {
            a.trim_end_matches('/')
                .eq_ignore_ascii_case(origin.trim_end_matches('/'))
        })
}

/// Whether `method` only reads (and so needs no `Origin` check).
pub fn reads_only(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Why a request was refused before anyone looked at who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Its `Host` is not one this server answers to.
    Host(String),
    /// A state change (or the live socket) from another site's page.
    Origin(String),
}

impl Refusal {
    /// The message for the client and the audit trail.
    pub fn message(&self) -> String {
        match self {
            Refusal::Host(h) => format!(
                "host {h:?} is not one this server answers to (a page on another site \
                 reaching it by DNS rebinding is refused); if it should be, start \
                 eventscope with --public-name {}",
                host_name(h)
            ),
            Refusal::Origin(o) => format!(
                "a page at {o} may not change anything here or open the live socket; \
                 add it with --allowed-origin if it should"
            ),
        }
    }
}

/// Checks a request's `Host`, and its `Origin` when it changes something
/// or opens the live socket. Requests without `Origin` are not from a
/// browser's cross-site page (browsers send it on every such request),
/// unless `Sec-Fetch-Site` says so.
pub fn check(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    hosts: &Hosts,
    allowed_origins: &[String],
) -> Result<(), Refusal> {
    let host = headers
        .get(header::HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned());
    if let Some(host) = &host
        && !hosts.allows(host)
    {
        return Err(Refusal::Host(host.chars().take(200).collect()));
    }
    if reads_only(method) && path != "/ws" {
        return Ok(());
    }
    let host = host.unwrap_or_default();
    match headers.get(header::ORIGIN) {
        Some(origin) => {
            let origin = String::from_utf8_lossy(origin.as_bytes());
            if origin_allowed(&origin, &host, allowed_origins) {
                Ok(())
            } else {
                Err(Refusal::Origin(origin.chars().take(200).collect()))
            }
        }
        None if headers
            .get("sec-fetch-site")
            .is_some_and(|s| s.as_bytes() == b"cross-site") =>
        {
            Err(Refusal::Origin("another site".to_string()))
        }
        None => Ok(()),
    }
}

/// The Content-Security-Policy of every response that sets none itself
/// (the API's JSON, static files): nothing may run or load from it.
pub const CSP_DEFAULT: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Security headers on `response`: no MIME sniffing, no framing, no
/// referrer to other sites (`same-origin`: with `no-referrer` Chromium
/// sends `Origin: null` on the page's own form posts), and [`CSP_DEFAULT`] unless the page set its own (the app's
/// pages allow only their own scripts: `app::shell::csp`).
pub fn harden(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP_DEFAULT),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_addresses_localhost_or_configured() {
        let hosts = Hosts::new(&["Dash.Example.com.".to_string()]);
        for ok in [
            "127.0.0.1:3000",
            "127.0.0.1",
            "[::1]:3000",
            "::1",
            "10.1.2.3:80",
            "localhost:3000",
            "LOCALHOST",
            "dash.example.com",
            "dash.example.com:443",
            "dash.example.com.",
        ] {
            assert!(hosts.allows(ok), "{ok} should be allowed");
        }
        for bad in [
            "evil.example:3000",
            "127.0.0.1.nip.io:3000",
            "localhost.evil.example",
            "dash.example.com.evil",
            "",
            "[::1",
        ] {
            assert!(!hosts.allows(bad), "{bad} should be refused");
        }
    }

    #[test]
    fn same_origin_or_listed() {
        assert!(origin_allowed(
            "http://127.0.0.1:3000",
            "127.0.0.1:3000",
            &[]
        ));
        assert!(origin_allowed("https://dash.example/", "dash.example", &[]));
        assert!(!origin_allowed(
            "http://evil.example",
            "127.0.0.1:3000",
            &[]
        ));
        assert!(!origin_allowed("null", "127.0.0.1:3000", &[]));
        assert!(!origin_allowed(
            "http://127.0.0.1:3001",
            "127.0.0.1:3000",
            &[]
        ));
        assert!(!origin_allowed("http://", "", &[]));
        assert!(origin_allowed(
            "https://ops.example",
            "127.0.0.1:3000",
            &["https://ops.example/".to_string()]
        ));
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("header value"));
        }
        h
    }

    #[test]
    fn state_changes_and_the_socket_need_their_own_origin() {
        let hosts = Hosts::default();
        let check = |m: Method, path: &str, h: &[(&'static str, &str)]| {
            check(&m, path, &headers(h), &hosts, &[])
        };
        let own = [
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000"),
        ];
        let foreign = [
            ("host", "127.0.0.1:3000"),
            ("origin", "http://evil.example"),
        ];
        assert_eq!(check(Method::PUT, "/api/v1/demo", &own), Ok(()));
        assert!(matches!(
            check(Method::PUT, "/api/v1/demo", &foreign),
            Err(Refusal::Origin(_))
        ));
        assert!(matches!(
            check(Method::GET, "/ws", &foreign),
            Err(Refusal::Origin(_))
        ));
        // Reads are the Host check's: a foreign page cannot read the answer.
        assert_eq!(check(Method::GET, "/api/v1/events", &foreign), Ok(()));
        // Scripts send no Origin.
        assert_eq!(
            check(Method::POST, "/login", &[("host", "127.0.0.1:3000")]),
            Ok(())
        );
        assert!(matches!(
            check(
                Method::POST,
                "/login",
                &[("host", "127.0.0.1:3000"), ("sec-fetch-site", "cross-site")]
            ),
            Err(Refusal::Origin(_))
        ));
        assert!(matches!(
            check(Method::GET, "/", &[("host", "rebound.example:3000")]),
            Err(Refusal::Host(_))
        ));
    }
}
