#![recursion_limit = "256"]
//! The wasm entry point. Everything interesting lives in `app`; this crate
//! only hydrates the page the server rendered.

/// Called by the hydration script that `leptos::HydrationScripts` emits.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Lazy: pages other than the overview load from their own wasm chunks
    // (see `app`), so hydration waits for the page's chunk.
    leptos::mount::hydrate_lazy(app::App);
}
