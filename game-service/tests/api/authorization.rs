//! The authorization matrix: every game endpoint as anonymous, another player, the owner and a `service` token.

use reqwest::{Method, Response, StatusCode, header};
use shared_types::{
    game::{PlayerState, PromptKind, Reason, Session, SessionKind, SessionState},
    problem::{Problem, ProblemCode},
};
use uuid::Uuid;

use crate::helpers::{TestApp, assert_problem, expect_json, spawn_app};

/// What the owner has before the matrix runs: `{id}` in the path is its id.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fixture {
    /// Nothing: the endpoint is about the caller only.
    Nothing,
    /// An open invite prompt (the owner chats with a partner).
    Prompt,
    /// A live solo session (the owner chats with nobody).
    Session,
}

/// What another player gets.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stranger {
    /// 200 with the caller's own state: the endpoint has no id.
    OwnState,
    /// 404, exactly as for an id that does not exist.
    NotFound,
}

struct Endpoint {
    method: Method,
    path: &'static str,
    fixture: Fixture,
    stranger: Stranger,
}

const ENDPOINTS: [Endpoint; 7] = [
    Endpoint {
        method: Method::POST,
        path: "/v1/connect",
        fixture: Fixture::Nothing,
        stranger: Stranger::OwnState,
    },
    Endpoint {
        method: Method::GET,
        path: "/v1/me",
        fixture: Fixture::Session,
        stranger: Stranger::OwnState,
    },
    Endpoint {
        method: Method::POST,
        path: "/v1/prompts/{id}/accept",
        fixture: Fixture::Prompt,
        stranger: Stranger::NotFound,
    },
    Endpoint {
        method: Method::POST,
        path: "/v1/prompts/{id}/reject",
        fixture: Fixture::Prompt,
        stranger: Stranger::NotFound,
    },
    Endpoint {
        method: Method::GET,
        path: "/v1/sessions/{id}",
        fixture: Fixture::Session,
        stranger: Stranger::NotFound,
    },
    Endpoint {
        method: Method::POST,
        path: "/v1/sessions/{id}/leave",
        fixture: Fixture::Session,
        stranger: Stranger::NotFound,
    },
    Endpoint {
        method: Method::GET,
        path: "/v1/events",
        fixture: Fixture::Nothing,
        stranger: Stranger::OwnState,
    },
];

/// Sets up the owner's fixture; returns the id it names.
async fn prepare(
    app: &TestApp,
    fixture: Fixture,
    owner: &str,
    partner: &str,
) -> anyhow::Result<Uuid> {
    match fixture {
        Fixture::Nothing => Ok(Uuid::nil()),
        Fixture::Prompt => {
            app.chatting(&[owner, partner]).await?;
            let state = app.connect(owner).await?;
            let prompt = state
                .prompt
                .ok_or_else(|| anyhow::anyhow!("an invite prompt"))?;
            assert_eq!(prompt.kind, PromptKind::Invite);
            Ok(prompt.id)
        }
        Fixture::Session => {
            let state = app.connect(owner).await?;
            let session = state
                .session
                .ok_or_else(|| anyhow::anyhow!("a solo session"))?;
            assert_eq!(session.reason, Some(Reason::NoPartner));
            Ok(session.id)
        }
    }
}

async fn call(
    app: &TestApp,
    endpoint: &Endpoint,
    id: Uuid,
    token: Option<&str>,
) -> anyhow::Result<Response> {
    let path = endpoint.path.replace("{id}", &id.to_string());
    Ok(app
        .request(endpoint.method.clone(), &path, token)
        .send()
        .await?)
}

fn assert_event_stream(response: &Response, who: &str) {
    assert_eq!(response.status(), StatusCode::OK, "events of {who}");
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("text/event-stream"),
        "events of {who}: {content_type}"
    );
}

/// The owner's successful call, checked endpoint by endpoint.
async fn assert_owner_succeeds(
    endpoint: &Endpoint,
    response: Response,
    owner: &str,
    id: Uuid,
) -> anyhow::Result<()> {
    let what = format!("{} {} as the owner", endpoint.method, endpoint.path);
    match endpoint.path {
        "/v1/events" => assert_event_stream(&response, owner),
        "/v1/sessions/{id}" => {
            let session: Session = expect_json(response, StatusCode::OK).await?;
            assert_eq!(session.id, id, "{what}");
            assert_eq!(session.host.as_str(), owner, "{what}");
        }
        path => {
            let state: PlayerState = expect_json(response, StatusCode::OK).await?;
            assert_eq!(state.player_id.as_str(), owner, "{what}");
            match path {
                "/v1/prompts/{id}/accept" => {
                    let session = state
                        .session
                        .ok_or_else(|| anyhow::anyhow!("{what}: a lobby"))?;
                    assert_eq!(
                        (session.kind, session.state),
                        (SessionKind::Multiplayer, SessionState::Waiting),
                        "{what}"
                    );
                }
                "/v1/prompts/{id}/reject" => {
                    let session = state
                        .session
                        .ok_or_else(|| anyhow::anyhow!("{what}: solo"))?;
                    assert_eq!(session.reason, Some(Reason::Rejected), "{what}");
                }
                "/v1/sessions/{id}/leave" => assert!(state.session.is_none(), "{what}"),
                "/v1/me" => assert_eq!(state.session.map(|s| s.id), Some(id), "{what}"),
                _ => assert!(state.session.is_some() || state.prompt.is_some(), "{what}"),
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn every_endpoint_answers_anonymous_401_service_403_stranger_404_or_own_state_and_owner_200()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    for (i, endpoint) in ENDPOINTS.iter().enumerate() {
        let what = format!("{} {}", endpoint.method, endpoint.path);
        let (owner, partner, other) = (format!("owner{i}"), format!("pal{i}"), format!("other{i}"));
        let id = prepare(&app, endpoint.fixture, &owner, &partner).await?;
        let before = app.me(&owner).await?;

        // Anonymous: 401 with a Bearer challenge.
        let response = call(&app, endpoint, id, None).await?;
        assert_eq!(
            response
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok()),
            Some("Bearer"),
            "{what} anonymous"
        );
        assert_problem(
            response,
            StatusCode::UNAUTHORIZED,
            ProblemCode::Unauthorized,
        )
        .await?;

        // A service token, even one naming the owner: these endpoints are for players.
        let response = call(&app, endpoint, id, Some(&app.service_token(&owner)?)).await?;
        assert_problem(response, StatusCode::FORBIDDEN, ProblemCode::Forbidden).await?;

        // Another player.
        let response = call(&app, endpoint, id, Some(&app.token(&other)?)).await?;
        match endpoint.stranger {
            Stranger::NotFound => {
                let theirs =
                    assert_problem(response, StatusCode::NOT_FOUND, ProblemCode::NotFound).await?;
                let unknown =
                    call(&app, endpoint, Uuid::new_v4(), Some(&app.token(&owner)?)).await?;
                let unknown: Problem =
                    assert_problem(unknown, StatusCode::NOT_FOUND, ProblemCode::NotFound).await?;
                assert_eq!(
                    theirs, unknown,
                    "{what}: another player's id answers exactly like an unknown one"
                );
            }
            Stranger::OwnState if endpoint.path == "/v1/events" => {
                assert_event_stream(&response, &other);
            }
            Stranger::OwnState => {
                let state: PlayerState = expect_json(response, StatusCode::OK).await?;
                assert_eq!(
                    state.player_id.as_str(),
                    other,
                    "{what}: the caller's own state"
                );
                if let Some(session) = &state.session {
                    assert_ne!(Some(session.id), before.session.as_ref().map(|s| s.id));
                }
            }
        }

        assert_eq!(
            app.me(&owner).await?,
            before,
            "{what}: refused calls changed nothing for the owner"
        );
        let response = call(&app, endpoint, id, Some(&app.token(&owner)?)).await?;
        assert_owner_succeeds(endpoint, response, &owner, id).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_lobby_is_visible_to_its_host_and_invitee_and_404_to_anyone_else() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.chatting(&["alice", "bob"]).await?;
    let invite = app
        .connect("alice")
        .await?
        .prompt
        .ok_or_else(|| anyhow::anyhow!("an invite prompt"))?;
    let response = app
        .request(
            Method::POST,
            &format!("/v1/prompts/{}/accept", invite.id),
            Some(&app.token("alice")?),
        )
        .send()
        .await?;
    let state: PlayerState = expect_json(response, StatusCode::OK).await?;
    let lobby = state.session.ok_or_else(|| anyhow::anyhow!("a lobby"))?;
    let path = format!("/v1/sessions/{}", lobby.id);
    for who in ["alice", "bob"] {
        let response = app
            .request(Method::GET, &path, Some(&app.token(who)?))
            .send()
            .await?;
        let seen: Session = expect_json(response, StatusCode::OK).await?;
        assert_eq!(seen.id, lobby.id, "{who}");
    }
    let response = app
        .request(Method::GET, &path, Some(&app.token("carol")?))
        .send()
        .await?;
    let carol = assert_problem(response, StatusCode::NOT_FOUND, ProblemCode::NotFound).await?;
    let response = app
        .request(
            Method::GET,
            &format!("/v1/sessions/{}", Uuid::new_v4()),
            Some(&app.token("carol")?),
        )
        .send()
        .await?;
    let unknown = assert_problem(response, StatusCode::NOT_FOUND, ProblemCode::NotFound).await?;
    assert_eq!(carol, unknown);
    // Nor can she leave it.
    let response = app
        .request(
            Method::POST,
            &format!("{path}/leave"),
            Some(&app.token("carol")?),
        )
        .send()
        .await?;
    assert_eq!(
        assert_problem(response, StatusCode::NOT_FOUND, ProblemCode::NotFound).await?,
        carol
    );
    assert_eq!(app.me("alice").await?.session.map(|s| s.id), Some(lobby.id));
    Ok(())
}

#[tokio::test]
async fn ids_that_are_not_uuids_are_404_problems_not_400s() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let token = app.token("alice")?;
    for (method, path) in [
        (Method::POST, "/v1/prompts/not-a-uuid/accept"),
        (Method::POST, "/v1/prompts/not-a-uuid/reject"),
        (Method::GET, "/v1/sessions/not-a-uuid"),
        (Method::POST, "/v1/sessions/not-a-uuid/leave"),
    ] {
        let response = app.request(method, path, Some(&token)).send().await?;
        assert_problem(response, StatusCode::NOT_FOUND, ProblemCode::NotFound).await?;
    }
    Ok(())
}
