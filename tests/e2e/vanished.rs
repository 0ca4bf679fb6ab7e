//! An event-stream client that vanishes (no FIN, no RST: its machine died or its network went) has its stream released within the keep-alive and the TCP user timeout.
//!
//! The client is cut off by an nftables table of the test's own that drops, on arrival, every
//! packet of its one connection on loopback, both ways: the service's keep-alive comments still
//! leave its socket successfully and simply are never acknowledged, as on a dead network. This
//! needs root (CAP_NET_ADMIN) and `nft` (Debian's `nftables`, which `scripts/test.sh` installs);
//! without them the test fails, it never skips. The table is deleted on drop, failure or not.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{NftTable, eventually, spawn_world};

/// The comment line's period on every stream (`service_kit::events::sse::KEEP_ALIVE`): the
/// first write the vanished client never acknowledges goes out within it.
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// How long that write may stay unacknowledged before the connection is given up
/// (`service_kit::serve::USER_TIMEOUT`).
const USER_TIMEOUT: Duration = Duration::from_secs(5);
/// For the error to reach the stream, and for a loaded machine.
const MARGIN: Duration = Duration::from_secs(3);
/// The game service's gauge of the streams it holds.
const HELD: &str = "game_event_streams_open";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_client_vanished_is_released_within_the_keep_alive_and_the_user_timeout()
-> anyhow::Result<()> {
    let world = spawn_world().await?;
    let alice = world.player("alice")?;
    let address = world.game_address();
    let client = open_stream(&address, &alice.authorization()).await?;
    let opened = Instant::now();
    eventually("the stream held", Duration::from_secs(5), || async {
        Ok((world.metric(None, HELD).await? == 1.0).then_some(()))
    })
    .await?;

    let server_port = client.peer_addr()?.port();
    let client_port = client.local_addr()?.port();
    let cut = Vanish::cut(server_port, client_port)?;
    let vanished = Instant::now();
    let limit = KEEP_ALIVE + USER_TIMEOUT + MARGIN;
    let released = eventually("the vanished client's stream released", limit, || async {
        Ok((world.metric(None, HELD).await? == 0.0).then_some(()))
    })
    .await;
    if let Err(err) = released {
        bail!(
            "{err:#}: {HELD} still {} after {:?}; the drops so far:\n{}",
            world.metric(None, HELD).await?,
            vanished.elapsed(),
            cut.listing()
        );
    }
    eprintln!(
        "the client vanished {:?} after its stream opened; the stream was released {:?} later",
        vanished.duration_since(opened),
        vanished.elapsed()
    );
    drop(cut);
    Ok(())
}

/// `GET /v1/events` over a socket of the test's own (its port is what gets cut off), read up
/// to the end of the response head.
async fn open_stream(address: &str, authorization: &str) -> anyhow::Result<TcpStream> {
    let mut socket = TcpStream::connect(address)
        .await
        .with_context(|| format!("connecting to {address}"))?;
    let request = format!(
        "GET /v1/events HTTP/1.1\r\nhost: {address}\r\nauthorization: {authorization}\r\n\
         accept: text/event-stream\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut chunk))
            .await
            .context("the response head did not come")??;
        ensure!(n > 0, "the stream closed before its head: {head:?}");
        head.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    ensure!(head.starts_with("http/1.1 200"), "{head}");
    ensure!(head.contains("content-type: text/event-stream"), "{head}");
    Ok(socket)
}

/// An nftables table dropping every packet of one loopback connection on arrival, both ways;
/// deleted on drop.
struct Vanish {
    table: NftTable,
}

impl Vanish {
    fn cut(server_port: u16, client_port: u16) -> anyhow::Result<Self> {
        let table = format!("e2e_vanish_{}_{client_port}", std::process::id());
        let body = format!(
            "\tchain input {{\n\
             \t\ttype filter hook input priority raw; policy accept;\n\
             \t\tip saddr 127.0.0.1 tcp sport {server_port} tcp dport {client_port} counter drop\n\
             \t\tip saddr 127.0.0.1 tcp sport {client_port} tcp dport {server_port} counter drop\n\
             \t}}"
        );
        let table = NftTable::create(&table, None, &body, "makes the client vanish")?;
        Ok(Self { table })
    }

    /// The table with its counters, for a failure message.
    fn listing(&self) -> String {
        self.table.describe()
    }
}
