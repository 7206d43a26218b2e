//! Static pages embedded in the binary: the web playground at `/`, the
//! interactive API docs at `/docs` (a vendored Swagger UI, see
//! `assets/swagger-ui/README.md`), and the OpenAPI document at
//! `/openapi.json`. Nothing is fetched from a CDN, so all of it works on a
//! machine without internet access.
//!
//! Also the security headers every answer carries ([`security_headers`]):
//! the pages get a Content-Security-Policy that allows this origin's own
//! scripts, styles and API calls and nothing else (no inline script, no
//! framing); the JSON answers one that allows nothing at all.

use axum::extract::{Path, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::ApiError;
use crate::state::AppState;

/// `(file name, content type, bytes)` of the files under a folder.
type Files = [(&'static str, &'static str, &'static [u8])];

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

const PLAYGROUND: &Files = &[
    ("app.js", JS, include_bytes!("../assets/playground/app.js")),
    (
        "style.css",
        CSS,
        include_bytes!("../assets/playground/style.css"),
    ),
];

/// CodeMirror 5, vendored from Debian's `libjs-codemirror` (see
/// `assets/codemirror/README.md`): the playground's editor.
const CODEMIRROR: &Files = &[
    (
        "codemirror.js",
        JS,
        include_bytes!("../assets/codemirror/codemirror.js"),
    ),
    (
        "codemirror.css",
        CSS,
        include_bytes!("../assets/codemirror/codemirror.css"),
    ),
    (
        "python.js",
        JS,
        include_bytes!("../assets/codemirror/python.js"),
    ),
    (
        "javascript.js",
        JS,
        include_bytes!("../assets/codemirror/javascript.js"),
    ),
    (
        "clike.js",
        JS,
        include_bytes!("../assets/codemirror/clike.js"),
    ),
    (
        "matchbrackets.js",
        JS,
        include_bytes!("../assets/codemirror/matchbrackets.js"),
    ),
    (
        "LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("../assets/codemirror/LICENSE"),
    ),
];

const DOCS: &Files = &[
    (
        "index.css",
        CSS,
        include_bytes!("../assets/swagger-ui/index.css"),
    ),
    (
        "init.js",
        JS,
        include_bytes!("../assets/swagger-ui/init.js"),
    ),
    (
        "swagger-ui-bundle.js",
        JS,
        include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js"),
    ),
    (
        "swagger-ui.css",
        CSS,
        include_bytes!("../assets/swagger-ui/swagger-ui.css"),
    ),
    (
        "favicon-32x32.png",
        "image/png",
        include_bytes!("../assets/swagger-ui/favicon-32x32.png"),
    ),
    (
        "LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("../assets/swagger-ui/LICENSE"),
    ),
];

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(playground))
        .route("/playground/{file}", get(playground_file))
        .route("/codemirror/{file}", get(codemirror_file))
        .route("/docs", get(docs))
        .route("/docs/", get(docs))
        .route("/docs/{file}", get(docs_file))
        .route("/openapi.json", get(openapi))
}

async fn playground() -> Response {
    page(include_str!("../assets/playground/index.html"))
}

async fn docs() -> Response {
    page(include_str!("../assets/swagger-ui/index.html"))
}

/// The policy of the two pages: scripts, styles, images and API calls from
/// this origin only (Swagger UI draws its icons as `data:` images), no
/// inline script or style, no plugins, no framing, forms post nowhere.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The policy of everything else (JSON, scripts, styles): nothing may load
/// or frame it as a document.
const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

fn page(html: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HTML),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, PAGE_POLICY),
        ],
        html,
    )
        .into_response()
}

/// Adds the security headers to every answer of `router`: a
/// Content-Security-Policy (the pages set their own), `nosniff`, no
/// referrer, no framing (`X-Frame-Options` for browsers that predate
/// `frame-ancestors`).
pub(crate) fn security_headers(router: Router) -> Router {
    let always = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(API_POLICY),
        ))
        .layer(always(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(always(header::REFERRER_POLICY, "no-referrer"))
        .layer(always(header::X_FRAME_OPTIONS, "DENY"))
}

async fn playground_file(Path(file): Path<String>) -> Result<Response, ApiError> {
    // Small, and must change with the binary: revalidated on every load.
    serve(PLAYGROUND, &file, "no-cache")
}

async fn codemirror_file(Path(file): Path<String>) -> Result<Response, ApiError> {
    // Changes only with a new vendored CodeMirror.
    serve(CODEMIRROR, &file, "public, max-age=86400")
}

async fn docs_file(Path(file): Path<String>) -> Result<Response, ApiError> {
    // A large bundle that changes only with a new Swagger UI.
    serve(DOCS, &file, "public, max-age=86400")
}

fn serve(files: &Files, name: &str, cache: &'static str) -> Result<Response, ApiError> {
    let (_, content_type, bytes) = files
        .iter()
        .find(|(file, _, _)| *file == name)
        .ok_or(ApiError::RouteNotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, *content_type),
            (header::CACHE_CONTROL, cache),
        ],
        *bytes,
    )
        .into_response())
}

async fn openapi(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi().clone(),
    )
        .into_response()
}
