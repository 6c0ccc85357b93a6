//! Every route hako's API listener serves, in one table: it builds the router
//! ([`super::router_with`]) and is what [`routes`] lists, so a route cannot exist without an
//! entry here — nor without its [`Access`]. The API's tests walk this list with another
//! tenant's token: a route added here without a case there fails them.

use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, patch, post, put};

use super::{Shared, tenants};
use crate::ui;
use std::sync::Arc;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, no token (`/v1/health`, the dashboard's login form and style sheet).
    Open,
    /// A token that may use the API (the admin's or a tenant's; the metrics token gets 403);
    /// what it reads and changes is limited to what the caller sees (a tenant: its own apps;
    /// another tenant's are answered as missing ones).
    Token,
    /// The admin token only; a tenant's token gets 403.
    Admin,
    /// Any valid token, the metrics token too (`GET /metrics`); the answer holds what the
    /// caller sees (a tenant: its own apps' figures, not the node's).
    Scrape,
    /// A dashboard page: the login cookie must hold a token that may use the API (else a
    /// redirect to the login form); the page shows what that caller sees.
    Session,
}

/// One route: method, path (axum's form, `{name}` for a segment) and who may call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// The HTTP method.
    pub method: Method,
    /// The path, e.g. `/v1/apps/{name}/logs`.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

/// Every route of the API.
pub fn routes() -> Vec<RouteInfo> {
    table(super::DEFAULT_MAX_UPLOAD)
        .into_iter()
        .map(|(info, _)| info)
        .collect()
}

type Handler = MethodRouter<Arc<Shared>>;

/// The routes with their handlers; `max_upload` bounds a release upload's body.
pub(super) fn table(max_upload: usize) -> Vec<(RouteInfo, Handler)> {
    use Access::{Admin, Open, Scrape, Session, Token};
    let r = |method: Method, path: &'static str, access: Access, handler: Handler| {
        (
            RouteInfo {
                method,
                path,
                access,
            },
            handler,
        )
    };
    vec![
        r(Method::GET, "/v1/health", Open, get(super::health)),
        r(Method::GET, "/v1/whoami", Token, get(super::whoami)),
        r(Method::GET, "/v1/apps", Token, get(super::list_apps)),
        r(Method::POST, "/v1/apps", Token, post(super::create_app)),
        r(Method::GET, "/v1/apps/{name}", Token, get(super::show_app)),
        r(
            Method::PATCH,
            "/v1/apps/{name}",
            Token,
            patch(super::update_app),
        ),
        r(
            Method::DELETE,
            "/v1/apps/{name}",
            Token,
            delete(super::delete_app),
        ),
        r(
            Method::GET,
            "/v1/apps/{name}/releases",
            Token,
            get(super::list_releases),
        ),
        r(
            Method::POST,
            "/v1/apps/{name}/releases",
            Token,
            post(super::deploy).layer(DefaultBodyLimit::max(max_upload)),
        ),
        r(
            Method::POST,
            "/v1/apps/{name}/rollout",
            Token,
            post(super::rollout),
        ),
        r(
            Method::GET,
            "/v1/apps/{name}/events",
            Token,
            get(super::events),
        ),
        r(
            Method::GET,
            "/v1/apps/{name}/metrics",
            Token,
            get(super::metrics),
        ),
        r(
            Method::GET,
            "/v1/apps/{name}/checkpoint",
            Token,
            get(super::checkpoint),
        ),
        r(Method::GET, "/v1/apps/{name}/slo", Token, get(super::slo)),
        r(Method::GET, "/v1/apps/{name}/logs", Token, get(super::logs)),
        r(
            Method::GET,
            "/v1/apps/{name}/cert",
            Token,
            get(super::show_cert),
        ),
        r(
            Method::PUT,
            "/v1/apps/{name}/cert",
            Token,
            put(super::set_cert),
        ),
        r(
            Method::DELETE,
            "/v1/apps/{name}/cert",
            Token,
            delete(super::remove_cert),
        ),
        r(Method::GET, "/v1/instances", Token, get(super::instances)),
        r(Method::GET, "/v1/nodes", Admin, get(super::list_nodes)),
        r(
            Method::POST,
            "/v1/nodes/{name}/{state}",
            Admin,
            post(super::set_node_state),
        ),
        r(Method::GET, "/v1/tenants", Admin, get(tenants::list)),
        r(Method::POST, "/v1/tenants", Admin, post(tenants::create)),
        r(
            Method::GET,
            "/v1/tenants/{tenant}",
            Token,
            get(tenants::show),
        ),
        r(
            Method::PATCH,
            "/v1/tenants/{tenant}",
            Admin,
            patch(tenants::update),
        ),
        r(
            Method::DELETE,
            "/v1/tenants/{tenant}",
            Admin,
            delete(tenants::remove),
        ),
        r(
            Method::GET,
            "/v1/tenants/{tenant}/events",
            Token,
            get(tenants::events),
        ),
        r(
            Method::GET,
            "/v1/tenants/{tenant}/tokens",
            Admin,
            get(tenants::tokens),
        ),
        r(
            Method::POST,
            "/v1/tenants/{tenant}/tokens",
            Admin,
            post(tenants::create_token),
        ),
        r(
            Method::DELETE,
            "/v1/tenants/{tenant}/tokens/{token}",
            Admin,
            delete(tenants::revoke_token),
        ),
        r(Method::GET, "/metrics", Scrape, get(super::prometheus)),
        r(Method::GET, "/ui", Open, get(ui::to_overview)),
        r(Method::GET, "/ui/", Session, get(ui::overview)),
        r(Method::GET, "/ui/apps/{name}", Session, get(ui::app_page)),
        r(Method::GET, "/ui/login", Open, get(ui::login_form)),
        r(Method::POST, "/ui/login", Open, post(ui::login)),
        r(Method::POST, "/ui/logout", Open, post(ui::logout)),
        r(Method::GET, "/ui/style.css", Open, get(ui::style)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_method_and_path_and_only_health_and_the_login_are_open() {
        let all = routes();
        let mut keys: Vec<(String, &str)> =
            all.iter().map(|r| (r.method.to_string(), r.path)).collect();
        keys.sort();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "a method and path listed twice");
        let open: Vec<&str> = all
            .iter()
            .filter(|r| r.access == Access::Open)
            .map(|r| r.path)
            .collect();
        assert_eq!(
            open,
            [
                "/v1/health",
                "/ui",
                "/ui/login",
                "/ui/login",
                "/ui/logout",
                "/ui/style.css"
            ]
        );
        for r in &all {
            let expected = match r.path {
                "/metrics" => vec![Access::Scrape],
                p if p.starts_with("/ui") => vec![Access::Open, Access::Session],
                p if p.starts_with("/v1/") => vec![Access::Open, Access::Token, Access::Admin],
                p => panic!("route {p} is neither the API, the dashboard nor /metrics"),
            };
            assert!(expected.contains(&r.access), "{r:?}");
        }
    }
}
