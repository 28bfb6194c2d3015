//! Who may see and do what: the gate every HTTP request and live socket
//! passes before the pages, the API or the hub see it (PRODUCT.md F12,
//! docs/SECURITY.md). In order:
//! - [`defences`]: the `Host` allow-list and the `Origin` check, whoever
//!   signs in, and the security headers of every response;
//! - sign-in ([`AuthMode`]): `none` (only on a loopback address unless
//!   `--insecure-no-auth`), or `users`: local [`users`] with argon2
//!   passwords, signed in with a [`session`] cookie, and API tokens;
//! - roles ([`Role`]): each route needs one; the server decides, the UI
//!   only hides what a role cannot use;
//! - the [`audit`] trail of sign-ins, refusals and changes.

pub mod audit;
pub mod defences;
pub mod lens;
pub mod mask;
pub mod oidc;
pub mod roles;
pub mod scope;
pub mod session;
pub mod users;

pub use app::api::{Identity, Role};
pub use lens::Lens;

use crate::AppState;
use audit::{Action, Audit};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// How people sign in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Nobody signs in: whoever reaches the port may do everything. Only
    /// on a loopback address, unless `--insecure-no-auth`.
    #[default]
    None,
    /// Local users (`[[users]]`, argon2 password hashes) sign in on
    /// `/login`; scripts send an API token (`[[tokens]]`).
    Users,
    /// A reverse proxy in front signs people in and says who they are in
    /// headers (`[proxy]`), believed only from its addresses; roles come
    /// from the groups header through `[[role_mapping]]`. API tokens work
    /// too.
    Proxy,
    /// People sign in at an OpenID Connect provider (`[oidc]`: the code
    /// flow with PKCE); roles come from a groups claim through
    /// `[[role_mapping]]`. API tokens work too.
    Oidc,
}

/// `[proxy]` in the config file: the reverse proxy trusted with `--auth
/// proxy`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySettings {
    /// Addresses or networks the proxy connects from (`10.0.0.5`,
    /// `10.0.0.0/8`, `::1`): only their requests' headers are believed.
    pub trusted: Vec<String>,
    /// The header naming the user.
    #[serde(default = "default_user_header")]
    pub user_header: String,
    /// The header listing the user's groups, comma-separated.
    #[serde(default = "default_groups_header")]
    pub groups_header: String,
}

fn default_user_header() -> String {
    "X-Forwarded-User".to_string()
}

fn default_groups_header() -> String {
    "X-Forwarded-Groups".to_string()
}

impl ProxySettings {
    /// Why the settings are refused: the key at fault and what is wrong.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.trusted.is_empty() {
            return Err((
                "trusted",
                "name the addresses the proxy connects from (e.g. [\"127.0.0.1\"])".to_string(),
            ));
        }
        for t in &self.trusted {
            parse_net(t).ok_or_else(|| {
                (
                    "trusted",
                    format!("{t:?} is not an address or a network such as 10.0.0.0/8"),
                )
            })?;
        }
        for (key, name) in [
            ("user_header", &self.user_header),
            ("groups_header", &self.groups_header),
        ] {
            axum::http::HeaderName::try_from(name.as_str())
                .map_err(|_| (key, format!("{name:?} is not a header name")))?;
        }
        Ok(())
    }
}

fn parse_net(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(ipnet::IpNet::from))
}

/// The proxy, ready to check requests.
#[derive(Debug)]
struct Proxy {
    trusted: Vec<ipnet::IpNet>,
    user_header: axum::http::HeaderName,
    groups_header: axum::http::HeaderName,
    roles: roles::RoleMap,
}

/// Why the access settings were refused at start.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// No sign-in on an address others can reach.
    #[error(
        "refusing to serve {addr} without sign-in: anyone who reaches it would read every \
         event and change the demo. Listen on a loopback address (--addr 127.0.0.1:3000), \
         turn sign-in on (--auth users, with [[users]] in the --config file), or pass \
         --insecure-no-auth to serve it open deliberately"
    )]
    OpenOnNetwork {
        /// The address.
        addr: SocketAddr,
    },
    /// `--auth users` with nobody to sign in.
    #[error(
        "--auth users needs at least one [[users]] or [[tokens]] entry in the --config file \
         (`eventscope hash-password` and `eventscope new-token` print them)"
    )]
    NoUsers,
    /// `--auth proxy` with no proxy to trust.
    #[error(
        "--auth proxy needs a [proxy] table in the --config file with the addresses the proxy \
         connects from (trusted = [\"10.0.0.5\"]) and [[role_mapping]] rules or a default_role"
    )]
    NoProxy,
    /// `--auth oidc` with no provider.
    #[error(
        "--auth oidc needs an [oidc] table in the --config file: issuer, client_id, \
         client_secret (unless the client is public) and redirect_url \
         (https://<this server>/auth/callback)"
    )]
    NoOidc,
    /// A session secret too short to key anything.
    #[error("--session-secret must have at least {min} bytes (it has {0})", min = session::MIN_SECRET)]
    ShortSecret(usize),
}

/// Sign-ins at once (argon2 takes tens of milliseconds and 19 MiB each):
/// a flood of them waits for a turn or is refused, and never takes the
/// cores ingest needs.
pub const SIGN_INS_AT_ONCE: usize = 2;

/// The access settings and the audit trail.
#[derive(Debug)]
pub struct Access {
    /// How people sign in.
    pub mode: AuthMode,
    users: users::Users,
    sessions: session::Sessions,
    hosts: defences::Hosts,
    origins: Arc<[String]>,
    sign_ins: Arc<tokio::sync::Semaphore>,
    proxy: Option<Proxy>,
    oidc: Option<oidc::Oidc>,
    /// The subject scopes, by name.
    scopes: std::collections::HashMap<String, Arc<scope::Scope>>,
    /// What each role sees masked.
    masking: mask::Masking,
    /// Where audit records go.
    pub audit: Audit,
}

impl Access {
    /// The settings `config` asks for, recording to `audit`.
    pub fn from_config(
        config: &crate::config::Config,
        audit: Audit,
    ) -> Result<Access, AccessError> {
        if config.auth_mode == AuthMode::None
            && !config.addr.ip().is_loopback()
            && !config.insecure_no_auth
        {
            return Err(AccessError::OpenOnNetwork { addr: config.addr });
        }
        let users = users::Users::new(&config.users, &config.tokens);
        if config.auth_mode == AuthMode::Users && users.is_empty() {
            return Err(AccessError::NoUsers);
        }
        let proxy = match (&config.proxy, config.auth_mode) {
            (Some(p), AuthMode::Proxy) => Some(Proxy {
                trusted: p.trusted.iter().filter_map(|t| parse_net(t)).collect(),
                user_header: axum::http::HeaderName::try_from(p.user_header.as_str())
                    .map_err(|_| AccessError::NoProxy)?,
                groups_header: axum::http::HeaderName::try_from(p.groups_header.as_str())
                    .map_err(|_| AccessError::NoProxy)?,
                roles: roles::RoleMap::new(
                    &config.role_mapping,
                    config.default_role,
                    config.default_scope.as_deref(),
                ),
            }),
            (None, AuthMode::Proxy) => return Err(AccessError::NoProxy),
            _ => None,
        };
        let oidc = match (&config.oidc, config.auth_mode) {
            (Some(o), AuthMode::Oidc) => Some(oidc::Oidc::new(
                o.clone(),
                roles::RoleMap::new(
                    &config.role_mapping,
                    config.default_role,
                    config.default_scope.as_deref(),
                ),
            )),
            (None, AuthMode::Oidc) => return Err(AccessError::NoOidc),
            _ => None,
        };
        let secret = config
            .session_secret
            .as_ref()
            .map(|s| s.expose().as_bytes());
        if let Some(s) = secret
            && s.len() < session::MIN_SECRET
        {
            return Err(AccessError::ShortSecret(s.len()));
        }
        if matches!(config.auth_mode, AuthMode::Users | AuthMode::Oidc) && secret.is_none() {
            tracing::warn!(
                "no --session-secret: sessions are keyed by a random secret, so they end when \
                 eventscope restarts and are not shared with other instances"
            );
        }
        Ok(Access {
            mode: config.auth_mode,
            users,
            sessions: session::Sessions::new(
                secret,
                config
                    .session_lifetime
                    .unwrap_or(std::time::Duration::from_secs(
                        u64::from(config.session_hours) * 3600,
                    )),
            ),
            hosts: defences::Hosts::new(&config.public_names),
            origins: config.allowed_origins.clone().into(),
            sign_ins: Arc::new(tokio::sync::Semaphore::new(SIGN_INS_AT_ONCE)),
            proxy,
            oidc,
            scopes: config
                .scopes
                .iter()
                .map(|(name, entry)| (name.clone(), Arc::new(scope::Scope::new(name, entry))))
                .collect(),
            masking: mask::Masking::new(&config.masks),
            audit,
        })
    }

    /// Who sent a request (from `from`), by its token, its session cookie
    /// or its proxy's headers.
    fn identify(&self, headers: &HeaderMap, from: Option<IpAddr>) -> Who {
        if self.mode == AuthMode::None {
            return Who::Known(Identity {
                name: String::new(),
                role: Role::Admin,
                signed_in: false,
                scope: None,
            });
        }
        let known = |name: String, grant: &users::Grant, signed_in: bool| {
            Who::Known(Identity {
                name,
                role: grant.role,
                signed_in,
                scope: grant.scope.clone(),
            })
        };
        if let Some(auth) = headers.get(header::AUTHORIZATION) {
            let token = auth
                .to_str()
                .ok()
                .and_then(|a| a.strip_prefix("Bearer "))
                .unwrap_or("");
            return match self.users.token(token) {
                Some((name, grant)) => known(name.to_string(), grant, false),
                None => Who::Refused(String::new(), "an unknown or revoked API token"),
            };
        }
        if let Some(proxy) = &self.proxy {
            return proxy.identify(headers, from);
        }
        match self.sessions.read(headers, now_s()) {
            None => Who::Nobody,
            Some(Err(session::Refused::Expired)) => {
                Who::Refused(String::new(), "a session that has ended")
            }
            Some(Err(session::Refused::Unreadable)) => Who::Refused(
                String::new(),
                "a session cookie this server cannot read (made before a restart, or forged)",
            ),
            // OpenID Connect: the role was decided at sign-in.
            Some(Ok(s)) if self.mode == AuthMode::Oidc => match s.role {
                Some(role) => {
                    let grant = users::Grant {
                        role,
                        scope: s.scope,
                    };
                    known(s.user, &grant, true)
                }
                None => Who::Refused(s.user, "a session without a role"),
            },
            Some(Ok(s)) => match self.users.grant_of(&s.user) {
                Some(grant) => known(s.user, grant, true),
                None => Who::Refused(s.user, "a session of a user no longer configured"),
            },
        }
    }

    /// What `who` sees of the events: their scope and their role's masks.
    /// `Err`: their scope is not (or no longer) configured.
    pub fn lens(&self, who: &Identity) -> Result<Lens, String> {
        let scope = match &who.scope {
            None => None,
            Some(name) => Some(Arc::clone(self.scopes.get(name).ok_or_else(|| {
                format!(
                    "{}'s scope {name:?} is not configured; ask an admin",
                    who.name
                )
            })?)),
        };
        Ok(Lens {
            scope,
            masks: self.masking.for_role(who.role),
            role: who.role,
        })
    }
}

impl Proxy {
    /// The user the proxy names, with the role their groups map to. A
    /// request from anywhere else is refused whatever its headers say.
    fn identify(&self, headers: &HeaderMap, from: Option<IpAddr>) -> Who {
        if !from.is_some_and(|ip| self.trusted.iter().any(|n| n.contains(&ip))) {
            return Who::Refused(
                String::new(),
                "no proxy: this server takes its users from its reverse proxy only",
            );
        }
        let text = |name: &axum::http::HeaderName| {
            headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
                .unwrap_or_default()
        };
        let user: String = text(&self.user_header)
            .chars()
            .take(users::MAX_NAME)
            .collect();
        if user.is_empty() {
            return Who::Refused(String::new(), "no user from the proxy");
        }
        match self.roles.role_for(&text(&self.groups_header)) {
            Some(grant) => Who::Known(Identity {
                name: user,
                role: grant.role,
                signed_in: false,
                scope: grant.scope,
            }),
            None => Who::NoRole(user),
        }
    }
}

/// When the session of a request ends (Unix seconds), for `/ws`: the
/// connection is closed then.
#[derive(Clone, Copy, Debug)]
pub struct SessionEnd(pub i64);

/// What [`Access::identify`] made of a request.
enum Who {
    /// No credentials.
    Nobody,
    /// Credentials refused: the name they claimed (if any) and why.
    Refused(String, &'static str),
    /// A user or token.
    Known(Identity),
    /// A user the proxy vouches for whose groups map to no role.
    NoRole(String),
}

fn now_s() -> i64 {
    crate::event::now_ms() / 1000
}

/// The role a request needs: `None` for what anyone may reach (health,
/// the sign-in page, the wasm bundle and styles).
pub fn needed(method: &Method, path: &str) -> Option<Role> {
    const OPEN: [&str; 6] = [
        "/healthz",
        "/readyz",
        "/login",
        "/logout",
        oidc::CALLBACK,
        "/favicon.svg",
    ];
    // The site's files; a path stepping out of `/pkg/` is not one.
    if OPEN.contains(&path) || (path.starts_with("/pkg/") && !path.contains("..")) {
        None
    } else if path == "/api/v1/audit" {
        Some(Role::Admin)
    } else if !defences::reads_only(method) {
        Some(Role::Operator)
    } else {
        Some(Role::Viewer)
    }
}

/// Whether `path` answers a scoped user with their scope applied. What
/// cannot be tied to subjects (the log's density, the server-drawn charts,
/// `/metrics`' per-subject series) is refused to them instead.
fn scope_aware(path: &str) -> bool {
    !(path == "/metrics" || path == "/api/v1/timeline" || path.starts_with("/api/v1/charts/"))
}

/// Whether `path` is a page (answered with a redirect to sign in, or an
/// HTML refusal) rather than the API, metrics or the live socket (JSON).
fn is_page(path: &str) -> bool {
    !(path.starts_with("/api/") || path == "/ws" || path == "/metrics")
}

/// The client's address, as the listener saw it.
fn peer(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<crate::api::lenient::Peer>>()
        .map(|c| c.0.0.ip())
}

/// The gate: defences, sign-in and role for every request; the
/// [`Identity`] it decided goes in the request's extensions (the pages
/// show it), and every response gets the security headers.
pub async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = decide(&state.access, request, next).await;
    defences::harden(&mut response);
    response
}

async fn decide(access: &Access, mut request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let from = peer(&request);
    let what = format!("{method} {path}");
    // A refusal: audited (who, what, from where) and answered 403.
    let deny = |name: &str, role: Option<Role>, message: String| {
        access
            .audit
            .record(Action::Denied, name, role, from, &what, message.clone());
        refuse(StatusCode::FORBIDDEN, &path, message)
    };
    if let Err(refusal) = defences::check(
        &method,
        &path,
        request.headers(),
        &access.hosts,
        &access.origins,
    ) {
        return deny("", None, refusal.message());
    }
    let Some(need) = needed(&method, &path) else {
        return next.run(request).await;
    };
    let who = match access.identify(request.headers(), from) {
        Who::Known(who) => who,
        Who::Nobody => return sign_in_first(&request, None),
        Who::NoRole(name) => {
            let message = format!(
                "{name} has no role here: none of their groups is in [[role_mapping]]; ask an admin"
            );
            return deny(&name, None, message);
        }
        Who::Refused(name, why) if access.mode == AuthMode::Proxy => {
            return deny(&name, None, format!("refused {why}"));
        }
        Who::Refused(name, why) => {
            access.audit.record(
                Action::Denied,
                &name,
                None,
                from,
                &what,
                format!("refused {why}"),
            );
            let mut response = sign_in_first(&request, Some(why));
            response.headers_mut().append(
                header::SET_COOKIE,
                HeaderValue::from_static(session::END_COOKIE),
            );
            return response;
        }
    };
    if !who.role.can(need) {
        let message = format!(
            "{} may not do this: it needs the {} role, and {} has {}; ask an admin",
            what,
            need.name(),
            who.name,
            who.role.name()
        );
        return deny(&who.name, Some(who.role), message);
    }
    let lens = match access.lens(&who) {
        Ok(lens) => lens,
        Err(message) => return deny(&who.name, Some(who.role), message),
    };
    if lens.scope.is_some() && !scope_aware(&path) {
        let message = format!(
            "{what} is not available to a user with a subject scope ({}): it would show events or totals of every subject",
            who.scope.as_deref().unwrap_or("")
        );
        return deny(&who.name, Some(who.role), message);
    }
    // A live connection lasts no longer than the session that opened it.
    if path == "/ws"
        && who.signed_in
        && let Some(Ok(s)) = access.sessions.read(request.headers(), now_s())
    {
        request.extensions_mut().insert(SessionEnd(s.ends));
    }
    let changes = !defences::reads_only(&method);
    let (name, role) = (who.name.clone(), who.role);
    request.extensions_mut().insert(who);
    request.extensions_mut().insert(lens);
    let response = next.run(request).await;
    if changes && response.status().is_success() {
        access.audit.record(
            Action::Change,
            &name,
            Some(role),
            from,
            &what,
            format!(
                "{} changed {path}",
                if name.is_empty() { "someone" } else { &name }
            ),
        );
    }
    response
}

/// The answer to a request with no (usable) credentials: pages go to the
/// sign-in page and come back; the API and the socket get 401.
fn sign_in_first(request: &Request, why: Option<&str>) -> Response {
    let path = request.uri().path();
    if is_page(path) && request.method() == Method::GET {
        let back = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let mut to = format!(
            "/login?next={}",
            percent_encoding::utf8_percent_encode(back, percent_encoding::NON_ALPHANUMERIC)
        );
        if why.is_some() {
            to.push_str("&ended=1");
        }
        return Redirect::to(&to).into_response();
    }
    let message = match why {
        Some(why) => format!("sign in again: the request carried {why}"),
        None => "sign in first: a session from /login, or an API token in \
                 `Authorization: Bearer <token>`"
            .to_string(),
    };
    let mut response = (
        StatusCode::UNAUTHORIZED,
        Json(app::api::ApiError { error: message }),
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"eventscope\""),
    );
    response
}

/// A refusal: an HTML page for pages, JSON for the rest.
fn refuse(status: StatusCode, path: &str, message: String) -> Response {
    if is_page(path) {
        let body = page(
            "Not allowed",
            &format!(
                "<h1>Not allowed</h1><p class=\"signin-error\">{}</p>\
                 <p><a href=\"/\">Back to the overview</a> · <a href=\"/login\">Sign in as someone else</a></p>",
                escape(&message)
            ),
        );
        own_page(status, body)
    } else {
        (status, Json(app::api::ApiError { error: message })).into_response()
    }
}

/// The sign-in routes: `GET`/`POST /login`, `POST /logout`.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/login", axum::routing::get(login_page).post(login))
        .route("/logout", axum::routing::post(logout))
        .route(oidc::CALLBACK, axum::routing::get(oidc_callback))
}

/// `/login`'s query.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    ended: Option<String>,
    #[serde(default)]
    signed_out: Option<String>,
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// Where to go after signing in: a path of this server, else `/`.
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next
    } else {
        "/"
    }
}

async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<LoginQuery>,
) -> Response {
    if let Some(provider) = &state.access.oidc {
        if q.signed_out.is_some() {
            // Not straight back to the provider: the user just left.
            return own_page(
                StatusCode::OK,
                page(
                    "Signed out · Eventscope",
                    &format!(
                        "<div class=\"signin\"><h1 class=\"brand\">Eventscope</h1>\
                         <p data-testid=\"signed-out\">You have signed out of Eventscope \
                         (not of {}).</p><a class=\"btn btn-primary\" href=\"/login\">Sign in again</a></div>",
                        escape(provider.issuer())
                    ),
                ),
            );
        }
        return to_provider(&state.access, provider, safe_next(&q.next), &headers).await;
    }
    if state.access.mode != AuthMode::Users {
        return Redirect::to(safe_next(&q.next)).into_response();
    }
    let notice = q
        .ended
        .map(|_| "Your session has ended. Sign in again.")
        .unwrap_or("");
    login_form(StatusCode::OK, safe_next(&q.next), "", notice)
}

fn login_form(status: StatusCode, next: &str, user: &str, message: &str) -> Response {
    let message = if message.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"signin-error\" role=\"alert\" data-testid=\"signin-error\">{}</p>",
            escape(message)
        )
    };
    let body = format!(
        "<form class=\"signin\" method=\"post\" action=\"/login\">\
         <h1 class=\"brand\">Eventscope</h1>\
         <p class=\"signin-note\">Sign in to watch the event streams.</p>\
         {message}\
         <label>User <input name=\"user\" autocomplete=\"username\" required autofocus value=\"{user}\" maxlength=\"{max_name}\"></label>\
         <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required maxlength=\"{max_password}\"></label>\
         <input type=\"hidden\" name=\"next\" value=\"{next}\">\
         <button class=\"btn btn-primary\" type=\"submit\">Sign in</button>\
         </form>",
        user = escape(user),
        next = escape(next),
        max_name = users::MAX_NAME,
        max_password = users::MAX_PASSWORD,
    );
    own_page(status, page("Sign in · Eventscope", &body))
}

async fn login(
    State(state): State<AppState>,
    peer: Option<axum::Extension<ConnectInfo<crate::api::lenient::Peer>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let access = Arc::clone(&state.access);
    if access.mode != AuthMode::Users {
        return Redirect::to("/").into_response();
    }
    let from = peer.map(|p| p.0.0.0.ip());
    let next = safe_next(&form.next).to_string();
    let user: String = form.user.chars().take(users::MAX_NAME).collect();
    let Ok(turn) = Arc::clone(&access.sign_ins).try_acquire_owned() else {
        return login_form(
            StatusCode::SERVICE_UNAVAILABLE,
            &next,
            &user,
            "Too many sign-ins at once; try again in a moment.",
        );
    };
    let checking = Arc::clone(&access);
    let (name, password) = (user.clone(), form.password);
    let role = tokio::task::spawn_blocking(move || {
        let _turn = turn;
        checking.users.verify(&name, &password)
    })
    .await
    .ok()
    .flatten();
    let Some(role) = role else {
        access.audit.record(
            Action::SignInFailed,
            &user,
            None,
            from,
            "POST /login",
            format!("failed sign-in as {user:?}"),
        );
        return login_form(
            StatusCode::UNAUTHORIZED,
            &next,
            &user,
            "Wrong user name or password.",
        );
    };
    access.audit.record(
        Action::SignIn,
        &user,
        Some(role),
        from,
        "POST /login",
        format!("{user} signed in"),
    );
    let jar = access
        .sessions
        .start(&user, None, now_s(), over_https(&headers));
    (jar, Redirect::to(&next)).into_response()
}

/// Whether the request came over HTTPS (a proxy in front says so): the
/// cookies are then `Secure`.
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// Sends the browser to the OpenID Connect provider, the flow's secrets in
/// their cookie.
async fn to_provider(
    access: &Access,
    provider: &oidc::Oidc,
    next: &str,
    headers: &HeaderMap,
) -> Response {
    match provider.begin(next, now_s()).await {
        Ok((url, flow)) => {
            let jar = access.sessions.seal(
                oidc::FLOW_COOKIE,
                serde_json::to_string(&flow).unwrap_or_default(),
                std::time::Duration::from_secs(oidc::FLOW_SECONDS as u64),
                over_https(headers),
            );
            (jar, Redirect::to(&url)).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot start an OpenID Connect sign-in");
            own_page(
                StatusCode::SERVICE_UNAVAILABLE,
                page(
                    "Sign-in unavailable · Eventscope",
                    &format!(
                        "<h1>Sign-in unavailable</h1><p class=\"signin-error\" role=\"alert\">\
                         The sign-in provider at {} cannot be used now: {}</p>\
                         <p><a href=\"/login\">Try again</a></p>",
                        escape(provider.issuer()),
                        escape(&e)
                    ),
                ),
            )
        }
    }
}

/// The provider's answer on `/auth/callback`.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

async fn oidc_callback(
    State(state): State<AppState>,
    peer: Option<axum::Extension<ConnectInfo<crate::api::lenient::Peer>>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<CallbackQuery>,
) -> Response {
    let access = &state.access;
    let Some(provider) = &access.oidc else {
        return Redirect::to("/").into_response();
    };
    let from = peer.map(|p| p.0.0.0.ip());
    let failed = |user: &str, why: String| {
        access.audit.record(
            Action::SignInFailed,
            user,
            None,
            from,
            "GET /auth/callback",
            format!("failed sign-in at {}: {why}", provider.issuer()),
        );
        let mut response = own_page(
            StatusCode::UNAUTHORIZED,
            page(
                "Sign-in failed · Eventscope",
                &format!(
                    "<h1>Sign-in failed</h1><p class=\"signin-error\" role=\"alert\" \
                     data-testid=\"signin-error\">{}</p><p><a href=\"/login\">Sign in again</a></p>",
                    escape(&why)
                ),
            ),
        );
        response.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_static(oidc::END_FLOW_COOKIE),
        );
        response
    };
    if let Some(error) = q.error {
        let detail = q.error_description.unwrap_or_default();
        return failed(
            "",
            format!("the provider answered {error} {detail}")
                .trim()
                .to_string(),
        );
    }
    let flow = access
        .sessions
        .open(&headers, oidc::FLOW_COOKIE)
        .flatten()
        .and_then(|v| serde_json::from_str::<oidc::Flow>(&v).ok());
    let Some(flow) = flow else {
        return failed(
            "",
            "this browser has no sign-in under way (it took too long, or began elsewhere)"
                .to_string(),
        );
    };
    let next = safe_next(&flow.next).to_string();
    let signed_in = match provider.finish(&q.code, &q.state, flow, now_s()).await {
        Ok(s) => s,
        Err(why) => return failed("", why),
    };
    let Some(grant) = signed_in.role.clone() else {
        let message = format!(
            "{} signed in at the provider, but none of their groups ({}) has a role here; ask an admin",
            signed_in.user,
            signed_in.groups.join(", ")
        );
        access.audit.record(
            Action::Denied,
            &signed_in.user,
            None,
            from,
            "GET /auth/callback",
            message.clone(),
        );
        return refuse(StatusCode::FORBIDDEN, "/auth/callback", message);
    };
    access.audit.record(
        Action::SignIn,
        &signed_in.user,
        Some(grant.role),
        from,
        "GET /auth/callback",
        format!("{} signed in at {}", signed_in.user, provider.issuer()),
    );
    let jar = access
        .sessions
        .start(&signed_in.user, Some(&grant), now_s(), over_https(&headers));
    let mut response = (jar, Redirect::to(&next)).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static(oidc::END_FLOW_COOKIE),
    );
    response
}

async fn logout(
    State(state): State<AppState>,
    peer: Option<axum::Extension<ConnectInfo<crate::api::lenient::Peer>>>,
    headers: HeaderMap,
) -> Response {
    let access = &state.access;
    let from = peer.map(|p| p.0.0.0.ip());
    if let Who::Known(who) = access.identify(&headers, from)
        && who.signed_in
    {
        access.audit.record(
            Action::SignOut,
            &who.name,
            Some(who.role),
            from,
            "POST /logout",
            format!("{} signed out", who.name),
        );
    }
    // (With a provider, `/login` would go straight back to it: a form's
    // redirect to another site, which `form-action 'self'` refuses.)
    let to = if access.oidc.is_some() {
        "/login?signed_out=1"
    } else {
        "/login"
    };
    let mut response = Redirect::to(to).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static(session::END_COOKIE),
    );
    response
}

/// The policy of the sign-in and refusal pages: the app's styles and
/// icon, a form posting here, no script at all.
pub const OWN_PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `html` (from [`page`]) as an answer with [`OWN_PAGE_CSP`].
fn own_page(status: StatusCode, html: String) -> Response {
    let mut response = (status, Html(html)).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(OWN_PAGE_CSP),
    );
    response
}

/// A page of its own (sign-in, refusals): the app's styles, no script.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"dark light\">\
         <link rel=\"icon\" type=\"image/svg+xml\" href=\"/favicon.svg\">\
         <link rel=\"stylesheet\" href=\"/pkg/eventscope.css\">\
         <title>{}</title></head><body class=\"signin-page\">{body}</body></html>",
        escape(title)
    )
}

/// `s` as HTML text or attribute value.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_needs_a_role_but_health_sign_in_and_assets() {
        assert_eq!(needed(&Method::GET, "/healthz"), None);
        assert_eq!(needed(&Method::POST, "/login"), None);
        assert_eq!(needed(&Method::GET, "/pkg/eventscope.wasm"), None);
        assert_eq!(
            needed(&Method::GET, "/pkg/../api/v1/events"),
            Some(Role::Viewer),
            "not a file of the site"
        );
        assert_eq!(needed(&Method::GET, "/"), Some(Role::Viewer));
        assert_eq!(needed(&Method::GET, "/ws"), Some(Role::Viewer));
        assert_eq!(needed(&Method::GET, "/metrics"), Some(Role::Viewer));
        assert_eq!(needed(&Method::GET, "/api/v1/events"), Some(Role::Viewer));
        assert_eq!(needed(&Method::PUT, "/api/v1/demo"), Some(Role::Operator));
        assert_eq!(needed(&Method::DELETE, "/anything"), Some(Role::Operator));
        assert_eq!(needed(&Method::GET, "/api/v1/audit"), Some(Role::Admin));
    }

    #[test]
    fn next_stays_on_this_server() {
        assert_eq!(safe_next("/tail?subject=a"), "/tail?subject=a");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "",
        ] {
            assert_eq!(safe_next(bad), "/");
        }
        assert_eq!(escape("<script>\"'&"), "&lt;script&gt;&quot;&#39;&amp;");
    }
}
