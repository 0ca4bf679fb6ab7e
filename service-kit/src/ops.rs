//! Operational endpoints: `/healthz`, `/readyz`, `/docs` + `/openapi.json` (`/metrics`: [`crate::metrics`]).

use std::sync::Arc;

use actix_web::{HttpResponse, get, web};
use futures_util::future::BoxFuture;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_swagger_ui::SwaggerUi;

/// Something `/readyz` must reach before the service takes traffic.
pub trait ReadinessCheck: Send + Sync {
    fn name(&self) -> &'static str;
    fn check(&self) -> BoxFuture<'_, anyhow::Result<()>>;
}

/// The checks `/readyz` runs, registered as app data, and the shutdown it
/// reports (`draining`, 503) from the signal on.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<Arc<dyn ReadinessCheck>>,
    shutdown: Option<crate::shutdown::Shutdown>,
}

impl Readiness {
    pub fn new(checks: Vec<Arc<dyn ReadinessCheck>>) -> Self {
        Self {
            checks,
            shutdown: None,
        }
    }

    /// Answers 503 `draining` once `shutdown` has begun.
    pub fn draining_with(mut self, shutdown: crate::shutdown::Shutdown) -> Self {
        self.shutdown = Some(shutdown);
        self
    }
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "ok", "checks": {"store": "ok"}}))]
pub struct HealthReport {
    pub status: &'static str,
    #[schema(value_type = Object)]
    pub checks: serde_json::Map<String, serde_json::Value>,
}

/// Liveness: the process answers.
///
/// No dependency is checked: use it as the Kubernetes liveness probe.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "The process is alive", body = HealthReport))
)]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthReport {
        status: "ok",
        checks: serde_json::Map::new(),
    })
}

/// Readiness: the store and dependencies answer, and the replica is not shutting down.
///
/// Each check is listed with `ok` or `unavailable` (its error goes to the
/// log, never to an anonymous caller); 503 while any fails (the Kubernetes
/// readiness probe: no traffic until the store answers). From SIGTERM on,
/// 503 with status `draining` and no checks: the replica still serves for
/// `SHUTDOWN_DELAY_SECS` while load balancers stop sending it traffic.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Every dependency answers", body = HealthReport),
        (status = 503, description = "A dependency does not answer, or the replica is shutting down (`draining`)", body = HealthReport)
    )
)]
#[get("/readyz")]
pub async fn readyz(readiness: web::Data<Readiness>) -> HttpResponse {
    if readiness.shutdown.as_ref().is_some_and(|s| s.is_draining()) {
        return HttpResponse::ServiceUnavailable().json(HealthReport {
            status: "draining",
            checks: serde_json::Map::new(),
        });
    }
    let mut checks = serde_json::Map::new();
    let mut ready = true;
    for check in &readiness.checks {
        let outcome = match check.check().await {
            Ok(()) => "ok",
            Err(err) => {
                ready = false;
                tracing::warn!(
                    check = check.name(),
                    error = format!("{err:#}"),
                    "not ready"
                );
                "unavailable"
            }
        };
        checks.insert(check.name().to_owned(), outcome.into());
    }
    let report = HealthReport {
        status: if ready { "ok" } else { "unavailable" },
        checks,
    };
    if ready {
        HttpResponse::Ok().json(report)
    } else {
        HttpResponse::ServiceUnavailable().json(report)
    }
}

/// The methods each route pattern answers, read from the OpenAPI document, for
/// the `Allow` header of a 405.
#[derive(Debug, Default, Clone)]
pub struct AllowedMethods(pub std::collections::BTreeMap<String, String>);

impl AllowedMethods {
    pub fn from_openapi(openapi: &utoipa::openapi::OpenApi) -> Self {
        let routes = openapi
            .paths
            .paths
            .iter()
            .map(|(pattern, item)| {
                let methods: Vec<&str> = [
                    ("GET", item.get.is_some()),
                    ("PUT", item.put.is_some()),
                    ("POST", item.post.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("PATCH", item.patch.is_some()),
                ]
                .into_iter()
                .filter_map(|(method, present)| present.then_some(method))
                .collect();
                (pattern.clone(), methods.join(", "))
            })
            .collect();
        Self(routes)
    }

    /// The `Allow` value for a matched pattern; undocumented routes (docs, metrics) are GET-only.
    pub fn for_pattern(&self, pattern: &str) -> String {
        self.0
            .get(pattern)
            .cloned()
            .unwrap_or_else(|| "GET".to_owned())
    }
}

/// Registers `/healthz`, `/readyz`, `/openapi.json` and the offline Swagger UI at `/docs/`.
pub fn configure(cfg: &mut web::ServiceConfig, openapi: utoipa::openapi::OpenApi) {
    cfg.app_data(web::Data::new(AllowedMethods::from_openapi(&openapi)));
    cfg.service(healthz)
        .service(readyz)
        .service(web::resource("/docs").route(web::get().to(|| async {
            HttpResponse::PermanentRedirect()
                .insert_header(("Location", "/docs/"))
                .finish()
        })))
        .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi));
}

/// Adds the `bearer` (JWT) security scheme that the v1 operations require.
pub struct BearerSecurity;

impl utoipa::Modify for BearerSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "HS256 JWT (or RS256/EdDSA when configured) with `sub`, `exp`, `iss`, `aud` and `scope` (`player` or `service`)",
                    ))
                    .build(),
            ),
        );
    }
}

/// Documents what every `/v1` operation shares: the `bearer` security
/// requirement and the error answers (401, 429, 500, 503; 400, 413 and 415
/// where there is a body) as problem+json, with `Retry-After` where it
/// applies, unless an operation documents its own.
pub struct StandardResponses;

impl utoipa::Modify for StandardResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{
            ContentBuilder, Object, Ref, RefOr, ResponseBuilder, Type, header::HeaderBuilder,
        };
        let problem = |description: &str, retry: bool| {
            let mut response = ResponseBuilder::new().description(description).content(
                shared_types::problem::CONTENT_TYPE,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            );
            if retry {
                response = response.header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(Some(Object::with_type(Type::Integer)))
                        .description(Some("Seconds to wait before retrying"))
                        .build(),
                );
            }
            RefOr::T(response.build())
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/v1") {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                use utoipa::openapi::security::SecurityRequirement;
                // `security(())` on a route: public (a key set, say), no token, no 401.
                let public = operation.security.as_ref().is_some_and(|requirements| {
                    requirements
                        .iter()
                        .all(|r| *r == SecurityRequirement::default())
                });
                // `security(("bearer" = []), ())`: a token or another credential
                // (an event-stream ticket), documented as the route says.
                let optional = operation.security.as_ref().is_some_and(|requirements| {
                    requirements.len() > 1
                        && requirements
                            .iter()
                            .any(|r| *r == SecurityRequirement::default())
                });
                let mut standard = Vec::new();
                if public {
                    operation.security = Some(Vec::new());
                } else if optional {
                    standard.push((
                        "401",
                        problem("Missing, expired or invalid credentials", false),
                    ));
                } else {
                    operation.security = Some(vec![SecurityRequirement::new(
                        "bearer",
                        Vec::<String>::new(),
                    )]);
                    standard.push((
                        "401",
                        problem("Missing, expired or invalid bearer token", false),
                    ));
                }
                standard.extend([
                    (
                        "429",
                        problem(
                            "Too many requests from this caller; retry after `Retry-After`",
                            true,
                        ),
                    ),
                    (
                        "500",
                        problem("Unexpected error (logged with the request id)", false),
                    ),
                    (
                        "503",
                        problem(
                            "The store is unreachable (nothing was changed); retry after `Retry-After`",
                            true,
                        ),
                    ),
                ]);
                if operation.request_body.is_some() {
                    standard.extend([
                        (
                            "400",
                            problem("Malformed or invalid body (unknown fields included)", false),
                        ),
                        ("413", problem("Body larger than 16 KiB", false)),
                        ("415", problem("Body not sent as `application/json`", false)),
                    ]);
                }
                for (status, response) in standard {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert(response);
                }
            }
        }
    }
}
