//! API contract and security of the game service, in-process with a real IM service (or the real binary when the environment matters).

mod authorization;
mod docs;
mod game_servers;
mod helpers;
mod keys;
mod limits;
mod logs;
mod rate_limit;
mod tokens;
