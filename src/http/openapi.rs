//! The OpenAPI 3.1 document of `/v1`, made from the handlers' annotations and the body and
//! view types ([`crate::views`]); served at `GET /v1/openapi.json` and committed as
//! `docs/openapi.json` (a test fails when they differ; `UPDATE_OPENAPI=1 cargo test --lib
//! openapi` writes it anew).

use hyper::StatusCode;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::web::HttpResponse;

/// The bearer token every `/v1` route takes.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "stripe-reconciler",
        description = "The customer/plan store kept in sync with Stripe: customers, \
                       balances, entities, attaches, plan changes, rewards, the timeline. \
                       Every route takes `Authorization: Bearer <api_token>`."
    ),
    modifiers(&BearerToken),
    security(("api_token" = [])),
    paths(
        serve,
        super::events::get,
        super::customers::create,
        super::customers::list,
        super::customers::get,
        super::customers::update,
        super::customers::delete,
        super::customers::invoice,
        super::customers::timeline,
        super::balances::usage,
        super::balances::check,
        super::balances::track,
        super::balances::edit,
        super::entities::create,
        super::entities::list,
        super::entities::get,
        super::entities::delete,
        super::attach::create,
        super::attach::get,
        super::plan_changes::cancel,
        super::plan_changes::uncancel,
        super::plan_changes::quantity,
        super::plan_changes::get,
        super::rewards::create,
        super::rewards::get,
    ),
    components(schemas(crate::web::error::ErrorBody))
)]
struct ApiDoc;

/// The document, as served and committed.
pub(super) fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the document serialises")
        + "\n"
}

/// The document, made once on the first request.
static SERVED: std::sync::LazyLock<bytes::Bytes> =
    std::sync::LazyLock::new(|| bytes::Bytes::from(document()));

/// `GET /v1/openapi.json`.
#[utoipa::path(get, path = "/v1/openapi.json", operation_id = "getOpenApi", tag = "meta",
    responses((status = 200, description = "This document (OpenAPI 3.1)")))]
pub(super) fn serve() -> HttpResponse {
    hyper::Response::builder()
        .status(StatusCode::OK)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(SERVED.clone()))
        .expect("static response parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::routes::ROUTES;

    #[test]
    fn the_committed_openapi_document_is_the_generated_one() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
        let generated = document();
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json differs from the document the code makes: regenerate it with \
             `UPDATE_OPENAPI=1 cargo test --lib openapi` and commit it"
        );
    }

    #[test]
    fn every_v1_route_is_in_the_document_and_nothing_else() {
        let doc: serde_json::Value = serde_json::from_str(&document()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        let mut documented = Vec::new();
        for (template, operations) in paths {
            for method in operations.as_object().unwrap().keys() {
                documented.push((method.to_uppercase(), template.clone()));
            }
        }
        let mut routed: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(_, method, template)| (method.to_string(), (*template).to_owned()))
            .collect();
        documented.sort();
        routed.sort();
        assert_eq!(documented, routed);
    }
}
