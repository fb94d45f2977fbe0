//! The stylesheet, the script and the icon, compiled into the binary: the dashboard needs no
//! network and no files next to it.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::DashboardError;

const STYLE: &str = include_str!("../../assets/admin/app.css");
const SCRIPT: &str = include_str!("../../assets/admin/app.js");
const ICON: &str = include_str!("../../assets/admin/icon.svg");

/// `GET /assets/{file}`.
pub(crate) async fn serve(Path(file): Path<String>) -> Result<Response, DashboardError> {
    let (body, kind) = match file.as_str() {
        "app.css" => (STYLE, "text/css; charset=utf-8"),
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "icon.svg" => (ICON, "image/svg+xml"),
        _ => return Err(DashboardError::NotFound),
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response())
}
