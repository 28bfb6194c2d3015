//! The browser end of the live protocol (hydrate builds only): one `/ws`
//! per tab, shared by every page. Pages [`watch`] the views they show and
//! [`unwatch`] them when they go; frames are applied with [`LiveViews`]
//! (which notices gaps and asks for a fresh snapshot) and each watcher is
//! told when its view changed. The socket reconnects with capped exponential
//! backoff when it closes, restoring every subscription.
//!
//! The browser runs the page on one thread, so the connection lives in a
//! thread-local rather than in Leptos context (whose values must be `Send`).

use crate::shell::Link;
use crate::wire::{Applied, ClientMsg, LiveViews, PROTOCOL_VERSION, View, ViewState};
use leptos::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

const FIRST_RETRY_MS: u32 = 250;
const MAX_RETRY_MS: u32 = 5_000;
/// Tail events the connection keeps per tail view (the server's largest
/// page); pages keep their own, longer history.
const TAIL_CAP: usize = crate::wire::MAX_TAIL_LIMIT as usize;

/// Called with a view's state each time it changes.
type Watcher = Box<dyn Fn(&ViewState)>;

/// One open socket and the callbacks it holds; dropping it detaches them.
struct Conn {
    ws: WebSocket,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
    _on_open: Closure<dyn FnMut()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onopen(None);
        let _ = self.ws.close();
    }
}

struct Live {
    views: LiveViews,
    watchers: HashMap<String, Watcher>,
    link: RwSignal<Link>,
    failures: u32,
    conn: Option<Conn>,
    open: bool,
}

thread_local! {
    static LIVE: RefCell<Option<Rc<RefCell<Live>>>> = const { RefCell::new(None) };
}

fn live() -> Option<Rc<RefCell<Live>>> {
    LIVE.with(|l| l.borrow().clone())
}

/// Opens the tab's live connection, reporting its state in `link`. Call
/// once; later calls do nothing.
pub fn start(link: RwSignal<Link>) {
    if live().is_some() {
        return;
    }
    let live = Rc::new(RefCell::new(Live {
        views: LiveViews::new(TAIL_CAP),
        watchers: HashMap::new(),
        link,
        failures: 0,
        conn: None,
        open: false,
    }));
    LIVE.with(|l| *l.borrow_mut() = Some(Rc::clone(&live)));
    open(&live);
}

/// Subscribes to `view` and calls `on_change` with its state after every
/// snapshot and delta, until [`unwatch`] (one watcher per view). Returns
/// the view's key.
pub fn watch(view: View, on_change: impl Fn(&ViewState) + 'static) -> String {
    let key = view.key();
    if let Some(live) = live() {
        let mut l = live.borrow_mut();
        l.watchers.insert(key.clone(), Box::new(on_change));
        let msg = l.views.subscribe(view);
        if l.open {
            l.send(&msg);
        }
    }
    key
}

/// Stops watching the view `key`.
pub fn unwatch(key: &str) {
    if let Some(live) = live() {
        let mut l = live.borrow_mut();
        l.watchers.remove(key);
        let msg = l.views.unsubscribe(key);
        if l.open {
            l.send(&msg);
        }
    }
}

fn ws_url() -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = if location.protocol().ok()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    Some(format!(
        "{scheme}://{}/ws?v={PROTOCOL_VERSION}",
        location.host().ok()?
    ))
}

fn open(live: &Rc<RefCell<Live>>) {
    let Some(url) = ws_url() else { return };
    let ws = match WebSocket::new(&url) {
        Ok(ws) => ws,
        Err(_) => {
            schedule_retry(live);
            return;
        }
    };

    let on_message = {
        let live = Rc::clone(live);
        Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let Some(text) = ev.data().as_string() else {
                return;
            };
            on_frame(&live, &text);
        })
    };
    let on_close = {
        let live = Rc::clone(live);
        Closure::<dyn FnMut(CloseEvent)>::new(move |_ev: CloseEvent| {
            schedule_retry(&live);
        })
    };
    let on_open = {
        let live = Rc::clone(live);
        Closure::<dyn FnMut()>::new(move || {
            let mut l = live.borrow_mut();
            l.open = true;
            for msg in l.views.resubscribe_all() {
                l.send(&msg);
            }
        })
    };
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    live.borrow_mut().conn = Some(Conn {
        ws,
        _on_message: on_message,
        _on_close: on_close,
        _on_open: on_open,
    });
}

impl Live {
    fn send(&self, msg: &ClientMsg) {
        if let (Some(conn), Ok(text)) = (&self.conn, serde_json::to_string(msg)) {
            let _ = conn.ws.send_with_str(&text);
        }
    }
}

fn on_frame(live: &Rc<RefCell<Live>>, text: &str) {
    let mut l = live.borrow_mut();
    let applied = match l.views.apply_text(text) {
        Ok(applied) => applied,
        Err(e) => {
            web_sys::console::error_1(&format!("eventscope: unreadable frame: {e}").into());
            return;
        }
    };
    match applied {
        Applied::Updated(key) => {
            if l.failures > 0 || l.link.get_untracked() != Link::Live {
                l.failures = 0;
                l.link.set(Link::Live);
            }
            let l = &*l;
            if let (Some(watcher), Some(state)) = (
                l.watchers.get(&key),
                l.views.get(&key).and_then(|s| s.state.as_ref()),
            ) {
                watcher(state);
            }
        }
        Applied::Resubscribe(msg) => l.send(&msg),
        Applied::Error(sub, message) => {
            let about = sub.map(|s| format!(" ({s})")).unwrap_or_default();
            web_sys::console::error_1(
                &format!("eventscope: server error{about}: {message}").into(),
            );
        }
        Applied::Ignored => {}
    }
}

fn schedule_retry(live: &Rc<RefCell<Live>>) {
    let delay = {
        let mut l = live.borrow_mut();
        l.open = false;
        // Detach the dead socket's callbacks later: we may be inside one.
        if let Some(conn) = l.conn.take() {
            leptos::task::spawn_local(async move { drop(conn) });
        }
        let exp = FIRST_RETRY_MS.saturating_mul(1 << l.failures.min(5));
        let jitter = (js_sys::Math::random() * f64::from(exp) * 0.2) as u32;
        let delay = exp.min(MAX_RETRY_MS) + jitter;
        l.failures += 1;
        l.link.set(Link::Reconnecting {
            attempt: l.failures,
            retry_in_ms: delay,
        });
        delay
    };
    let live = Rc::clone(live);
    let retry = Closure::once_into_js(move || open(&live));
    if let Some(window) = web_sys::window() {
        let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(
            retry.unchecked_ref(),
            delay as i32,
        );
    }
}
