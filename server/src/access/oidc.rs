//! Sign-in with OpenID Connect (`--auth oidc`): the authorization code
//! flow with PKCE against any provider (discovered from its issuer URL),
//! the ID token verified by the `openidconnect` crate (signature, issuer,
//! audience, expiry, nonce), the user's name and groups read from its
//! claims, and the groups mapped to a role by `[[role_mapping]]`. The
//! flow's secrets (PKCE verifier, state, nonce, where to go back) wait in
//! an encrypted cookie of their own for 10 minutes; nothing is kept on the
//! server.

use super::roles::RoleMap;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
};
use serde::{Deserialize, Serialize};

/// `[oidc]` in the config file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// The provider's issuer URL (its discovery document is at
    /// `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    /// This application's client id at the provider.
    pub client_id: String,
    /// Its client secret (none for a public client: PKCE alone).
    #[serde(default)]
    pub client_secret: Option<crate::config::Secret>,
    /// Where the provider sends the browser back:
    /// `https://<this server>/auth/callback`, registered at the provider.
    pub redirect_url: String,
    /// Scopes asked for, besides `openid`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The claim naming the user (then `email`, then `sub`).
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    /// The claim listing the user's groups (an array of strings, or one
    /// string).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("redirect_url", &self.redirect_url)
            .finish_non_exhaustive()
    }
}

fn default_scopes() -> Vec<String> {
    vec!["profile".into(), "email".into()]
}

fn default_user_claim() -> String {
    "preferred_username".into()
}

fn default_groups_claim() -> String {
    "groups".into()
}

impl OidcSettings {
    /// Why the settings are refused: the key at fault and what is wrong.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        IssuerUrl::new(self.issuer.clone())
            .map_err(|e| ("issuer", format!("{:?} is not a URL: {e}", self.issuer)))?;
        RedirectUrl::new(self.redirect_url.clone()).map_err(|e| {
            (
                "redirect_url",
                format!("{:?} is not a URL: {e}", self.redirect_url),
            )
        })?;
        if !self.redirect_url.ends_with(CALLBACK) {
            return Err((
                "redirect_url",
                format!(
                    "it must end with {CALLBACK}, where this server takes the provider's answer"
                ),
            ));
        }
        if self.client_id.is_empty() {
            return Err(("client_id", "it is empty".to_string()));
        }
        Ok(())
    }
}

/// The path the provider sends the browser back to.
pub const CALLBACK: &str = "/auth/callback";

/// The cookie holding a sign-in under way.
pub const FLOW_COOKIE: &str = "eventscope_oidc";

/// The `Set-Cookie` that clears [`FLOW_COOKIE`] once the flow is over.
pub const END_FLOW_COOKIE: &str = "eventscope_oidc=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax";

/// How long a sign-in under way may take at the provider.
pub const FLOW_SECONDS: i64 = 600;

/// What waits in [`FLOW_COOKIE`] while the user is at the provider.
#[derive(Debug, Serialize, Deserialize)]
pub struct Flow {
    /// The `state` sent (CSRF).
    pub state: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE verifier.
    pub verifier: String,
    /// Where to go back after signing in.
    pub next: String,
    /// When the flow ends, Unix seconds.
    pub ends: i64,
}

type Discovered = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The provider, discovered on the first sign-in (and again after a
/// failure), and the role rules.
pub struct Oidc {
    settings: OidcSettings,
    http: openidconnect::reqwest::Client,
    client: tokio::sync::OnceCell<Discovered>,
    roles: RoleMap,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("settings", &self.settings)
            .field("discovered", &self.client.initialized())
            .finish_non_exhaustive()
    }
}

/// Who the provider said signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// Their name (the user claim, else `email`, else `sub`).
    pub user: String,
    /// Their groups, as the provider listed them.
    pub groups: Vec<String>,
    /// The role (and scope) those groups map to; `None`: no access.
    pub role: Option<super::users::Grant>,
}

impl Oidc {
    /// From checked settings.
    pub fn new(settings: OidcSettings, roles: RoleMap) -> Oidc {
        let http = openidconnect::reqwest::ClientBuilder::new()
            // Following redirects would open the client to SSRF.
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Oidc {
            settings,
            http,
            client: tokio::sync::OnceCell::new(),
            roles,
        }
    }

    /// The issuer, for messages.
    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    async fn client(&self) -> Result<&Discovered, String> {
        self.client
            .get_or_try_init(|| async {
                let issuer =
                    IssuerUrl::new(self.settings.issuer.clone()).map_err(|e| e.to_string())?;
                let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
                    .await
                    .map_err(|e| {
                        format!(
                            "discovery at {} failed: {}",
                            self.settings.issuer,
                            chain(&e)
                        )
                    })?;
                let redirect = RedirectUrl::new(self.settings.redirect_url.clone())
                    .map_err(|e| e.to_string())?;
                Ok(CoreClient::from_provider_metadata(
                    metadata,
                    ClientId::new(self.settings.client_id.clone()),
                    self.settings
                        .client_secret
                        .as_ref()
                        .map(|s| ClientSecret::new(s.expose().to_string())),
                )
                .set_redirect_uri(redirect))
            })
            .await
    }

    /// Starts a sign-in: the provider's URL to send the browser to, and the
    /// flow to keep in [`FLOW_COOKIE`].
    pub async fn begin(&self, next: &str, now_s: i64) -> Result<(String, Flow), String> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in &self.settings.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok((
            url.to_string(),
            Flow {
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                verifier: verifier.secret().clone(),
                next: next.to_string(),
                ends: now_s + FLOW_SECONDS,
            },
        ))
    }

    /// Finishes a sign-in with the provider's `code` and `state`: the code
    /// exchanged (with the flow's PKCE verifier), the ID token verified,
    /// who it names and the role their groups map to.
    pub async fn finish(
        &self,
        code: &str,
        state: &str,
        flow: Flow,
        now_s: i64,
    ) -> Result<SignedIn, String> {
        if flow.ends <= now_s {
            return Err("the sign-in took more than 10 minutes; start again".to_string());
        }
        if state != flow.state {
            return Err("the answer does not belong to this browser's sign-in (state)".to_string());
        }
        let client = self.client().await?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| format!("the provider has no token endpoint: {e}"))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| format!("the code exchange failed: {}", chain(&e)))?;
        let id_token = openidconnect::TokenResponse::id_token(&response)
            .ok_or("the provider sent no ID token")?;
        let verifier = client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, &Nonce::new(flow.nonce))
            .map_err(|e| format!("the ID token is not valid: {e}"))?;
        // The token is verified: its other claims are read from its payload.
        let payload = payload_of(&id_token.to_string()).unwrap_or_default();
        let text = |name: &str| {
            payload
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let user = text(&self.settings.user_claim)
            .or_else(|| claims.email().map(|e| e.as_str().to_string()))
            .unwrap_or_else(|| claims.subject().as_str().to_string());
        let groups: Vec<String> = match payload.get(&self.settings.groups_claim) {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|g| g.as_str().map(str::to_string))
                .take(super::roles::MAX_GROUPS)
                .collect(),
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
        let role = self.roles.role_for_groups(&refs);
        Ok(SignedIn {
            user: user.chars().take(super::users::MAX_NAME).collect(),
            groups,
            role,
        })
    }
}

/// A JWT's payload, as JSON.
fn payload_of(jwt: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine as _;
    let part = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// An error and its causes, for a message.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}
