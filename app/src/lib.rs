//! Eventscope's user interface (Leptos components) and the wire types shared
//! with the server. Compiled twice: with `ssr` into the server, which renders
//! the first paint, and with `hydrate` into the wasm bundle, which takes the
//! page over in the browser and opens the live WebSocket.

#![recursion_limit = "256"]

pub mod api;
pub mod charts;
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
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    StaticSegment,
    components::{Route, Router, Routes},
};

/// The HTML document around the app, rendered by the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="dark light"/>
                <script inner_html=keys::THEME_SCRIPT></script>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <MetaTags/>
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
    provide_meta_context();
    shell::provide_live();
    view! {
        <Stylesheet id="leptos" href="/pkg/eventscope.css"/>
        <Title text="Eventscope"/>
        <Router>
            <shell::TopBar/>
            <travel::TimeBar/>
            <Routes fallback=|| view! { <p class="empty">"Page not found."</p> }>
                <Route path=StaticSegment("") view=overview::Overview/>
                <Route path=StaticSegment("tail") view=tail::Tail/>
                <Route path=StaticSegment("explore") view=explore::Explore/>
                <Route path=StaticSegment("flows") view=flows::Flows/>
                <Route path=StaticSegment("topology") view=topology::Topology/>
                <Route path=StaticSegment("schemas") view=schemas::Schemas/>
            </Routes>
        </Router>
    }
}
