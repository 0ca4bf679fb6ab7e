//! The authorization matrix: every IM endpoint as anonymous, a stranger, a conversation partner
//! (they both posted in it: they talk), the owner and a `service` token.

use reqwest::{Method, Response, StatusCode, header};
use serde_json::Value;
use shared_types::problem::{Problem, ProblemCode};

use crate::helpers::{TestApp, assert_problem, spawn_app};

/// What one caller gets.
#[derive(Clone, Copy, Debug)]
enum Expect {
    Ok(StatusCode),
    Problem(StatusCode, ProblemCode),
}

const OK: Expect = Expect::Ok(StatusCode::OK);
const CREATED: Expect = Expect::Ok(StatusCode::CREATED);
const NO_CONTENT: Expect = Expect::Ok(StatusCode::NO_CONTENT);
const INVALID: Expect = Expect::Problem(StatusCode::BAD_REQUEST, ProblemCode::InvalidRequest);
const NOT_FOUND: Expect = Expect::Problem(StatusCode::NOT_FOUND, ProblemCode::NotFound);
const FORBIDDEN: Expect = Expect::Problem(StatusCode::FORBIDDEN, ProblemCode::Forbidden);

/// One endpoint. In `path` and `body`, `{owner}` is the user whose data it is (in an open
/// conversation with `{partner}`, in which both posted), `{conversation}` their conversation,
/// `{outsider}` a user in no conversation with them.
struct Endpoint {
    method: Method,
    path: &'static str,
    body: Option<&'static str>,
    /// A user sharing no conversation with the owner.
    stranger: Expect,
    /// The other participant of the owner's conversation.
    partner: Expect,
    owner: Expect,
    /// A `service` token (the game service's).
    service: Expect,
    /// Where the stranger's refusal must equal the one for an id that does not exist.
    unknown: Option<&'static str>,
}

const ENDPOINTS: [Endpoint; 13] = [
    Endpoint {
        method: Method::PUT,
        path: "/v1/presence",
        body: Some(r#"{"status": "busy"}"#),
        stranger: OK,
        partner: OK,
        owner: OK,
        service: OK,
        unknown: None,
    },
    Endpoint {
        method: Method::GET,
        path: "/v1/users/{owner}/presence",
        body: None,
        stranger: NOT_FOUND,
        partner: OK,
        owner: OK,
        service: OK,
        unknown: Some("/v1/users/nobody-{owner}/presence"),
    },
    Endpoint {
        method: Method::POST,
        path: "/v1/conversations",
        body: Some(r#"{"participants": ["{outsider}"]}"#),
        stranger: CREATED,
        partner: CREATED,
        owner: CREATED,
        service: CREATED,
        unknown: None,
    },
    Endpoint {
        method: Method::GET,
        path: "/v1/conversations",
        body: None,
        stranger: OK,
        partner: OK,
        owner: OK,
        service: OK,
        unknown: None,
    },
    Endpoint {
        method: Method::POST,
        path: "/v1/conversations/{conversation}/messages",
        body: Some(r#"{"text": "hello"}"#),
        stranger: NOT_FOUND,
        partner: CREATED,
        owner: CREATED,
        // A service posts `kind: game` messages only (game_messages.rs), wherever.
        service: FORBIDDEN,
        unknown: Some("/v1/conversations/00000000-0000-4000-8000-000000000000/messages"),
    },
    Endpoint {
        method: Method::GET,
        path: "/v1/conversations/{conversation}/messages",
        body: None,
        stranger: NOT_FOUND,
        partner: OK,
        owner: OK,
        service: NOT_FOUND,
        unknown: Some("/v1/conversations/00000000-0000-4000-8000-000000000000/messages"),
    },
    Endpoint {
        method: Method::POST,
        path: "/v1/conversations/{conversation}/close",
        body: None,
        stranger: NOT_FOUND,
        partner: OK,
        owner: OK,
        service: NOT_FOUND,
        unknown: Some("/v1/conversations/00000000-0000-4000-8000-000000000000/close"),
    },
    Endpoint {
        method: Method::GET,
        path: "/v1/users/{owner}/partners",
        body: None,
        stranger: FORBIDDEN,
        partner: FORBIDDEN,
        owner: OK,
        service: OK,
        unknown: Some("/v1/users/nobody-{owner}/partners"),
    },
    // Presence both ways: the game service's, never a player's.
    Endpoint {
        method: Method::PUT,
        path: "/v1/activity",
        body: Some(
            r#"{"reports": [{"user_id": "{outsider}", "session_id": "0b9b5ce1-55a3-4b8c-a1f5-6d1c3b2a9e10", "mode": "default", "playing": true, "seq": 1, "at": "2026-11-23T10:00:00Z"}]}"#,
        ),
        stranger: FORBIDDEN,
        partner: FORBIDDEN,
        owner: FORBIDDEN,
        service: NO_CONTENT,
        unknown: None,
    },
    Endpoint {
        method: Method::GET,
        path: "/v1/presence/changes",
        body: None,
        stranger: FORBIDDEN,
        partner: FORBIDDEN,
        owner: FORBIDDEN,
        service: OK,
        unknown: None,
    },
    // Blocks are the caller's own: anyone may block anyone but themselves; not a service.
    Endpoint {
        method: Method::PUT,
        path: "/v1/blocks/{owner}",
        body: None,
        stranger: NO_CONTENT,
        partner: NO_CONTENT,
        owner: INVALID,
        service: FORBIDDEN,
        unknown: None,
    },
    Endpoint {
        method: Method::DELETE,
        path: "/v1/blocks/{owner}",
        body: None,
        stranger: NO_CONTENT,
        partner: NO_CONTENT,
        owner: NO_CONTENT,
        service: FORBIDDEN,
        unknown: None,
    },
    Endpoint {
        method: Method::GET,
        path: "/v1/blocks",
        body: None,
        stranger: OK,
        partner: OK,
        owner: OK,
        service: FORBIDDEN,
        unknown: None,
    },
];

/// The users and conversation of one row.
struct Cast {
    owner: String,
    partner: String,
    stranger: String,
    outsider: String,
    conversation: String,
}

impl Cast {
    fn fill(&self, template: &str) -> String {
        template
            .replace("{owner}", &self.owner)
            .replace("{partner}", &self.partner)
            .replace("{outsider}", &self.outsider)
            .replace("{conversation}", &self.conversation)
    }
}

async fn call(
    app: &TestApp,
    endpoint: &Endpoint,
    cast: &Cast,
    path: &str,
    token: Option<&str>,
) -> anyhow::Result<Response> {
    let mut request = app
        .client
        .request(endpoint.method.clone(), app.url(&cast.fill(path)));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = endpoint.body {
        request = request
            .header(header::CONTENT_TYPE, "application/json")
            .body(cast.fill(body));
    }
    Ok(request.send().await?)
}

/// Checks `response` against `expect`; returns the problem or the JSON body.
async fn check(
    response: Response,
    expect: Expect,
    what: &str,
) -> anyhow::Result<Result<Value, Problem>> {
    match expect {
        Expect::Ok(status) => {
            let actual = response.status();
            let body = response.text().await?;
            assert_eq!(actual, status, "{what}: {body}");
            if status == StatusCode::NO_CONTENT {
                assert!(body.is_empty(), "{what}: a 204 has no body");
                return Ok(Ok(Value::Null));
            }
            Ok(Ok(serde_json::from_str(&body)?))
        }
        Expect::Problem(status, code) => Ok(Err(assert_problem(response, status, code)
            .await
            .map_err(|e| e.context(what.to_owned()))?)),
    }
}

/// Everything the owner can see of their own data.
async fn owner_view(app: &TestApp, cast: &Cast) -> anyhow::Result<Vec<Value>> {
    let token = app.token(&cast.owner)?;
    let mut view = Vec::new();
    for path in [
        format!("/v1/users/{}/presence", cast.owner),
        "/v1/conversations".to_owned(),
        format!("/v1/conversations/{}/messages", cast.conversation),
        format!("/v1/users/{}/partners", cast.owner),
        "/v1/blocks".to_owned(),
    ] {
        let response = app.get(&path, &token).await?;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        view.push(response.json().await?);
    }
    Ok(view)
}

/// The ids of the conversations in a `ConversationList` body.
fn conversation_ids(list: &Value) -> Vec<String> {
    list["conversations"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|c| c["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn every_endpoint_answers_each_caller_as_the_contract_says_and_refusals_change_nothing()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    for (i, endpoint) in ENDPOINTS.iter().enumerate() {
        let what = format!("{} {}", endpoint.method, endpoint.path);
        let mut cast = Cast {
            owner: format!("owner{i}"),
            partner: format!("pal{i}"),
            stranger: format!("stranger{i}"),
            outsider: format!("outsider{i}"),
            conversation: String::new(),
        };
        app.all_available(&[&cast.owner, &cast.partner, &cast.stranger])
            .await?;
        cast.conversation = app
            .chat(&cast.owner, &[&cast.partner])
            .await?
            .id
            .to_string();
        // The stranger has a conversation of their own, with someone else; and one with the
        // owner that the owner never answered (talking takes two).
        app.chat(&cast.stranger, &[&cast.outsider]).await?;
        app.open_conversation(&cast.stranger, &[&cast.owner])
            .await?;
        // The owner blocks someone, so that their list of blocks is not empty.
        app.block(&cast.owner, &cast.outsider).await?;
        let before = owner_view(&app, &cast).await?;

        // Anonymous.
        let response = call(&app, endpoint, &cast, endpoint.path, None).await?;
        assert!(
            response.headers().contains_key(header::WWW_AUTHENTICATE),
            "{what}"
        );
        assert_problem(
            response,
            StatusCode::UNAUTHORIZED,
            ProblemCode::Unauthorized,
        )
        .await?;

        // A stranger; their refusal says nothing an unknown id would not.
        let stranger = app.token(&cast.stranger)?;
        let response = call(&app, endpoint, &cast, endpoint.path, Some(&stranger)).await?;
        let theirs = check(
            response,
            endpoint.stranger,
            &format!("{what} as a stranger"),
        )
        .await?;
        if let (Some(unknown), Err(theirs)) = (endpoint.unknown, &theirs) {
            let response = call(&app, endpoint, &cast, unknown, Some(&stranger)).await?;
            let unknown = check(response, endpoint.stranger, &format!("{what}, unknown id"))
                .await?
                .err();
            assert_eq!(
                unknown.as_ref(),
                Some(theirs),
                "{what}: the answer does not hint that the resource exists"
            );
        }
        if let (Ok(body), "/v1/conversations") = (&theirs, endpoint.path)
            && endpoint.method == Method::GET
        {
            assert!(
                !conversation_ids(body).contains(&cast.conversation),
                "{what}"
            );
        }

        // A service token.
        let service = app.service_token()?;
        let response = call(&app, endpoint, &cast, endpoint.path, Some(&service)).await?;
        let served = check(response, endpoint.service, &format!("{what} as a service")).await?;
        if let Ok(body) = &served {
            if endpoint.path == "/v1/presence" {
                assert_eq!(
                    body["user_id"], "game-service",
                    "a service sets its own presence"
                );
            }
            if endpoint.path == "/v1/conversations" && endpoint.method == Method::GET {
                assert!(
                    !conversation_ids(body).contains(&cast.conversation),
                    "{what}"
                );
            }
        }

        assert_eq!(
            owner_view(&app, &cast).await?,
            before,
            "{what}: the stranger's and the service's calls changed nothing of the owner's"
        );

        // The partner, then the owner.
        for (who, expect) in [
            (&cast.partner, endpoint.partner),
            (&cast.owner, endpoint.owner),
        ] {
            let token = app.token(who)?;
            let response = call(&app, endpoint, &cast, endpoint.path, Some(&token)).await?;
            let body = check(response, expect, &format!("{what} as {who}")).await?;
            if let Ok(body) = body {
                match endpoint.path {
                    "/v1/presence" => assert_eq!(body["user_id"], who.as_str(), "{what}"),
                    "/v1/users/{owner}/presence" | "/v1/users/{owner}/partners" => {
                        assert_eq!(body["user_id"], cast.owner.as_str(), "{what}");
                    }
                    "/v1/conversations" if endpoint.method == Method::GET => {
                        assert!(
                            conversation_ids(&body).contains(&cast.conversation),
                            "{what}"
                        );
                    }
                    "/v1/conversations/{conversation}/close" => {
                        assert_eq!(body["closed"], true, "{what}");
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}
