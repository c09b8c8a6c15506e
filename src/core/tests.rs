use std::net::IpAddr;
use std::sync::Arc;

use mqbridge_broker_api::{
    Broker, BrokerError, ConnectionId, ExchangeKind, ExchangeSpec, Headers, QueueSpec, User,
};

use super::access::{PermissionRecord, UserRecord, password};
use super::limits::Limits;
use super::memory::MemoryGauge;
use super::{Bootstrap, Core, DEFAULT_VHOST, VhostRecord};
use crate::store::{Discard, Recovered};

fn core(loopback_users: &[&str]) -> Arc<Core> {
    let bootstrap = Bootstrap {
        default_user: "guest".to_owned(),
        default_pass: "guest".to_owned(),
        loopback_users: loopback_users.iter().map(|u| (*u).to_owned()).collect(),
        limits: Limits::default(),
    };
    let gauge = Arc::new(MemoryGauge::new(u64::MAX));
    Core::new(
        bootstrap,
        gauge,
        Arc::new(Discard::default()),
        Recovered::default(),
    )
}

fn user(name: &str) -> User {
    User {
        name: name.to_owned(),
    }
}

fn add_user(core: &Core, name: &str, permission: Option<(&str, &str, &str)>) {
    core.access().put_user(UserRecord {
        name: name.to_owned(),
        password_hash: password::hash("pw"),
        tags: Vec::new(),
    });
    if let Some((configure, write, read)) = permission {
        let set = core.access().set_permission(PermissionRecord {
            user: name.to_owned(),
            vhost: DEFAULT_VHOST.to_owned(),
            configure: configure.to_owned(),
            write: write.to_owned(),
            read: read.to_owned(),
        });
        set.expect("valid permission");
    }
}

fn queue(name: &str) -> QueueSpec {
    QueueSpec {
        name: name.to_owned(),
        durable: false,
        exclusive: false,
        auto_delete: false,
        arguments: Headers::new(),
    }
}

#[test]
fn a_loopback_only_user_is_refused_from_elsewhere() {
    let core = core(&["guest"]);
    let remote = IpAddr::from([192, 0, 2, 7]);
    let refused = core.authenticate("guest", "guest", remote);
    assert!(matches!(refused, Err(BrokerError::AccessRefused(_))));
    for local in [IpAddr::from([127, 0, 0, 1]), "::1".parse().expect("ipv6")] {
        assert!(core.authenticate("guest", "guest", local).is_ok());
    }
}

#[test]
fn other_users_may_connect_from_anywhere() {
    let core = core(&[]);
    let remote = IpAddr::from([192, 0, 2, 7]);
    assert!(core.authenticate("guest", "guest", remote).is_ok());
    let wrong = core.authenticate("guest", "nope", remote);
    assert!(matches!(wrong, Err(BrokerError::AccessRefused(_))));
}

#[test]
fn a_user_without_permissions_cannot_open_the_vhost() {
    let core = core(&[]);
    add_user(&core, "bob", None);
    let refused = core.vhost(DEFAULT_VHOST, &user("bob")).map(|_| ());
    assert!(matches!(refused, Err(BrokerError::NotAllowed(_))));
    assert!(core.vhost(DEFAULT_VHOST, &user("guest")).is_ok());
}

#[tokio::test]
async fn every_operation_is_held_to_its_permission() {
    let core = core(&[]);
    add_user(&core, "bob", Some(("^bob-", "^bob-", "^bob-")));
    let system = core.system();
    let admin = system.vhost(DEFAULT_VHOST, &user("guest")).expect("vhost");
    let me = ConnectionId::next();
    admin
        .declare_queue(queue("shared"), false, me)
        .expect("declared");
    let bob = core.vhost(DEFAULT_VHOST, &user("bob")).expect("vhost");
    let refused = |result: Result<(), BrokerError>| {
        assert!(
            matches!(&result, Err(BrokerError::AccessRefused(text)) if text.contains("'bob'")),
            "{result:?}"
        );
    };
    bob.declare_queue(queue("bob-q"), false, me)
        .expect("his own");
    refused(bob.declare_queue(queue("shared"), false, me).map(|_| ()));
    assert!(
        bob.declare_queue(queue("shared"), true, me).is_ok(),
        "passive needs nothing"
    );
    refused(bob.queue("shared", me).map(|_| ()));
    assert!(bob.queue("bob-q", me).is_ok());
    let mut out = Vec::new();
    refused(bob.route("", "bob-q", &Headers::new(), &mut out));
    refused(
        bob.delete_queue("shared", false, false, me)
            .await
            .map(|_| ()),
    );
    let exchange = ExchangeSpec {
        name: "bob-x".to_owned(),
        kind: ExchangeKind::Fanout,
        durable: false,
        auto_delete: false,
        internal: false,
        arguments: Headers::new(),
    };
    bob.declare_exchange(exchange, false).expect("his own");
    bob.route("bob-x", "", &Headers::new(), &mut out)
        .expect("write on bob-x");
}

#[tokio::test]
async fn vhosts_can_be_added_and_deleted_with_their_permissions() {
    let core = core(&[]);
    let record = VhostRecord {
        name: "staging".to_owned(),
        description: String::new(),
        tags: Vec::new(),
    };
    assert!(core.put_vhost(record.clone()));
    assert!(!core.put_vhost(record));
    let refused = core.vhost("staging", &user("guest")).map(|_| ());
    assert!(matches!(refused, Err(BrokerError::NotAllowed(_))));
    let everything = ".*".to_owned();
    let grant = PermissionRecord {
        user: "guest".to_owned(),
        vhost: "staging".to_owned(),
        configure: everything.clone(),
        write: everything.clone(),
        read: everything,
    };
    core.access().set_permission(grant).expect("set");
    let staging = core.vhost("staging", &user("guest")).expect("opens");
    staging
        .declare_queue(queue("q"), false, ConnectionId::next())
        .expect("declared");
    assert!(core.delete_vhost("staging").await);
    assert!(core.vhost("staging", &user("guest")).is_err());
    assert!(
        core.access()
            .permissions()
            .iter()
            .all(|p| p.vhost != "staging")
    );
}
