//! Browser sign-in: `/api/session`. Reachable without credentials.

use crate::json::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use yoi_runtime_api::{Problem, RuntimeError};

use crate::auth::{bearer_is_valid, guess};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::session::{arrived_over_https, expired_cookie};
use crate::state::AppState;
use crate::throttle::ClientAddress;
use crate::views::{SessionView, SignIn};

/// Whether this server needs a token, and whether the request has a valid
/// one or a session.
#[utoipa::path(
    get,
    path = "/api/session",
    tag = "session",
    responses((status = 200, body = SessionView))
)]
pub(crate) async fn get_session(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
) -> Json<SessionView> {
    let token_required = state.token().is_some();
    // An address out of attempts has its bearer token ignored here, not
    // compared: the answer then says nothing about it.
    let signed_in = !token_required
        || matches!(bearer_is_valid(&state, client, &headers), Ok(Some(true)))
        || state.sessions().is_signed_in(&headers);
    Json(SessionView {
        token_required,
        signed_in,
    })
}

/// Signs in: exchanges the token for an `HttpOnly; SameSite=Strict` session
/// cookie. Without a configured token there is nothing to exchange and no
/// cookie is set.
#[utoipa::path(
    post,
    path = "/api/session",
    tag = "session",
    request_body = SignIn,
    responses(
        (status = 204, description = "Signed in; the cookie is in Set-Cookie"),
        (status = 401, description = "Wrong token", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong tokens from this address; the token was not checked", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn create_session(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    ApiJson(sign_in): ApiJson<SignIn>,
) -> Result<Response, ApiError> {
    let Some(token) = state.token() else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    if !guess(&state, client, &sign_in.token, token)? {
        return Err(RuntimeError::Unauthorized.into());
    }
    let cookie = state
        .sessions()
        .open(arrived_over_https(&headers))
        .map_err(|err| RuntimeError::internal("no randomness for a session", err))?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// Signs out: ends the cookie's session and removes the cookie.
#[utoipa::path(
    delete,
    path = "/api/session",
    tag = "session",
    responses((status = 204, description = "Signed out"))
)]
pub(crate) async fn delete_session(State(state): State<AppState>, headers: HeaderMap) -> Response {
    state.sessions().close(&headers);
    (
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            expired_cookie(arrived_over_https(&headers)),
        )],
    )
        .into_response()
}
