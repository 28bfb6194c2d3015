//! HTTP from the browser (the API v1), for what the live protocol does not
//! stream: one event in full, every view of the past, a flow's steps, the
//! demo's rates (the one write).

/// Sends `body` (JSON) to `url` with `method` and decodes the JSON answer;
/// an error answer's `error` message, or what went wrong, otherwise.
pub async fn send_json<T: serde::de::DeserializeOwned>(
    method: &str,
    url: &str,
    body: String,
) -> Result<T, String> {
    #[cfg(feature = "hydrate")]
    {
        let js = |e: wasm_bindgen::JsValue| format!("{e:?}");
        let init = web_sys::RequestInit::new();
        init.set_method(method);
        init.set_body(&wasm_bindgen::JsValue::from_str(&body));
        let headers = web_sys::Headers::new().map_err(js)?;
        headers
            .set("content-type", "application/json")
            .map_err(js)?;
        init.set_headers(&headers);
        let window = web_sys::window().ok_or("no window")?;
        read(url, window.fetch_with_str_and_init(url, &init)).await
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (method, body);
        Err(format!("{url} is fetched in the browser"))
    }
}

/// The JSON of the answer `fetch` promises.
#[cfg(feature = "hydrate")]
async fn read<T: serde::de::DeserializeOwned>(
    url: &str,
    fetch: js_sys::Promise,
) -> Result<T, String> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    let js = |e: wasm_bindgen::JsValue| format!("{e:?}");
    let resp: web_sys::Response = JsFuture::from(fetch)
        .await
        .map_err(js)?
        .dyn_into()
        .map_err(js)?;
    let text = JsFuture::from(resp.text().map_err(js)?)
        .await
        .map_err(js)?
        .as_string()
        .unwrap_or_default();
    if resp.status() == 401 {
        // The session ended while the page was open: sign in again and
        // come back here.
        sign_in_again();
    }
    if !resp.ok() {
        return Err(crate::wire::from_json_text::<crate::api::ApiError>(&text)
            .map(|e| e.error)
            .unwrap_or_else(|_| format!("{} answered {}", url, resp.status())));
    }
    crate::wire::from_json_text(&text).map_err(|e| format!("{url}: {e}"))
}

/// GETs `url` and decodes its JSON; an error answer's `error` message, or
/// what went wrong, otherwise.
pub async fn get_json<T: serde::de::DeserializeOwned>(url: String) -> Result<T, String> {
    #[cfg(feature = "hydrate")]
    {
        let window = web_sys::window().ok_or("no window")?;
        read(&url, window.fetch_with_str(&url)).await
    }
    #[cfg(not(feature = "hydrate"))]
    {
        Err(format!("{url} is fetched in the browser"))
    }
}

/// Sends the page to the sign-in page, to come back to where it is: the
/// page is asked for again, and the server, seeing no session, sends it to
/// sign in with this page as where to go back.
#[cfg(feature = "hydrate")]
pub fn sign_in_again() {
    if let Some(w) = web_sys::window() {
        let _ = w.location().reload();
    }
}
