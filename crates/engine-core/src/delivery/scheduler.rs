//! The delivery scheduler thread: the pending set with its retry timers,
//! fed by outbox facts, adapter registrations and finished jobs, handing
//! due deliveries to the sender threads; and [`start`], which recovers the
//! pending set and starts the threads.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::pending::{Entry, Fact, Job, Outcome, SchedMsg, State};
use super::recovery::recover;
use super::sender::{sender_loop, Execute};
use super::shared::DeliveryShared;
use super::DeliveryId;
use crate::log::Clock;
use crate::sources::ReadSource;

struct Scheduler {
    shared: Arc<DeliveryShared>,
    rx: Receiver<SchedMsg>,
    jobs: Sender<Job>,
    entries: HashMap<DeliveryId, Entry>,
    /// (due on the log's clock in µs, delivery), soonest first.
    queue: BTreeSet<(u64, DeliveryId)>,
    recovered_upto: Option<u64>,
    /// The log's clock: retry times are measured on it.
    clock: Arc<dyn Clock>,
}

/// The delivery threads, joined by [`DeliveryThreads::join`].
pub(crate) struct DeliveryThreads {
    scheduler: Option<JoinHandle<()>>,
}

impl DeliveryThreads {
    /// Waits for the scheduler (which waits for its senders) after
    /// [`DeliveryShared::shutdown`].
    pub(crate) fn join(&mut self) {
        if let Some(h) = self.scheduler.take() {
            if h.join().is_err() {
                tracing::error!("the delivery scheduler thread panicked");
            }
        }
    }
}

/// Recovers the pending deliveries from the read models of `source` and
/// starts the scheduler, whose retry times are measured on `clock` (the
/// log's; a clock moved by hand wakes it through `shared`'s inbox), (reading `rx`, the inbox whose sender `shared`
/// holds) and the sender threads, which record results with `execute`.
/// The threads hold `source` and `execute` until
/// [`DeliveryThreads::join`] returns.
///
/// Errors: a thread could not be spawned.
pub(crate) fn start(
    shared: &Arc<DeliveryShared>,
    source: Arc<dyn ReadSource>,
    execute: Execute,
    rx: Receiver<SchedMsg>,
    clock: Arc<dyn Clock>,
) -> Result<DeliveryThreads, std::io::Error> {
    let (recovered_upto, entries) = recover(&*source, &shared.options, clock.now_micros());
    let moved = shared.tx.clone();
    clock.listen(Box::new(move || moved.send(SchedMsg::ClockMoved).is_ok()));
    shared
        .counters
        .recovered
        .store(entries.len() as u64, Ordering::Relaxed);
    let (jobs_tx, jobs_rx) = crossbeam_channel::unbounded::<Job>();
    let mut senders = Vec::new();
    for i in 0..shared.options.sender_threads {
        let (shared, source, execute) = (shared.clone(), source.clone(), execute.clone());
        let jobs = jobs_rx.clone();
        senders.push(
            std::thread::Builder::new()
                .name(format!("colloquy-delivery-{i}"))
                .spawn(move || sender_loop(&shared, &*source, &execute, &jobs))?,
        );
    }
    let mut scheduler = Scheduler {
        shared: shared.clone(),
        rx,
        jobs: jobs_tx,
        entries: HashMap::new(),
        queue: BTreeSet::new(),
        recovered_upto,
        clock,
    };
    for (id, entry) in entries {
        scheduler.insert(id, entry);
    }
    let handle = std::thread::Builder::new()
        .name("colloquy-delivery-scheduler".into())
        .spawn(move || {
            scheduler.run();
            let Scheduler { jobs, .. } = scheduler;
            drop(jobs);
            for s in senders {
                if s.join().is_err() {
                    tracing::error!("a delivery sender thread panicked");
                }
            }
        })?;
    Ok(DeliveryThreads {
        scheduler: Some(handle),
    })
}

impl Scheduler {
    fn run(&mut self) {
        loop {
            self.dispatch_due(self.clock.now_micros());
            self.shared
                .counters
                .pending
                .store(self.entries.len() as u64, Ordering::Relaxed);
            // The wall time the clock needs to reach the first due time: a
            // moving clock's, a re-check of a still one (whose moves arrive
            // as `ClockMoved`). None past what an `Instant` can hold.
            let deadline = self.queue.first().and_then(|(due, _)| {
                let left = due.saturating_sub(self.clock.now_micros());
                Instant::now().checked_add(Duration::from_micros(left))
            });
            let msg = match deadline {
                Some(deadline) => match self.rx.recv_deadline(deadline) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return,
                },
                None => match self.rx.recv() {
                    Ok(m) => m,
                    Err(_) => return,
                },
            };
            match msg {
                SchedMsg::Facts(facts) => {
                    for (position, fact) in facts {
                        self.fact(position, fact);
                    }
                }
                SchedMsg::AdapterAdded(channel) => {
                    let now = self.clock.now_micros();
                    let parked: Vec<DeliveryId> = self
                        .entries
                        .iter()
                        .filter(|(_, e)| e.channel == channel && e.state == State::Parked)
                        .map(|(id, _)| *id)
                        .collect();
                    for id in parked {
                        self.wait(id, now);
                    }
                }
                SchedMsg::Finished { id, outcome } => self.finished(id, outcome),
                SchedMsg::ClockMoved => {}
                SchedMsg::Shutdown => return,
            }
        }
    }

    fn insert(&mut self, id: DeliveryId, entry: Entry) {
        if let State::Waiting(due) = entry.state {
            self.queue.insert((due, id));
        }
        self.entries.insert(id, entry);
    }

    fn wait(&mut self, id: DeliveryId, due: u64) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.state = State::Waiting(due);
            self.queue.insert((due, id));
        }
    }

    fn dispatch_due(&mut self, now: u64) {
        while let Some(&(due, id)) = self.queue.first() {
            if due > now {
                break;
            }
            self.queue.pop_first();
            let Some(e) = self.entries.get_mut(&id) else {
                continue;
            };
            if e.state != State::Waiting(due) {
                continue;
            }
            let Some(adapter) = self.shared.adapter(e.channel) else {
                e.state = State::Parked;
                continue;
            };
            e.state = State::InFlight;
            let job = Job {
                id,
                service: e.service,
                conversation: e.conversation,
                channel: e.channel,
                attempt: e.failed + 1,
                adapter,
            };
            if self.jobs.send(job).is_err() {
                return;
            }
        }
    }

    fn fact(&mut self, position: u64, fact: Fact) {
        match fact {
            Fact::Outbox {
                service,
                conversation,
                message,
                recipients,
            } => {
                if self.recovered_upto.is_some_and(|r| position <= r) {
                    // Recovery already saw this message in the read models.
                    return;
                }
                let now = self.clock.now_micros();
                for (participant, channel) in recipients {
                    let id = DeliveryId {
                        message_sid: message,
                        participant_sid: participant,
                    };
                    if self.entries.contains_key(&id) {
                        continue;
                    }
                    self.insert(
                        id,
                        Entry {
                            service,
                            conversation,
                            channel,
                            failed: 0,
                            state: State::Waiting(now),
                        },
                    );
                }
            }
            Fact::Receipt {
                message,
                participant,
            } => {
                self.entries.remove(&DeliveryId {
                    message_sid: message,
                    participant_sid: participant,
                });
            }
            Fact::ParticipantGone(p) => self.entries.retain(|id, _| id.participant_sid != p),
            Fact::MessageGone(m) => self.entries.retain(|id, _| id.message_sid != m),
            Fact::ConversationGone(s, c) => self
                .entries
                .retain(|_, e| !(e.service == s && e.conversation == c)),
            Fact::ServiceGone(s) => self.entries.retain(|_, e| e.service != s),
        }
    }

    fn finished(&mut self, id: DeliveryId, outcome: Outcome) {
        let Some(e) = self.entries.get_mut(&id) else {
            return;
        };
        if e.state != State::InFlight {
            return;
        }
        match outcome {
            Outcome::Done => {
                self.entries.remove(&id);
            }
            Outcome::Retry {
                failed_attempts,
                error,
            } => {
                e.failed = failed_attempts;
                let backoff = self.shared.options.backoff(failed_attempts);
                tracing::info!(
                    delivery = %id,
                    attempt = failed_attempts,
                    backoff_ms = backoff.as_millis() as u64,
                    %error,
                    "delivery attempt failed; retrying after the backoff"
                );
                let backoff_micros = u64::try_from(backoff.as_micros()).unwrap_or(u64::MAX);
                self.wait(id, self.clock.now_micros().saturating_add(backoff_micros));
            }
            Outcome::Stuck => {
                tracing::error!(delivery = %id, "delivery result could not be recorded; the delivery is held until the engine is reopened");
                e.state = State::Stuck;
            }
        }
    }
}
