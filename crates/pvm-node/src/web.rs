//! The web console and display pages, served from assets embedded in the binary at build
//! time. Until the console is built, every page explains that instead of failing.

use axum::http::{header, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};

use crate::api::error::ApiError;

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
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        Html(NOT_BUILT),
    )
        .into_response()
}

const NOT_BUILT: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>PVM</title>
<style>body{background:#0b0f14;color:#f2f4f8;font:18px/1.5 system-ui,sans-serif;margin:2rem}code{color:#f5b800}</style>
</head><body>
<h1>PVM node is running</h1>
<p>The web console was not built into this binary. The API is available at <code>/api/v1</code>
(see <code>/api/v1/openapi.json</code>).</p>
</body></html>"#;
