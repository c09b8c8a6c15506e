use std::net::IpAddr;
use std::sync::Arc;

use mqbridge_broker_api::BrokerError;

use mqbridge_broker_api::Permission;

use super::{Access, PermissionRecord, TopicPermissionRecord, UserRecord, password};
use crate::store::Discard;

fn access_with(user: &str) -> Access {
    let access = Access::restore(Arc::new(Discard::default()), Vec::new(), Vec::new());
    access.put_user(UserRecord {
        name: user.to_owned(),
        password_hash: password::hash("pw"),
        tags: Vec::new(),
    });
    access
}

fn permission(user: &str, configure: &str, write: &str, read: &str) -> PermissionRecord {
    PermissionRecord {
        user: user.to_owned(),
        vhost: "/".to_owned(),
        configure: configure.to_owned(),
        write: write.to_owned(),
        read: read.to_owned(),
    }
}

#[test]
fn the_default_exchange_is_checked_as_amq_default() {
    let access = access_with("u");
    access
        .set_permission(permission("u", "", "^amq\\.default$", ""))
        .expect("set");
    let grant = access.grant("u", "/").expect("granted");
    assert!(grant.check(Permission::Write, "exchange", "").is_ok());
    let refused = grant.check(Permission::Write, "exchange", "amq.topic");
    let Err(BrokerError::AccessRefused(text)) = refused else {
        panic!("refused: {refused:?}");
    };
    assert_eq!(
        text,
        "write access to exchange 'amq.topic' in vhost '/' refused for user 'u'"
    );
    assert!(grant.check(Permission::Read, "queue", "q").is_err());
}

#[test]
fn topic_permissions_expand_the_username_and_bind_only_their_exchange() {
    let access = access_with("dev.1");
    access
        .set_permission(permission("dev.1", ".*", ".*", ".*"))
        .expect("set");
    let topic = TopicPermissionRecord {
        user: "dev.1".to_owned(),
        vhost: "/".to_owned(),
        exchange: "amq.topic".to_owned(),
        write: "^devices\\.{username}\\.".to_owned(),
        read: ".*".to_owned(),
    };
    access.set_topic_permission(topic).expect("set");
    let grant = access.grant("dev.1", "/").expect("granted");
    let write = |exchange: &str, key: &str| grant.check_topic(Permission::Write, exchange, key);
    assert!(write("amq.topic", "devices.dev.1.temp").is_ok());
    assert!(
        write("amq.topic", "devices.dev21.temp").is_err(),
        "the dot is escaped"
    );
    assert!(write("other", "anything").is_ok());
    assert!(
        grant
            .check_topic(Permission::Read, "amq.topic", "x")
            .is_ok()
    );
}

#[test]
fn bad_patterns_and_unknown_users_are_refused() {
    let access = access_with("u");
    let bad = access.set_permission(permission("u", "(", ".*", ".*"));
    assert!(matches!(bad, Err(BrokerError::PreconditionFailed(_))));
    let nobody = access.set_permission(permission("nobody", ".*", ".*", ".*"));
    assert!(matches!(nobody, Err(BrokerError::NotFound(_))));
}

#[test]
fn deleting_a_user_takes_their_permissions_and_login() {
    let access = access_with("u");
    access
        .set_permission(permission("u", ".*", ".*", ".*"))
        .expect("set");
    let local = IpAddr::from([127, 0, 0, 1]);
    assert!(access.authenticate("u", "pw", local).is_ok());
    assert!(access.delete_user("u"));
    assert!(access.permissions().is_empty());
    assert!(access.authenticate("u", "pw", local).is_err());
    assert!(!access.delete_user("u"));
}

#[test]
fn failed_logins_slow_their_peer_down_and_no_one_else() {
    let access = access_with("u");
    let guesser = IpAddr::from([192, 0, 2, 1]);
    let other = IpAddr::from([192, 0, 2, 2]);
    assert_eq!(access.login_delay(guesser), std::time::Duration::ZERO);
    let mut delays = Vec::new();
    for _ in 0..11 {
        assert!(access.authenticate("u", "guess", guesser).is_err());
        delays.push(access.login_delay(guesser).as_millis());
    }
    assert_eq!(delays, [0, 0, 0, 0, 0, 250, 500, 1000, 2000, 4000, 4000]);
    let local = IpAddr::from([127, 0, 0, 1]);
    for _ in 0..10 {
        assert!(access.authenticate("u", "guess", local).is_err());
    }
    assert_eq!(access.login_delay(local), std::time::Duration::ZERO);
    assert_eq!(access.login_delay(other), std::time::Duration::ZERO);
    // Asking for a certificate's identity is not a guess.
    assert!(access.authenticate("", "", other).is_err());
    assert_eq!(access.login_delay(other), std::time::Duration::ZERO);
}
