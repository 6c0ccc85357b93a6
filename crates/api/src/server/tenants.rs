//! The handlers of `/v1/tenants…`: parse the request into a [`TenantAction`] and run it as
//! the caller (the engine refuses what only the admin may).

use std::collections::HashMap;

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::response::Response;

use super::extract::Body;
use super::{S, run};
use crate::action::Action;
use crate::action::tenant::{self, TenantAction, check_tenant, check_token};
use crate::caller::Caller;
use crate::error::ApiError;

type Segments = Result<Path<HashMap<String, String>>, PathRejection>;

/// The `{tenant}` (and `{token}`) segments, checked.
fn segment(p: &Segments, key: &str) -> Result<String, ApiError> {
    let Ok(Path(map)) = p else {
        return Err(ApiError::BadRequest(
            "bad path: check the tenant's name".into(),
        ));
    };
    let raw = map
        .get(key)
        .ok_or_else(|| ApiError::BadRequest(format!("bad path: no {key}")))?;
    match key {
        "token" => check_token(raw),
        _ => check_tenant(raw),
    }
}

fn act(action: Result<TenantAction, ApiError>) -> Result<Action, ApiError> {
    action.map(Action::Tenants)
}

pub(super) async fn list(axum::extract::State(s): S, caller: Caller) -> Response {
    run(&s, &caller, Ok(Action::Tenants(TenantAction::List))).await
}

pub(super) async fn create(axum::extract::State(s): S, caller: Caller, body: Body) -> Response {
    let action = body.0.and_then(|b| tenant::parse_create(&b));
    run(&s, &caller, act(action)).await
}

pub(super) async fn show(axum::extract::State(s): S, caller: Caller, p: Segments) -> Response {
    let action = segment(&p, "tenant").map(TenantAction::Show);
    run(&s, &caller, act(action)).await
}

pub(super) async fn update(
    axum::extract::State(s): S,
    caller: Caller,
    p: Segments,
    body: Body,
) -> Response {
    let action = segment(&p, "tenant").and_then(|name| {
        let patch = tenant::parse_quota_patch(&body.0?)?;
        Ok(TenantAction::Update { name, patch })
    });
    run(&s, &caller, act(action)).await
}

pub(super) async fn remove(axum::extract::State(s): S, caller: Caller, p: Segments) -> Response {
    let action = segment(&p, "tenant").map(TenantAction::Delete);
    run(&s, &caller, act(action)).await
}

pub(super) async fn events(
    axum::extract::State(s): S,
    caller: Caller,
    p: Segments,
    q: super::Params,
) -> Response {
    let action = segment(&p, "tenant").and_then(|name| {
        let q = super::params(q)?;
        let limit = crate::action::parse_count(
            "limit",
            q.get("limit").map(String::as_str),
            crate::action::DEFAULT_EVENTS,
            crate::action::MAX_EVENTS,
        )?;
        Ok(TenantAction::Events { name, limit })
    });
    run(&s, &caller, act(action)).await
}

pub(super) async fn tokens(axum::extract::State(s): S, caller: Caller, p: Segments) -> Response {
    let action = segment(&p, "tenant").map(TenantAction::ListTokens);
    run(&s, &caller, act(action)).await
}

pub(super) async fn create_token(
    axum::extract::State(s): S,
    caller: Caller,
    p: Segments,
    body: Body,
) -> Response {
    let action = segment(&p, "tenant").and_then(|tenant| {
        let name = tenant::parse_new_token(&body.0?)?;
        Ok(TenantAction::CreateToken { tenant, name })
    });
    run(&s, &caller, act(action)).await
}

pub(super) async fn revoke_token(
    axum::extract::State(s): S,
    caller: Caller,
    p: Segments,
) -> Response {
    let action = segment(&p, "tenant").and_then(|tenant| {
        Ok(TenantAction::RevokeToken {
            tenant,
            name: segment(&p, "token")?,
        })
    });
    run(&s, &caller, act(action)).await
}
