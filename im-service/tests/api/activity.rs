//! `PUT /v1/activity`: the game service's reports, and the `activity` they put in presence answers and partner entries.

use reqwest::StatusCode;
use serde_json::{Value, json};
use shared_types::problem::ProblemCode;

use crate::helpers::{TestApp, assert_problem, expect_json, spawn_app};

const SESSION: &str = "0b9b5ce1-55a3-4b8c-a1f5-6d1c3b2a9e10";

fn report(user: &str, session: &str, playing: bool, seq: u64) -> Value {
    json!({"user_id": user, "session_id": session, "mode": "default", "playing": playing,
           "seq": seq, "at": "2026-11-23T10:00:00.123Z"})
}

async fn put_activity(
    app: &TestApp,
    token: &str,
    body: &Value,
) -> anyhow::Result<reqwest::Response> {
    app.put_json("/v1/activity", token, body).await
}

/// `whom`'s presence as `reader` reads it, as JSON.
async fn presence_json(app: &TestApp, reader: &str, whom: &str) -> anyhow::Result<Value> {
    let token = if reader == "service" {
        app.service_token()?
    } else {
        app.token(reader)?
    };
    expect_json(app.presence_of(&token, whom).await?, StatusCode::OK).await
}

#[tokio::test]
async fn reports_are_for_services_answered_204_and_refused_to_players() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let body = json!({"reports": [report("bob", SESSION, true, 1)]});
    assert_problem(
        put_activity(&app, &app.token("bob")?, &body).await?,
        StatusCode::FORBIDDEN,
        ProblemCode::Forbidden,
    )
    .await?;
    assert_eq!(
        presence_json(&app, "bob", "bob").await?["activity"],
        Value::Null
    );
    let answer = put_activity(&app, &app.service_token()?, &body).await?;
    assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    assert!(answer.bytes().await?.is_empty());
    let read = presence_json(&app, "bob", "bob").await?;
    assert_eq!(
        read["activity"],
        json!({"kind": "in_game", "session_id": SESSION, "mode": "default",
               "since": "2026-11-23T10:00:00.123Z"}),
        "{read}"
    );
    // Delivered again (the game retrying), or late: still 204, nothing changes.
    for again in [
        report("bob", SESSION, true, 1),
        report("bob", SESSION, false, 1),
    ] {
        let answer =
            put_activity(&app, &app.service_token()?, &json!({"reports": [again]})).await?;
        assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    }
    assert_eq!(presence_json(&app, "bob", "bob").await?, read);
    Ok(())
}

#[tokio::test]
async fn an_invalid_batch_is_a_400_and_applies_nothing() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let token = app.service_token()?;
    let good = report("bob", SESSION, true, 1);
    let mut no_mode = report("carol", SESSION, true, 1);
    no_mode["mode"] = json!("");
    let mut long_mode = report("carol", SESSION, true, 1);
    long_mode["mode"] = json!("m".repeat(33));
    let mut zero = report("carol", SESSION, true, 1);
    zero["seq"] = json!(0);
    let mut extra = report("carol", SESSION, true, 1);
    extra["mood"] = json!("happy");
    let mut bad_user = report("carol", SESSION, true, 1);
    bad_user["user_id"] = json!("not valid");
    let too_many: Vec<Value> = (1..=257)
        .map(|seq| report("bob", SESSION, true, seq))
        .collect();
    for body in [
        json!({"reports": []}),
        json!({"reports": too_many}),
        json!({"reports": [good.clone(), no_mode]}),
        json!({"reports": [good.clone(), long_mode]}),
        json!({"reports": [good.clone(), zero]}),
        json!({"reports": [good.clone(), extra]}),
        json!({"reports": [good.clone(), bad_user]}),
        json!({"reports": [good.clone()], "more": true}),
        json!({}),
        json!([good.clone()]),
    ] {
        assert_problem(
            put_activity(&app, &token, &body).await?,
            StatusCode::BAD_REQUEST,
            ProblemCode::InvalidRequest,
        )
        .await?;
    }
    assert_eq!(
        presence_json(&app, "service", "bob").await?["activity"],
        Value::Null,
        "the good report beside a bad one was not applied"
    );
    Ok(())
}

#[tokio::test]
async fn a_full_batch_of_256_reports_with_the_longest_ids_is_taken() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let reports: Vec<Value> = (0..256)
        .map(|i| {
            let mut r = report(&format!("{i:0>64}"), SESSION, true, u64::MAX - 1);
            r["mode"] = json!("m".repeat(32));
            r["at"] = json!("2026-11-23T10:00:00.123456789+00:00");
            r
        })
        .collect();
    let body = json!({ "reports": reports });
    assert!(
        body.to_string().len() > 16 * 1024,
        "more than the usual body limit"
    );
    let answer = put_activity(&app, &app.service_token()?, &body).await?;
    assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    let last = presence_json(&app, "service", &format!("{:0>64}", 255)).await?;
    assert_eq!(last["activity"]["mode"], json!("m".repeat(32)), "{last}");
    Ok(())
}

#[tokio::test]
async fn presence_and_partner_entries_show_in_game_while_playing_and_null_after()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.all_available(&["alice", "bob"]).await?;
    let conversation = app.chat("alice", &["bob"]).await?;
    let service = app.service_token()?;
    let started = put_activity(
        &app,
        &service,
        &json!({"reports": [report("bob", SESSION, true, 4)]}),
    )
    .await?;
    assert_eq!(started.status(), StatusCode::NO_CONTENT);

    let in_game = json!({"kind": "in_game", "session_id": SESSION, "mode": "default",
                         "since": "2026-11-23T10:00:00.123Z"});
    for reader in ["alice", "bob", "service"] {
        let read = presence_json(&app, reader, "bob").await?;
        assert_eq!(read["activity"], in_game, "{reader}: {read}");
        assert_eq!(read["status"], "available", "{reader}: {read}");
    }
    let partners: Value = expect_json(
        app.partners_request(&app.token("alice")?, "alice", "")
            .await?,
        StatusCode::OK,
    )
    .await?;
    assert_eq!(partners["partners"][0]["user_id"], "bob", "{partners}");
    assert_eq!(
        partners["partners"][0]["conversation_id"],
        conversation.id.to_string()
    );
    assert_eq!(partners["partners"][0]["activity"], in_game, "{partners}");
    // The game service asks the same question.
    let answer = app.partners_request(&service, "alice", "").await?;
    let typed: shared_types::im::PartnersResponse = expect_json(answer, StatusCode::OK).await?;
    assert!(typed.partners[0].activity.is_some());

    // An older stop leaves it; the newest, a stop, clears it.
    for (seq, stays) in [(1, true), (6, false)] {
        let answer = put_activity(
            &app,
            &service,
            &json!({"reports": [report("bob", SESSION, false, seq)]}),
        )
        .await?;
        assert_eq!(answer.status(), StatusCode::NO_CONTENT);
        let still = presence_json(&app, "alice", "bob").await?;
        assert_eq!(still["activity"] == in_game, stays, "{still}");
    }
    let read = presence_json(&app, "alice", "bob").await?;
    assert!(
        read.as_object()
            .is_some_and(|o| o.get("activity") == Some(&Value::Null)),
        "`activity: null`, not absent: {read}"
    );
    let partners: Value = expect_json(
        app.partners_request(&app.token("alice")?, "alice", "")
            .await?,
        StatusCode::OK,
    )
    .await?;
    assert_eq!(
        partners["partners"][0]["activity"],
        Value::Null,
        "{partners}"
    );
    // What a player sets answers with their activity too.
    let set: Value = expect_json(
        app.put_json(
            "/v1/presence",
            &app.token("alice")?,
            &json!({"status": "busy"}),
        )
        .await?,
        StatusCode::OK,
    )
    .await?;
    assert_eq!(
        set,
        json!({"user_id": "alice", "status": "busy", "activity": null})
    );
    Ok(())
}
