//! HTTP reads from the browser (the API v1), for what the live protocol does
//! not stream: one event in full, and every view of the past.

/// GETs `url` and decodes its JSON; an error answer's `error` message, or
/// what went wrong, otherwise.
pub async fn get_json<T: serde::de::DeserializeOwned>(url: String) -> Result<T, String> {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        use wasm_bindgen_futures::JsFuture;
        let js = |e: wasm_bindgen::JsValue| format!("{e:?}");
        let window = web_sys::window().ok_or("no window")?;
        let resp: web_sys::Response = JsFuture::from(window.fetch_with_str(&url))
            .await
            .map_err(js)?
            .dyn_into()
            .map_err(js)?;
        let text = JsFuture::from(resp.text().map_err(js)?)
            .await
            .map_err(js)?
            .as_string()
            .unwrap_or_default();
        if !resp.ok() {
            return Err(serde_json::from_str::<crate::api::ApiError>(&text)
                .map(|e| e.error)
                .unwrap_or_else(|_| format!("{} answered {}", url, resp.status())));
        }
        serde_json::from_str(&text).map_err(|e| format!("{url}: {e}"))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        Err(format!("{url} is fetched in the browser"))
    }
}
