//! `GET /v1/users/{user_id}/partners`: who is this user talking to right now?

use std::time::Duration;

use im_service::configuration::Limits;
use reqwest::StatusCode;
use shared_types::{im::PartnersResponse, problem::ProblemCode};

use crate::helpers::{WINDOW, assert_problem, expect_json, spawn_app, spawn_app_with_limits};

#[tokio::test]
async fn an_available_partner_in_an_open_recent_two_sided_conversation_is_found()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.all_available(&["alice", "bob"]).await?;
    let conversation = app.open_conversation("alice", &["bob"]).await?;
    app.say("alice", conversation.id, "game?").await?;
    app.advance(Duration::from_secs(30));
    let message = app.say("bob", conversation.id, "sure").await?;
    let answer = app.partners("alice", "").await?;
    assert_eq!(answer.user_id.as_str(), "alice");
    assert_eq!(answer.status.as_str(), "available");
    assert_eq!(answer.partners.len(), 1);
    let bob = &answer.partners[0];
    assert_eq!(bob.user_id.as_str(), "bob");
    assert_eq!(bob.status.as_str(), "available");
    assert_eq!(bob.conversation_id, conversation.id);
    assert_eq!(bob.last_activity_at, message.sent_at);
    // And the other way round.
    assert_eq!(app.partner_names("bob", "").await?, ["alice"]);
    Ok(())
}

#[tokio::test]
async fn talking_takes_two_an_unanswered_conversation_invites_nobody() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.all_available(&["alice", "bob", "carol"]).await?;
    // alice opens a conversation with bob and writes; bob never answers.
    let with_bob = app.open_conversation("alice", &["bob"]).await?;
    app.talk(with_bob.id, &["alice", "alice"]).await?;
    // carol opens one with alice and says nothing.
    app.open_conversation("carol", &["alice"]).await?;
    for who in ["alice", "bob", "carol"] {
        assert!(app.partner_names(who, "").await?.is_empty(), "{who}");
        assert!(
            app.partner_names(who, "?status=available,busy,away,offline")
                .await?
                .is_empty(),
            "{who}, any status"
        );
    }
    // bob answers: now they talk.
    app.say("bob", with_bob.id, "hi alice").await?;
    assert_eq!(app.partner_names("alice", "").await?, ["bob"]);
    assert_eq!(app.partner_names("bob", "").await?, ["alice"]);
    Ok(())
}

#[tokio::test]
async fn in_a_group_a_pair_counts_once_both_of_them_posted() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.all_available(&["alice", "bob", "carol", "dave"])
        .await?;
    let group = app
        .open_conversation("alice", &["bob", "carol", "dave"])
        .await?;
    app.talk(group.id, &["alice", "bob"]).await?;
    assert_eq!(app.partner_names("alice", "").await?, ["bob"]);
    assert!(app.partner_names("carol", "").await?.is_empty());
    app.say("carol", group.id, "me too").await?;
    assert_eq!(app.partner_names("alice", "").await?, ["bob", "carol"]);
    assert_eq!(app.partner_names("carol", "").await?, ["alice", "bob"]);
    assert!(app.partner_names("dave", "").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn busy_away_and_offline_partners_are_left_out_by_default() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.all_available(&["alice", "bob"]).await?;
    app.set_presence("carol", "busy").await?;
    app.set_presence("dave", "away").await?;
    app.set_presence("erin", "offline").await?;
    // frank never set a presence: offline.
    app.chat("alice", &["bob", "carol", "dave", "erin", "frank"])
        .await?;
    assert_eq!(app.partner_names("alice", "").await?, ["bob"]);
    Ok(())
}

#[tokio::test]
async fn the_status_filter_available_busy_lets_busy_partners_in() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.all_available(&["alice", "bob"]).await?;
    app.set_presence("carol", "busy").await?;
    app.set_presence("dave", "away").await?;
    app.chat("alice", &["bob", "carol", "dave"]).await?;
    assert_eq!(
        app.partner_names("alice", "?status=available,busy").await?,
        ["bob", "carol"]
    );
    assert_eq!(app.partner_names("alice", "?status=busy").await?, ["carol"]);
    assert_eq!(
        app.partner_names("alice", "?status=away,busy").await?,
        ["carol", "dave"]
    );
    let answer = app.partners("alice", "?status=busy").await?;
    assert_eq!(answer.partners[0].status.as_str(), "busy");
    Ok(())
}

#[tokio::test]
async fn closed_conversations_do_not_count() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.all_available(&["alice", "bob", "carol"]).await?;
    let with_bob = app.chat("alice", &["bob"]).await?;
    app.chat("alice", &["carol"]).await?;
    app.close("bob", with_bob.id).await?;
    assert_eq!(app.partner_names("alice", "").await?, ["carol"]);
    assert!(app.partner_names("bob", "").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn stale_conversations_do_not_count_until_a_message_revives_them() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.all_available(&["alice", "bob", "carol"]).await?;
    let with_bob = app.chat("alice", &["bob"]).await?;
    app.advance(WINDOW - Duration::from_secs(60));
    app.chat("carol", &["alice"]).await?;
    // Exactly at the edge of the window: still counts.
    app.advance(Duration::from_secs(60));
    assert_eq!(app.partner_names("alice", "").await?, ["carol", "bob"]);
    app.advance(Duration::from_millis(1));
    assert_eq!(app.partner_names("alice", "").await?, ["carol"]);
    // A narrower window given in the query.
    assert!(
        app.partner_names("alice", "?active_within_secs=30")
            .await?
            .is_empty()
    );
    assert_eq!(
        app.partner_names("alice", "?active_within_secs=3600")
            .await?,
        ["carol", "bob"]
    );
    app.say("bob", with_bob.id, "still there?").await?;
    assert_eq!(
        app.partner_names("alice", "?active_within_secs=30").await?,
        ["bob"]
    );
    Ok(())
}

#[tokio::test]
async fn opening_a_conversation_is_not_activity() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.all_available(&["alice", "bob"]).await?;
    // They talked long ago; opening a new conversation now does not make it recent.
    app.chat("alice", &["bob"]).await?;
    app.advance(WINDOW + Duration::from_secs(60));
    let fresh = app.open_conversation("bob", &["alice"]).await?;
    assert_eq!(fresh.last_activity_at, None);
    assert!(app.partner_names("alice", "").await?.is_empty());
    assert!(app.partner_names("bob", "").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn each_partner_appears_once_with_their_most_recent_conversation_newest_first()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.all_available(&["alice", "bob", "carol", "dave"])
        .await?;
    let group = app.chat("alice", &["bob", "carol"]).await?;
    app.advance(Duration::from_secs(10));
    let with_dave = app.chat("dave", &["alice"]).await?;
    app.advance(Duration::from_secs(10));
    let with_bob = app.chat("bob", &["alice"]).await?;
    app.advance(Duration::from_secs(10));
    app.say("carol", group.id, "newest").await?;
    let answer: PartnersResponse = app.partners("alice", "").await?;
    let found: Vec<(&str, uuid::Uuid)> = answer
        .partners
        .iter()
        .map(|p| (p.user_id.as_str(), p.conversation_id))
        .collect();
    // The group is the newest: bob and carol through it; dave through his own.
    assert_eq!(
        found,
        [
            ("bob", group.id),
            ("carol", group.id),
            ("dave", with_dave.id)
        ]
    );
    // Once the group closes, bob's most recent open conversation is the direct one.
    app.close("alice", group.id).await?;
    let found: Vec<(String, uuid::Uuid)> = app
        .partners("alice", "")
        .await?
        .partners
        .into_iter()
        .map(|p| (p.user_id.to_string(), p.conversation_id))
        .collect();
    assert_eq!(
        found,
        [
            ("bob".to_owned(), with_bob.id),
            ("dave".to_owned(), with_dave.id)
        ]
    );
    Ok(())
}

#[tokio::test]
async fn partners_are_cut_at_the_limit_newest_first() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let friends: Vec<String> = (0..20).map(|i| format!("f{i:02}")).collect();
    let mut everyone = vec!["alice"];
    everyone.extend(friends.iter().map(String::as_str));
    app.all_available(&everyone).await?;
    // One direct conversation per friend, each a second newer than the last.
    for friend in &friends {
        app.chat(friend, &["alice"]).await?;
        app.advance(Duration::from_secs(1));
    }
    let newest_first: Vec<String> = friends.iter().rev().cloned().collect();
    assert_eq!(
        app.partner_names("alice", "").await?,
        newest_first[..16],
        "16 by default"
    );
    assert_eq!(
        app.partner_names("alice", "?limit=3").await?,
        newest_first[..3]
    );
    assert_eq!(
        app.partner_names("alice", "?limit=100").await?,
        newest_first
    );
    Ok(())
}

#[tokio::test]
async fn the_default_and_largest_limit_come_from_the_configuration() -> anyhow::Result<()> {
    let app = spawn_app_with_limits(Limits {
        partners_default_limit: 2,
        partners_max_limit: 3,
        ..Limits::default()
    })
    .await?;
    let friends = ["f1", "f2", "f3", "f4"];
    app.all_available(&["alice"]).await?;
    app.all_available(&friends).await?;
    for friend in friends {
        app.chat(friend, &["alice"]).await?;
        app.advance(Duration::from_secs(1));
    }
    assert_eq!(app.partner_names("alice", "").await?, ["f4", "f3"]);
    assert_eq!(
        app.partner_names("alice", "?limit=3").await?,
        ["f4", "f3", "f2"]
    );
    assert_problem(
        app.partners_request(&app.token("alice")?, "alice", "?limit=4")
            .await?,
        StatusCode::BAD_REQUEST,
        ProblemCode::InvalidRequest,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn an_offline_user_talks_to_nobody() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.set_presence("bob", "available").await?;
    app.chat("alice", &["bob"]).await?;
    // Never set: offline.
    let answer = app.partners("alice", "").await?;
    assert_eq!(answer.status.as_str(), "offline");
    assert!(answer.partners.is_empty());
    app.set_presence("alice", "available").await?;
    assert_eq!(app.partner_names("alice", "").await?, ["bob"]);
    app.set_presence("alice", "offline").await?;
    let answer = app
        .partners("alice", "?status=available,busy,away,offline")
        .await?;
    assert_eq!(answer.status.as_str(), "offline");
    assert!(answer.partners.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_busy_user_still_has_partners() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.set_presence("alice", "busy").await?;
    app.set_presence("bob", "available").await?;
    app.chat("alice", &["bob"]).await?;
    let answer = app.partners("alice", "").await?;
    assert_eq!(answer.status.as_str(), "busy");
    assert_eq!(answer.partners.len(), 1);
    Ok(())
}

#[tokio::test]
async fn an_unknown_status_a_bad_number_or_a_limit_out_of_range_is_a_400_problem()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.all_available(&["alice"]).await?;
    let token = app.token("alice")?;
    for query in [
        "?status=sleeping",
        "?status=available,sleeping",
        "?status=",
        "?status=Available",
        "?active_within_secs=-5",
        "?active_within_secs=ten",
        "?active_within_secs=99999999999",
        "?active_within_secs=1.5",
        "?limit=0",
        "?limit=101",
        "?limit=-1",
        "?limit=many",
        "?window=10",
    ] {
        let problem = assert_problem(
            app.partners_request(&token, "alice", query).await?,
            StatusCode::BAD_REQUEST,
            ProblemCode::InvalidRequest,
        )
        .await?;
        assert!(
            problem.detail.is_some(),
            "{query}: the detail says what is wrong"
        );
    }
    assert!(app.partner_names("alice", "?limit=100").await?.is_empty());
    assert!(app.partner_names("alice", "?limit=1").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_player_asking_for_someone_elses_partners_is_forbidden_but_a_service_may_ask()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.all_available(&["alice", "bob"]).await?;
    app.chat("alice", &["bob"]).await?;
    assert_problem(
        app.partners_request(&app.token("mallory")?, "alice", "")
            .await?,
        StatusCode::FORBIDDEN,
        ProblemCode::Forbidden,
    )
    .await?;
    // Even bob, alice's partner, may not ask on her behalf; nor learn anything from a bad query.
    for query in ["?status=nonsense", "?limit=1000"] {
        assert_problem(
            app.partners_request(&app.token("bob")?, "alice", query)
                .await?,
            StatusCode::FORBIDDEN,
            ProblemCode::Forbidden,
        )
        .await?;
    }
    let answer: PartnersResponse = expect_json(
        app.partners_request(&app.service_token()?, "alice", "?status=available,busy")
            .await?,
        StatusCode::OK,
    )
    .await?;
    assert_eq!(answer.user_id.as_str(), "alice");
    assert_eq!(answer.partners.len(), 1);
    Ok(())
}
