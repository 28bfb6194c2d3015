//! Access (PRODUCT.md F12, docs/SECURITY.md) against a real server over
//! real HTTP: the `Host` allow-list against DNS rebinding, the `Origin`
//! check on changes and on `/ws`, the security headers, the refusal to
//! serve an open dashboard off loopback, sign-in with roles, sessions and
//! API tokens, the audit trail, and NATS's internal subjects left out.

mod common;

use common::*;
use eventscope::access::users::{TokenEntry, UserEntry, hash_password, random_token, token_sha256};
use eventscope::access::{AuthMode, Role};
use eventscope::config::Config;
use std::collections::HashMap;
use std::net::SocketAddr;

/// An HTTP answer: status, headers (names lower-case; repeated ones
/// joined with `\n`) and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

/// Sends `method path` with `headers` (a `Host` of the server's address
/// unless one is given) and `body`, byte for byte, on a connection of its
/// own.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    within("http exchange", async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(request.as_bytes()).await.expect("send");
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).await.expect("answer");
        let text = String::from_utf8_lossy(&answer).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut headers: HashMap<String, String> = HashMap::new();
        for line in lines {
            if let Some((k, v)) = line.split_once(':') {
                let slot = headers.entry(k.trim().to_ascii_lowercase()).or_default();
                if !slot.is_empty() {
                    slot.push('\n');
                }
                slot.push_str(v.trim());
            }
        }
        Answer {
            status,
            headers,
            body: body.to_string(),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_rebinding_and_foreign_origins_are_refused() {
    let nats = nats_server(None).await;
    let mut config = Config::attach(nats.url(), &["acc.>"]);
    config.public_names = vec!["dash.example".to_string()];
    let running = eventscope::start(config).await.expect("app starts");
    let addr = running.addr;
    let port = addr.port();

    // A page on another site reaching 127.0.0.1 by DNS rebinding names
    // its own host: refused, whatever the path.
    for path in ["/healthz", "/", "/api/v1/events", "/metrics"] {
        let rebound = http(
            addr,
            "GET",
            path,
            &[("Host", &format!("rebound.example:{port}"))],
            "",
        )
        .await;
        assert_eq!(rebound.status, 403, "{path}: {rebound:?}");
        assert!(
            rebound.body.contains("--public-name rebound.example"),
            "the refusal says how to allow the name: {}",
            rebound.body
        );
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "dash.example".to_string(),
        format!("DASH.example:{port}"),
    ] {
        assert_eq!(
            http(addr, "GET", "/healthz", &[("Host", &host)], "")
                .await
                .status,
            200,
            "{host}"
        );
    }

    // Changes from another site's page are refused before the handler runs
    // (this server runs no demo: a change that passes is answered 409).
    let own = format!("http://{addr}");
    let put = |origin: String| async move {
        http(
            addr,
            "PUT",
            "/api/v1/demo",
            &[("Origin", &origin), ("Content-Type", "application/json")],
            r#"{"rates":{"saga":1}}"#,
        )
        .await
    };
    let foreign = put("http://evil.example".to_string()).await;
    assert_eq!(foreign.status, 403, "{foreign:?}");
    assert!(
        foreign.body.contains("--allowed-origin"),
        "{}",
        foreign.body
    );
    assert_eq!(put(own.clone()).await.status, 409);
    let cross_site = http(
        addr,
        "PUT",
        "/api/v1/demo",
        &[
            ("Sec-Fetch-Site", "cross-site"),
            ("Content-Type", "application/json"),
        ],
        r#"{"rates":{"saga":1}}"#,
    )
    .await;
    assert_eq!(cross_site.status, 403);

    // The live socket: another site's page may not open it.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{addr}/ws"),
    )
    .expect("request");
    req.headers_mut()
        .insert("Origin", "http://evil.example".parse().expect("header"));
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!(
            "a foreign origin opened the live socket: {:?}",
            other.map(|_| ())
        ),
    }

    // Security headers: the API's answers may load and run nothing; the
    // pages run only their own scripts, the inline ones by this
    // response's nonce.
    let api = http(addr, "GET", "/api/v1/events?limit=1", &[], "").await;
    assert_eq!(api.status, 200);
    assert_eq!(api.header("x-content-type-options"), "nosniff");
    assert_eq!(api.header("x-frame-options"), "DENY");
    assert_eq!(api.header("referrer-policy"), "same-origin");
    assert_eq!(
        api.header("content-security-policy"),
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
    );
    let page = http(addr, "GET", "/", &[], "").await;
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").to_string();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .unwrap_or_else(|| panic!("the page's policy has a nonce: {csp:?}"));
    assert!(nonce.len() >= 16, "{nonce}");
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self' 'nonce-"));
    let scripts = page.body.matches("<script").count();
    assert!(
        scripts >= 2,
        "the theme and hydration scripts: {}",
        page.body
    );
    assert_eq!(
        page.body.matches(&format!("nonce=\"{nonce}\"")).count(),
        scripts,
        "every inline script carries the nonce"
    );
    let again = http(addr, "GET", "/", &[], "").await;
    assert!(
        !again.header("content-security-policy").contains(nonce),
        "a nonce is used once"
    );
    running.stop().await;
}

#[tokio::test]
async fn an_open_dashboard_is_refused_off_loopback() {
    let mut config = Config::attach("nats://127.0.0.1:1", &["a.>"]);
    config.addr = SocketAddr::from(([0, 0, 0, 0], 0));
    let refused = eventscope::start(config.clone())
        .await
        .expect_err("no sign-in on 0.0.0.0 is refused");
    let message = refused.to_string();
    assert!(
        message.contains("--insecure-no-auth") && message.contains("--auth users"),
        "the refusal names the ways out: {message}"
    );
    config.insecure_no_auth = true;
    let open = eventscope::start(config.clone())
        .await
        .expect("deliberately open");
    open.stop().await;

    config.insecure_no_auth = false;
    config.auth_mode = AuthMode::Users;
    let nobody = eventscope::start(config.clone())
        .await
        .expect_err("users mode with no users");
    assert!(nobody.to_string().contains("[[users]]"), "{nobody}");
    config.users = vec![user("ana", "pw", Role::Viewer)];
    config.session_secret = Some("short".parse().expect("secret"));
    let short = eventscope::start(config).await.expect_err("short secret");
    assert!(short.to_string().contains("--session-secret"), "{short}");
}

fn user(name: &str, password: &str, role: Role) -> UserEntry {
    UserEntry {
        name: name.to_string(),
        password_hash: hash_password(password).expect("hash"),
        role,
        scope: None,
    }
}

/// The session cookie (`name=value`) an answer sets, if any.
fn session_cookie(answer: &Answer) -> Option<String> {
    answer
        .header("set-cookie")
        .lines()
        .find(|c| c.starts_with("eventscope_session=") && !c.starts_with("eventscope_session=;"))
        .and_then(|c| c.split(';').next())
        .map(str::to_string)
}

async fn sign_in(addr: SocketAddr, name: &str, password: &str) -> Answer {
    http(
        addr,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!("user={name}&password={password}&next=%2Ftail%3Fsubject%3Dacc.%3E"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_sign_in_with_roles_sessions_and_tokens() {
    let nats = nats_server(None).await;
    let secret = "s".repeat(40);
    let (viewer_token, admin_token) = (random_token(), random_token());
    let make = |tokens: Vec<TokenEntry>| {
        let mut config = Config::attach(nats.url(), &["acc.>"]);
        config.auth_mode = AuthMode::Users;
        config.session_secret = Some(secret.parse().expect("secret"));
        config.users = vec![
            user("vera", "v-pass", Role::Viewer),
            user("otto", "o-pass", Role::Operator),
            user("ada", "a-pass", Role::Admin),
        ];
        config.tokens = tokens;
        config
    };
    let tokens = vec![
        TokenEntry {
            name: "grafana".into(),
            sha256: token_sha256(&viewer_token),
            role: Role::Viewer,
            scope: None,
        },
        TokenEntry {
            name: "ops-script".into(),
            sha256: token_sha256(&admin_token),
            role: Role::Admin,
            scope: None,
        },
    ];
    let running = eventscope::start(make(tokens.clone()))
        .await
        .expect("app starts");
    let addr = running.addr;

    // Nothing readable without signing in: pages go to the sign-in page
    // and come back; the API, metrics and the socket answer 401.
    let page = http(addr, "GET", "/tail?subject=acc.%3E", &[], "").await;
    assert_eq!(page.status, 303, "{page:?}");
    // The page's own URL, as sent (`%3E`), comes back as it was.
    assert_eq!(
        page.header("location"),
        "/login?next=%2Ftail%3Fsubject%3Dacc%2E%253E"
    );
    for path in ["/api/v1/events", "/metrics", "/api/v1/projections"] {
        let a = http(addr, "GET", path, &[], "").await;
        assert_eq!(a.status, 401, "{path}: {a:?}");
        assert_eq!(a.header("www-authenticate"), "Bearer realm=\"eventscope\"");
    }
    match tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!(
            "the live socket opened without sign-in: {:?}",
            other.map(|_| ())
        ),
    }
    assert_eq!(http(addr, "GET", "/healthz", &[], "").await.status, 200);
    let form = http(addr, "GET", "/login?next=%2Fflows", &[], "").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("value=\"/flows\"") && form.body.contains("type=\"password\""));
    assert!(
        !form.body.contains("<script"),
        "the sign-in page runs no script"
    );
    assert_eq!(
        form.header("content-security-policy"),
        eventscope::access::OWN_PAGE_CSP,
        "and may load only this server's styles and icon"
    );

    // A wrong password (or name) is refused the same way, and audited.
    for (name, pw) in [("vera", "nope"), ("nobody", "v-pass")] {
        let wrong = sign_in(addr, name, pw).await;
        assert_eq!(wrong.status, 401, "{wrong:?}");
        assert!(wrong.body.contains("Wrong user name or password"));
        assert_eq!(session_cookie(&wrong), None);
    }

    // Signing in sets an HttpOnly, SameSite=Lax cookie and goes back.
    let vera = sign_in(addr, "vera", "v-pass").await;
    assert_eq!(vera.status, 303, "{vera:?}");
    assert_eq!(vera.header("location"), "/tail?subject=acc.>");
    let set = vera.header("set-cookie").to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Max-Age=43200"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "no TLS here: {set}");
    let vera = session_cookie(&vera).expect("a session cookie");
    let as_vera = [("Cookie", vera.as_str())];
    assert_eq!(
        http(addr, "GET", "/api/v1/events", &as_vera, "")
            .await
            .status,
        200
    );
    let tail = http(addr, "GET", "/tail", &as_vera, "").await;
    assert_eq!(tail.status, 200);
    assert!(
        tail.body.contains("data-testid=\"topbar-user\""),
        "the top bar shows who"
    );
    assert!(tail.body.contains("vera"));
    // Behind TLS (a proxy saying so), the cookie is Secure.
    let secure = http(
        addr,
        "POST",
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Forwarded-Proto", "https"),
        ],
        "user=vera&password=v-pass",
    )
    .await;
    assert!(secure.header("set-cookie").contains("Secure"), "{secure:?}");

    // A viewer reads but may not change: refused by the server, audited.
    let change = [
        ("Cookie", vera.as_str()),
        ("Content-Type", "application/json"),
    ];
    let refused = http(
        addr,
        "PUT",
        "/api/v1/demo",
        &change,
        r#"{"rates":{"saga":1}}"#,
    )
    .await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(
        refused.body.contains("needs the operator role"),
        "{}",
        refused.body
    );
    let otto = session_cookie(&sign_in(addr, "otto", "o-pass").await).expect("otto signs in");
    let by_otto = http(
        addr,
        "PUT",
        "/api/v1/demo",
        &[
            ("Cookie", otto.as_str()),
            ("Content-Type", "application/json"),
        ],
        r#"{"rates":{"saga":1}}"#,
    )
    .await;
    assert_eq!(
        by_otto.status, 409,
        "an operator passes the gate: {by_otto:?}"
    );
    assert_eq!(
        http(
            addr,
            "GET",
            "/api/v1/audit",
            &[("Cookie", otto.as_str())],
            ""
        )
        .await
        .status,
        403,
        "the audit trail is for admins"
    );

    // Tokens: a configured one works with its role; any other is refused.
    let bearer = |t: &str| format!("Bearer {t}");
    let grafana = bearer(&viewer_token);
    assert_eq!(
        http(addr, "GET", "/metrics", &[("Authorization", &grafana)], "")
            .await
            .status,
        200
    );
    assert_eq!(
        http(
            addr,
            "PUT",
            "/api/v1/demo",
            &[("Authorization", &grafana)],
            "{}"
        )
        .await
        .status,
        403
    );
    let stranger = bearer(&random_token());
    assert_eq!(
        http(
            addr,
            "GET",
            "/api/v1/events",
            &[("Authorization", &stranger)],
            ""
        )
        .await
        .status,
        401
    );

    // A forged, altered or ended session is refused (and the page asks to
    // sign in again).
    let forged = format!("{}x", vera);
    let bad = http(addr, "GET", "/api/v1/events", &[("Cookie", &forged)], "").await;
    assert_eq!(bad.status, 401);
    assert!(bad.body.contains("cannot read"), "{}", bad.body);
    let ended = {
        use axum::response::IntoResponse;
        let sessions = eventscope::access::session::Sessions::new(
            Some(secret.as_bytes()),
            std::time::Duration::from_secs(60),
        );
        let now = chrono::Utc::now().timestamp();
        let answer = sessions
            .start("vera", None, now - 120, false)
            .into_response();
        let set = answer.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .to_string();
        set.split(';').next().expect("pair").to_string()
    };
    let old = http(addr, "GET", "/flows", &[("Cookie", &ended)], "").await;
    assert_eq!(old.status, 303);
    assert!(old.header("location").ends_with("&ended=1"), "{old:?}");
    assert!(
        old.header("set-cookie").contains("Max-Age=0"),
        "the dead cookie is cleared"
    );

    // The audit trail: who, what, from where; as events in the log.
    let ada = session_cookie(&sign_in(addr, "ada", "a-pass").await).expect("ada signs in");
    let admin = bearer(&admin_token);
    let trail = within("the audit trail has every record", async {
        loop {
            let a = http(
                addr,
                "GET",
                "/api/v1/audit?limit=100",
                &[("Authorization", &admin)],
                "",
            )
            .await;
            assert_eq!(a.status, 200, "{a:?}");
            let page: serde_json::Value = serde_json::from_str(&a.body).expect("json");
            let events = page["events"].as_array().cloned().unwrap_or_default();
            if events.len() >= 12 {
                return events;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    let subjects: Vec<&str> = trail.iter().filter_map(|e| e["subject"].as_str()).collect();
    let count = |s: &str| subjects.iter().filter(|x| **x == s).count();
    // vera, vera (Secure), otto, ada.
    assert_eq!(count("eventscope.audit.sign_in"), 4, "{subjects:?}");
    assert_eq!(count("eventscope.audit.sign_in_failed"), 2, "{subjects:?}");
    // vera's and grafana's change, otto's audit read, the stranger's
    // token, the forged and the ended cookie.
    assert_eq!(count("eventscope.audit.denied"), 6, "{subjects:?}");
    assert_eq!(count("eventscope.audit.change"), 0, "409 changed nothing");
    assert_eq!(subjects.len(), 12, "{subjects:?}");
    let vera_denied = http(
        addr,
        "GET",
        "/api/v1/events?subject=eventscope.audit.denied&q=vera&limit=10",
        &[("Cookie", ada.as_str())],
        "",
    )
    .await;
    let page: serde_json::Value = serde_json::from_str(&vera_denied.body).expect("json");
    let first = &page["events"][0];
    let detail = http(
        addr,
        "GET",
        &format!("/api/v1/events/{}", first["id"]),
        &[("Cookie", ada.as_str())],
        "",
    )
    .await;
    let event: serde_json::Value = serde_json::from_str(&detail.body).expect("json");
    let payload: serde_json::Value =
        serde_json::from_str(event["payload_text"].as_str().unwrap_or("")).expect("payload json");
    assert_eq!(payload["user"], "vera", "{payload}");
    assert_eq!(payload["role"], "viewer");
    assert_eq!(payload["request"], "PUT /api/v1/demo");
    assert_eq!(payload["from"], "127.0.0.1");

    // Sign-out ends the session in the browser (the cookie is removed).
    let out = http(
        addr,
        "POST",
        "/logout",
        &[
            ("Cookie", ada.as_str()),
            ("Origin", &format!("http://{addr}")),
        ],
        "",
    )
    .await;
    assert_eq!(out.status, 303);
    assert_eq!(out.header("location"), "/login");
    assert!(
        out.header("set-cookie").contains("eventscope_session=;")
            || out.header("set-cookie").contains("Max-Age=0"),
        "{out:?}"
    );
    running.stop().await;

    // A second instance with the same secret serves the same sessions; a
    // token removed from its config is refused there.
    let twin = eventscope::start(make(vec![tokens[1].clone()]))
        .await
        .expect("twin starts");
    assert_eq!(
        http(
            twin.addr,
            "GET",
            "/api/v1/events",
            &[("Cookie", vera.as_str())],
            ""
        )
        .await
        .status,
        200,
        "the session made by the first instance"
    );
    assert_eq!(
        http(
            twin.addr,
            "GET",
            "/api/v1/events",
            &[("Authorization", &grafana)],
            ""
        )
        .await
        .status,
        401,
        "the token removed from the config"
    );
    assert_eq!(
        http(
            twin.addr,
            "GET",
            "/api/v1/events",
            &[("Authorization", &admin)],
            ""
        )
        .await
        .status,
        200
    );
    twin.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_internal_subjects_are_left_out_unless_named() {
    let nats = nats_server(None).await;
    let running = eventscope::start(Config::attach(
        nats.url(),
        &["visible.>", "*.secret.>", "$O.bucket.>"],
    ))
    .await
    .expect("app starts");
    let client = publisher(&nats.url()).await;
    let addr = running.addr;
    // Core NATS keeps nothing for a subscription not yet made: probe the
    // last one made ($O.bucket.>, after the other two on the same
    // connection) until a probe is in the log.
    within("ingest's subscriptions are live", async {
        loop {
            client
                .publish("$O.bucket.probe", "{}".into())
                .await
                .expect("publish");
            client.flush().await.expect("flush");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let (_, page): (u16, serde_json::Value) =
                json(addr, "/api/v1/events?subject=$O.bucket.probe&limit=1").await;
            if page["events"].as_array().is_some_and(|e| !e.is_empty()) {
                return;
            }
        }
    })
    .await;
    for subject in [
        "$KV.secret.password",
        "$O.bucket.object",
        "app.secret.ok",
        "visible.done",
    ] {
        client
            .publish(subject.to_string(), "{\"v\":1}".into())
            .await
            .expect("publish");
    }
    client.flush().await.expect("flush");
    within("the last event is in", async {
        loop {
            let (_, page): (u16, serde_json::Value) =
                json(addr, "/api/v1/events?subject=visible.done").await;
            if page["events"].as_array().is_some_and(|e| e.len() == 1) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    let (_, all): (u16, serde_json::Value) = json(addr, "/api/v1/events?limit=100").await;
    let mut subjects: Vec<&str> = all["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["subject"].as_str())
        .filter(|s| *s != "$O.bucket.probe")
        .collect();
    subjects.sort_unstable();
    assert_eq!(
        subjects,
        ["$O.bucket.object", "app.secret.ok", "visible.done"]
    );
    let (_, metrics) = get(addr, "/metrics").await;
    assert!(
        metrics.contains("eventscope_internal_skipped_total 1\n"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("internal"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    running.stop().await;
}

/// Runs the binary with `args` and `stdin`, to its end; its output.
async fn run_binary(args: &[&str], stdin: &str) -> std::process::Output {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_eventscope"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("eventscope starts");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("write stdin");
    drop(input);
    within("the subcommand ends", child.wait_with_output())
        .await
        .expect("output")
}

#[tokio::test]
async fn the_binary_prints_config_entries_that_sign_in() {
    let out = run_binary(
        &["hash-password", "--name", "ana", "--role", "operator"],
        "pw one\n",
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let toml_text = String::from_utf8(out.stdout).expect("utf8");
    assert!(!toml_text.contains("pw one"), "{toml_text}");
    let tokens = run_binary(&["new-token", "--name", "ci", "--role", "admin"], "").await;
    assert!(tokens.status.success(), "{tokens:?}");
    let tokens_text = String::from_utf8(tokens.stdout).expect("utf8");
    let token = tokens_text
        .lines()
        .find_map(|l| l.strip_prefix("# es_"))
        .map(|t| format!("es_{t}"))
        .expect("the token is printed");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("eventscope.toml");
    std::fs::write(
        &file,
        format!("auth = \"users\"\n{toml_text}\n{tokens_text}"),
    )
    .expect("write");
    let config =
        Config::load_ignoring_env(["eventscope", "--config", file.to_str().expect("utf8 path")])
            .expect("the printed entries are a valid config");
    assert_eq!(config.auth_mode, AuthMode::Users);
    let users = eventscope::access::users::Users::new(&config.users, &config.tokens);
    assert_eq!(users.verify("ana", "pw one"), Some(Role::Operator));
    assert_eq!(
        users.token(&token).map(|(n, g)| (n, g.role)),
        Some(("ci", Role::Admin))
    );
    let empty = run_binary(&["hash-password"], "").await;
    assert!(!empty.status.success(), "no password, no hash");

    // A bad entry names the file, the line and the key.
    let load = |text: &str| {
        std::fs::write(&file, text).expect("write");
        Config::load_ignoring_env(["eventscope", "--config", file.to_str().expect("utf8")])
    };
    let refused = |text: &str| load(text).expect_err("refused").to_string();
    let bad =
        refused("[[users]]\nname = \"ana\"\npassword_hash = \"hunter2\"\nrole = \"viewer\"\n");
    assert!(
        bad.contains("eventscope.toml")
            && bad.contains("line 3")
            && bad.contains("users.password_hash"),
        "{bad}"
    );
    let bad = refused(
        "auth = \"proxy\"\ndefault_role = \"viewer\"\n[proxy]\ntrusted = [\"10.0.0.0/8\", \"::1\"]\n\n\
         [[role_mapping]]\ngroup = \"ops\"\nrole = \"operator\"\n\n\
         [[role_mapping]]\ngroup_regex = \"(unclosed\"\nrole = \"admin\"\n",
    );
    assert!(
        bad.contains("line 11")
            && bad.contains("role_mapping.group_regex")
            && bad.contains("entry 2"),
        "{bad}"
    );
    let bad = refused("auth = \"proxy\"\n[proxy]\ntrusted = [\"10.0.0.0/33\"]\n");
    assert!(
        bad.contains("line 3") && bad.contains("proxy.trusted"),
        "{bad}"
    );
    let bad = refused(
        "auth = \"oidc\"\n[oidc]\nissuer = \"https://sso.example\"\nclient_id = \"e\"\n\
         redirect_url = \"https://dash.example/callback\"\n",
    );
    assert!(
        bad.contains("line 5")
            && bad.contains("oidc.redirect_url")
            && bad.contains("/auth/callback"),
        "{bad}"
    );
    let good =
        load("auth = \"proxy\"\ndefault_role = \"viewer\"\n[proxy]\ntrusted = [\"10.0.0.0/8\"]\n")
            .expect("a proxy config");
    assert_eq!(good.auth_mode, AuthMode::Proxy);
    assert_eq!(good.proxy.expect("proxy").user_header, "X-Forwarded-User");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_credentials_in_the_url_never_reach_the_log() {
    let mut nats = nats_server(None).await;
    let url = nats.url().replace("nats://", "nats://alice:pw-in-log@");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_eventscope"))
        .args([
            "--nats-url",
            &url,
            "--subject",
            "a.>",
            "--addr",
            "127.0.0.1:0",
        ])
        .env("EVENTSCOPE_LOG", "debug")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("eventscope starts");
    use tokio::io::AsyncBufReadExt;
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let stderr = child.stderr.take().expect("stderr");
    let err_task = tokio::spawn(async move {
        let mut all = String::new();
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            all.push_str(&l);
            all.push('\n');
        }
        all
    });
    let mut log = String::new();
    let addr = within("the HTTP address is logged", async {
        loop {
            let line = stdout.next_line().await.expect("read").expect("a line");
            log.push_str(&line);
            log.push('\n');
            if let Some(at) = line.find("url=http://") {
                let rest = &line[at + 11..];
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                return rest[..end].parse::<SocketAddr>().expect("address");
            }
        }
    })
    .await;
    within("NATS connected", async {
        while get(addr, "/readyz").await.0 != 200 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    let mut shown = String::new();
    for path in ["/readyz", "/", "/metrics"] {
        shown.push_str(&get(addr, path).await.1);
    }
    // NATS goes away: the reconnect attempts are logged too.
    nats.stop().await;
    within("NATS seen down", async {
        while get(addr, "/readyz").await.0 != 503 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    shown.push_str(&get(addr, "/readyz").await.1);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let pid = child.id().expect("pid");
    // SIGTERM: the process logs its stop and ends.
    let _ = std::process::Command::new("kill")
        .arg(pid.to_string())
        .status();
    within("the rest of the log", async {
        while let Ok(Some(line)) = stdout.next_line().await {
            log.push_str(&line);
            log.push('\n');
        }
    })
    .await;
    let _ = within("exit", child.wait()).await;
    log.push_str(&err_task.await.expect("stderr"));
    assert!(
        log.contains("***@127.0.0.1"),
        "the redacted URL is logged: {log}"
    );
    assert!(shown.contains("***@127.0.0.1"), "and shown: {shown}");
    assert!(
        !log.contains("pw-in-log"),
        "the password is in the log:\n{log}"
    );
    assert!(
        !shown.contains("pw-in-log"),
        "the password is shown:\n{shown}"
    );
    assert!(log.lines().count() > 5, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_head_is_cut_and_connections_are_capped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let nats = nats_server(None).await;
    let mut config = Config::attach(nats.url(), &["a.>"]);
    config.head_timeout = std::time::Duration::from_millis(500);
    let running = eventscope::start(config).await.expect("app starts");
    // Half a head, then nothing: the server cuts the connection.
    let mut loris = tokio::net::TcpStream::connect(running.addr)
        .await
        .expect("connect");
    loris
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .expect("send");
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let ended = within("the half-sent head is cut", loris.read_to_end(&mut rest)).await;
    assert!(
        ended.is_err()
            || rest.is_empty()
            || String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 408"),
        "{rest:?}"
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));
    // A whole request on a fresh connection is served as before.
    assert_eq!(
        http(running.addr, "GET", "/healthz", &[], "").await.status,
        200
    );
    running.stop().await;

    // At most 16 connections: the 17th waits until one closes.
    let mut config = Config::attach(nats.url(), &["a.>"]);
    config.max_connections = 16;
    let running = eventscope::start(config).await.expect("app starts");
    let mut idle = Vec::new();
    for _ in 0..16 {
        let mut c = tokio::net::TcpStream::connect(running.addr)
            .await
            .expect("connect");
        // Each is served once, so it is known to be accepted.
        c.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", running.addr).as_bytes())
            .await
            .expect("send");
        let mut answer = [0u8; 12];
        within("an idle connection is served", c.read_exact(&mut answer))
            .await
            .expect("answer");
        assert_eq!(&answer, b"HTTP/1.1 200");
        idle.push(c);
    }
    let addr = running.addr;
    let waiting = tokio::spawn(async move { http(addr, "GET", "/healthz", &[], "").await.status });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "the 17th connection was served while 16 were open"
    );
    idle.pop();
    assert_eq!(
        within("the 17th is served", waiting).await.expect("joined"),
        200
    );
    drop(idle);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_names_users_and_their_groups_map_to_roles() {
    use eventscope::access::ProxySettings;
    use eventscope::access::roles::{DefaultRole, RoleRule};
    let nats = nats_server(None).await;
    let make = |trusted: &str, default_role: DefaultRole| {
        let mut config = Config::attach(nats.url(), &["a.>"]);
        config.auth_mode = AuthMode::Proxy;
        config.proxy = Some(ProxySettings {
            trusted: vec![trusted.to_string()],
            user_header: "X-Forwarded-User".into(),
            groups_header: "X-Forwarded-Groups".into(),
        });
        config.role_mapping = vec![
            RoleRule {
                group: Some("platform-admins".into()),
                group_regex: None,
                role: Role::Admin,
                scope: None,
            },
            RoleRule {
                group: None,
                group_regex: Some("^team-.*-oncall$".into()),
                role: Role::Operator,
                scope: None,
            },
        ];
        config.default_role = default_role;
        config
    };
    let running = eventscope::start(make("127.0.0.0/8", DefaultRole::None))
        .await
        .expect("app starts");
    let addr = running.addr;
    let as_user = |user: &'static str, groups: &'static str| {
        [("X-Forwarded-User", user), ("X-Forwarded-Groups", groups)]
    };
    // The groups decide the role, first rule first.
    let ops = as_user("olga", "everyone, team-pay-oncall");
    assert_eq!(
        http(addr, "GET", "/api/v1/events", &ops, "").await.status,
        200
    );
    let change = http(addr, "PUT", "/api/v1/demo", &ops, "{}").await;
    assert_ne!(change.status, 403, "an operator may change: {change:?}");
    assert_eq!(
        http(addr, "GET", "/api/v1/audit", &ops, "").await.status,
        403
    );
    let admin = as_user("ines", "team-pay-oncall,platform-admins");
    assert_eq!(
        http(addr, "GET", "/api/v1/audit", &admin, "").await.status,
        200
    );
    // The page names the proxy's user; there is no sign-out of ours.
    let page = http(addr, "GET", "/", &ops, "").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("olga"), "the top bar names the user");
    assert!(!page.body.contains("data-testid=\"sign-out\""));
    // No group that maps, and no default: no access, said plainly.
    let outsider = http(addr, "GET", "/", &as_user("carl", "contractors"), "").await;
    assert_eq!(outsider.status, 403);
    assert!(
        outsider.body.contains("carl has no role here"),
        "{}",
        outsider.body
    );
    // No user header: refused, never a default user.
    let nobody = http(
        addr,
        "GET",
        "/api/v1/events",
        &[("X-Forwarded-Groups", "platform-admins")],
        "",
    )
    .await;
    assert_eq!(nobody.status, 403, "{nobody:?}");
    running.stop().await;

    // Headers from an address that is not the proxy are not believed.
    let elsewhere = eventscope::start(make("10.9.9.9", DefaultRole::Viewer))
        .await
        .expect("app starts");
    let forged = http(
        elsewhere.addr,
        "GET",
        "/api/v1/audit",
        &as_user("mallory", "platform-admins"),
        "",
    )
    .await;
    assert_eq!(forged.status, 403, "{forged:?}");
    assert!(
        forged.body.contains("reverse proxy only"),
        "{}",
        forged.body
    );
    elsewhere.stop().await;

    // A default role lets in users no rule matches.
    let open = eventscope::start(make("127.0.0.1", DefaultRole::Viewer))
        .await
        .expect("app starts");
    let carl = as_user("carl", "contractors");
    assert_eq!(
        http(open.addr, "GET", "/api/v1/events", &carl, "")
            .await
            .status,
        200
    );
    assert_eq!(
        http(open.addr, "PUT", "/api/v1/demo", &carl, "{}")
            .await
            .status,
        403
    );
    open.stop().await;
}

/// A real OpenID Connect provider (PyPI `oidc-provider-mock`, installed by
/// `scripts/setup.sh` beside nats-server) on a free port, with `users`
/// (JSON claims, each with a `sub`) to pick on its form; killed on drop.
struct Provider {
    _child: tokio::process::Child,
    url: String,
}

impl Provider {
    async fn start(users: &[&str]) -> Provider {
        let bin = std::env::var_os("EVENTSCOPE_TOOLS")
            .map(std::path::PathBuf::from)
            .or_else(eventscope::demo::managed_nats::tools_dir)
            .map(|d| d.join("venv/bin/oidc-provider-mock"))
            .filter(|p| p.exists())
            .unwrap_or_else(|| "oidc-provider-mock".into());
        let port = eventscope::demo::managed_nats::free_port().expect("free port");
        let mut cmd = tokio::process::Command::new(&bin);
        cmd.args(["--port", &port.to_string(), "--require-nonce", "true"]);
        for u in users {
            cmd.args(["--user-claims", u]);
        }
        let child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{} starts (scripts/setup.sh --test installs it): {e}",
                    bin.display()
                )
            });
        let url = format!("http://127.0.0.1:{port}");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        within("the provider answers", async {
            loop {
                if tokio::net::TcpStream::connect(addr).await.is_ok()
                    && http(addr, "GET", "/.well-known/openid-configuration", &[], "")
                        .await
                        .status
                        == 200
                {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        })
        .await;
        Provider { _child: child, url }
    }
}

/// Signs in as `sub` through the provider: our `/login` sends the browser
/// there, its form is posted as a person would, and its answer brought
/// back to our callback. The callback's answer.
async fn through_provider(addr: SocketAddr, sub: &str, next: &str) -> Answer {
    let start = http(addr, "GET", &format!("/login?next={next}"), &[], "").await;
    assert_eq!(start.status, 303, "{start:?}");
    let flow = start
        .header("set-cookie")
        .split(';')
        .next()
        .expect("the flow's cookie")
        .to_string();
    assert!(flow.starts_with("eventscope_oidc="), "{flow}");
    let authorize = start.header("location").to_string();
    assert!(
        authorize.contains("code_challenge=") && authorize.contains("nonce="),
        "PKCE and a nonce: {authorize}"
    );
    let (origin, path) = authorize
        .strip_prefix("http://")
        .and_then(|r| r.split_once('/'))
        .expect("the provider's URL");
    let provider: SocketAddr = origin.parse().expect("address");
    let picked = http(
        provider,
        "POST",
        &format!("/{path}"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!("sub={sub}"),
    )
    .await;
    assert_eq!(picked.status, 302, "{picked:?}");
    let back = picked.header("location").to_string();
    let callback = back
        .split_once(&format!("{addr}"))
        .map(|(_, p)| p.to_string())
        .unwrap_or_else(|| panic!("back to us: {back}"));
    http(addr, "GET", &callback, &[("Cookie", &flow)], "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_sign_in_maps_groups_to_roles() {
    use eventscope::access::oidc::OidcSettings;
    use eventscope::access::roles::{DefaultRole, RoleRule};
    let provider = Provider::start(&[
        r#"{"sub":"u-1","preferred_username":"ana","groups":["everyone","ops"]}"#,
        r#"{"sub":"u-2","preferred_username":"carl","groups":["contractors"]}"#,
    ])
    .await;
    let nats = nats_server(None).await;
    let port = eventscope::demo::managed_nats::free_port().expect("free port");
    let mut config = Config::attach(nats.url(), &["a.>"]);
    config.addr = SocketAddr::from(([127, 0, 0, 1], port));
    config.auth_mode = AuthMode::Oidc;
    config.session_secret = Some("k".repeat(32).parse().expect("secret"));
    config.oidc = Some(OidcSettings {
        issuer: provider.url.clone(),
        client_id: "eventscope".into(),
        client_secret: Some("client-secret".parse().expect("secret")),
        redirect_url: format!("http://127.0.0.1:{port}/auth/callback"),
        scopes: vec!["profile".into()],
        user_claim: "preferred_username".into(),
        groups_claim: "groups".into(),
    });
    config.role_mapping = vec![RoleRule {
        group: Some("ops".into()),
        group_regex: None,
        role: Role::Operator,
        scope: None,
    }];
    config.default_role = DefaultRole::None;
    let running = eventscope::start(config).await.expect("app starts");
    let addr = running.addr;

    // Not signed in: the page goes to sign in (and on to the provider).
    assert_eq!(http(addr, "GET", "/flows", &[], "").await.status, 303);
    let ana = through_provider(addr, "u-1", "%2Fflows").await;
    assert_eq!(ana.status, 303, "{ana:?}");
    assert_eq!(ana.header("location"), "/flows");
    let set = ana.header("set-cookie").to_string();
    assert!(
        set.contains("eventscope_oidc=;"),
        "the flow's cookie is cleared: {set}"
    );
    let session = session_cookie(&ana).expect("a session");
    let as_ana = [("Cookie", session.as_str())];
    // ana's "ops" group maps to operator: she reads and may change.
    assert_eq!(
        http(addr, "GET", "/api/v1/events", &as_ana, "")
            .await
            .status,
        200
    );
    let change = http(addr, "PUT", "/api/v1/demo", &as_ana, "{}").await;
    assert_eq!(
        change.status, 409,
        "past the gate as an operator: {change:?}"
    );
    assert_eq!(
        http(addr, "GET", "/api/v1/audit", &as_ana, "").await.status,
        403
    );
    let page = http(addr, "GET", "/flows", &as_ana, "").await;
    assert!(
        page.body.contains("ana") && page.body.contains("operator"),
        "the top bar"
    );

    // carl's groups map to no role: told so, no session.
    let carl = through_provider(addr, "u-2", "%2F").await;
    assert_eq!(carl.status, 403, "{carl:?}");
    assert!(
        carl.body
            .contains("carl signed in at the provider, but none of their groups (contractors)"),
        "{}",
        carl.body
    );
    assert_eq!(session_cookie(&carl), None);

    // An answer without this browser's flow, or with another state, is
    // refused.
    let stray = http(addr, "GET", "/auth/callback?code=x&state=y", &[], "").await;
    assert_eq!(stray.status, 401);
    assert!(
        stray.body.contains("no sign-in under way"),
        "{}",
        stray.body
    );
    let start = http(addr, "GET", "/login", &[], "").await;
    let flow = start
        .header("set-cookie")
        .split(';')
        .next()
        .expect("cookie")
        .to_string();
    let forged = http(
        addr,
        "GET",
        "/auth/callback?code=x&state=forged",
        &[("Cookie", &flow)],
        "",
    )
    .await;
    assert_eq!(forged.status, 401);
    assert!(forged.body.contains("(state)"), "{}", forged.body);

    running.stop().await;
}

/// The value of metric line `name` (with its labels) in `/metrics`.
fn metric(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refusals_is_audited_at_20_a_second_and_the_rest_counted() {
    let nats = nats_server(None).await;
    let admin = random_token();
    let mut config = Config::attach(nats.url(), &["a.>"]);
    config.auth_mode = AuthMode::Users;
    config.tokens = vec![TokenEntry {
        name: "ops".into(),
        sha256: token_sha256(&admin),
        role: Role::Admin,
        scope: None,
    }];
    let running = eventscope::start(config).await.expect("app starts");
    let addr = running.addr;
    let started = std::time::Instant::now();
    const FLOOD: u64 = 100;
    for _ in 0..FLOOD {
        let bad = format!("Bearer {}", random_token());
        assert_eq!(
            http(
                addr,
                "GET",
                "/api/v1/events",
                &[("Authorization", &bad)],
                ""
            )
            .await
            .status,
            401
        );
    }
    // At most 20 records a second: the seconds the flood spanned bound
    // what was written.
    let seconds = started.elapsed().as_secs() + 1;
    let bearer = format!("Bearer {admin}");
    let as_admin = [("Authorization", bearer.as_str())];
    let metrics = http(addr, "GET", "/metrics", &as_admin, "").await.body;
    let written = metric(
        &metrics,
        "eventscope_audit_records_total{outcome=\"written\"}",
    );
    let suppressed = metric(
        &metrics,
        "eventscope_audit_records_total{outcome=\"suppressed\"}",
    );
    assert_eq!(
        written + suppressed,
        FLOOD,
        "every refusal is written or counted"
    );
    assert!(
        written <= 20 * (seconds + 1),
        "{written} written in {seconds} s"
    );
    assert!(
        written >= 20.min(FLOOD),
        "the first 20 are always written: {written}"
    );
    assert_eq!(
        metric(
            &metrics,
            "eventscope_audit_records_total{outcome=\"dropped\"}"
        ),
        0
    );
    // What was written is in the log, each a `denied`.
    let trail = within("the written records are in the log", async {
        loop {
            let a = http(addr, "GET", "/api/v1/audit?limit=1000", &as_admin, "").await;
            let page: serde_json::Value = serde_json::from_str(&a.body).expect("json");
            let events = page["events"].as_array().cloned().unwrap_or_default();
            if events.len() as u64 >= written {
                return events;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(trail.len() as u64, written);
    assert!(
        trail
            .iter()
            .all(|e| e["subject"] == "eventscope.audit.denied")
    );
    running.stop().await;
}

/// Opens `/ws` with `Authorization: <auth>`.
async fn ws_as(addr: SocketAddr, auth: &str) -> WsStream {
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{addr}/ws"),
    )
    .expect("request");
    req.headers_mut()
        .insert("Authorization", auth.parse().expect("header"));
    within("websocket connect", tokio_tungstenite::connect_async(req))
        .await
        .expect("websocket upgrade")
        .0
}

/// GET `path` with `Authorization: <auth>`: status and JSON.
async fn json_as(addr: SocketAddr, auth: &str, path: &str) -> (u16, serde_json::Value) {
    let a = http(addr, "GET", path, &[("Authorization", auth)], "").await;
    let v = serde_json::from_str(&a.body).unwrap_or(serde_json::Value::Null);
    (a.status, v)
}

/// Publishes `{}` on `subject` until the server lists it: from then on
/// ingest's subscription is live (core NATS keeps nothing for a
/// subscription not yet made).
async fn probe(client: &async_nats::Client, addr: SocketAddr, auth: &str, subject: &str) {
    within("ingest's subscription is live", async {
        loop {
            client
                .publish(subject.to_string(), "{}".into())
                .await
                .expect("publish");
            client.flush().await.expect("flush");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let path = format!("/api/v1/events?subject={subject}&limit=1");
            if !subjects_of(&json_as(addr, auth, &path).await.1).is_empty() {
                return;
            }
        }
    })
    .await;
}

/// GETs `path` with `Authorization: <auth>` until its JSON page lists
/// `subject`; the page.
async fn until_listed(
    addr: SocketAddr,
    auth: &str,
    path: &str,
    subject: &str,
) -> serde_json::Value {
    within(&format!("{subject} is listed by {path}"), async {
        loop {
            let (_, page) = json_as(addr, auth, path).await;
            if subjects_of(&page).iter().any(|s| s == subject) {
                return page;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
}

/// The subjects of an event page.
fn subjects_of(page: &serde_json::Value) -> Vec<String> {
    page["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|e| e["subject"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_and_masks_limit_what_each_reader_sees() {
    use app::wire::{Body, ClientMsg, View, ViewData};
    use eventscope::access::mask::MaskEntry;
    use eventscope::access::scope::ScopeEntry;
    let nats = nats_server(None).await;
    let (admin_token, orders_token, viewer_token) =
        (random_token(), random_token(), random_token());
    let mut config = Config::attach(nats.url(), &["shop.>"]);
    config.auth_mode = AuthMode::Users;
    config.scopes.insert(
        "orders".into(),
        ScopeEntry {
            allow: vec!["shop.orders.>".into()],
            deny: vec!["shop.orders.internal.>".into()],
        },
    );
    config.masks = vec![MaskEntry {
        fields: vec!["card.number".into(), "**.password".into()],
        headers: vec!["Authorization".into()],
        roles: vec![Role::Viewer, Role::Operator],
        remove: false,
    }];
    config.tokens = vec![
        TokenEntry {
            name: "ops".into(),
            sha256: token_sha256(&admin_token),
            role: Role::Admin,
            scope: None,
        },
        TokenEntry {
            name: "orders-team".into(),
            sha256: token_sha256(&orders_token),
            role: Role::Viewer,
            scope: Some("orders".into()),
        },
        TokenEntry {
            name: "grafana".into(),
            sha256: token_sha256(&viewer_token),
            role: Role::Viewer,
            scope: None,
        },
    ];
    let running = eventscope::start(config).await.expect("app starts");
    let addr = running.addr;
    let (admin, orders) = (
        format!("Bearer {admin_token}"),
        format!("Bearer {orders_token}"),
    );
    let client = publisher(&nats.url()).await;
    probe(&client, addr, &admin, "shop.probe").await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Authorization", "Basic c2VjcmV0LWhlYWRlcg==");
    client
        .publish_with_headers(
            "shop.orders.created",
            headers,
            r#"{"order":7,"card":{"number":"4111-1111","brand":"visa"},"user":{"login":{"password":"hunter2"}},"msg":"order created"}"#.into(),
        )
        .await
        .expect("publish");
    for (subject, payload) in [
        ("shop.orders.internal.audit", r#"{"who":"x"}"#),
        // Looks like JSON, is not: cannot be masked, so it is withheld.
        (
            "shop.orders.odd",
            r#"{"card":{"number":"4111-2222"}} and more"#,
        ),
        ("shop.payments.done", r#"{"amount":5}"#),
    ] {
        client
            .publish(subject, payload.into())
            .await
            .expect("publish");
    }
    client.flush().await.expect("flush");
    let all = until_listed(
        addr,
        &admin,
        "/api/v1/events?limit=100",
        "shop.payments.done",
    )
    .await;
    let id_of = |subject: &str| {
        all["events"]
            .as_array()
            .and_then(|e| e.iter().find(|e| e["subject"] == subject))
            .and_then(|e| e["id"].as_u64())
            .expect("event listed")
    };

    // The list: only the scope's subjects, and previews masked.
    let (status, page) = json_as(addr, &orders, "/api/v1/events?limit=100").await;
    assert_eq!(status, 200);
    assert_eq!(
        subjects_of(&page),
        ["shop.orders.odd", "shop.orders.created"],
        "{page}"
    );
    let listed = page.to_string();
    assert!(
        !listed.contains("4111") && !listed.contains("hunter2"),
        "{listed}"
    );
    assert!(listed.contains("[masked]"), "{listed}");
    // A masked value cannot be found by guessing it; the admin finds it.
    for search in ["q=4111", "field=card.number=4111-1111", "q=hunter2"] {
        let (_, found) = json_as(addr, &orders, &format!("/api/v1/events?{search}")).await;
        assert!(subjects_of(&found).is_empty(), "{search}: {found}");
        let (_, found) = json_as(
            addr,
            &admin,
            &format!("/api/v1/events?{search}&subject=shop.orders.created"),
        )
        .await;
        assert_eq!(subjects_of(&found), ["shop.orders.created"], "{search}");
    }
    let (_, found) = json_as(addr, &orders, "/api/v1/events?q=visa").await;
    assert_eq!(
        subjects_of(&found),
        ["shop.orders.created"],
        "unmasked text is found"
    );

    // An event's page: masked fields and headers, listed as masked; out
    // of scope, as absent as an evicted event.
    let created = id_of("shop.orders.created");
    let (status, detail) = json_as(addr, &orders, &format!("/api/v1/events/{created}")).await;
    assert_eq!(status, 200);
    let text = detail["payload_text"].as_str().expect("text");
    assert!(
        text.contains("\"brand\":\"visa\"") && text.contains("[masked]"),
        "{text}"
    );
    assert!(!detail.to_string().contains("4111") && !detail.to_string().contains("c2VjcmV0"));
    let masked: Vec<&str> = detail["masked"]
        .as_array()
        .expect("masked")
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    assert_eq!(
        masked,
        ["card.number", "user.login.password", "header Authorization"]
    );
    let (_, stored) = json_as(addr, &admin, &format!("/api/v1/events/{created}")).await;
    assert!(
        stored["payload_text"]
            .as_str()
            .is_some_and(|t| t.contains("4111-1111")),
        "stored bytes are untouched: {stored}"
    );
    assert!(stored.get("masked").is_none(), "admins see everything");
    let odd = id_of("shop.orders.odd");
    let (_, withheld) = json_as(addr, &orders, &format!("/api/v1/events/{odd}")).await;
    assert!(!withheld.to_string().contains("4111"), "{withheld}");
    assert_eq!(withheld["masked"], serde_json::json!(["payload"]));
    let (_, found) = json_as(addr, &orders, "/api/v1/events?q=4111-2222").await;
    assert!(subjects_of(&found).is_empty(), "{found}");
    for subject in ["shop.payments.done", "shop.orders.internal.audit"] {
        let (status, _) =
            json_as(addr, &orders, &format!("/api/v1/events/{}", id_of(subject))).await;
        assert_eq!(status, 404, "{subject}");
    }

    // Aggregates: only rows of allowed subjects, and they say so.
    let (_, top) = json_as(addr, &orders, "/api/v1/projections/top_subjects?window=15m").await;
    assert_eq!(top["scoped"], true, "{top}");
    let keys: Vec<&str> = top["body"]["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["key"].as_str())
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys.iter()
            .all(|k| k.starts_with("shop.orders.") && !k.contains("internal"))
    );
    let (_, rates) = json_as(addr, &orders, "/api/v1/projections/rates?window=15m").await;
    assert_eq!(rates["body"]["total"]["count"], 2, "{rates}");
    assert_eq!(rates["body"]["services"], serde_json::json!([]));
    let (_, full) = json_as(addr, &admin, "/api/v1/projections/top_subjects?window=15m").await;
    assert!(full.get("scoped").is_none());
    assert!(full.to_string().contains("shop.payments.done"));
    // What cannot be tied to subjects is refused to a scoped reader.
    for path in ["/api/v1/timeline", "/api/v1/charts/levels", "/metrics"] {
        let (status, answer) = json_as(addr, &orders, path).await;
        assert_eq!(status, 403, "{path}: {answer}");
        assert_eq!(json_as(addr, &admin, path).await.0, 200, "{path}");
    }

    // The audit trail is the admins': not among the events a viewer reads.
    let viewer = format!("Bearer {viewer_token}");
    let trail = until_listed(
        addr,
        &admin,
        "/api/v1/events?subject=eventscope.audit.>",
        "eventscope.audit.denied",
    )
    .await;
    let (status, hidden) =
        json_as(addr, &viewer, "/api/v1/events?subject=eventscope.audit.>").await;
    assert_eq!(status, 200);
    assert!(subjects_of(&hidden).is_empty(), "{hidden}");
    let record = trail["events"][0]["id"].as_u64().expect("an id");
    assert_eq!(
        json_as(addr, &viewer, &format!("/api/v1/events/{record}"))
            .await
            .0,
        404
    );

    // The live socket: the tail and the counts, thinned and masked.
    let mut ws = ws_as(addr, &orders).await;
    send(
        &mut ws,
        &ClientMsg::Subscribe {
            view: View::Tail {
                filter: String::new(),
                limit: 50,
            },
        },
    )
    .await;
    let frame = next_frame(&mut ws).await;
    let Body::Snapshot {
        data: ViewData::Tail { events },
    } = frame.body
    else {
        panic!("a tail snapshot: {frame:?}")
    };
    let tail: Vec<&str> = events.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(tail, ["shop.orders.created", "shop.orders.odd"]);
    assert!(events[0].preview.contains("[masked]") && !events[0].preview.contains("4111"));
    assert!(
        !events[1].preview.contains("4111"),
        "{:?}",
        events[1].preview
    );
    send(&mut ws, &ClientMsg::Subscribe { view: View::Counts }).await;
    let frame = next_frame(&mut ws).await;
    let Body::Snapshot {
        data: ViewData::Counts(counts),
    } = frame.body
    else {
        panic!("a counts snapshot: {frame:?}")
    };
    assert_eq!(
        counts.subjects.keys().collect::<Vec<_>>(),
        ["shop.orders.created", "shop.orders.odd"]
    );
    assert_eq!(counts.total, 2);
    send(
        &mut ws,
        &ClientMsg::Subscribe {
            view: View::Timeline { buckets: 10 },
        },
    )
    .await;
    let frame = next_frame(&mut ws).await;
    assert!(
        matches!(&frame.body, Body::Error { message } if message.contains("scope")),
        "{frame:?}"
    );
    // A later event out of scope never reaches the tail; one in scope does.
    client
        .publish("shop.payments.refund", r#"{"amount":1}"#.into())
        .await
        .expect("publish");
    client
        .publish("shop.orders.paid", r#"{"card":{"number":"5500"}}"#.into())
        .await
        .expect("publish");
    client.flush().await.expect("flush");
    let live = within("the in-scope event reaches the tail", async {
        loop {
            let frame = next_frame(&mut ws).await;
            if let Body::Delta {
                data: app::wire::ViewDelta::Events { events, .. },
            } = frame.body
            {
                return events;
            }
        }
    })
    .await;
    let subjects: Vec<&str> = live.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(subjects, ["shop.orders.paid"]);
    assert!(!live[0].preview.contains("5500"), "{:?}", live[0].preview);
    running.stop().await;

    // A scope named but not defined is refused at start, naming the key.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("eventscope.toml");
    std::fs::write(
        &file,
        "[[tokens]]\nname = \"ci\"\nsha256 = \"".to_string()
            + &"a".repeat(64)
            + "\"\nrole = \"viewer\"\nscope = \"ordrs\"\n\n[scopes.orders]\nallow = [\"shop.orders.>\"]\n",
    )
    .expect("write");
    let refused =
        Config::load_ignoring_env(["eventscope", "--config", file.to_str().expect("utf8")])
            .expect_err("refused")
            .to_string();
    assert!(
        refused.contains("tokens.scope") && refused.contains("ordrs") && refused.contains("line 5"),
        "{refused}"
    );
    std::fs::write(&file, "[scopes.orders]\nallow = [\"shop..orders\"]\n").expect("write");
    let refused =
        Config::load_ignoring_env(["eventscope", "--config", file.to_str().expect("utf8")])
            .expect_err("refused")
            .to_string();
    assert!(
        refused.contains("scopes.allow") && refused.contains("line 2"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_connection_ends_with_its_session() {
    use app::wire::{Body, ClientMsg, View};
    let nats = nats_server(None).await;
    let mut config = Config::attach(nats.url(), &["a.>"]);
    config.auth_mode = AuthMode::Users;
    config.users = vec![user("vera", "v-pass", Role::Viewer)];
    config.session_lifetime = Some(std::time::Duration::from_secs(3));
    let running = eventscope::start(config).await.expect("app starts");
    let addr = running.addr;
    let cookie = session_cookie(&sign_in(addr, "vera", "v-pass").await).expect("signed in");
    let opened = std::time::Instant::now();
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{addr}/ws"),
    )
    .expect("request");
    req.headers_mut()
        .insert("Cookie", cookie.parse().expect("header"));
    let (mut ws, _) = within("websocket connect", tokio_tungstenite::connect_async(req))
        .await
        .expect("the session opens the live socket");
    send(&mut ws, &ClientMsg::Subscribe { view: View::Counts }).await;
    // Frames flow until the session's end, then an error says why and the
    // server closes the connection.
    let ended = within("the session ends", async {
        loop {
            let frame = next_frame(&mut ws).await;
            if let Body::Error { message } = frame.body {
                return message;
            }
        }
    })
    .await;
    assert!(ended.contains("session has ended"), "{ended}");
    let lasted = opened.elapsed();
    assert!(
        lasted >= std::time::Duration::from_secs(2) && lasted < std::time::Duration::from_secs(6),
        "closed after {lasted:?}"
    );
    use futures::StreamExt;
    let closed = within("the server closes", async {
        loop {
            match ws.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) | None => return true,
                Some(Ok(_)) => {}
                Some(Err(_)) => return true,
            }
        }
    })
    .await;
    assert!(closed);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_records_are_published_to_nats_and_not_taken_in_twice() {
    use futures::StreamExt;
    let nats = nats_server(None).await;
    let admin_token = random_token();
    let mut config = Config::attach(nats.url(), &["eventscope.>"]);
    config.auth_mode = AuthMode::Users;
    config.audit_to_nats = true;
    config.tokens = vec![TokenEntry {
        name: "ops".into(),
        sha256: token_sha256(&admin_token),
        role: Role::Admin,
        scope: None,
    }];
    let running = eventscope::start(config).await.expect("app starts");
    let addr = running.addr;
    let admin = format!("Bearer {admin_token}");
    let client = publisher(&nats.url()).await;
    let mut records = client
        .subscribe("eventscope.audit.>")
        .await
        .expect("subscribe");
    client.flush().await.expect("flush");
    probe(&client, addr, &admin, "eventscope.probe").await;
    // A refusal: audited, published, and in the log once.
    let stranger = format!("Bearer {}", random_token());
    assert_eq!(json_as(addr, &stranger, "/api/v1/events").await.0, 401);
    let published = within("the record is published", records.next())
        .await
        .expect("a record");
    assert_eq!(published.subject.as_str(), "eventscope.audit.denied");
    let body: serde_json::Value = serde_json::from_slice(&published.payload).expect("json");
    assert_eq!(body["action"], "denied", "{body}");
    assert!(
        published
            .headers
            .as_ref()
            .and_then(|h| h.get("Eventscope-Instance"))
            .is_some_and(|v| !v.as_str().is_empty()),
        "the record names its instance"
    );
    // Another instance's record is taken in like any event.
    let mut other = async_nats::HeaderMap::new();
    other.insert("Eventscope-Instance", "another-instance");
    client
        .publish_with_headers(
            "eventscope.audit.change",
            other,
            r#"{"action":"change","user":"elsewhere"}"#.into(),
        )
        .await
        .expect("publish");
    client.flush().await.expect("flush");
    let trail = until_listed(
        addr,
        &admin,
        "/api/v1/audit?limit=100",
        "eventscope.audit.change",
    )
    .await;
    // Published before the other instance's record: had ingest taken it
    // in, it would be in the log by now.
    let denied = subjects_of(&trail)
        .iter()
        .filter(|s| *s == "eventscope.audit.denied")
        .count();
    assert_eq!(denied, 1, "our own record is in the log once: {trail}");
    let text = http(addr, "GET", "/metrics", &[("Authorization", &admin)], "")
        .await
        .body;
    assert_eq!(
        metric(
            &text,
            "eventscope_audit_records_total{outcome=\"published\"}"
        ),
        1
    );
    running.stop().await;
}
