//! The page chrome every page shares: the top bar (brand, navigation,
//! connection and NATS state, ingest rate, drops and resyncs) and the live
//! connection behind it. The shell watches the counts view for the whole
//! tab and provides it, with the connection state, as [`LiveCtx`].

use crate::api::{Identity, Role};
use crate::format;
use crate::wire::Counts;
use leptos::prelude::*;
use leptos_router::components::A;

/// State of the browser's connection to the server's live hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Page rendered, socket not yet open (also the server-rendered state).
    Connecting,
    /// Socket open and frames arriving.
    Live,
    /// Socket lost; the next attempt starts in `retry_in_ms`.
    Reconnecting {
        /// How many attempts have failed in a row.
        attempt: u32,
        /// Delay before the next attempt.
        retry_in_ms: u32,
    },
}

impl Link {
    fn label(self) -> String {
        match self {
            Link::Connecting => "connecting…".into(),
            Link::Live => "live".into(),
            Link::Reconnecting { retry_in_ms, .. } => {
                format!("reconnecting in {:.1} s…", f64::from(retry_in_ms) / 1000.0)
            }
        }
    }

    fn class(self) -> &'static str {
        match self {
            Link::Connecting => "pill pill-wait",
            Link::Live => "pill pill-ok",
            Link::Reconnecting { .. } => "pill pill-bad",
        }
    }
}

/// What every page can read of the live connection.
#[derive(Clone, Copy, Debug)]
pub struct LiveCtx {
    /// The counts view: totals, per subject, health counters.
    pub counts: RwSignal<Counts>,
    /// The connection's state.
    pub link: RwSignal<Link>,
}

/// The counts as the server has them when it renders a page: the server
/// puts them in the request's extensions, so the first paint shows real
/// numbers (and the browser hydrates with the same ones).
#[derive(Clone, Debug, Default)]
pub struct FirstCounts(pub Counts);

/// The NATS URL the server reads from, its credentials cut: put in a page
/// request's extensions like [`FirstCounts`], shown in the top bar (an
/// operator whose NATS is unreachable sees which URL is being retried).
#[derive(Clone, Debug, Default)]
pub struct NatsTarget(pub String);

/// [`NatsTarget`]'s URL: on the server, the request's; in the browser, the
/// same, read from the page.
fn nats_target() -> String {
    leptos::server::SharedValue::new(|| {
        #[cfg(feature = "ssr")]
        {
            use_context::<http::request::Parts>()
                .and_then(|p| p.extensions.get::<NatsTarget>().map(|t| t.0.clone()))
                .unwrap_or_default()
        }
        #[cfg(not(feature = "ssr"))]
        {
            String::new()
        }
    })
    .into_inner()
}

/// The page's Content-Security-Policy (server side): only this server's
/// scripts and the inline ones carrying this response's nonce (the
/// theme's and Leptos's hydration scripts) run; wasm may compile; nothing
/// loads from elsewhere; no site may frame the page. Inline `style`
/// attributes are allowed (the charts and bars set widths with them).
#[cfg(feature = "ssr")]
pub fn set_csp() {
    let (Some(response), Some(nonce)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        leptos::nonce::use_nonce(),
    ) else {
        return;
    };
    if let Ok(value) = http::HeaderValue::from_str(&csp(&nonce)) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

/// The policy [`set_csp`] sends, for `nonce`.
pub fn csp(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Who the server decided is looking at the page ([`Identity`]), as it
/// put it in the request's extensions; in the browser, the same, read
/// from the page. Provided as a context by [`provide_live`].
fn identity() -> Identity {
    // Carried as one string (`role`, `1` if signed in, the scope's name or
    // nothing, the user's name; a line each):
    // the page's bundle then needs no decoder of its own for it.
    let packed = leptos::server::SharedValue::new(|| {
        #[cfg(feature = "ssr")]
        {
            use_context::<http::request::Parts>()
                .and_then(|p| {
                    p.extensions.get::<Identity>().map(|i| {
                        format!(
                            "{}\n{}\n{}\n{}",
                            i.role.name(),
                            u8::from(i.signed_in),
                            i.scope.as_deref().unwrap_or(""),
                            i.name
                        )
                    })
                })
                .unwrap_or_default()
        }
        #[cfg(not(feature = "ssr"))]
        {
            String::new()
        }
    })
    .into_inner();
    let mut parts = packed.splitn(4, '\n');
    match (
        parts.next().and_then(Role::parse),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some(role), Some(signed_in), Some(scope), Some(name)) => Identity {
            name: name.to_string(),
            role,
            signed_in: signed_in == "1",
            scope: (!scope.is_empty()).then(|| scope.to_string()),
        },
        _ => Identity::default(),
    }
}

/// What a view of every subject says to a reader with a subject scope.
pub const SCOPED_NOTE: &str = "Not shown with a subject scope: it counts every subject.";

/// Whether the page's user has a subject scope (views of every subject
/// are then not asked for: the server would refuse them).
pub fn scoped() -> bool {
    use_context::<Identity>().is_some_and(|i| i.scope.is_some())
}

/// Whether the page's user may do what `role` may (the server checks
/// again on every request; this only hides controls).
pub fn may(role: Role) -> bool {
    use_context::<Identity>().is_some_and(|i| i.role.can(role))
}

/// Views the server computed for a page's first paint, by key (the time
/// bar's strip on every page; for the live moment, what the page shows
/// first: charts, lists, the graph, the tail's newest rows): put in the
/// request's extensions like [`FirstCounts`], so the page is served with
/// real data and the browser hydrates over the same. A page opened at a
/// past moment fills in after hydration.
#[derive(Clone, Debug, Default)]
pub struct FirstViews(pub std::collections::HashMap<String, serde_json::Value>);

/// The key of a view in [`FirstViews`]: `chart:levels:15m`,
/// `projection:top_errors:15m`.
pub fn first_key(kind: &str, name: &str, window: crate::api::Window) -> String {
    format!("{kind}:{name}:{}", window.as_str())
}

/// `true` once the page is hydrated (never on the server): for parts drawn
/// in the browser only, which the server's HTML and hydration then agree
/// on leaving out.
pub fn hydrated() -> ReadSignal<bool> {
    let done = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| done.set(true));
    done.read_only()
}

/// The view a `#[lazy]` function returns, shown once its wasm chunk has
/// loaded (`cargo leptos build --split`). (The browser is one thread: the
/// wrapper only tells the compiler so.)
pub fn lazy_view(view: impl std::future::Future<Output = AnyView> + 'static) -> Suspend<AnyView> {
    Suspend::new(send_wrapper::SendWrapper::new(view))
}

/// The first-paint value of view `key` (see [`FirstViews`]): on the server
/// from the request, in the browser the same, read from the page. Call in
/// the same order on both sides (as components render).
pub fn first_view<T>(key: String) -> Option<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    // Carried as a `Value` (one decoder for every view) and typed here.
    leptos::server::SharedValue::<Option<serde_json::Value>>::new(move || {
        #[cfg(feature = "ssr")]
        {
            use_context::<http::request::Parts>()
                .and_then(|p| p.extensions.get::<FirstViews>()?.0.get(&key).cloned())
        }
        #[cfg(not(feature = "ssr"))]
        {
            let _ = key;
            None
        }
    })
    .into_inner()
    .and_then(|v| serde_json::from_value(v).ok())
}

/// The counts to render first: on the server, those of the request (see
/// [`FirstCounts`]); in the browser, the same, read from the page.
fn first_counts() -> Counts {
    leptos::server::SharedValue::new(|| {
        #[cfg(feature = "ssr")]
        {
            use_context::<http::request::Parts>()
                .and_then(|p| p.extensions.get::<FirstCounts>().map(|f| f.0.clone()))
                .unwrap_or_default()
        }
        #[cfg(not(feature = "ssr"))]
        {
            Counts::default()
        }
    })
    .into_inner()
}

/// Provides [`LiveCtx`] and, once hydrated, opens the live connection and
/// watches the counts view for as long as the tab lives.
pub fn provide_live() -> LiveCtx {
    let ctx = LiveCtx {
        counts: RwSignal::new(first_counts()),
        link: RwSignal::new(Link::Connecting),
    };
    provide_context(ctx);
    provide_context(identity());
    #[cfg(feature = "hydrate")]
    Effect::new(move |started: Option<()>| {
        // Once, after hydration; the effect reads no signal, so it never
        // runs again.
        if started.is_none() {
            crate::live::start(ctx.link);
            crate::live::watch(crate::wire::View::Counts, move |state| {
                if let crate::wire::ViewState::Counts(c) = state {
                    ctx.counts.set(c.clone());
                }
            });
        }
    });
    ctx
}

/// Brand, navigation, connection and NATS state, and the numbers an
/// operator should never have to look for: ingest rate, drops, resyncs.
#[component]
pub fn TopBar() -> impl IntoView {
    let LiveCtx { counts, link } = expect_context::<LiveCtx>();
    let target = StoredValue::new(nats_target());
    let title = target.with_value(|t| format!("NATS at {t}"));
    let nats = move || {
        if link.get() != Link::Live {
            ("pill pill-wait", "NATS: unknown".to_string())
        } else if counts.with(|c| c.nats_connected) {
            ("pill pill-ok", "NATS: connected".to_string())
        } else {
            (
                "pill pill-bad",
                target.with_value(|t| format!("NATS: unreachable, retrying {t}")),
            )
        }
    };
    let lost = move || counts.with(|c| c.health.lost());
    let theme = RwSignal::new("dark".to_string());
    view! {
        <header class="topbar">
            <h1 class="brand">"Eventscope"</h1>
            <nav class="nav" aria-label="Pages">
                <A href="/" exact=true>"Overview"</A>
                <A href="/tail">"Live tail"</A>
                <A href="/explore">"Metrics"</A>
                <A href="/flows">"Flows"</A>
                <A href="/cqrs">"CQRS"</A>
                <A href="/topology">"Topology"</A>
                <A href="/schemas">"Schemas"</A>
            </nav>
            <span class="spacer"></span>
            <span class="topbar-stat" title="Events ingested per second, last second">
                {move || counts.with(|c| format::rate(c.rate))}
                " ev/s"
            </span>
            <span
                class=move || { if lost() > 0 { "topbar-stat warn" } else { "topbar-stat" } }
                title="Events lost (ingest queue full, NATS slow consumer, over caps, JetStream gaps) / times a client fell behind and was resynced"
                data-testid="topbar-health"
            >
                {move || format::thousands(lost())}
                " dropped · "
                {move || counts.with(|c| format::thousands(c.health.resyncs))}
                " resyncs"
            </span>
            <Show when=move || counts.with(|c| c.health.schema_drifts > 0)>
                <a class="badge badge-warn" href="/schemas" data-testid="drift-badge-top" title="Payload schemas changed: new fields, missing fields or type changes">
                    {move || format::count_of(counts.with(|c| c.health.schema_drifts), "drift")}
                </a>
            </Show>
            <span class=move || link.get().class() data-testid="link-state">
                {move || link.get().label()}
            </span>
            <span class=move || nats().0 title=title data-testid="nats-state">
                {move || nats().1}
            </span>
            // Who is looking (sign-in or a proxy's user), and sign-out
            // for a session of ours.
            {use_context::<Identity>()
                .filter(|me| !me.name.is_empty())
                .map(|me| {
                    let signed_in = me.signed_in;
                    // A subject scope is said beside the role, in the
                    // warning colour: some views are thinned for it.
                    let (class, role) = match &me.scope {
                        Some(scope) => (
                            "topbar-user scoped",
                            format!("{} · scoped: {scope}", me.role.name()),
                        ),
                        None => ("topbar-user", me.role.name().to_string()),
                    };
                    view! {
                        <span class=class data-testid="topbar-user" title="Signed in">
                            {me.name}
                            " · "
                            <span class="muted">{role}</span>
                        </span>
                        {signed_in.then(|| view! {
                            <form method="post" action="/logout" class="topbar-signout">
                                <button class="btn" type="submit" data-testid="sign-out">"Sign out"</button>
                            </form>
                        })}
                    }
                })}
            <crate::keys::ThemeToggle theme/>
            <crate::keys::Shortcuts theme/>
        </header>
    }
}
