//! The engine's own unit tests: settling a transition's due prompts.
use std::collections::BTreeMap;

use super::*;

fn invite_prompt(candidate: &UserId, expires_at: DateTime<Utc>) -> PromptRecord {
    PromptRecord {
        id: Uuid::new_v4(),
        kind: PromptKind::Invite,
        candidates: vec![candidate.clone()],
        lobby: None,
        expires_at,
        mode: DEFAULT_MODE.to_owned(),
        via: Vec::new(),
    }
}

#[test]
fn settling_expires_every_locked_players_due_prompt_and_nothing_else() {
    let engine = Engine::new(chrono::Duration::seconds(30));
    let now = Utc::now();
    let (alice, bob, carol) = (
        UserId::parse("alice").expect("valid"),
        UserId::parse("bob").expect("valid"),
        UserId::parse("carol").expect("valid"),
    );
    let due = invite_prompt(&bob, now - chrono::Duration::seconds(1));
    let open = invite_prompt(&alice, now + chrono::Duration::seconds(10));
    let players = BTreeMap::from([
        (
            alice.clone(),
            PlayerRecord {
                prompt: Some(due.clone()),
                ..PlayerRecord::default()
            },
        ),
        (
            bob.clone(),
            PlayerRecord {
                prompt: Some(open.clone()),
                ..PlayerRecord::default()
            },
        ),
        (carol.clone(), PlayerRecord::default()),
    ]);
    let mut tx = Tx::new(now, players, BTreeMap::new());

    engine.settle(&mut tx).expect("nothing else to lock");

    let alice_now = tx.current(&alice).expect("locked");
    assert!(alice_now.prompt.is_none(), "the due prompt is gone");
    assert!(matches!(
        alice_now.answered(due.id).map(|a| a.answer),
        Some(Answer::Cancelled(Reason::Expired))
    ));
    assert!(alice_now.session.is_some(), "an expiry is a solo session");
    let bob_now = tx.current(&bob).expect("locked");
    assert_eq!(bob_now.prompt.as_ref().map(|p| p.id), Some(open.id));
    let changes = tx.changes();
    let changed: Vec<&UserId> = changes.players.iter().map(|(p, _)| p).collect();
    assert_eq!(changed, [&alice], "only alice changed");
    assert!(
        changes.events.iter().all(|(to, _)| to == &alice),
        "only alice hears of it"
    );
}
