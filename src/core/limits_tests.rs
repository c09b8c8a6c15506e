//! The resource limits against the core itself: counts kept exactly over every way a queue or
//! binding goes, and the per-consumer credit cap.

use std::sync::Arc;
use std::time::Duration;

use mqbridge_broker_api::{
    BindingSpec, BrokerError, ConnectionId, ConsumeSpec, ConsumerEvent, ConsumerId, Delivery,
    Destination, Headers, Message, QueueSpec, Settlement, User, VirtualHost,
};
use tokio::sync::mpsc;

use super::limits::Limits;
use super::memory::MemoryGauge;
use super::{Bootstrap, Core, DEFAULT_VHOST, VhostRecord};
use crate::store::{Discard, Recovered, RecoveredQueue};

/// Bounds every wait, so a broken limit fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(5);

fn limited(adjust: impl FnOnce(&mut Limits)) -> Arc<Core> {
    limited_with(adjust, Recovered::default())
}

fn limited_with(adjust: impl FnOnce(&mut Limits), recovered: Recovered) -> Arc<Core> {
    let mut limits = Limits::default();
    adjust(&mut limits);
    let bootstrap = Bootstrap {
        default_user: "guest".to_owned(),
        default_pass: "guest".to_owned(),
        loopback_users: Vec::new(),
        limits,
    };
    let gauge = Arc::new(MemoryGauge::new(u64::MAX));
    let store = Arc::new(Discard::default());
    Core::new(bootstrap, gauge, store, recovered)
}

fn vhost(core: &Arc<Core>, name: &str) -> Arc<dyn VirtualHost> {
    let guest = User {
        name: "guest".to_owned(),
    };
    core.system().vhost(name, &guest).expect("vhost")
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

fn declare(vhost: &Arc<dyn VirtualHost>, spec: QueueSpec) -> Result<(), BrokerError> {
    vhost
        .declare_queue(spec, false, ConnectionId(1))
        .map(|_| ())
}

fn is_limit(result: &Result<(), BrokerError>, words: &str) -> bool {
    matches!(result, Err(BrokerError::ResourceLimit(text)) if text.contains(words))
}

fn consumer(prefetch: u32) -> (ConsumeSpec, mpsc::Receiver<ConsumerEvent>) {
    let (sink, events) = mpsc::channel(64);
    let spec = ConsumeSpec {
        consumer: ConsumerId::next(),
        connection: ConnectionId(1),
        tag: "test".to_owned(),
        no_ack: false,
        exclusive: false,
        prefetch,
        sink,
    };
    (spec, events)
}

async fn next_delivery(events: &mut mpsc::Receiver<ConsumerEvent>) -> Delivery {
    match tokio::time::timeout(WAIT, events.recv()).await {
        Ok(Some(ConsumerEvent::Deliver(delivery))) => delivery,
        other => panic!("expected a delivery, got {other:?}"),
    }
}

#[tokio::test]
async fn queues_count_over_every_vhost_and_each_removal_frees_a_slot() {
    let core = limited(|l| l.max_queues = 2);
    assert!(core.put_vhost(VhostRecord {
        name: "other".to_owned(),
        description: String::new(),
        tags: Vec::new(),
    }));
    let (root, other) = (vhost(&core, DEFAULT_VHOST), vhost(&core, "other"));
    declare(&root, queue("a")).expect("first");
    declare(&other, queue("b")).expect("second, in another vhost");
    let refused = declare(&root, queue("c"));
    assert!(
        is_limit(
            &refused,
            "queue 'c' in vhost '/': queue limit in broker (2) is reached"
        ),
        "{refused:?}"
    );
    declare(&root, queue("a")).expect("a redeclaration needs no slot");
    root.declare_queue(queue("a"), true, ConnectionId(1))
        .expect("nor does a passive one");

    root.delete_queue("a", false, false, ConnectionId(1))
        .await
        .expect("deleted");
    let owner = ConnectionId::next();
    let exclusive = QueueSpec {
        exclusive: true,
        ..queue("mine")
    };
    root.declare_queue(exclusive, false, owner)
        .expect("the freed slot");
    assert!(is_limit(&declare(&root, queue("c")), "queue limit"));
    root.connection_closed(owner);
    declare(&root, queue("c")).expect("the exclusive queue's slot");
    assert!(core.delete_vhost("other").await);
    declare(&root, queue("d")).expect("the deleted vhost's queue's slot");
    assert!(is_limit(&declare(&root, queue("e")), "queue limit"));
}

#[tokio::test]
async fn an_auto_delete_queue_frees_its_slot_when_it_goes() {
    let core = limited(|l| l.max_queues = 1);
    let root = vhost(&core, DEFAULT_VHOST);
    let temporary = QueueSpec {
        auto_delete: true,
        ..queue("temporary")
    };
    declare(&root, temporary).expect("declared");
    let handle = root.queue("temporary", ConnectionId(1)).expect("exists");
    let (spec, _events) = consumer(0);
    let id = spec.consumer;
    handle.consume(spec).await.expect("consumes");
    assert!(handle.cancel(id).await);
    let freed = async {
        while declare(&root, queue("next")).is_err() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(WAIT, freed)
        .await
        .expect("the auto-deleted queue's slot comes back");
}

#[tokio::test]
async fn bindings_count_and_each_removal_frees_a_slot() {
    let core = limited(|l| l.max_bindings = 2);
    let root = vhost(&core, DEFAULT_VHOST);
    declare(&root, queue("q")).expect("declared");
    let bind = |key: &str| {
        let spec = BindingSpec {
            source: "amq.topic".to_owned(),
            destination: Destination::Queue("q".to_owned()),
            routing_key: key.to_owned(),
            arguments: Headers::new(),
        };
        root.bind(spec, ConnectionId(1))
    };
    bind("a").expect("first");
    bind("b").expect("second");
    let refused = bind("c");
    assert!(
        is_limit(
            &refused,
            "cannot bind queue 'q' in vhost '/' to exchange 'amq.topic': binding limit in broker (2)"
        ),
        "{refused:?}"
    );
    bind("a").expect("binding again what is bound needs no slot");
    let unbind = BindingSpec {
        source: "amq.topic".to_owned(),
        destination: Destination::Queue("q".to_owned()),
        routing_key: "a".to_owned(),
        arguments: Headers::new(),
    };
    root.unbind(unbind, ConnectionId(1)).expect("unbound");
    bind("c").expect("the unbound slot");
    root.delete_queue("q", false, false, ConnectionId(1))
        .await
        .expect("deleted with its bindings");
    declare(&root, queue("q")).expect("declared again");
    bind("x").expect("a slot of the deleted queue's bindings");
    bind("y").expect("the other one");
    assert!(is_limit(&bind("z"), "binding limit"));
}

#[tokio::test]
async fn consumers_per_queue_are_capped_and_a_cancel_frees_a_place() {
    let core = limited(|l| l.max_consumers_per_queue = 2);
    let root = vhost(&core, DEFAULT_VHOST);
    declare(&root, queue("work")).expect("declared");
    let handle = root.queue("work", ConnectionId(1)).expect("exists");
    let (first, _a) = consumer(1);
    let first_id = first.consumer;
    handle.consume(first).await.expect("first");
    handle.consume(consumer(1).0).await.expect("second");
    let refused = handle.consume(consumer(1).0).await;
    assert!(
        is_limit(
            &refused,
            "cannot consume from queue 'work' in vhost '/': consumer limit per queue (2) is reached"
        ),
        "{refused:?}"
    );
    assert!(handle.cancel(first_id).await);
    handle
        .consume(consumer(1).0)
        .await
        .expect("the freed place");
}

#[tokio::test]
async fn unlimited_prefetch_is_credit_up_to_the_unacked_cap() {
    let core = limited(|l| l.max_unacked_per_consumer = 3);
    let root = vhost(&core, DEFAULT_VHOST);
    declare(&root, queue("q")).expect("declared");
    let handle = root.queue("q", ConnectionId(1)).expect("exists");
    let publish = || handle.publish(Arc::new(Message::default()), None);
    for _ in 0..5 {
        publish().await;
    }
    let (spec, mut events) = consumer(0);
    let id = spec.consumer;
    handle.consume(spec).await.expect("consumes");
    let mut tags = Vec::new();
    for _ in 0..3 {
        tags.push(next_delivery(&mut events).await.tag);
    }
    // Answered after the batch that delivered: what the consumer did not get is still ready.
    assert_eq!(handle.purge().await.expect("purged"), 2);
    publish().await;
    assert_eq!(
        handle.purge().await.expect("purged"),
        1,
        "credit exhausted at the cap: the new message stays ready"
    );
    publish().await;
    handle.settle(id, vec![tags[0]], Settlement::Ack).await;
    next_delivery(&mut events).await;
}

#[tokio::test]
async fn recovered_queues_and_bindings_are_counted_but_never_refused() {
    let recovered = Recovered {
        queues: (1..=3)
            .map(|id| RecoveredQueue {
                vhost: DEFAULT_VHOST.to_owned(),
                id,
                spec: QueueSpec {
                    durable: true,
                    ..queue(&format!("kept-{id}"))
                },
                messages: Vec::new(),
            })
            .collect(),
        bindings: (1..=3)
            .map(|id| {
                let spec = BindingSpec {
                    source: "amq.topic".to_owned(),
                    destination: Destination::Queue(format!("kept-{id}")),
                    routing_key: "k".to_owned(),
                    arguments: Headers::new(),
                };
                (DEFAULT_VHOST.to_owned(), spec)
            })
            .collect(),
        ..Recovered::default()
    };
    let core = limited_with(
        |l| {
            l.max_queues = 2;
            l.max_bindings = 2;
        },
        recovered,
    );
    let root = vhost(&core, DEFAULT_VHOST);
    for id in 1..=3 {
        let name = format!("kept-{id}");
        root.declare_queue(queue(&name), true, ConnectionId(1))
            .expect("every stored queue is back");
        assert_eq!(root.bindings_to(&Destination::Queue(name)).len(), 1);
    }
    assert!(is_limit(&declare(&root, queue("new")), "queue limit"));
    root.delete_queue("kept-1", false, false, ConnectionId(1))
        .await
        .expect("deleted");
    assert!(
        is_limit(&declare(&root, queue("new")), "queue limit"),
        "still at the limit: two queues are left"
    );
    root.delete_queue("kept-2", false, false, ConnectionId(1))
        .await
        .expect("deleted");
    declare(&root, queue("new")).expect("under the limit again");
}
