//! Game modes (`GAME_MODES`): the kinds of match a session can be, each with its most players.

/// The modes when `GAME_MODES` is unset: one mode as large as a conversation.
pub const DEFAULT_GAME_MODES: &str = "default:16";
/// Most players a mode may allow: a conversation holds at most 16 people.
pub const MAX_PLAYERS: usize = 16;

/// One kind of match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mode {
    pub name: String,
    /// The session never has more players; once it has this many, its other invitations end (`full`).
    pub max_players: usize,
}

/// The configured modes, in their configured order; the first is the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modes(Vec<Mode>);

impl Modes {
    /// Parses `name:max_players,…`: names of 1-32 characters `[a-z0-9_-]`, each listed once,
    /// sizes 2-16 (a mode of one is a solo session, which needs no mode).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut modes: Vec<Mode> = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, size) = entry
                .split_once(':')
                .ok_or_else(|| format!("`{entry}` is not `name:max_players`"))?;
            let valid_name = (1..=32).contains(&name.len())
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !valid_name {
                return Err(format!(
                    "mode name `{name}` must be 1-32 characters of a-z, 0-9, `_` and `-`"
                ));
            }
            let max_players: usize = size
                .parse()
                .map_err(|_| format!("`{size}` (mode `{name}`) is not a number"))?;
            if !(2..=MAX_PLAYERS).contains(&max_players) {
                return Err(format!(
                    "mode `{name}` allows {max_players} players; a mode allows 2-{MAX_PLAYERS}"
                ));
            }
            if modes.iter().any(|m| m.name == name) {
                return Err(format!("mode `{name}` is listed twice"));
            }
            modes.push(Mode {
                name: name.to_owned(),
                max_players,
            });
        }
        if modes.is_empty() {
            return Err("no mode listed".to_owned());
        }
        Ok(Self(modes))
    }

    /// Every mode's name, in the configured order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|m| m.name.as_str())
    }

    /// The mode a request without `mode` gets: the first listed.
    pub fn default_mode(&self) -> &Mode {
        // `parse` never builds an empty list.
        &self.0[0]
    }

    /// The mode asked for (`None`: the default); `Err` names the modes there are.
    pub fn choose(&self, requested: Option<&str>) -> Result<&Mode, String> {
        let Some(name) = requested else {
            return Ok(self.default_mode());
        };
        self.0.iter().find(|m| m.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.0.iter().map(|m| m.name.as_str()).collect();
            format!("no game mode `{name}`; the modes are: {}", known.join(", "))
        })
    }

    /// The most players of a stored session's mode. A mode removed from `GAME_MODES` since
    /// the session began keeps the largest size a mode can have: shrinking the list never
    /// evicts anyone.
    pub fn max_players(&self, name: &str) -> usize {
        self.0
            .iter()
            .find(|m| m.name == name)
            .map_or(MAX_PLAYERS, |m| m.max_players)
    }
}

impl Default for Modes {
    fn default() -> Self {
        Self(vec![Mode {
            name: "default".to_owned(),
            max_players: MAX_PLAYERS,
        }])
    }
}

#[cfg(test)]
#[expect(clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn the_default_spec_is_the_default_modes() {
        assert_eq!(
            Modes::parse(DEFAULT_GAME_MODES).expect("valid"),
            Modes::default()
        );
    }

    #[test]
    fn modes_keep_their_order_and_the_first_is_the_default() {
        let modes = Modes::parse("duel:2, squad:4").expect("valid");
        assert_eq!(modes.default_mode().name, "duel");
        assert_eq!(modes.choose(Some("squad")).expect("known").max_players, 4);
        assert_eq!(modes.choose(None).expect("default").name, "duel");
        let unknown = modes.choose(Some("raid")).expect_err("unknown");
        assert!(unknown.contains("duel, squad"), "{unknown}");
        assert_eq!(modes.max_players("gone"), MAX_PLAYERS);
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        for (spec, says) in [
            ("", "no mode"),
            ("duel", "name:max_players"),
            ("duel:1", "2-16"),
            ("duel:17", "2-16"),
            ("duel:two", "not a number"),
            ("Duel:2", "a-z"),
            ("duel:2,duel:3", "twice"),
        ] {
            let err = Modes::parse(spec).expect_err(spec);
            assert!(err.contains(says), "{spec}: {err}");
        }
    }
}
