//! Eventscope's user interface (Leptos components) and the wire types shared
//! with the server. Compiled twice: with `ssr` into the server, which renders
//! the first paint, and with `hydrate` into the wasm bundle, which takes the
//! page over in the browser and opens the live WebSocket.

#![recursion_limit = "256"]

pub mod api;
pub mod charts;
pub mod cqrs;
pub mod explore;
pub mod fetch;
pub mod flows;
pub mod format;
pub mod inspector;
pub mod keys;
#[cfg(feature = "hydrate")]
pub mod live;
pub mod overview;
pub mod schemas;
pub mod shell;
pub mod tail;
pub mod topology;
pub mod travel;
pub mod wire;

use leptos::prelude::*;
use leptos_router::{
    Lazy, LazyRoute, StaticSegment,
    components::{Route, Router, Routes},
    lazy_route,
};

/// The HTML document around the app, rendered by the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    shell::set_csp();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="dark light"/>
                <script nonce=leptos::nonce::use_nonce() inner_html=keys::THEME_SCRIPT></script>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                // In the document the server renders, not through
                // leptos_meta: nothing in the page changes them, and the
                // browser's bundle is smaller without it.
                <link rel="stylesheet" id="leptos" href="/pkg/eventscope.css"/>
                <title>"Eventscope"</title>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The application: routes and the page chrome.
#[component]
pub fn App() -> impl IntoView {
    shell::provide_live();
    view! {
        <Router>
            <shell::TopBar/>
            <travel::TimeBar/>
            <Routes fallback=|| view! { <p class="empty">"Page not found."</p> }>
                <Route path=StaticSegment("") view={Lazy::<OverviewPage>::new()}/>
                <Route path=StaticSegment("tail") view={Lazy::<TailPage>::new()}/>
                <Route path=StaticSegment("explore") view={Lazy::<ExplorePage>::new()}/>
                <Route path=StaticSegment("flows") view={Lazy::<FlowsPage>::new()}/>
                <Route path=StaticSegment("cqrs") view={Lazy::<CqrsPage>::new()}/>
                <Route path=StaticSegment("topology") view={Lazy::<TopologyPage>::new()}/>
                <Route path=StaticSegment("schemas") view={Lazy::<SchemasPage>::new()}/>
            </Routes>
        </Router>
    }
}

// Every page is split into its own wasm chunk (built with `cargo leptos
// build --split`), loaded when the page is first visited, so the bundle a
// first visit loads holds the shell, the live client and that page only.

/// A page as a lazily loaded route: `$page` shows component `$component`.
macro_rules! lazy_page {
    ($(#[$doc:meta])* $page:ident => $component:path) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $page;

        #[lazy_route]
        impl LazyRoute for $page {
            fn data() -> Self {
                $page
            }

            fn view(this: Self) -> AnyView {
                let _ = this;
                view! { <$component/> }.into_any()
            }
        }
    };
}

lazy_page!(
    /// The overview, lazily loaded.
    OverviewPage => overview::Overview
);
lazy_page!(
    /// The live tail page, lazily loaded.
    TailPage => tail::Tail
);
lazy_page!(
    /// The metric explorer, lazily loaded.
    ExplorePage => explore::Explore
);
lazy_page!(
    /// The flows page, lazily loaded.
    FlowsPage => flows::Flows
);
lazy_page!(
    /// The CQRS page, lazily loaded.
    CqrsPage => cqrs::Cqrs
);
lazy_page!(
    /// The topology page, lazily loaded.
    TopologyPage => topology::Topology
);
lazy_page!(
    /// The schemas page, lazily loaded.
    SchemasPage => schemas::Schemas
);
