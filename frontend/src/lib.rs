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

/// Room for wasm-split (`cargo leptos build --split`) to lay out the
/// read-only data: it moves each module's share of `.rodata` apart and
/// aligns every piece, and when the result is longer than the linked
/// segment, it gives up and puts the whole segment (123 KB) in the main
/// bundle. These bytes are kept by the linker but used by no function, so
/// no module takes them, and the split layout always fits.
#[used]
static SPLIT_SLACK: [u8; 4096] = [0x5a; 4096];
