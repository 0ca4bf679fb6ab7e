//! Messages: posting one (`POST /v1/conversations/{id}/messages`, people's text or a service's game announcement) and reading them a page at a time.

use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use service_kit::{ApiError, auth::Authenticated};
use shared_types::{
    im::{Message, MessageKind, MessagePage, NewMessage},
    problem::Problem,
};
use utoipa::IntoParams;
use uuid::Uuid;

use super::{
    AppState,
    conversations::{ConversationError, participating},
    idempotency::Idempotency,
};
use crate::{domain::MessageText, store::AppendOutcome};

/// Messages per page when `limit` is not given.
pub const DEFAULT_PAGE: usize = 50;
/// Largest page: bounds the work of one request.
pub const MAX_PAGE: usize = 200;

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
///
/// With an `Idempotency-Key`, a retry (after a 503, a timeout, a lost answer)
/// posts nothing more: it answers the message the key first posted, same
/// `seq`, even once the conversation is closed.
#[utoipa::path(
    tag = "conversations",
    params(
        ("id" = Uuid, Path, description = "Conversation id", example = "c7d2a1e4-3f5b-4a6c-8d9e-0f1a2b3c4d5e"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]{1,255}$",
            example = "5b0c3f8e-9a6d-4f41-8a3e-2d7c1b9e4f60",
            description = "Makes the request safe to repeat (the IETF httpapi draft's header): 1-255 visible \
ASCII characters, a UUID for instance, new for each message. The first request with a key posts the \
message; a repeat by the same caller with the same key in the same conversation and the same body, within \
24 hours (`IM_RETENTION_SECS` when shorter), posts nothing, tells nobody again and answers 201 with the \
same message (same `seq`), even once the conversation is closed. The same key with another body is a 422 \
`idempotency_key_reused`. Keys are per caller and conversation: another caller's identical key, or the \
same key in another conversation, is another request."),
    ),
    request_body = NewMessage,
    responses(
        (status = 201, description = "The stored message (or, repeating an `Idempotency-Key`, the one it posted)", body = Message),
        (status = 400, description = "Malformed JSON, unknown field, text not 1-4096 characters, or `game` without `kind: game` \
(or the other way round) (`invalid_request`); an `Idempotency-Key` that is not 1-255 visible ASCII characters, or \
several (`invalid_idempotency_key`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A player posting `kind: game`, or a `service` token posting text",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such conversation, or the caller does not take part",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The conversation is closed (`conversation_closed`), or this first \
message would answer one conversation more than the caller may have open (`conversation_limit`); \
nothing was stored", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The caller already used this `Idempotency-Key` in this conversation for \
another message (`idempotency_key_reused`); nothing was stored", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/conversations/{id}/messages")]
pub async fn post_message(
    Authenticated(caller): Authenticated,
    Idempotency(key): Idempotency,
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
                .announce_keyed(
                    &conversation,
                    &caller.user_id,
                    text.as_str(),
                    &game,
                    now,
                    key.as_ref(),
                )
                .await
        }
        (MessageKind::Text, None, false) => {
            let conversation = participating(&state, &caller.user_id, id).await?;
            state
                .store
                .append_message_keyed(
                    &conversation,
                    &caller.user_id,
                    text.as_str(),
                    now,
                    key.as_ref(),
                )
                .await
        }
    }
    .map_err(ConversationError::from)?;
    match outcome {
        AppendOutcome::Appended(message) => Ok(HttpResponse::Created().json(message)),
        AppendOutcome::Closed => Err(ConversationError::Closed.into()),
        AppendOutcome::Missing => Err(ConversationError::NotFound.into()),
        AppendOutcome::Limit => Err(ConversationError::Limit.into()),
        AppendOutcome::KeyReused => Err(ConversationError::KeyReused.into()),
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
