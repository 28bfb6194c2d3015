//! The browser end of the live protocol (hydrate builds only): opens `/ws`,
//! subscribes to the page's views, applies [`Frame`]s with [`LiveViews`]
//! (which notices gaps and asks for a fresh snapshot) into the page's
//! signals, and reconnects with capped exponential backoff when the socket
//! closes, restoring every subscription.

use crate::overview::Link;
use crate::wire::{
    Applied, ClientMsg, Counts, Frame, LiveViews, PROTOCOL_VERSION, View, ViewState,
};
use leptos::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

const FIRST_RETRY_MS: u32 = 250;
const MAX_RETRY_MS: u32 = 5_000;
/// Tail events the page keeps per tail subscription.
const TAIL_CAP: usize = 1_000;

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
    counts: RwSignal<Counts>,
    link: RwSignal<Link>,
    failures: u32,
    conn: Option<Conn>,
}

/// Starts the live connection for the page's signals. Runs for the life of
/// the page.
pub fn connect(counts: RwSignal<Counts>, link: RwSignal<Link>) {
    let mut views = LiveViews::new(TAIL_CAP);
    views.subscribe(View::Counts);
    let live = Rc::new(RefCell::new(Live {
        views,
        counts,
        link,
        failures: 0,
        conn: None,
    }));
    open(&live);
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
            let Ok(frame) = serde_json::from_str::<Frame>(&text) else {
                web_sys::console::warn_1(&"eventscope: undecodable frame".into());
                return;
            };
            on_frame(&live, frame);
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

fn on_frame(live: &Rc<RefCell<Live>>, frame: Frame) {
    let mut l = live.borrow_mut();
    if frame.v != PROTOCOL_VERSION {
        web_sys::console::error_1(
            &format!(
                "eventscope: server speaks protocol v{}, this page v{PROTOCOL_VERSION}; reload the page",
                frame.v
            )
            .into(),
        );
        return;
    }
    match l.views.apply(frame) {
        Applied::Updated(key) => {
            if let Some(ViewState::Counts(c)) = l.views.get(&key).and_then(|s| s.state.as_ref()) {
                let c = c.clone();
                l.failures = 0;
                l.link.set(Link::Live);
                l.counts.set(c);
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
