//! Every `/v1` route: its method and its path template (the OpenAPI document's name for
//! it), and how a request's path finds one. A path that has routes, asked with another
//! method, is a 405; any other path a 404.

use hyper::Method;

use crate::web::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    OpenApi,
    GetEvent,
    CreateCustomer,
    ListCustomers,
    GetCustomer,
    UpdateCustomer,
    DeleteCustomer,
    Usage,
    Invoice,
    Timeline,
    GiveReward,
    GetGrant,
    CreateEntity,
    ListEntities,
    GetEntity,
    DeleteEntity,
    Check,
    Track,
    EditBalance,
    Attach,
    GetAttach,
    Cancel,
    Uncancel,
    Quantity,
    GetPlanChange,
}

/// The routes, with their method and template.
pub(super) const ROUTES: &[(Route, Method, &str)] = &[
    (Route::OpenApi, Method::GET, "/v1/openapi.json"),
    (Route::GetEvent, Method::GET, "/v1/events/{id}"),
    (Route::CreateCustomer, Method::POST, "/v1/customers"),
    (Route::ListCustomers, Method::GET, "/v1/customers"),
    (Route::GetCustomer, Method::GET, "/v1/customers/{id}"),
    (Route::UpdateCustomer, Method::PATCH, "/v1/customers/{id}"),
    (Route::DeleteCustomer, Method::DELETE, "/v1/customers/{id}"),
    (Route::Usage, Method::GET, "/v1/customers/{id}/usage"),
    (
        Route::Invoice,
        Method::GET,
        "/v1/customers/{id}/invoices/{invoice_id}",
    ),
    (Route::Timeline, Method::GET, "/v1/customers/{id}/timeline"),
    (
        Route::GiveReward,
        Method::POST,
        "/v1/customers/{id}/rewards",
    ),
    (
        Route::GetGrant,
        Method::GET,
        "/v1/customers/{id}/rewards/{grant_id}",
    ),
    (
        Route::CreateEntity,
        Method::POST,
        "/v1/customers/{id}/entities",
    ),
    (
        Route::ListEntities,
        Method::GET,
        "/v1/customers/{id}/entities",
    ),
    (
        Route::GetEntity,
        Method::GET,
        "/v1/customers/{id}/entities/{entity_id}",
    ),
    (
        Route::DeleteEntity,
        Method::DELETE,
        "/v1/customers/{id}/entities/{entity_id}",
    ),
    (Route::Check, Method::POST, "/v1/check"),
    (Route::Track, Method::POST, "/v1/track"),
    (Route::EditBalance, Method::POST, "/v1/balances"),
    (Route::Attach, Method::POST, "/v1/attach"),
    (Route::GetAttach, Method::GET, "/v1/attach/{id}"),
    (Route::Cancel, Method::POST, "/v1/cancel"),
    (Route::Uncancel, Method::POST, "/v1/uncancel"),
    (Route::Quantity, Method::POST, "/v1/quantity"),
    (Route::GetPlanChange, Method::GET, "/v1/plan_changes/{id}"),
];

/// The template of the segments after `v1`, if any route has that shape.
pub(super) fn template(path: &[&str]) -> Option<&'static str> {
    Some(match path {
        ["openapi.json"] => "/v1/openapi.json",
        ["events", _] => "/v1/events/{id}",
        ["customers"] => "/v1/customers",
        ["customers", _] => "/v1/customers/{id}",
        ["customers", _, "usage"] => "/v1/customers/{id}/usage",
        ["customers", _, "invoices", _] => "/v1/customers/{id}/invoices/{invoice_id}",
        ["customers", _, "timeline"] => "/v1/customers/{id}/timeline",
        ["customers", _, "rewards"] => "/v1/customers/{id}/rewards",
        ["customers", _, "rewards", _] => "/v1/customers/{id}/rewards/{grant_id}",
        ["customers", _, "entities"] => "/v1/customers/{id}/entities",
        ["customers", _, "entities", _] => "/v1/customers/{id}/entities/{entity_id}",
        ["check"] => "/v1/check",
        ["track"] => "/v1/track",
        ["balances"] => "/v1/balances",
        ["attach"] => "/v1/attach",
        ["attach", _] => "/v1/attach/{id}",
        ["cancel"] => "/v1/cancel",
        ["uncancel"] => "/v1/uncancel",
        ["quantity"] => "/v1/quantity",
        ["plan_changes", _] => "/v1/plan_changes/{id}",
        _ => return None,
    })
}

/// The route for `method` on the segments after `v1`.
pub(super) fn resolve(method: &Method, path: &[&str]) -> Result<Route, ApiError> {
    let template = template(path).ok_or(ApiError::NoRoute)?;
    let mut allowed = Vec::new();
    for (route, m, t) in ROUTES {
        if *t == template {
            if m == method {
                return Ok(*route);
            }
            allowed.push(m.as_str());
        }
    }
    Err(ApiError::method_not_allowed(&allowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path of `template`, each `{param}` filled in.
    fn sample(template: &str) -> Vec<&str> {
        template
            .trim_start_matches("/v1/")
            .split('/')
            .map(|s| if s.starts_with('{') { "x" } else { s })
            .collect()
    }

    #[test]
    fn every_route_is_found_by_its_own_path_and_method_only() {
        for (route, method, template) in ROUTES {
            let path = sample(template);
            assert_eq!(resolve(method, &path).unwrap(), *route, "{template}");
            assert!(
                matches!(
                    resolve(&Method::PUT, &path),
                    Err(ApiError::MethodNotAllowed { .. })
                ),
                "{template}"
            );
        }
        assert!(matches!(
            resolve(&Method::GET, &["customers", "x", "nothing"]),
            Err(ApiError::NoRoute)
        ));
    }
}
