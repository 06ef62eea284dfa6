//! The console's stylesheet and script, compiled into the binary (`include_str!`): no
//! build step, nothing to deploy beside the daemon.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode, header};

use crate::web::HttpResponse;

pub(super) const CSS_PATH: &str = "/console/assets/console.css";
pub(super) const JS_PATH: &str = "/console/assets/console.js";

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// `GET /console/assets/{name}`: served without a session (they hold nothing private).
pub(super) fn serve(name: &str) -> Option<HttpResponse> {
    let (body, content_type) = match name {
        "console.css" => (CSS, "text/css; charset=utf-8"),
        "console.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return None,
    };
    Some(
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CACHE_CONTROL, "public, max-age=300")
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .expect("static response parts are valid"),
    )
}
