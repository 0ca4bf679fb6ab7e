//! Conversations and their messages: `/v1/conversations…`. Participants only: anyone else,
//! `service` tokens included, gets the same 404 as for an unknown id, and so does a participant
//! the conversation is hidden from (they had blocked its creator when it was opened).

use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use service_kit::{ApiError, auth::Authenticated};
use shared_types::{
    UserId,
    im::{
        Conversation, ConversationList, Message, MessageKind, MessagePage, NewConversation,
        NewMessage,
    },
    problem::{Problem, ProblemCode},
};
use utoipa::IntoParams;
use uuid::Uuid;

use super::AppState;
use crate::{
    domain::{ConversationRecord, InvalidConversation, MessageText, Participants},
    store::{AppendOutcome, CreateOutcome, StoreError},
};

/// Messages per page when `limit` is not given.
pub const DEFAULT_PAGE: usize = 50;
/// Largest page: bounds the work of one request.
pub const MAX_PAGE: usize = 200;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(create_conversation)
        .service(list_conversations)
        .service(post_message)
        .service(list_messages)
        .service(close_conversation);
}

#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    #[error(transparent)]
    Invalid(#[from] InvalidConversation),
    #[error("`limit` is 1-{MAX_PAGE}, got {0}")]
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
#[utoipa::path(
    tag = "conversations",
    request_body = NewConversation,
    responses(
        (status = 201, description = "The new conversation", body = Conversation),
        (status = 400, description = "Malformed JSON, unknown field, invalid user id, or fewer than 2 \
or more than 16 people in all", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The caller already has as many open conversations as allowed \
(`conversation_limit`); nothing was created", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/conversations")]
pub async fn create_conversation(
    Authenticated(caller): Authenticated,
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
        .create_conversation(&conversation)
        .await
        .map_err(ConversationError::from)?
    {
        // What the caller sees is what they asked for, whoever the conversation is hidden from.
        CreateOutcome::Created(record) => Ok(HttpResponse::Created().json(record.conversation)),
        CreateOutcome::Limit => Err(ConversationError::Limit.into()),
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

/// Post a message.
///
/// 1-4096 characters, participants only; it becomes the conversation's last
/// activity. Once two participants have both posted in a conversation, they
/// are talking (partners, and each sees the other's presence). The caller's
/// first message in a conversation someone else opened answers it: it then
/// counts against the caller's open conversations, and past the limit that
/// first message is a 409 `conversation_limit`. A closed conversation takes no
/// messages (409 `conversation_closed`). Only the newest `IM_MESSAGES_KEPT`
/// (default 500) messages are kept.
///
/// `kind: game` (with `game`: the session announced) is for `service` tokens
/// only (the game service announcing a lobby in the conversation through which
/// its invitees were found): a player gets 403. Such a message goes into any
/// conversation its `game.host` takes part in (400 otherwise), records no
/// poster, moves no activity and counts against no limit; a `service` token
/// posts nothing else (403).
#[utoipa::path(
    tag = "conversations",
    params(("id" = Uuid, Path, description = "Conversation id", example = "c7d2a1e4-3f5b-4a6c-8d9e-0f1a2b3c4d5e")),
    request_body = NewMessage,
    responses(
        (status = 201, description = "The stored message", body = Message),
        (status = 400, description = "Malformed JSON, unknown field, text not 1-4096 characters, or `game` without `kind: game` (or the other way round)",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A player posting `kind: game`, or a `service` token posting text",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation, or the caller does not take part",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The conversation is closed (`conversation_closed`), or this first \
message would answer one conversation more than the caller may have open (`conversation_limit`); \
nothing was stored", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/conversations/{id}/messages")]
pub async fn post_message(
    Authenticated(caller): Authenticated,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    body: web::Json<NewMessage>,
) -> Result<HttpResponse, ApiError> {
    let NewMessage { text, kind, game } = body.into_inner();
    let text = MessageText::parse(text).map_err(ConversationError::from)?;
    let id = path.into_inner();
    let now = state.clock.now();
    let outcome = match (kind, game, caller.is_service()) {
        (MessageKind::Text, Some(_), _) => {
            return Err(ApiError::invalid("`game` goes with `kind: game` only"));
        }
        (MessageKind::Game, None, _) => {
            return Err(ApiError::invalid("a `kind: game` message carries `game`"));
        }
        (MessageKind::Game, Some(_), false) => {
            return Err(ApiError::forbidden(
                "only a service posts `kind: game` messages",
            ));
        }
        (MessageKind::Text, None, true) => {
            return Err(ApiError::forbidden(
                "a `service` token posts `kind: game` messages only",
            ));
        }
        (MessageKind::Game, Some(game), true) => {
            let Some(conversation) = state
                .store
                .conversation(id)
                .await
                .map_err(ConversationError::from)?
            else {
                return Err(ConversationError::NotFound.into());
            };
            // A game is announced where its host talks: never into others' conversations.
            if !conversation.visible_to(&game.host) {
                return Err(ApiError::invalid(
                    "the game's host must be a participant of the conversation",
                ));
            }
            state
                .store
                .announce(&conversation, &caller.user_id, text.as_str(), &game, now)
                .await
        }
        (MessageKind::Text, None, false) => {
            let conversation = participating(&state, &caller.user_id, id).await?;
            state
                .store
                .append_message(&conversation, &caller.user_id, text.as_str(), now)
                .await
        }
    }
    .map_err(ConversationError::from)?;
    match outcome {
        AppendOutcome::Appended(message) => Ok(HttpResponse::Created().json(message)),
        AppendOutcome::Closed => Err(ConversationError::Closed.into()),
        AppendOutcome::Missing => Err(ConversationError::NotFound.into()),
        AppendOutcome::Limit => Err(ConversationError::Limit.into()),
    }
}

/// Paging through messages.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// Only messages with a greater `seq` (default 0: from the first).
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64, example = 2)]
    pub after: Option<u64>,
    /// Most messages to return, 1-200 (default 50).
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<usize>,
}

/// Read messages, oldest first.
///
/// Participants only. Page with `after` = the last `seq` seen and `limit`
/// (1-200, default 50). Only the newest `IM_MESSAGES_KEPT` messages are
/// kept: the first `seq` returned may be greater than `after + 1`.
#[utoipa::path(
    tag = "conversations",
    params(("id" = Uuid, Path, description = "Conversation id", example = "c7d2a1e4-3f5b-4a6c-8d9e-0f1a2b3c4d5e"), MessagesQuery),
    responses(
        (status = 200, description = "Messages with `seq > after`, oldest first", body = MessagePage),
        (status = 400, description = "`after` or `limit` is not a number in range, or an unknown parameter",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation, or the caller does not take part",
            body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/conversations/{id}/messages")]
pub async fn list_messages(
    Authenticated(caller): Authenticated,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    query: web::Query<MessagesQuery>,
) -> Result<web::Json<MessagePage>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ConversationError::InvalidLimit(limit).into());
    }
    let after = query.after.unwrap_or(0);
    if i64::try_from(after).is_err() {
        return Err(ConversationError::InvalidAfter(after).into());
    }
    let conversation = participating(&state, &caller.user_id, path.into_inner()).await?;
    let messages = state
        .store
        .messages(conversation.conversation.id, after, limit)
        .await
        .map_err(ConversationError::from)?;
    Ok(web::Json(MessagePage { messages }))
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
