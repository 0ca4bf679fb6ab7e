//! docs/CONTRACT.md, "Both at once": invite prompts replaced by a join prompt for the host's lobby (accepted or launched from a chat), and accepting a replaced prompt.

use anyhow::{Context, ensure};
use game_service::game::GameError;
use shared_types::game::{PlayerState, PromptKind, Session, SessionKind, SessionState};
use uuid::Uuid;

use super::Run;
use crate::{commands::name, helpers::uid, model::Player};

impl<'h> Run<'h> {
    /// docs/CONTRACT.md, "Both at once": when a host's lobby invites someone whose open invite prompt
    /// names the host, that prompt is replaced by a join prompt for the lobby, and
    /// accepting the replaced prompt lands the invitee in the lobby without a new question.
    pub(super) fn mutual_accepts(
        &mut self,
        p: Player,
        answered: Uuid,
        result: &Result<PlayerState, GameError>,
        states: &[PlayerState],
    ) -> anyhow::Result<()> {
        let before = &self.last[p];
        let Ok(after) = result else {
            return Ok(());
        };
        // `p` answered an invite prompt redirected to a lobby, while holding that join prompt.
        if let Some(&(join, lobby)) = self.redirects.get(&(p, answered))
            && before.prompt.as_ref().map(|pr| pr.id) == Some(join)
        {
            let session = after
                .session
                .as_ref()
                .context("the redirected accept left no session")?;
            ensure!(
                session.id == lobby
                    && session.state == SessionState::Active
                    && session.kind == SessionKind::Multiplayer
                    && session.players.contains(&uid(&name(p))),
                "p{p} accepted an invite prompt replaced by a join prompt for {lobby} but got {session:?}"
            );
        }
        // `p` accepted their open invite prompt: a new lobby.
        let opened = before
            .prompt
            .as_ref()
            .filter(|pr| pr.id == answered && pr.kind == PromptKind::Invite);
        let lobby = after
            .session
            .as_ref()
            .filter(|s| s.state == SessionState::Waiting && s.host == uid(&name(p)));
        let (Some(_), Some(lobby)) = (opened, lobby) else {
            return Ok(());
        };
        self.note_redirects(p, lobby, states)
    }

    /// `p` launched a lobby from a chat: the invite prompts naming `p` are replaced as when
    /// `p` accepts an invite prompt.
    pub(super) fn launch_redirects(
        &mut self,
        p: Player,
        after: &PlayerState,
        states: &[PlayerState],
    ) -> anyhow::Result<()> {
        let lobby = after
            .session
            .as_ref()
            .filter(|s| s.state == SessionState::Waiting && s.host == uid(&name(p)))
            .with_context(|| format!("p{p}'s launch left them no lobby of theirs: {after:?}"))?;
        self.note_redirects(p, lobby, states)
    }

    /// `p` just opened `lobby`: each invitee whose invite prompt (before) named `p` now
    /// holds a join prompt for it, and answering the old prompt is redirected to it.
    fn note_redirects(
        &mut self,
        p: Player,
        lobby: &Session,
        states: &[PlayerState],
    ) -> anyhow::Result<()> {
        for invitee in &lobby.pending {
            let q = self.player(invitee)?;
            let Some(invite) = self.last[q].prompt.as_ref().filter(|pr| {
                pr.kind == PromptKind::Invite && pr.candidates.contains(&uid(&name(p)))
            }) else {
                continue;
            };
            let join = states[q]
                .prompt
                .as_ref()
                .filter(|pr| pr.kind == PromptKind::Join && pr.session_id == Some(lobby.id))
                .with_context(|| {
                    format!(
                        "p{q}'s invite prompt naming p{p} was not replaced by a join prompt for p{p}'s lobby: {:?}",
                        states[q]
                    )
                })?;
            self.redirects.insert((q, invite.id), (join.id, lobby.id));
        }
        Ok(())
    }
}
