//! Keyboard shortcuts and the theme. Every shortcut is listed on the `?`
//! overlay ([`SHORTCUTS`] is both the list shown and the documentation);
//! keys typed into a form field are left alone. The theme (dark or light)
//! is saved in the browser and applied before first paint by a few lines
//! in the page's head ([`THEME_SCRIPT`]), so a reload never flashes.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

/// The shortcuts, as the overlay lists them: keys, what they do.
pub const SHORTCUTS: [(&str, &str); 12] = [
    ("?", "show or hide this list"),
    (
        "1 … 7",
        "the pages, as the top bar orders them: overview, live tail, metrics, flows, CQRS, topology, schemas",
    ),
    ("t", "switch between dark and light"),
    (
        "←  →",
        "on the time strip: a step into the past, or back toward now",
    ),
    ("[  ]", "viewing the past: one second back, one second on"),
    ("L", "back to live"),
    ("/", "tail: edit the text filter"),
    ("j  k", "tail: select the next or the previous event"),
    ("Enter", "tail: open the focused event"),
    ("p", "tail: pause or resume"),
    ("f", "tail: follow the newest"),
    ("Esc", "close this list, or the inspector"),
];

/// The pages keys `1` to `7` go to, in the top bar's order.
pub const PAGES: [&str; 7] = [
    "/",
    "/tail",
    "/explore",
    "/flows",
    "/cqrs",
    "/topology",
    "/schemas",
];

/// Where the chosen theme is kept in the browser.
pub const THEME_KEY: &str = "eventscope-theme";

/// Sets `data-theme` on the root element before the page is drawn: the
/// saved choice, else the system's preference.
pub const THEME_SCRIPT: &str = "try{var t=localStorage.getItem('eventscope-theme');\
if(t!=='light'&&t!=='dark'){t=matchMedia('(prefers-color-scheme: light)').matches?'light':'dark'}\
document.documentElement.dataset.theme=t}catch(e){}";

/// Whether a key event was typed into a form field (so not a shortcut).
#[cfg(feature = "hydrate")]
pub fn in_field(ev: &web_sys::KeyboardEvent) -> bool {
    use wasm_bindgen::JsCast;
    ev.target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA"))
}

/// Whether a key event carries a modifier that makes it someone else's
/// shortcut (the browser's, the system's).
#[cfg(feature = "hydrate")]
pub fn modified(ev: &web_sys::KeyboardEvent) -> bool {
    ev.ctrl_key() || ev.meta_key() || ev.alt_key()
}

/// The theme shown now (`dark` or `light`), from the page.
fn current_theme() -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        let root = web_sys::window()?.document()?.document_element()?;
        root.get_attribute("data-theme")
    }
    #[cfg(not(feature = "hydrate"))]
    {
        None
    }
}

/// Shows `theme` and remembers it.
fn set_theme(theme: &str) {
    #[cfg(feature = "hydrate")]
    {
        let Some(w) = web_sys::window() else { return };
        if let Some(root) = w.document().and_then(|d| d.document_element()) {
            let _ = root.set_attribute("data-theme", theme);
        }
        if let Ok(Some(store)) = w.local_storage() {
            let _ = store.set_item(THEME_KEY, theme);
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = theme;
}

/// The top bar's theme switch.
#[component]
pub fn ThemeToggle(theme: RwSignal<String>) -> impl IntoView {
    let other = move || {
        if theme.get() == "light" {
            "dark"
        } else {
            "light"
        }
    };
    view! {
        <button
            class="btn btn-small"
            data-testid="theme-toggle"
            title="Switch between dark and light (t)"
            aria-label=move || format!("Switch to the {} theme", other())
            on:click=move |_| toggle_theme(theme)
        >
            {move || if theme.get() == "light" { "☾" } else { "☀" }}
        </button>
    }
}

fn toggle_theme(theme: RwSignal<String>) {
    let next = if theme.get_untracked() == "light" {
        "dark"
    } else {
        "light"
    };
    set_theme(next);
    theme.set(next.to_string());
}

/// The global shortcuts and the `?` overlay. Page-specific keys (the
/// tail's) are handled by their page.
#[component]
pub fn Shortcuts(theme: RwSignal<String>) -> impl IntoView {
    let open = RwSignal::new(false);
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(t) = current_theme() {
            theme.set(t);
        }
    });
    #[cfg(feature = "hydrate")]
    {
        let navigate = navigate.clone();
        let handle = window_event_listener(leptos::ev::keydown, move |ev| {
            if in_field(&ev) || modified(&ev) {
                return;
            }
            let go = |url: &str| navigate(url, leptos_router::NavigateOptions::default());
            match ev.key().as_str() {
                "?" => open.update(|o| *o = !*o),
                "Escape" if open.get_untracked() => open.set(false),
                // The page at that place in the top bar.
                k @ ("1" | "2" | "3" | "4" | "5" | "6" | "7") => {
                    go(PAGES[usize::from(k.as_bytes()[0] - b'1')])
                }
                "t" => toggle_theme(theme),
                "L" => click("[data-testid=back-to-live]"),
                "[" => click("[data-testid=step-back]"),
                "]" => click("[data-testid=step-on]"),
                _ => return,
            }
            ev.prevent_default();
        });
        on_cleanup(move || handle.remove());
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = navigate;
    view! {
        // The list is drawn from its own wasm chunk, when first asked for.
        <Show when=move || open.get()>
            {crate::shell::lazy_view(shortcuts_list(open))}
        </Show>
        <button class="btn btn-small help" title="Keyboard shortcuts (?)" data-testid="shortcuts-button" on:click=move |_| open.update(|o| *o = !*o)>
            "?"
        </button>
    }
}

/// The list of shortcuts, in a dialog that `open` shows: loaded lazily,
/// in its own wasm chunk (`cargo leptos build --split`), as most visits
/// never ask for it.
#[leptos::lazy]
fn shortcuts_list(open: RwSignal<bool>) -> AnyView {
    view! {
        <div class="overlay" data-testid="shortcuts" on:click=move |_| open.set(false)>
            <div class="overlay-card" role="dialog" aria-modal="true" aria-label="Keyboard shortcuts" on:click=|ev| ev.stop_propagation()>
                <h2>"Keyboard shortcuts"</h2>
                <table class="keys">
                    <tbody>
                        {SHORTCUTS
                            .iter()
                            .map(|(k, what)| {
                                view! {
                                    <tr>
                                        <td>{k.split("  ").map(|k| view! { <kbd>{k}</kbd>" " }).collect_view()}</td>
                                        <td>{*what}</td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
            </div>
        </div>
    }
    .into_any()
}

/// The first element matching `selector`, as an HTML element.
#[cfg(feature = "hydrate")]
fn document_query(selector: &str) -> Option<web_sys::HtmlElement> {
    use wasm_bindgen::JsCast;
    web_sys::window()?
        .document()?
        .query_selector(selector)
        .ok()??
        .dyn_into()
        .ok()
}

/// Clicks the first element matching `selector`, if there is one.
#[cfg(feature = "hydrate")]
pub fn click(selector: &str) {
    if let Some(el) = document_query(selector) {
        el.click();
    }
}
