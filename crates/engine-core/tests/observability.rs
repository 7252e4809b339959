//! Observability: the log's counters ([`engine_core::LogMetrics`]) and the
//! tracing output of the writer (one `log_batch` span per batch, with its
//! fields; rejections at debug inside it), of fan-out (a lagging session's
//! resume) and of delivery (retries with attempt, backoff and error).
//!
//! The engine logs from its own threads (the log's writer, the fan-out
//! worker, the delivery threads), so the recording subscriber is installed
//! process-wide once; the tests of this binary take turns ([`serial`]) and
//! each starts from an empty record.

mod fanout_support;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use engine_core::{
    DeliveryOptions, EngineOptions, FanoutOptions, InMemoryAdapter, LogMetrics, SessionStart,
};
use events::*;
use fanout_support::*;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as SpanValues};
use tracing::{Event as TraceEvent, Level, Metadata, Subscriber};

/// One recorded span: its name and fields (values as their `Debug` text;
/// strings and numbers bare).
#[derive(Debug, Clone)]
struct SpanRec {
    name: &'static str,
    fields: BTreeMap<String, String>,
}

/// One recorded event, with the span the emitting thread was in.
#[derive(Debug, Clone)]
struct EventRec {
    level: Level,
    fields: BTreeMap<String, String>,
    span: Option<u64>,
}

impl EventRec {
    fn message(&self) -> &str {
        self.fields.get("message").map_or("", String::as_str)
    }
}

#[derive(Default)]
struct Recorded {
    spans: HashMap<u64, SpanRec>,
    events: Vec<EventRec>,
}

/// A subscriber that keeps every span and event.
#[derive(Default)]
struct Recorder {
    next_id: AtomicU64,
    recorded: Mutex<Recorded>,
}

thread_local! {
    /// The spans the current thread is in, innermost last.
    static ENTERED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().into(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.to_string());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.to_string());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.to_string());
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let span = SpanRec {
            name: attrs.metadata().name(),
            fields,
        };
        self.recorded.lock().unwrap().spans.insert(id, span);
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &SpanValues<'_>) {
        if let Some(s) = self
            .recorded
            .lock()
            .unwrap()
            .spans
            .get_mut(&span.into_u64())
        {
            values.record(&mut Fields(&mut s.fields));
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &TraceEvent<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let span = ENTERED.with(|e| e.borrow().last().copied());
        self.recorded.lock().unwrap().events.push(EventRec {
            level: *event.metadata().level(),
            fields,
            span,
        });
    }

    fn enter(&self, span: &Id) {
        ENTERED.with(|e| e.borrow_mut().push(span.into_u64()));
    }

    fn exit(&self, span: &Id) {
        ENTERED.with(|e| {
            let mut entered = e.borrow_mut();
            if let Some(i) = entered.iter().rposition(|s| *s == span.into_u64()) {
                entered.remove(i);
            }
        });
    }
}

/// The process-wide recorder, installed on first use.
fn recorder() -> &'static Arc<Recorder> {
    static RECORDER: OnceLock<Arc<Recorder>> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let recorder = Arc::new(Recorder::default());
        tracing::subscriber::set_global_default(RecorderHandle(recorder.clone()))
            .expect("no other global subscriber in this test binary");
        recorder
    })
}

/// The installed subscriber: a handle on the shared recorder.
struct RecorderHandle(Arc<Recorder>);

impl Subscriber for RecorderHandle {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        self.0.enabled(m)
    }
    fn new_span(&self, a: &Attributes<'_>) -> Id {
        self.0.new_span(a)
    }
    fn record(&self, s: &Id, v: &SpanValues<'_>) {
        self.0.record(s, v)
    }
    fn record_follows_from(&self, s: &Id, f: &Id) {
        self.0.record_follows_from(s, f)
    }
    fn event(&self, e: &TraceEvent<'_>) {
        self.0.event(e)
    }
    fn enter(&self, s: &Id) {
        self.0.enter(s)
    }
    fn exit(&self, s: &Id) {
        self.0.exit(s)
    }
}

/// Runs this binary's tests one at a time, each from an empty record.
fn serial() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut recorded = recorder().recorded.lock().unwrap();
    recorded.spans.clear();
    recorded.events.clear();
    turn
}

fn spans_named(name: &str) -> Vec<SpanRec> {
    let recorded = recorder().recorded.lock().unwrap();
    let mut spans: Vec<(u64, SpanRec)> = recorded
        .spans
        .iter()
        .filter(|(_, s)| s.name == name)
        .map(|(id, s)| (*id, s.clone()))
        .collect();
    spans.sort_by_key(|(id, _)| *id);
    spans.into_iter().map(|(_, s)| s).collect()
}

fn events_with(message: &str) -> Vec<EventRec> {
    recorder()
        .recorded
        .lock()
        .unwrap()
        .events
        .iter()
        .filter(|e| e.message() == message)
        .cloned()
        .collect()
}

/// The encoded bytes of the log's records in `range`.
fn encoded_bytes(f: &Fixture, range: std::ops::Range<u64>) -> u64 {
    f.engine
        .log()
        .read_range(range)
        .map(|r| r.unwrap().encode().unwrap().len() as u64)
        .sum()
}

fn missing_conversation_post(f: &Fixture) -> PostMessage {
    PostMessage::new(f.service, ConversationSid([0xEE; 16]))
        .author("alice")
        .body("nobody is here")
}

#[test]
fn log_metrics_count_batches_records_bytes_rejections_and_duplicates() {
    let _turn = serial();
    let f = open(EngineOptions::default());
    let before: LogMetrics = f.engine.log_metrics();
    let head_before = f.engine.log().head().next_position;

    let c = f.conversation();
    for i in 0..3 {
        f.post(c, "alice", &format!("m{i}"));
    }
    f.try_run(missing_conversation_post(&f))
        .expect_err("no such conversation");
    let again = PostMessage::new(f.service, c)
        .author("alice")
        .body("once")
        .keyed("observability/duplicate")
        .into_command();
    f.engine.execute(again.clone()).unwrap();
    assert!(f.engine.execute(again).unwrap().deduplicated);

    let after = f.engine.log_metrics();
    let head_after = f.engine.log().head().next_position;
    // Sequential blocking calls: one request per batch. The conversation,
    // three posts and the first "once" wrote a batch each; the rejection
    // and the duplicate wrote nothing.
    assert_eq!(after.requests - before.requests, 7, "{after:?}");
    assert_eq!(after.batches - before.batches, 5, "{after:?}");
    assert_eq!(after.rejections - before.rejections, 1, "{after:?}");
    assert_eq!(after.duplicates - before.duplicates, 1, "{after:?}");
    assert_eq!(after.records - before.records, head_after - head_before);
    assert_eq!(
        after.bytes - before.bytes,
        encoded_bytes(&f, head_before..head_after)
    );
    assert_eq!(after.refused_batches, 0);
    assert_eq!(after.failed_batches, 0);
    assert!(after.write_micros_total > before.write_micros_total);
    assert!(after.write_micros_max <= after.write_micros_total);
    // The engine's view is the log's.
    assert_eq!(f.engine.log().metrics(), f.engine.log_metrics());
}

#[test]
fn every_writer_batch_is_a_span_with_its_counts_and_rejections_log_inside_it() {
    let _turn = serial();
    let f = open(EngineOptions::default());
    let c = f.conversation();
    let position = f.post(c, "alice", "traced").position;
    f.try_run(missing_conversation_post(&f))
        .expect_err("no such conversation");

    // The post's batch is the last one that wrote anything (the rejection's
    // came after it and wrote nothing).
    let spans = spans_named("log_batch");
    let post = spans
        .iter()
        .rev()
        .find(|s| s.fields.get("records").is_some_and(|r| r != "0"))
        .unwrap_or_else(|| panic!("no log_batch span wrote records: {spans:?}"));
    assert_eq!(post.fields["requests"], "1", "{post:?}");
    assert_eq!(post.fields["records"], "1", "{post:?}");
    assert_eq!(
        post.fields["bytes"],
        encoded_bytes(&f, position..position + 1).to_string()
    );
    assert_eq!(post.fields["durability"], "Buffered", "{post:?}");
    let write_us: u64 = post.fields["write_us"].parse().unwrap();
    assert!(write_us > 0, "{post:?}");

    let rejected = events_with("command rejected");
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let rejected = &rejected[0];
    assert_eq!(rejected.level, Level::DEBUG);
    assert!(rejected.fields.contains_key("command_id"), "{rejected:?}");
    assert!(
        rejected.fields["rejection"].contains("NotFound"),
        "{rejected:?}"
    );
    let span_id = rejected.span.expect("logged inside the batch span");
    let recorded = recorder().recorded.lock().unwrap();
    let span = &recorded.spans[&span_id];
    assert_eq!(span.name, "log_batch");
    assert_eq!(span.fields["requests"], "1");
    assert_eq!(span.fields["records"], "0");
    // Nothing was written, so the write time was never recorded.
    assert!(!span.fields.contains_key("write_us"), "{span:?}");
}

#[test]
fn a_delivery_retry_logs_its_attempt_backoff_and_error() {
    let _turn = serial();
    let (initial, max) = (Duration::from_millis(20), Duration::from_millis(80));
    let f = open(
        EngineOptions::default().delivery(
            DeliveryOptions::default()
                .attempts_max(5)
                .backoff_initial(initial)
                .backoff_max(max),
        ),
    );
    let adapter = Arc::new(InMemoryAdapter::new());
    adapter.fail_next(2);
    f.engine
        .register_channel_adapter(AddressType::Sms, adapter.clone());
    let c = f.conversation();
    f.join_binding(c, "+15551230001", "+15559870000");
    f.post(c, "system", "retried twice");
    assert!(adapter.wait_for_sent(1, WAIT));

    let message = "delivery attempt failed; retrying after the backoff";
    eventually("two retries logged", || events_with(message).len() == 2);
    let retries = events_with(message);
    for (k, retry) in retries.iter().enumerate() {
        let attempt = k as u32 + 1;
        assert_eq!(retry.level, Level::INFO);
        assert_eq!(retry.fields["attempt"], attempt.to_string(), "{retry:?}");
        assert_eq!(retry.fields["error"], "in-memory adapter told to fail");
        assert!(retry.fields.contains_key("delivery"), "{retry:?}");
        let ceiling = initial * 2u32.pow(attempt - 1);
        let backoff_ms: u128 = retry.fields["backoff_ms"].parse().unwrap();
        assert!(
            backoff_ms <= ceiling.as_millis() && backoff_ms >= (ceiling / 2).as_millis(),
            "attempt {attempt}: backoff {backoff_ms} ms outside [{:?}, {ceiling:?}]",
            ceiling / 2
        );
    }
}

#[test]
fn a_lagging_session_logs_its_resume() {
    let _turn = serial();
    const QUEUE_EVENTS: usize = 2;
    const MESSAGES: usize = 20;
    let f = open(
        EngineOptions::default()
            .fanout(FanoutOptions::default().session_queue_events(QUEUE_EVENTS)),
    );
    let c = f.conversation();
    f.join(c, "sloth");
    let mut sloth = f
        .engine
        .open_session(f.service, "sloth", SessionStart::Live)
        .unwrap();
    for i in 0..MESSAGES {
        f.post(c, "system", &format!("m{i}"));
    }
    eventually("the sloth lagging", || {
        f.engine.fanout_metrics().lagged >= 1
    });
    let got = take(&mut sloth, MESSAGES, WAIT);
    assert_eq!(got.len(), MESSAGES);

    let lagging =
        events_with("session queue full: the session is lagging and resumes from its cursor");
    assert!(!lagging.is_empty());
    assert_eq!(lagging[0].level, Level::DEBUG);
    assert_eq!(lagging[0].fields["identity"], "sloth");
    assert_eq!(lagging[0].fields["queue_events"], QUEUE_EVENTS.to_string());
    let resumed =
        events_with("session fell behind and lost its live queue; resuming from its cursor");
    assert_eq!(resumed.len() as u64, sloth.resumes(), "{resumed:?}");
    let first = &resumed[0];
    assert_eq!(first.level, Level::INFO);
    assert_eq!(first.fields["identity"], "sloth");
    assert_eq!(first.fields["service"], f.service.to_string());
    assert_eq!(first.fields["resumes"], "1");
    let replays = events_with("session replays the events it missed");
    assert!(replays.len() >= resumed.len(), "{replays:?}");
    let caught_up = events_with("session caught up with the log");
    assert!(!caught_up.is_empty());
}
