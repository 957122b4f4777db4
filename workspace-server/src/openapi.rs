//! The OpenAPI 3.1 document, generated from the handlers and DTOs.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

/// The document's fixed parts; `routes::app` adds every path as it
/// registers the route.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "yoi workspace server",
        description = "Runtimes and their Workers, routed by runtime_id and worker_id."
    ),
    components(schemas(yoi_runtime_api::Problem))
)]
struct ApiDoc;

/// The document before any path is added.
pub(crate) fn base() -> Document {
    ApiDoc::openapi()
}

/// Completes the collected document: every operation gets the error
/// responses it can give, and with `token_required` every `/api` operation
/// but the sign-in routes declares the bearer and session-cookie schemes and
/// a 401 response (without, neither, since the server then accepts anyone).
pub(crate) fn finish(mut doc: Document, token_required: bool) -> Document {
    ErrorResponses.modify(&mut doc);
    if token_required {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::session::COOKIE_NAME,
            ))),
        );
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        if !path.starts_with("/api/") || path == "/api/session" || !token_required {
            continue;
        }
        let operations = [
            item.get.as_mut(),
            item.post.as_mut(),
            item.patch.as_mut(),
            item.delete.as_mut(),
        ];
        for operation in operations.into_iter().flatten() {
            operation.security = Some(vec![
                SecurityRequirement::new("bearer", Vec::<String>::new()),
                SecurityRequirement::new("session", Vec::<String>::new()),
            ]);
            operation.responses.responses.insert(
                "401".to_owned(),
                problem("Missing or wrong bearer token").into(),
            );
            operation.responses.responses.insert(
                "429".to_owned(),
                problem("Too many wrong tokens from this address; the token was not checked")
                    .into(),
            );
        }
    }
    doc
}

/// Adds the error responses every operation can give, so that no status the
/// server sends is undocumented.
struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut Document) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let is_api = path.starts_with("/api/");
            for operation in [item.get.as_mut()].into_iter().flatten() {
                add_errors(operation, is_api, false);
            }
            let changing = [
                item.post.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ];
            for operation in changing.into_iter().flatten() {
                add_errors(operation, is_api, true);
            }
        }
    }
}

fn problem(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            yoi_runtime_api::PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

fn add_errors(operation: &mut Operation, is_api: bool, changes_state: bool) {
    let mut statuses = vec![
        ("500", "Internal error"),
        (
            "403",
            "A Host this server does not answer, or a cross-site request",
        ),
    ];
    if changes_state {
        statuses.push(("415", "A content type other than JSON"));
    }
    if is_api {
        statuses.extend([
            ("400", "Invalid request, id, or limit"),
            ("404", "Unknown runtime or worker"),
            ("501", "The runtime does not support this operation"),
            ("503", "The runtime is unavailable"),
        ]);
        if operation.request_body.is_some() {
            statuses.push(("413", "Body too large"));
        }
    }
    for (status, description) in statuses {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| problem(description).into());
    }
}
