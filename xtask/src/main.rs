//! `cargo xtask`: developer commands (see the library's module docs).

use std::process::ExitCode;

use xtask::{openapi, token};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  token <user_id> [--service] [--ttl SECS]
      print an HS256 JWT signed with $JWT_SECRET (default: the scripts/dev.sh secret),
      issuer/audience $JWT_ISSUER/$JWT_AUDIENCE (default game-platform)
  join-token-key
      print a new Ed25519 private key (PKCS#8 PEM) for JOIN_TOKEN_KEY_FILE, as
      `openssl genpkey -algorithm ed25519` would; its public half is in the
      game service's /v1/join-tokens/jwks.json
  openapi [--check]
      write openapi/im-service.json and openapi/game-service.json from the code;
      with --check, write nothing and fail when a checked-in file differs";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return Ok(ExitCode::FAILURE);
    };
    match command.as_str() {
        "token" => {
            let request = token::TokenRequest::parse(rest)?;
            println!("{}", token::mint(&request)?);
            Ok(ExitCode::SUCCESS)
        }
        "join-token-key" => {
            anyhow::ensure!(rest.is_empty(), "usage: cargo xtask join-token-key");
            print!("{}", game_service::join_tokens::generate_pem()?);
            Ok(ExitCode::SUCCESS)
        }
        "openapi" => openapi_command(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => {
            eprintln!("unknown command {other:?}\n\n{USAGE}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn openapi_command(args: &[String]) -> anyhow::Result<ExitCode> {
    let root = openapi::workspace_root();
    match args {
        [] => {
            for path in openapi::write(&root)? {
                println!("wrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        [flag] if flag == "--check" => {
            let drifted = openapi::drifted(&root)?;
            if drifted.is_empty() {
                println!("OpenAPI documents are up to date");
                return Ok(ExitCode::SUCCESS);
            }
            for path in drifted {
                eprintln!("{path} differs from the code: run `cargo xtask openapi`");
            }
            Ok(ExitCode::FAILURE)
        }
        _ => anyhow::bail!("usage: cargo xtask openapi [--check]"),
    }
}
