//! The web console and display pages, served from assets embedded in the binary at build
//! time (see `build.rs`). Until the console is built, every page explains that instead of
//! failing.
//!
//! Routes: `/display/...` is the display page (a separate, small bundle), files under
//! `/assets/` are the hashed bundles, and any other path is the console, which routes itself.

use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};

use crate::api::error::ApiError;

mod assets {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

/// Whether the console was built into this binary.
pub fn console_built() -> bool {
    asset("/index.html").is_some()
}

fn asset(path: &str) -> Option<&'static [u8]> {
    assets::ASSETS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, bytes)| *bytes)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") | Some("map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("webmanifest") => "application/manifest+json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

pub async fn serve(uri: Uri) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("there is no API route {path}; see /api/v1/openapi.json"),
        )
        .into_response();
    }
    if let Some(bytes) = asset(path).filter(|_| path != "/index.html" && path != "/display.html") {
        // Vite puts a content hash in every file name under /assets/: they never change.
        let cache = if path.starts_with("/assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        return file(path, bytes, cache);
    }
    if path.starts_with("/assets/") {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    }
    let page = if path == "/display" || path.starts_with("/display/") {
        "/display.html"
    } else {
        "/index.html"
    };
    match asset(page) {
        Some(bytes) => file(page, bytes, "no-cache"),
        None => (
            StatusCode::OK,
            [(header::CACHE_CONTROL, "no-store")],
            Html(NOT_BUILT),
        )
            .into_response(),
    }
}

fn file(path: &str, bytes: &'static [u8], cache: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(path)),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        bytes,
    )
        .into_response()
}

const NOT_BUILT: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>PVM</title>
<style>body{background:#0b0f14;color:#f2f4f8;font:18px/1.5 system-ui,sans-serif;margin:2rem}code{color:#f5b800}</style>
</head><body>
<h1>PVM node is running</h1>
<p>The web console was not built into this binary (build it with <code>npm ci &amp;&amp; npm run build</code>
in <code>web/</code>, then rebuild the node). The API is available at <code>/api/v1</code>
(see <code>/api/v1/openapi.json</code>).</p>
</body></html>"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_cover_what_vite_emits() {
        assert_eq!(
            content_type("/assets/a.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("/assets/a.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("/index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("/x.unknown"), "application/octet-stream");
    }

    #[tokio::test]
    async fn unknown_api_routes_are_json_404s_not_the_console() {
        let r = serve(Uri::from_static("/api/v1/nope")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn display_paths_get_the_display_page_or_the_not_built_page() {
        let r = serve(Uri::from_static("/display/hdmi")).await;
        assert_eq!(r.status(), StatusCode::OK);
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let text = String::from_utf8_lossy(&body);
        match asset("/display.html") {
            Some(_) => assert!(text.contains("PVM display"), "{text}"),
            None => assert!(text.contains("not built"), "{text}"),
        }
    }

    #[tokio::test]
    async fn a_missing_hashed_asset_is_a_404_not_the_console() {
        let r = serve(Uri::from_static("/assets/gone-123.js")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}
