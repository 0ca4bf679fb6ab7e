//! Asymmetric keys: `JWT_PUBLIC_KEY_FILE` + `JWT_ALGORITHM` (EdDSA, RS256) verify player tokens on the real binary.

use std::{path::Path, process::Command};

use anyhow::{Context, bail};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared_types::{game::PromptKind, problem::ProblemCode};

use crate::helpers::{
    alg_none, assert_problem, client, expect_json, hs256, im_settings, jwt_settings, player_claims,
    process::{GameProcess, TempDir},
    spawn_im,
};

const SECRET: &str = "keys-test-secret-at-least-32-bytes-long";

/// A key pair made by the `openssl` CLI: the private key PEM and the public key's file.
struct KeyPair {
    private_pem: Vec<u8>,
    public_file: std::path::PathBuf,
}

/// Starts `openssl genpkey` for `name` (not waited for: RSA key generation takes a moment).
fn start_genpkey(
    dir: &TempDir,
    name: &str,
    algorithm: Algorithm,
) -> anyhow::Result<std::process::Child> {
    let private = dir.join(&format!("{name}.pem"));
    let mut command = Command::new("openssl");
    command.arg("genpkey");
    match algorithm {
        Algorithm::EdDSA => command.args(["-algorithm", "ed25519"]),
        Algorithm::RS256 => command.args(["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
        other => bail!("no key type for {other:?}"),
    };
    command
        .arg("-out")
        .arg(&private)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running openssl (is the openssl CLI installed?)")
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command.status().with_context(|| format!("{command:?}"))?;
    anyhow::ensure!(status.success(), "{command:?}: {status}");
    Ok(())
}

/// Generates the key pairs named in `names`, all of `algorithm`, concurrently.
fn key_pairs(dir: &TempDir, algorithm: Algorithm, names: &[&str]) -> anyhow::Result<Vec<KeyPair>> {
    let children = names
        .iter()
        .map(|name| start_genpkey(dir, name, algorithm))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for child in children {
        // Collects the progress dots openssl prints, shown only on failure.
        let output = child.wait_with_output()?;
        anyhow::ensure!(
            output.status.success(),
            "openssl genpkey: {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    names
        .iter()
        .map(|name| {
            let private = dir.join(&format!("{name}.pem"));
            let public_file = dir.join(&format!("{name}.pub.pem"));
            run(Command::new("openssl")
                .args(["pkey", "-pubout", "-in"])
                .arg(&private)
                .arg("-out")
                .arg(&public_file))?;
            Ok(KeyPair {
                private_pem: std::fs::read(&private)?,
                public_file,
            })
        })
        .collect()
}

fn sign(claims: &Value, algorithm: Algorithm, private_pem: &[u8]) -> anyhow::Result<String> {
    let key = match algorithm {
        Algorithm::EdDSA => EncodingKey::from_ed_pem(private_pem)?,
        _ => EncodingKey::from_rsa_pem(private_pem)?,
    };
    Ok(jsonwebtoken::encode(&Header::new(algorithm), claims, &key)?)
}

fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::EdDSA => "EdDSA",
        _ => "RS256",
    }
}

async fn start_with_public_key(
    algorithm: Algorithm,
    public_file: &Path,
    im_url: Option<&str>,
) -> anyhow::Result<GameProcess> {
    let public_file = public_file.to_string_lossy().into_owned();
    let mut env = vec![
        ("JWT_SECRET", SECRET),
        ("JWT_PUBLIC_KEY_FILE", public_file.as_str()),
        ("JWT_ALGORITHM", algorithm_name(algorithm)),
    ];
    if let Some(url) = im_url {
        env.push(("IM_URL", url));
        env.push(("IM_TIMEOUT_MS", "2000"));
    }
    GameProcess::start(&env).await
}

/// Tokens signed by the configured key are accepted; HS256 (even with the secret or the
/// public key as HMAC key), another key of the same type, the other algorithm and
/// `alg: none` are 401.
async fn only_the_configured_key_is_accepted(algorithm: Algorithm) -> anyhow::Result<()> {
    let other_algorithm = match algorithm {
        Algorithm::EdDSA => Algorithm::RS256,
        _ => Algorithm::EdDSA,
    };
    let dir = TempDir::new("keys")?;
    let mut pairs = key_pairs(&dir, algorithm, &["issuer", "intruder"])?.into_iter();
    let (Some(issuer), Some(intruder)) = (pairs.next(), pairs.next()) else {
        bail!("two key pairs");
    };
    let foreign = key_pairs(&dir, other_algorithm, &["foreign"])?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("a foreign key pair"))?;
    let game = start_with_public_key(algorithm, &issuer.public_file, None).await?;
    let http = client()?;
    let me = game.url("/v1/me");
    let claims = player_claims("alice");

    let good = sign(&claims, algorithm, &issuer.private_pem)?;
    let response = http.get(&me).bearer_auth(&good).send().await?;
    let state: Value = expect_json(response, StatusCode::OK).await?;
    assert_eq!(state["player_id"], "alice");

    let public_pem = std::fs::read_to_string(&issuer.public_file)?;
    let refused = [
        ("HS256 with JWT_SECRET", hs256(&claims, SECRET)?),
        (
            "HS256 keyed with the public key",
            hs256(&claims, &public_pem)?,
        ),
        (
            "another key",
            sign(&claims, algorithm, &intruder.private_pem)?,
        ),
        (
            "the other algorithm",
            sign(&claims, other_algorithm, &foreign.private_pem)?,
        ),
        ("alg none", alg_none(&claims)),
        (
            "a good signature on altered claims",
            tamper(&good, &json!({"sub": "mallory"}))?,
        ),
    ];
    for (what, token) in refused {
        let response = http.get(&me).bearer_auth(&token).send().await?;
        assert_problem(
            response,
            StatusCode::UNAUTHORIZED,
            ProblemCode::Unauthorized,
        )
        .await
        .map_err(|e| e.context(what))?;
    }
    game.stop();
    Ok(())
}

/// `token` with its claims patched by `patch` and the original signature kept.
fn tamper(token: &str, patch: &Value) -> anyhow::Result<String> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(signature)) = (parts.next(), parts.next(), parts.next())
    else {
        bail!("a JWT has three parts");
    };
    let mut claims = player_claims("alice");
    if let (Some(claims), Some(patch)) = (claims.as_object_mut(), patch.as_object()) {
        claims.extend(patch.clone());
    }
    Ok(format!(
        "{header}.{}.{signature}",
        crate::helpers::base64url(claims.to_string().as_bytes())
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_ed25519_public_key_only_eddsa_tokens_of_that_key_are_accepted()
-> anyhow::Result<()> {
    only_the_configured_key_is_accepted(Algorithm::EdDSA).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_rsa_public_key_only_rs256_tokens_of_that_key_are_accepted() -> anyhow::Result<()> {
    only_the_configured_key_is_accepted(Algorithm::RS256).await
}

/// The whole flow with both services on asymmetric keys: the game service must still be
/// able to ask the IM service who a player is talking to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_public_keys_on_both_services_a_player_still_gets_an_invite_for_her_partner()
-> anyhow::Result<()> {
    let dir = TempDir::new("keys-flow")?;
    let issuer = key_pairs(&dir, Algorithm::EdDSA, &["issuer"])?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("a key pair"))?;
    let mut jwt = jwt_settings(SECRET);
    jwt.public_key = Some((Algorithm::EdDSA, std::fs::read(&issuer.public_file)?));
    let im = spawn_im(im_settings(jwt)).await?;
    let game = start_with_public_key(Algorithm::EdDSA, &issuer.public_file, Some(&im)).await?;
    let http = client()?;
    let token = |who: &str| sign(&player_claims(who), Algorithm::EdDSA, &issuer.private_pem);

    for who in ["alice", "bob"] {
        let response = http
            .put(format!("{im}/v1/presence"))
            .bearer_auth(token(who)?)
            .json(&json!({"status": "available"}))
            .send()
            .await?;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "IM accepts {who}'s token"
        );
    }
    let response = http
        .post(format!("{im}/v1/conversations"))
        .bearer_auth(token("alice")?)
        .json(&json!({"participants": ["bob"]}))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::CREATED);
    let conversation: serde_json::Value = response.json().await?;
    let id = conversation["id"].as_str().unwrap_or_default().to_owned();
    for who in ["alice", "bob"] {
        let posted = http
            .post(format!("{im}/v1/conversations/{id}/messages"))
            .bearer_auth(token(who)?)
            .json(&json!({"text": "hi"}))
            .send()
            .await?;
        assert_eq!(posted.status(), StatusCode::CREATED, "{who} posts");
    }

    let response = http
        .post(game.url("/v1/connect"))
        .bearer_auth(token("alice")?)
        .send()
        .await?;
    let state: shared_types::game::PlayerState = expect_json(response, StatusCode::OK).await?;
    let log = game.stop();
    assert!(
        !state.degraded,
        "the IM service refused the game service:\n{log}"
    );
    let prompt = state
        .prompt
        .ok_or_else(|| anyhow::anyhow!("an invite prompt, got {:?}", state.session))?;
    assert_eq!(prompt.kind, PromptKind::Invite);
    assert_eq!(
        prompt
            .candidates
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>(),
        ["bob"]
    );
    Ok(())
}
