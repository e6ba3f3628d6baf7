//! The operator console (`GET /console`, `GET /console/{file}`): a page and its ES modules,
//! written by hand and built into the binary, served without a token (they hold no
//! secret; the page signs in with a bridge token and calls the bridge API like any
//! client). Every answer forbids inline script, framing and content sniffing.

use actix_web::{http::header, web, HttpResponse};

use super::error::ApiError;

/// One file of the console.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("assets/", $name)),
        }
    };
}

/// The page, served at `/console` (its files are `console/<name>` relative to it, so the
/// console also works behind a proxy that mounts the daemon under a path).
const PAGE: Asset = asset!("index.html", "text/html; charset=utf-8");

/// The files under `/console/`.
const FILES: &[Asset] = &[
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("sse.js", "text/javascript; charset=utf-8"),
    asset!("dom.js", "text/javascript; charset=utf-8"),
    asset!("agents.js", "text/javascript; charset=utf-8"),
    asset!("activity.js", "text/javascript; charset=utf-8"),
    asset!("tokens.js", "text/javascript; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

/// Only the daemon's own files and API: no inline script or style, no other origin, no
/// framing, no `<base>` or plugin tricks.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn serve(asset: &Asset) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, asset.content_type))
        // Small files that change with the binary: always revalidated.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(asset.body)
}

/// `GET /console`: the page.
pub async fn page() -> HttpResponse {
    serve(&PAGE)
}

/// `GET /console/`: the page's address with the slash a browser or a person may add; sent
/// to the page, since the page's relative file names resolve from `/console` only.
pub async fn slash() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "../console"))
        .finish()
}

/// `GET /console/{file}`: one of the page's files; any other name is 404.
pub async fn file(name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    FILES
        .iter()
        .find(|a| a.name == name.as_str())
        .map(serve)
        .ok_or(ApiError::Unrecognized)
}

#[cfg(test)]
mod tests {
    use actix_web::{
        body::to_bytes,
        http::StatusCode,
        test::{call_service, init_service, TestRequest},
        App,
    };

    use super::*;

    fn app() -> App<
        impl actix_web::dev::ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Response = actix_web::dev::ServiceResponse,
            Error = actix_web::Error,
            InitError = (),
        >,
    > {
        App::new()
            .route("/console", web::get().to(page))
            .route("/console/", web::get().to(slash))
            .route("/console/{file}", web::get().to(file))
    }

    #[actix_web::test]
    async fn every_file_is_served_with_its_type_and_the_strict_headers() {
        let app = init_service(app()).await;
        let paths = std::iter::once(("/console".to_owned(), PAGE.content_type)).chain(
            FILES
                .iter()
                .map(|a| (format!("/console/{}", a.name), a.content_type)),
        );
        for (path, content_type) in paths {
            let res = call_service(&app, TestRequest::get().uri(&path).to_request()).await;
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            let h = |name| res.headers().get(name).unwrap().to_str().unwrap();
            assert_eq!(h(header::CONTENT_TYPE), content_type, "{path}");
            assert_eq!(h(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
            assert_eq!(h(header::X_FRAME_OPTIONS), "DENY");
            assert_eq!(h(header::CACHE_CONTROL), "no-cache");
            let csp = h(header::CONTENT_SECURITY_POLICY).to_owned();
            assert!(csp.starts_with("default-src 'self';"), "{csp}");
            assert!(csp.contains("frame-ancestors 'none'"));
            assert!(!csp.contains("unsafe"), "{csp}");
            let body = to_bytes(res.into_body()).await.unwrap();
            assert!(!body.is_empty(), "{path}");
        }
    }

    #[actix_web::test]
    async fn the_address_with_a_slash_leads_to_the_page() {
        let app = init_service(app()).await;
        let res = call_service(&app, TestRequest::get().uri("/console/").to_request()).await;
        assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(res.headers().get(header::LOCATION).unwrap(), "../console");
    }

    #[actix_web::test]
    async fn unknown_files_are_not_found() {
        let app = init_service(app()).await;
        for path in [
            "/console/nope.js",
            "/console/index.html",
            "/console/..%2Fmod.rs",
            "/console/mod.rs",
        ] {
            let res = call_service(&app, TestRequest::get().uri(path).to_request()).await;
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        }
    }

    /// The page loads only its own files, by the names served, and has no inline script
    /// or style (the policy would block them); modules import only served files.
    #[test]
    fn the_page_needs_only_served_files_and_no_inline_code() {
        let page = std::str::from_utf8(PAGE.body).unwrap();
        assert!(
            !page.contains("<script>") && !page.contains("style="),
            "inline code"
        );
        assert!(!page.contains("<style"), "inline style");
        assert!(!page.contains("//"), "no other origin");
        let names: Vec<&str> = FILES.iter().map(|a| a.name).collect();
        for link in page.split("\"console/").skip(1) {
            let name = &link[..link.find('"').unwrap()];
            assert!(names.contains(&name), "{name} is not served");
        }
        for asset in FILES.iter().filter(|a| a.name.ends_with(".js")) {
            let text = std::str::from_utf8(asset.body).unwrap();
            for import in text.split("from \"./").skip(1) {
                let name = &import[..import.find('"').unwrap()];
                assert!(names.contains(&name), "{} imports {name}", asset.name);
            }
            assert!(!text.contains("innerHTML"), "{}: text only", asset.name);
        }
    }
}
