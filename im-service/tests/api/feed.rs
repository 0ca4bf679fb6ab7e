//! `GET /v1/presence/changes`: the presence feed, for services only, paged with an opaque cursor.

use std::collections::HashMap;

use reqwest::StatusCode;
use shared_types::{activity::PresenceChanges, problem::ProblemCode};

use crate::helpers::{TestApp, assert_problem, expect_json, spawn_app, spawn_app_with_redis};

async fn changes(app: &TestApp, query: &str) -> anyhow::Result<reqwest::Response> {
    app.get(
        &format!("/v1/presence/changes{query}"),
        &app.service_token()?,
    )
    .await
}

async fn page(app: &TestApp, query: &str) -> anyhow::Result<PresenceChanges> {
    expect_json(changes(app, query).await?, StatusCode::OK).await
}

#[tokio::test]
async fn the_feed_is_for_services_and_refused_to_players() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    app.set_presence("alice", "busy").await?;
    // The access check first: a player learns nothing from a bad query either.
    for query in ["", "?after=nonsense", "?limit=0"] {
        assert_problem(
            app.get(
                &format!("/v1/presence/changes{query}"),
                &app.token("alice")?,
            )
            .await?,
            StatusCode::FORBIDDEN,
            ProblemCode::Forbidden,
        )
        .await?;
    }
    let read = page(&app, "").await?;
    assert_eq!(read.changes.len(), 1);
    assert_eq!(read.changes[0].user_id.as_str(), "alice");
    assert_eq!(read.changes[0].status.as_str(), "busy");
    Ok(())
}

#[tokio::test]
async fn a_bad_cursor_or_limit_is_a_400() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let start = page(&app, "").await?.next;
    assert_eq!(
        start.split(',').count(),
        8,
        "one position per shard: {start}"
    );
    let short = start.split(',').skip(1).collect::<Vec<_>>().join(",");
    let long = format!("{start},0-0");
    for query in [
        "?after=".to_owned(),
        "?after=nonsense".to_owned(),
        "?after=1-2-3".to_owned(),
        format!("?after={short}"),
        format!("?after={long}"),
        "?limit=0".to_owned(),
        "?limit=1001".to_owned(),
        "?limit=many".to_owned(),
        "?since=0".to_owned(),
    ] {
        assert_problem(
            changes(&app, &query).await?,
            StatusCode::BAD_REQUEST,
            ProblemCode::InvalidRequest,
        )
        .await?;
    }
    page(&app, "?limit=1000").await?;
    page(&app, &format!("?after={start}&limit=1")).await?;
    Ok(())
}

/// Pages through the feed `limit` changes at a time from the start; every page's `next`
/// is the next `after`. Returns every change (user, status, seq) and the last cursor.
async fn read_all(
    app: &TestApp,
    limit: usize,
) -> anyhow::Result<(Vec<(String, String, u64)>, String)> {
    let mut after: Option<String> = None;
    let mut all = Vec::new();
    loop {
        let query = match &after {
            Some(after) => format!("?after={after}&limit={limit}"),
            None => format!("?limit={limit}"),
        };
        let read = page(app, &query).await?;
        assert!(read.changes.len() <= limit);
        if read.changes.is_empty() {
            if let Some(after) = &after {
                assert_eq!(&read.next, after, "nothing new: `next` is `after`");
            }
            return Ok((all, read.next));
        }
        all.extend(
            read.changes
                .into_iter()
                .map(|c| (c.user_id.to_string(), c.status.to_string(), c.seq)),
        );
        after = Some(read.next);
    }
}

async fn pages_through_every_change_once(app: &TestApp) -> anyhow::Result<()> {
    let statuses = ["available", "busy", "away", "offline"];
    let mut expected: HashMap<String, Vec<&str>> = HashMap::new();
    for round in 0..3 {
        for i in 0..6 {
            let who = format!("user{i}");
            let status = statuses[(round + i) % 3];
            app.set_presence(&who, status).await?;
            expected.entry(who).or_default().push(status);
        }
    }
    // The same status again is no change.
    app.set_presence("user0", "away").await?;
    let (everything, end) = read_all(app, 1000).await?;
    assert_eq!(everything.len(), 18);
    for limit in [1, 4, 7] {
        let (paged, last) = read_all(app, limit).await?;
        assert_eq!(paged, everything, "pages of {limit}");
        assert_eq!(last, end);
    }
    for (who, statuses) in &expected {
        let theirs: Vec<(&str, u64)> = everything
            .iter()
            .filter(|(user, _, _)| user == who)
            .map(|(_, status, seq)| (status.as_str(), *seq))
            .collect();
        let said: Vec<&str> = theirs.iter().map(|(status, _)| *status).collect();
        assert_eq!(&said, statuses, "{who}: their changes in order");
        assert!(
            theirs.windows(2).all(|w| w[0].1 < w[1].1),
            "{who}: {theirs:?}"
        );
    }
    // Without `limit`: up to 256.
    assert_eq!(page(app, "").await?.changes.len(), 18);
    // After the end: only what is new.
    app.set_presence("user5", "offline").await?;
    let new = page(app, &format!("?after={end}")).await?;
    assert_eq!(new.changes.len(), 1, "{new:?}");
    assert_eq!(new.changes[0].status.as_str(), "offline");
    assert_ne!(new.next, end);
    Ok(())
}

#[tokio::test]
async fn paging_through_the_feed_returns_every_change_once_in_each_users_order()
-> anyhow::Result<()> {
    pages_through_every_change_once(&spawn_app().await?).await
}

#[tokio::test]
async fn paging_through_the_feed_works_the_same_on_redis() -> anyhow::Result<()> {
    let redis = e2e::RedisServer::start()?;
    let app = spawn_app_with_redis(redis.url()).await?;
    pages_through_every_change_once(&app).await
}
