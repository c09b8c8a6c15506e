//! `mqbridge ctl`: the real binary against the real broker's management API.

mod common;

use std::process::{Command, Output};

use common::{Broker, assert_reply, connect_url, declare, eventually, publish, within};
use lapin::types::FieldTable;

/// Runs `mqbridge ctl ARGS` as the guest against `broker`. On a blocking thread: the broker
/// answering it runs on this test's runtime.
async fn ctl(broker: &Broker, args: &[&str]) -> Output {
    let url = format!("http://{}", broker.server.management_addr);
    let mut command = Command::new(env!("CARGO_BIN_EXE_mqbridge"));
    command
        .args(["ctl", "--url", &url])
        .args(args)
        .env_remove("MQBRIDGE_CTL_USER")
        .env_remove("MQBRIDGE_CTL_PASSWORD");
    let run = tokio::task::spawn_blocking(move || command.output().expect("mqbridge runs"));
    within(run).await.expect("ctl finished")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "ctl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn users_and_permissions_made_by_ctl_log_in() {
    let broker = Broker::start().await;
    stdout(
        &ctl(
            &broker,
            &["users", "add", "bob", "pw", "--tags", "management"],
        )
        .await,
    );
    let users = stdout(&ctl(&broker, &["users", "list"]).await);
    assert!(users.lines().any(|l| l == "bob\tmanagement"), "{users}");
    let url = format!("amqp://bob:pw@{}/%2f", broker.server.amqp_addr);
    assert_reply(connect_url(&url).await, 530);
    stdout(&ctl(&broker, &["permissions", "set", "bob", ".*", ".*", ".*"]).await);
    let permissions = stdout(&ctl(&broker, &["permissions", "list"]).await);
    assert!(permissions.contains("bob\t/\t.*\t.*\t.*"), "{permissions}");
    connect_url(&url).await.expect("bob logs in");
    stdout(&ctl(&broker, &["users", "delete", "bob"]).await);
    assert_reply(connect_url(&url).await, 403);
}

#[tokio::test]
async fn queues_are_listed_purged_and_deleted() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    declare(&channel, "work", FieldTable::default()).await;
    publish(&channel, "", "work", b"one").await;
    publish(&channel, "", "work", b"two").await;
    eventually("two ready in the listing", || async {
        stdout(&ctl(&broker, &["queues", "list"]).await).contains("/\twork\t2\t0\t0")
    })
    .await;
    stdout(&ctl(&broker, &["queues", "purge", "work"]).await);
    let listed = stdout(&ctl(&broker, &["queues", "list", "--vhost", "/"]).await);
    assert!(listed.contains("/\twork\t0\t0\t0"), "{listed}");
    stdout(&ctl(&broker, &["queues", "delete", "work"]).await);
    let listed = stdout(&ctl(&broker, &["queues", "list"]).await);
    assert!(!listed.contains("work"), "{listed}");
}

#[tokio::test]
async fn definitions_exported_by_ctl_import_into_another_broker() {
    let source = Broker::start().await;
    stdout(&ctl(&source, &["vhosts", "add", "prod"]).await);
    stdout(&ctl(&source, &["users", "add", "ops", "pw"]).await);
    stdout(
        &ctl(
            &source,
            &[
                "permissions",
                "set",
                "ops",
                ".*",
                ".*",
                ".*",
                "--vhost",
                "prod",
            ],
        )
        .await,
    );
    let file = source.data_dir().join("exported.json");
    let path = file.to_str().expect("utf-8 path");
    stdout(&ctl(&source, &["definitions", "export", path]).await);

    let target = Broker::start().await;
    stdout(&ctl(&target, &["definitions", "import", path]).await);
    let vhosts = stdout(&ctl(&target, &["vhosts", "list"]).await);
    assert!(vhosts.lines().any(|l| l.starts_with("prod\t")), "{vhosts}");
    let url = format!("amqp://ops:pw@{}/prod", target.server.amqp_addr);
    connect_url(&url).await.expect("ops logs in to prod");
}

#[tokio::test]
async fn failures_exit_non_zero_with_the_apis_reason() {
    let broker = Broker::start().await;
    let refused = ctl(&broker, &["users", "list", "--password", "wrong"]).await;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("401"),
        "{refused:?}"
    );
    let missing = ctl(&broker, &["users", "delete", "nobody"]).await;
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));
}

#[tokio::test]
async fn policies_set_by_ctl_apply_and_are_listed_and_cleared() {
    let broker = Broker::start().await;
    let (_connection, channel) = broker.channel().await;
    declare(&channel, "capped", FieldTable::default()).await;
    stdout(
        &ctl(
            &broker,
            &["policies", "set", "cap", "^capped$", r#"{"max-length": 1}"#],
        )
        .await,
    );
    publish(&channel, "", "capped", b"old").await;
    publish(&channel, "", "capped", b"new").await;
    let listed = stdout(&ctl(&broker, &["policies", "list"]).await);
    assert!(
        listed.contains("/\tcap\t^capped$\tall\t{\"max-length\":1}\t0"),
        "{listed}"
    );
    let queues = stdout(&ctl(&broker, &["queues", "list"]).await);
    assert!(queues.contains("/\tcapped\t1\t"), "{queues}");
    let bad = ctl(&broker, &["policies", "set", "bad", ".*", "{not json"]).await;
    assert!(!bad.status.success());
    stdout(&ctl(&broker, &["policies", "clear", "cap"]).await);
    let listed = stdout(&ctl(&broker, &["policies", "list"]).await);
    assert_eq!(listed.lines().count(), 1, "only the header: {listed}");
}
