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
    Lazy, LazyRoute, StaticSegment,
    components::{Route, Router, Routes},
    lazy_route,
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
                <Route path=StaticSegment("tail") view={Lazy::<TailPage>::new()}/>
                <Route path=StaticSegment("explore") view={Lazy::<ExplorePage>::new()}/>
                <Route path=StaticSegment("flows") view={Lazy::<FlowsPage>::new()}/>
                <Route path=StaticSegment("topology") view={Lazy::<TopologyPage>::new()}/>
                <Route path=StaticSegment("schemas") view={Lazy::<SchemasPage>::new()}/>
            </Routes>
        </Router>
    }
}

// Every page but the overview is split into its own wasm chunk (built with
// `cargo leptos build --split`), loaded when the page is first visited, so
// the bundle a first visit loads holds the shell, the live client and the
// overview only.

/// The live tail page, lazily loaded.
#[derive(Debug)]
pub struct TailPage;

#[lazy_route]
impl LazyRoute for TailPage {
    fn data() -> Self {
        TailPage
    }

    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <tail::Tail/> }.into_any()
    }
}

/// The metric explorer, lazily loaded.
#[derive(Debug)]
pub struct ExplorePage;

#[lazy_route]
impl LazyRoute for ExplorePage {
    fn data() -> Self {
        ExplorePage
    }

    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <explore::Explore/> }.into_any()
    }
}

/// The flows page, lazily loaded.
#[derive(Debug)]
pub struct FlowsPage;

#[lazy_route]
impl LazyRoute for FlowsPage {
    fn data() -> Self {
        FlowsPage
    }

    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <flows::Flows/> }.into_any()
    }
}

/// The topology page, lazily loaded.
#[derive(Debug)]
pub struct TopologyPage;

#[lazy_route]
impl LazyRoute for TopologyPage {
    fn data() -> Self {
        TopologyPage
    }

    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <topology::Topology/> }.into_any()
    }
}

/// The schemas page, lazily loaded.
#[derive(Debug)]
pub struct SchemasPage;

#[lazy_route]
impl LazyRoute for SchemasPage {
    fn data() -> Self {
        SchemasPage
    }

    fn view(this: Self) -> AnyView {
        let _ = this;
        view! { <schemas::Schemas/> }.into_any()
    }
}
