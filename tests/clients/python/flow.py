"""The whole flow through Python clients generated from openapi/*.json.

scripts/clients_check.sh generates the two packages (`game_client`, `im_client`)
with openapi-python-client into a temporary directory and runs

    python flow.py GAME_URL IM_URL CLIENTS_DIR

with JWT_SECRET set to the services' secret and XTASK naming the `xtask` binary
that mints tokens. Every call goes through the generated functions and models:
a schema change that breaks them fails here.

The flow (docs/CONTRACT.md, "The flow"): two players are available and both post
in one conversation; the first connects, gets an invite prompt naming the
other and accepts it with no body at all (a `waiting` lobby); the second
connects, gets the join prompt for that lobby and accepts it; both then see the
same `active` session with both players. The reject variant: the invitee
rejects the join prompt, gets a solo session (`rejected`) and the host's lobby,
with nobody left pending, turns into the host's solo session (`declined`).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from typing import Any

GAME_URL, IM_URL, CLIENTS_DIR = sys.argv[1:4]
sys.path.insert(0, CLIENTS_DIR)

# Generated at test time; not importable before the path above is set.
from game_client import AuthenticatedClient as GameClient  # noqa: E402
from game_client.api.players import connect, me  # noqa: E402
from game_client.api.prompts import accept, reject  # noqa: E402
from game_client.api.sessions import get_session  # noqa: E402
from game_client.models import (  # noqa: E402
    AcceptBody,
    PlayerState,
    PromptKind,
    Reason,
    Session,
    SessionKind,
    SessionState,
)
from game_client.types import Unset  # noqa: E402
from im_client import AuthenticatedClient as ImClient  # noqa: E402
from im_client.api.conversations import create_conversation, post_message  # noqa: E402
from im_client.api.presence import set_presence  # noqa: E402
from im_client.models import (  # noqa: E402
    Conversation,
    Message,
    NewConversation,
    NewMessage,
    Presence,
    PresenceStatus,
    PresenceUpdate,
)

XTASK = os.environ["XTASK"]
RUN = secrets.token_hex(4)  # fresh users each run: the services may have seen others


def token(user: str) -> str:
    return subprocess.run(
        [XTASK, "token", user, "--ttl", "600"], check=True, capture_output=True, text=True
    ).stdout.strip()


class Player:
    """A user with a client for each service (one token for both)."""

    def __init__(self, name: str) -> None:
        self.id = f"{name}-{RUN}"
        bearer = token(self.id)
        self.sent: list[tuple[str, str, bytes]] = []

        def record(request: Any) -> None:
            self.sent.append((request.method, request.url.path, request.read()))

        self.game = GameClient(
            base_url=GAME_URL,
            token=bearer,
            raise_on_unexpected_status=True,
            httpx_args={"event_hooks": {"request": [record]}},
        )
        self.im = ImClient(base_url=IM_URL, token=bearer, raise_on_unexpected_status=True)


def expect(response: Any, status: int, model: type) -> Any:
    """The parsed answer, after checking its status and generated model."""
    assert response.status_code == status, (
        f"expected {status}, got {response.status_code}: {response.content!r}"
    )
    assert isinstance(response.parsed, model), f"expected {model.__name__}: {response.parsed!r}"
    return response.parsed


def present(value: Any) -> Any:
    assert value is not None and not isinstance(value, Unset), "expected a value"
    return value


def chatting(a: Player, b: Player) -> None:
    """Both available, one conversation, both posted in it (talking takes two)."""
    for p in (a, b):
        presence = expect(
            set_presence.sync_detailed(
                client=p.im, body=PresenceUpdate(status=PresenceStatus.AVAILABLE)
            ),
            200,
            Presence,
        )
        assert presence.status == PresenceStatus.AVAILABLE, presence
    chat = expect(
        create_conversation.sync_detailed(client=a.im, body=NewConversation(participants=[b.id])),
        201,
        Conversation,
    )
    assert sorted(chat.participants) == sorted([a.id, b.id]), chat
    for p, text in ((a, "play?"), (b, "sure")):
        message = expect(
            post_message.sync_detailed(chat.id, client=p.im, body=NewMessage(text=text)),
            201,
            Message,
        )
        assert message.text == text, message


def invited(host: Player, guest: Player, body: AcceptBody | None) -> Session:
    """The host connects, is offered to play with the guest and accepts: a lobby."""
    state = expect(connect.sync_detailed(client=host.game), 200, PlayerState)
    prompt = present(state.prompt)
    assert prompt.kind == PromptKind.INVITE, prompt
    assert prompt.candidates == [guest.id], prompt
    if body is None:
        # No `body` argument at all: the document says the body is optional.
        answered = accept.sync_detailed(prompt.id, client=host.game)
        method, path, sent = host.sent[-1]
        assert (method, path) == ("POST", f"/v1/prompts/{prompt.id}/accept"), host.sent[-1]
        assert sent == b"", f"an accept without a body sent {sent!r}"
    else:
        answered = accept.sync_detailed(prompt.id, client=host.game, body=body)
    lobby = present(expect(answered, 200, PlayerState).session)
    assert lobby.kind == SessionKind.MULTIPLAYER, lobby
    assert lobby.state == SessionState.WAITING, lobby
    assert (lobby.host, lobby.players, lobby.pending) == (host.id, [host.id], [guest.id]), lobby
    return lobby


def join_prompt(guest: Player, host: Player, lobby: Session) -> Any:
    state = expect(connect.sync_detailed(client=guest.game), 200, PlayerState)
    prompt = present(state.prompt)
    assert prompt.kind == PromptKind.JOIN, prompt
    assert (prompt.host, prompt.session_id) == (host.id, lobby.id), prompt
    return prompt


def accepted_flow() -> None:
    alice, bob = Player("alice"), Player("bob")
    chatting(alice, bob)
    lobby = invited(alice, bob, body=None)
    prompt = join_prompt(bob, alice, lobby)
    joined = present(
        expect(accept.sync_detailed(prompt.id, client=bob.game), 200, PlayerState).session
    )
    assert joined.id == lobby.id, joined
    for p in (alice, bob):
        state = expect(me.sync_detailed(client=p.game), 200, PlayerState)
        assert isinstance(state.prompt, (type(None), Unset)), state.prompt
        session = present(state.session)
        assert session.id == lobby.id, session
        assert session.state == SessionState.ACTIVE, session
        assert sorted(session.players) == sorted([alice.id, bob.id]), session
        assert session.join_token, "a player of an active session has a join token"
        read = expect(get_session.sync_detailed(lobby.id, client=p.game), 200, Session)
        assert (read.id, read.state) == (lobby.id, SessionState.ACTIVE), read
    print("ok    accepted: both players see one active session", lobby.id)


def rejected_flow() -> None:
    carol, dave = Player("carol"), Player("dave")
    chatting(carol, dave)
    lobby = invited(carol, dave, body=AcceptBody(with_=[dave.id]))
    prompt = join_prompt(dave, carol, lobby)
    solo = present(
        expect(reject.sync_detailed(prompt.id, client=dave.game), 200, PlayerState).session
    )
    assert (solo.kind, solo.reason, solo.players) == (SessionKind.SOLO, Reason.REJECTED, [dave.id]), solo
    host = present(expect(me.sync_detailed(client=carol.game), 200, PlayerState).session)
    assert (host.kind, host.reason, host.players) == (SessionKind.SOLO, Reason.DECLINED, [carol.id]), host
    print("ok    rejected: the invitee is solo (rejected), the host's lobby ends solo (declined)")


accepted_flow()
rejected_flow()
print("2 passed, 0 failed")
