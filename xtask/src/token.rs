//! `cargo xtask token`: HS256 tokens signed like the services expect, for curl and the docs page.

use anyhow::{Context, bail};
pub use shared_types::auth::DEV_SECRET;
use shared_types::{
    UserId,
    auth::{DEFAULT_AUDIENCE, DEFAULT_ISSUER, Minter, Scope},
};
/// One hour: long enough for a manual session, short enough not to leak forever.
pub const DEFAULT_TTL_SECS: u64 = 3600;

/// What to put in the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub user_id: String,
    pub scope: Scope,
    pub ttl_secs: u64,
}

impl TokenRequest {
    /// Parses `<user_id> [--service] [--ttl SECS]`.
    pub fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut user_id = None;
        let mut scope = Scope::Player;
        let mut ttl_secs = DEFAULT_TTL_SECS;
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--service" => scope = Scope::Service,
                "--ttl" => {
                    let raw = args.next().context("--ttl needs a number of seconds")?;
                    ttl_secs = raw
                        .parse()
                        .with_context(|| format!("--ttl {raw:?} is not a number of seconds"))?;
                }
                flag if flag.starts_with("--") => bail!("unknown option {flag}"),
                id if user_id.is_none() => user_id = Some(id.to_owned()),
                extra => bail!("unexpected argument {extra:?}"),
            }
        }
        Ok(Self {
            user_id: user_id.context("missing <user_id>")?,
            scope,
            ttl_secs,
        })
    }
}

/// Signs the token with `$JWT_SECRET` (default [`DEV_SECRET`]) and
/// `$JWT_ISSUER` / `$JWT_AUDIENCE` (default `game-platform`).
pub fn mint(request: &TokenRequest) -> anyhow::Result<String> {
    let user_id = UserId::parse(&request.user_id)
        .with_context(|| format!("invalid user id {:?}", request.user_id))?;
    let secret = env_or("JWT_SECRET", DEV_SECRET);
    let issuer = env_or("JWT_ISSUER", DEFAULT_ISSUER);
    let audience = env_or("JWT_AUDIENCE", DEFAULT_AUDIENCE);
    Minter::hs256(secret.as_bytes(), &issuer, &audience)
        .mint(&user_id, request.scope, request.ttl_secs)
        .context("signing the token")
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(raw: &[&str]) -> Vec<String> {
        raw.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_bare_user_id_asks_for_a_player_token_of_one_hour() -> anyhow::Result<()> {
        let request = TokenRequest::parse(&args(&["alice"]))?;
        assert_eq!(request.scope, Scope::Player);
        assert_eq!(request.ttl_secs, DEFAULT_TTL_SECS);
        Ok(())
    }

    #[test]
    fn service_and_ttl_options_are_read_in_any_order() -> anyhow::Result<()> {
        let request = TokenRequest::parse(&args(&["--ttl", "60", "game", "--service"]))?;
        assert_eq!(
            request,
            TokenRequest {
                user_id: "game".into(),
                scope: Scope::Service,
                ttl_secs: 60
            }
        );
        Ok(())
    }

    #[test]
    fn missing_user_unknown_flags_and_bad_ttl_are_refused() {
        assert!(TokenRequest::parse(&args(&[])).is_err());
        assert!(TokenRequest::parse(&args(&["alice", "--admin"])).is_err());
        assert!(TokenRequest::parse(&args(&["alice", "--ttl", "soon"])).is_err());
        assert!(TokenRequest::parse(&args(&["alice", "bob"])).is_err());
    }

    #[test]
    fn an_invalid_user_id_is_refused_before_signing() {
        let request = TokenRequest {
            user_id: "not valid".into(),
            scope: Scope::Player,
            ttl_secs: 60,
        };
        assert!(mint(&request).is_err());
    }
}
