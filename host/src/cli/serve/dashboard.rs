//! The dashboard: a page and its scripts and styles, built into the binary
//! (no CDN, works offline). Every page path serves the same document; the
//! scripts read the path and draw the page from the API. The page and its
//! assets hold no data, so they are served without a token; the scripts
//! ask for one when the API wants it.

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use super::problem::Problem;
use super::state::App;

/// A file of the dashboard.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const PAGE: Asset = Asset {
    name: "index.html",
    content_type: "text/html; charset=utf-8",
    body: include_str!("ui/index.html"),
};

const ASSETS: &[Asset] = &[
    script("app.js", include_str!("ui/app.js")),
    script("api.js", include_str!("ui/api.js")),
    script("dom.js", include_str!("ui/dom.js")),
    script("graph.js", include_str!("ui/graph.js")),
    script("list.js", include_str!("ui/list.js")),
    script("workflows.js", include_str!("ui/workflows.js")),
    script("runs.js", include_str!("ui/runs.js")),
    script("run.js", include_str!("ui/run.js")),
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("ui/app.css"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_str!("ui/icon.svg"),
    },
];

const fn script(name: &'static str, body: &'static str) -> Asset {
    Asset {
        name,
        content_type: "text/javascript; charset=utf-8",
        body,
    }
}

/// What the page may load and run: its own scripts, styles and API only.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// Each asset's entity tag: a hash of its content, made once.
static TAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    std::iter::once(&PAGE)
        .chain(ASSETS)
        .map(|asset| {
            let digest = Sha256::digest(asset.body.as_bytes());
            let tag = format!("\"{:.24}\"", format!("{digest:x}"));
            HeaderValue::from_str(&tag).expect("hex is a valid header")
        })
        .collect()
});

/// The dashboard's routes: its pages and `/ui/<asset>`.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(page))
        .route("/workflows", get(page))
        .route("/workflows/{name}", get(page))
        .route("/runs", get(page))
        .route("/runs/{id}", get(page))
        .route("/ui/{name}", get(asset))
}

async fn page(headers: HeaderMap) -> Response {
    serve(&PAGE, &TAGS[0], &headers)
}

async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().position(|asset| asset.name == name) {
        Some(at) => serve(&ASSETS[at], &TAGS[at + 1], &headers),
        None => Problem::not_found(format!("the dashboard has no file {name:?}")).into_response(),
    }
}

/// The asset, or 304 when the browser holds this version. Browsers ask
/// again each time (`no-cache`), so a new binary's dashboard shows at once.
fn serve(asset: &Asset, tag: &HeaderValue, headers: &HeaderMap) -> Response {
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|held| held.as_bytes() == tag.as_bytes());
    let common = [
        (header::ETAG, tag.clone()),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(POLICY),
        ),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        )],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WCAG's relative luminance of `#rrggbb`.
    fn luminance(hex: &str) -> f64 {
        let channel = |at: usize| {
            let c = f64::from(u8::from_str_radix(&hex[at..at + 2], 16).unwrap()) / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
    }

    fn contrast(a: &str, b: &str) -> f64 {
        let (a, b) = (luminance(a), luminance(b));
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }

    /// The value of custom property `name` in a rule of the style sheet.
    fn property<'a>(rule: &'a str, name: &str) -> &'a str {
        let start = rule.find(&format!("{name}: #")).expect(name) + name.len() + 2;
        &rule[start..start + 7]
    }

    #[test]
    fn text_keeps_its_contrast_and_states_their_outline() {
        let css = ASSETS.iter().find(|a| a.name == "app.css").unwrap().body;
        let root = &css[css.find(":root {").unwrap()..];
        let (fg, muted, bg) = (
            property(root, "--fg"),
            property(root, "--muted"),
            property(root, "--bg"),
        );
        assert!(contrast(fg, bg) >= 4.5 && contrast(muted, bg) >= 4.5);
        let mut states = 0;
        for rule in css.lines().filter(|line| line.contains("{ --c: #")) {
            let (line, fill, text) = (
                property(rule, "--c"),
                property(rule, "--b"),
                property(rule, "--t"),
            );
            // Text 4.5:1 (WCAG AA), a state's outline and bar 3:1.
            assert!(contrast(text, fill) >= 4.5, "{rule}");
            assert!(contrast(line, fill) >= 3.0, "{rule}");
            states += 1;
        }
        assert!(states >= 8, "every state has its colours");
    }

    #[test]
    fn every_script_the_page_imports_is_served() {
        // Imports are `from "./name.js"`; a missing asset would break the
        // dashboard only in a browser.
        for asset in ASSETS.iter().chain(std::iter::once(&PAGE)) {
            for part in asset.body.split("\"./").skip(1) {
                let name = &part[..part.find('"').expect("an import ends")];
                assert!(
                    ASSETS.iter().any(|served| served.name == name),
                    "{} imports {name}, which is not served",
                    asset.name
                );
            }
        }
    }
}
