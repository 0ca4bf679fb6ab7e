//! The replicated-Redis harnesses on their own: a killed master or primary is failed over
//! with its acknowledged writes, and comes back as a replica.

use std::time::{Duration, Instant};

use e2e::{ReplicatedCluster, SentinelGroup, replicated::Role, unique_prefix};
use redis::Connection;

/// Generous: a failover takes a few seconds, a Sentinel vote that splits retries after 10 s.
const FAILOVER_LIMIT: Duration = Duration::from_secs(20);
/// A Sentinel makes a restarted old primary a replica about 11 s later (8 s of grace, INFO
/// every 10 s: one INFO round missed is 10 s more); a cluster takes it back at once.
const REJOIN_LIMIT: Duration = Duration::from_secs(30);

fn connect(port: u16) -> anyhow::Result<Connection> {
    Ok(redis::Client::open(format!("redis://127.0.0.1:{port}"))?.get_connection()?)
}

/// SET on `conn`, then `WAIT 1 1000`: the write is on a replica before the test goes on.
fn write_replicated(conn: &mut Connection, key: &str) -> anyhow::Result<()> {
    redis::cmd("SET").arg(key).arg("kept").query::<()>(conn)?;
    let replicas: i64 = redis::cmd("WAIT").arg(1).arg(1000).query(conn)?;
    assert_eq!(replicas, 1, "WAIT 1 1000: the write reached no replica");
    Ok(())
}

fn read(conn: &mut impl redis::ConnectionLike, key: &str) -> anyhow::Result<Option<String>> {
    Ok(redis::cmd("GET").arg(key).query(conn)?)
}

#[test]
fn a_killed_cluster_master_is_replaced_by_its_replica_and_rejoins_as_one() -> anyhow::Result<()> {
    let started = Instant::now();
    let mut cluster = ReplicatedCluster::start()?;
    let roles: Vec<Role> = (0..6).map(|i| cluster.role(i)).collect::<Result<_, _>>()?;
    assert_eq!(roles.iter().filter(|&&r| r == Role::Master).count(), 3);
    assert!(cluster.is_healthy(), "3 masters, 3 linked replicas");
    eprintln!("replicated cluster up in {:?}", started.elapsed());

    let key = unique_prefix("failover");
    let master = cluster.master_for_key(&key)?;
    write_replicated(&mut connect(cluster.port(master)?)?, &key)?;

    cluster.kill(master)?;
    let killed = Instant::now();
    cluster.wait_for_failover(master, FAILOVER_LIMIT)?;
    eprintln!("failover in {:?}", killed.elapsed());
    let promoted = cluster.master_for_key(&key)?;
    assert_ne!(promoted, master);
    assert_eq!(cluster.role(promoted)?, Role::Master);

    // Every seed of the URL, the dead one included, the way a service would connect.
    let url = cluster.url();
    let seeds: Vec<String> = url
        .trim_start_matches("redis+cluster://")
        .split(',')
        .map(|node| format!("redis://{node}"))
        .collect();
    assert_eq!(seeds.len(), 6, "{url}");
    let mut through_cluster = redis::cluster::ClusterClient::new(seeds)?.get_connection()?;
    assert_eq!(read(&mut through_cluster, &key)?.as_deref(), Some("kept"));

    cluster.restart(master)?;
    let restarted = Instant::now();
    cluster.wait_for_role(master, Role::Replica, REJOIN_LIMIT)?;
    eprintln!("old master a linked replica in {:?}", restarted.elapsed());
    assert_eq!(cluster.master_for_key(&key)?, promoted);
    // It resynchronised from the promoted node: it holds the key again.
    let mut old = connect(cluster.port(master)?)?;
    redis::cmd("READONLY").query::<()>(&mut old)?;
    assert_eq!(read(&mut old, &key)?.as_deref(), Some("kept"));
    eprintln!("cluster self-test in {:?}", started.elapsed());
    Ok(())
}

#[test]
fn sentinels_promote_the_replica_of_a_killed_primary_which_comes_back_as_one() -> anyhow::Result<()>
{
    let started = Instant::now();
    let mut group = SentinelGroup::start()?;
    eprintln!("sentinel group up in {:?}", started.elapsed());
    let url = group.url();
    let sentinels: Vec<String> = group
        .sentinel_ports()
        .iter()
        .map(|port| format!("127.0.0.1:{port}"))
        .collect();
    assert_eq!(
        url,
        format!(
            "redis+sentinel://{}/{}",
            sentinels.join(","),
            group.master_name()
        )
    );
    assert_eq!(group.master_name(), "mymaster");

    let primary = group.primary()?;
    assert_eq!(group.role(primary)?, Role::Master);
    let key = unique_prefix("sentinel-failover");
    write_replicated(&mut connect(group.port(primary)?)?, &key)?;

    let killed = Instant::now();
    assert_eq!(group.kill_primary()?, primary);
    let promoted = group.wait_for_failover(primary, FAILOVER_LIMIT)?;
    eprintln!("failover in {:?}", killed.elapsed());
    assert_ne!(promoted, primary);
    assert_eq!(group.primary()?, promoted);
    let mut new_primary = connect(group.port(promoted)?)?;
    assert_eq!(read(&mut new_primary, &key)?.as_deref(), Some("kept"));

    group.restart(primary)?;
    let restarted = Instant::now();
    group.wait_for_role(primary, Role::Replica, REJOIN_LIMIT)?;
    eprintln!("old primary a linked replica in {:?}", restarted.elapsed());
    assert_eq!(group.primary()?, promoted);
    let mut old = connect(group.port(primary)?)?;
    assert_eq!(read(&mut old, &key)?.as_deref(), Some("kept"));
    eprintln!("sentinel self-test in {:?}", started.elapsed());
    Ok(())
}
