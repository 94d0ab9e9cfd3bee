//! The technicians' dashboard: HTML shells for each page and the static assets they load
//! (`web/ui/`, built into the binary with `include_str!`; no build step, no Node at run
//! time). A shell carries no data: its ES module calls the JSON API with the session cookie
//! (and `X-CSRF-Token` on changes) and draws the page with DOM calls that never parse
//! untrusted text as HTML. A page fetched without a session redirects (303) to
//! `/login?next=…`; the API refuses what a role may not do whatever the page shows.

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::Web;

/// A static asset: name under `/ui/`, media type, text.
struct Asset(&'static str, &'static str, &'static str);

const JS: &str = "text/javascript; charset=utf-8";

const ASSETS: &[Asset] = &[
    Asset(
        "app.css",
        "text/css; charset=utf-8",
        include_str!("ui/app.css"),
    ),
    Asset("common.js", JS, include_str!("ui/common.js")),
    Asset("markdown.js", JS, include_str!("ui/markdown.js")),
    Asset("chart.js", JS, include_str!("ui/chart.js")),
    Asset("login.js", JS, include_str!("ui/login.js")),
    Asset("queue.js", JS, include_str!("ui/queue.js")),
    Asset("fleet.js", JS, include_str!("ui/fleet.js")),
    Asset("host.js", JS, include_str!("ui/host.js")),
    Asset("ticket.js", JS, include_str!("ui/ticket.js")),
    Asset("handoff.js", JS, include_str!("ui/handoff.js")),
    Asset("trends.js", JS, include_str!("ui/trends.js")),
    Asset("admin.js", JS, include_str!("ui/admin.js")),
    Asset(
        "favicon.svg",
        "image/svg+xml",
        include_str!("ui/favicon.svg"),
    ),
];

/// The pages: path, script (under `/ui/`), title.
pub const PAGES: &[(&str, &str, &str)] = &[
    ("/", "queue", "Queue"),
    ("/fleet", "fleet", "Fleet"),
    ("/hosts/{host}", "host", "Host"),
    ("/tickets/{id}", "ticket", "Ticket"),
    ("/handoff", "handoff", "Handoff"),
    ("/trends", "trends", "Trends"),
    ("/admin", "admin", "Admin"),
];

/// The navigation bar's entries: path, label, the page it marks current.
const NAV: &[(&str, &str, &str)] = &[
    ("/", "Queue", "queue"),
    ("/fleet", "Fleet", "fleet"),
    ("/handoff", "Handoff", "handoff"),
    ("/trends", "Trends", "trends"),
    ("/admin", "Admin", "admin"),
];

/// What every page answer carries: no caching of data-free shells across sign-ins, no
/// framing, scripts and styles only from this origin.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; \
     object-src 'none'";

/// The page routes and the assets, to merge into the API router.
pub fn routes() -> Router<Web> {
    let mut router = Router::new()
        .route("/login", get(login))
        .route("/ui/{file}", get(asset));
    for (path, script, title) in PAGES {
        router = router.route(
            path,
            get(
                move |State(web): State<Web>, headers: HeaderMap, uri: Uri| async move {
                    page(&web, &headers, &uri, script, title).await
                },
            ),
        );
    }
    router
}

/// The version in asset URLs, so a new collector's assets are fetched anew.
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn secured(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `text` with the HTML metacharacters escaped (the shells hold only fixed text, but say so).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` percent-encoded for a query value (unreserved characters and `/` kept).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The HTML shell of one page.
fn shell(script: &str, title: &str, nav: bool) -> String {
    let links: String = if nav {
        NAV.iter()
            .map(|(href, label, page)| {
                let current = if *page == script {
                    " aria-current=\"page\""
                } else {
                    ""
                };
                format!("<a href=\"{href}\"{current}>{label}</a>")
            })
            .collect()
    } else {
        String::new()
    };
    let title = escape(title);
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · Firstline</title>\n\
         <link rel=\"icon\" href=\"/ui/favicon.svg?v={VERSION}\" type=\"image/svg+xml\">\n\
         <link rel=\"stylesheet\" href=\"/ui/app.css?v={VERSION}\">\n\
         <script type=\"module\" src=\"/ui/{script}.js?v={VERSION}\"></script>\n\
         </head>\n<body data-page=\"{script}\">\n\
         <a class=\"skip\" href=\"#main\">Skip to content</a>\n\
         <header class=\"top\">\n<a class=\"brand\" href=\"/\">Firstline</a>\n\
         <nav aria-label=\"Main\">{links}</nav>\n\
         <span class=\"who\" id=\"who\"></span>\n\
         <span class=\"conn\" id=\"conn\" role=\"status\" data-state=\"connecting\" \
         title=\"Live updates\">connecting</span>\n</header>\n\
         <main id=\"main\" tabindex=\"-1\">\n<h1 id=\"title\">{title}</h1>\n\
         <div id=\"app\" aria-busy=\"true\"><p class=\"muted\">Loading…</p></div>\n</main>\n\
         <noscript><p>The dashboard needs JavaScript; the JSON API is at /api/openapi.json.</p></noscript>\n\
         </body>\n</html>\n"
    )
}

fn html(body: String) -> Response {
    secured(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response())
}

async fn page(web: &Web, headers: &HeaderMap, uri: &Uri, script: &str, title: &str) -> Response {
    if web.page_caller(headers).await.is_none() {
        let next = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let to = format!("/login?next={}", encode(&next));
        let mut r = StatusCode::SEE_OTHER.into_response();
        if let Ok(v) = HeaderValue::from_str(&to) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return secured(r);
    }
    html(shell(script, title, true))
}

async fn login(_query: RawQuery) -> Response {
    html(shell("login", "Sign in", false))
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.0 == file) {
        Some(Asset(_, media, text)) => {
            let mut r = ([(header::CONTENT_TYPE, *media)], *text).into_response();
            let h = r.headers_mut();
            h.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
        None => super::ApiError(StatusCode::NOT_FOUND, "no such asset".into()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shells_escape_and_redirects_encode() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(encode("/hosts/pc 1?x=&y"), "/hosts/pc%201%3Fx%3D%26y");
        let s = shell("queue", "Queue", true);
        assert!(
            s.contains("<a href=\"/\" aria-current=\"page\">Queue</a>"),
            "{s}"
        );
        assert!(s.contains("id=\"conn\""));
    }

    #[test]
    fn every_page_script_is_an_asset() {
        for (_, script, _) in PAGES {
            let name = format!("{script}.js");
            assert!(ASSETS.iter().any(|a| a.0 == name), "{name}");
        }
    }
}
