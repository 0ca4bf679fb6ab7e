//! Conversations: `/v1/conversations…` (their messages are in `messages`). Participants only: anyone else,
//! `service` tokens included, gets the same 404 as for an unknown id, and so does a participant
//! the conversation is hidden from (they had blocked its creator when it was opened).

use actix_web::{HttpResponse, get, post, web};
use service_kit::{ApiError, auth::Authenticated};
use shared_types::{
    UserId,
    im::{Conversation, ConversationList, NewConversation},
    problem::{Problem, ProblemCode},
};
use uuid::Uuid;

use super::{AppState, idempotency::Idempotency};
use crate::{
    domain::{ConversationRecord, InvalidConversation, Participants},
    store::{CreateOutcome, StoreError},
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(create_conversation)
        .service(list_conversations)
        .service(super::messages::post_message)
        .service(super::messages::list_messages)
        .service(close_conversation);
}

#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    #[error(transparent)]
    Invalid(#[from] InvalidConversation),
    #[error("`limit` is 1-{max}, got {0}", max = super::messages::MAX_PAGE)]
    InvalidLimit(usize),
    #[error("`after` is at most {max}, got {0}", max = i64::MAX)]
    InvalidAfter(u64),
    #[error("no such conversation")]
    NotFound,
    #[error("the conversation is closed")]
    Closed,
    #[error(
        "you already have as many open conversations as you may (opened or answered): close one first"
    )]
    Limit,
    #[error(
        "this Idempotency-Key was already used for another request (another body): send a new key \
with a new request"
    )]
    KeyReused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ConversationError> for ApiError {
    fn from(err: ConversationError) -> Self {
        match err {
            ConversationError::Invalid(_)
            | ConversationError::InvalidLimit(_)
            | ConversationError::InvalidAfter(_) => ApiError::invalid(err.to_string()),
            ConversationError::NotFound => ApiError::not_found(err.to_string()),
            ConversationError::Closed => {
                ApiError::new(ProblemCode::ConversationClosed, err.to_string())
            }
            ConversationError::Limit => {
                ApiError::new(ProblemCode::ConversationLimit, err.to_string())
            }
            ConversationError::KeyReused => {
                ApiError::new(ProblemCode::IdempotencyKeyReused, err.to_string())
            }
            ConversationError::Store(err) => err.into(),
        }
    }
}

/// The conversation, when `user` takes part in it and sees it.
pub(super) async fn participating(
    state: &AppState,
    user: &UserId,
    id: Uuid,
) -> Result<ConversationRecord, ConversationError> {
    match state.store.conversation(id).await? {
        Some(record) if record.visible_to(user) => Ok(record),
        _ => Err(ConversationError::NotFound),
    }
}

/// Open a conversation.
///
/// The caller is added to `participants` and duplicates are dropped; the
/// result has 2-16 people, the caller first. Opening is not activity
/// (`last_activity_at` stays null until someone posts) and makes nobody a
/// partner: talking takes two, each side must post. It counts against the
/// caller's open conversations (`IM_MAX_OPEN_CONVERSATIONS`, default 100),
/// not against the others' until they answer; past the limit, a 409
/// `conversation_limit`.
///
/// With an `Idempotency-Key`, a retry (after a 503, a timeout, a lost answer)
/// opens nothing more: it answers the conversation the key first opened.
#[utoipa::path(
    tag = "conversations",
    params(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]{1,255}$",
            example = "8e03978e-40d5-43e8-bc93-6894a57f9324",
            description = "Makes the request safe to repeat (the IETF httpapi draft's header): 1-255 visible \
ASCII characters, a UUID for instance, new for each conversation to open. The first request with a key \
opens the conversation; a repeat by the same caller with the same key and the same participants, within \
24 hours (`IM_RETENTION_SECS` when shorter), opens nothing and answers 201 with the same body as the first \
(the conversation as it was opened). The same key with other participants is a 422 \
`idempotency_key_reused`. Keys are per caller: another caller's identical key is another request."),
    ),
    request_body = NewConversation,
    responses(
        (status = 201, description = "The new conversation (or, repeating an `Idempotency-Key`, the one it opened)", body = Conversation),
        (status = 400, description = "Malformed JSON, unknown field, invalid user id, or fewer than 2 \
or more than 16 people in all (`invalid_request`); an `Idempotency-Key` that is not 1-255 visible ASCII \
characters, or several (`invalid_idempotency_key`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The caller already has as many open conversations as allowed \
(`conversation_limit`); nothing was created", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The caller already used this `Idempotency-Key` to open a conversation \
with other participants (`idempotency_key_reused`); nothing was created", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/conversations")]
pub async fn create_conversation(
    Authenticated(caller): Authenticated,
    Idempotency(key): Idempotency,
    state: web::Data<AppState>,
    body: web::Json<NewConversation>,
) -> Result<HttpResponse, ApiError> {
    let participants = Participants::parse(&caller.user_id, &body.participants)
        .map_err(ConversationError::from)?;
    let now = state.clock.now();
    let conversation = Conversation {
        id: Uuid::new_v4(),
        participants: participants.into_inner(),
        created_at: now,
        last_activity_at: None,
        closed: false,
    };
    match state
        .store
        .create_conversation_keyed(&conversation, key.as_ref())
        .await
        .map_err(ConversationError::from)?
    {
        // What the caller sees is what they asked for, whoever the conversation is hidden from.
        CreateOutcome::Created(record) => Ok(HttpResponse::Created().json(record.conversation)),
        CreateOutcome::Limit => Err(ConversationError::Limit.into()),
        CreateOutcome::KeyReused => Err(ConversationError::KeyReused.into()),
    }
}

/// The caller's conversations.
///
/// Open and closed ones, newest activity first (the newest message, or the
/// creation while nobody has posted).
#[utoipa::path(
    tag = "conversations",
    responses((status = 200, description = "The caller's conversations", body = ConversationList))
)]
#[get("/v1/conversations")]
pub async fn list_conversations(
    Authenticated(caller): Authenticated,
    state: web::Data<AppState>,
) -> Result<web::Json<ConversationList>, ApiError> {
    let conversations = state
        .store
        .conversations_of(&caller.user_id)
        .await
        .map_err(ConversationError::from)?;
    Ok(web::Json(ConversationList { conversations }))
}

/// Close a conversation.
///
/// It takes no more messages and no longer counts as talking; it frees a slot
/// of every participant's open conversations. Closing a closed conversation
/// changes nothing.
#[utoipa::path(
    tag = "conversations",
    params(("id" = Uuid, Path, description = "Conversation id", example = "c7d2a1e4-3f5b-4a6c-8d9e-0f1a2b3c4d5e")),
    responses(
        (status = 200, description = "The closed conversation", body = Conversation),
        (status = 404, description = "No such conversation, or the caller does not take part",
            body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/conversations/{id}/close")]
pub async fn close_conversation(
    Authenticated(caller): Authenticated,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> Result<web::Json<Conversation>, ApiError> {
    let conversation = participating(&state, &caller.user_id, path.into_inner()).await?;
    match state
        .store
        .close_conversation(conversation.conversation.id)
        .await
        .map_err(ConversationError::from)?
    {
        Some(closed) => Ok(web::Json(closed)),
        None => Err(ConversationError::NotFound.into()),
    }
}
