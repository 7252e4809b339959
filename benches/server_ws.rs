//! The server under real-time load: [`CLIENTS`] WebSocket clients in one
//! conversation, messages posted through REST, against Redis pub/sub to
//! the same number of subscribers on loopback in the same run.
//!
//! - server: `colloquy-server`'s `Server` in this process on a loopback
//!   port, on its own tokio runtime of [`SERVER_THREADS`] workers (threads
//!   named [`SERVER_THREAD_NAME`]), `Durability::Sync` as the binary runs
//!   it. [`CLIENTS`] chat participants, each one WebSocket connection
//!   (tokio-tungstenite, on a client runtime whose threads are named
//!   [`CLIENT_THREAD_NAME`]) authenticated with an access token, counting
//!   the `messageAdded` frames it receives. [`POSTERS`] threads (named
//!   [`POSTER_THREAD_NAME`]) post [`POSTS`] ~100-byte messages with
//!   `POST /v1/Conversations/{sid}/Messages` over keep-alive HTTP. If that
//!   route is not there (the REST Messages resource is another part of
//!   issue 12), the posters go through `Engine::execute` instead and the
//!   bench says so.
//! - redis: a `redis-server` (no persistence), [`CLIENTS`] subscriber
//!   connections on the same client runtime, [`POSTERS`] publisher
//!   threads `PUBLISH`ing the same bodies. Skipped, saying why, where
//!   `redis-server` is not installed or does not start.
//!
//! Figures: deliveries/s (clients × posts over the time from the first
//! post to the last delivery) and server CPU per delivery. The server's
//! CPU is this process's CPU time (`/proc/self/stat`) minus that of the
//! client and poster threads (`/proc/self/task/*/stat`), so it counts the
//! server runtime, the engine's threads (log writer, fan-out worker) and
//! the blocking pool; Redis's is the `redis-server` process's CPU time.
//! Both are deltas over the measured phase only.
//!
//! Run: `cargo xtask bench server_ws`. `SERVER_WS_CLIENTS`,
//! `SERVER_WS_POSTS` and `SERVER_WS_POSTERS` override the sizes.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use colloquy::prelude::*;
use futures_util::StreamExt;
use support::redis_pubsub::{start_redis, subscriber, RedisServer, REDIS_CHANNEL};
use support::{body, print_summary, Row};

/// WebSocket clients (and Redis subscribers), all in one conversation.
const CLIENTS: u64 = 500;
/// Messages posted (each delivered to every client).
const POSTS: u64 = 2_000;
/// Threads posting concurrently (REST requests in flight, or publishers).
const POSTERS: u64 = 8;
/// The server runtime's worker threads: the machine's 2 cores.
const SERVER_THREADS: usize = 2;
/// The client runtime's worker threads.
const CLIENT_THREADS: usize = 2;
/// Thread names, as `/proc/self/task/*/comm` shows them (at most 15
/// bytes): what is not a client or a poster thread is the server's.
const SERVER_THREAD_NAME: &str = "bench-server";
/// See [`SERVER_THREAD_NAME`].
const CLIENT_THREAD_NAME: &str = "bench-client";
/// See [`SERVER_THREAD_NAME`].
const POSTER_THREAD_NAME: &str = "bench-poster";
/// The deadline of each HTTP request a poster makes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Counts deliveries; `done` once every client has every post.
struct Counter {
    deliveries: AtomicU64,
    last_at: AtomicU64,
    base: Instant,
    expected: u64,
}

impl Counter {
    fn new(expected: u64) -> Arc<Counter> {
        Arc::new(Counter {
            deliveries: AtomicU64::new(0),
            last_at: AtomicU64::new(0),
            base: Instant::now(),
            expected,
        })
    }

    fn delivered(&self) {
        if self.deliveries.fetch_add(1, Ordering::AcqRel) + 1 == self.expected {
            self.last_at
                .store(self.base.elapsed().as_nanos() as u64, Ordering::Release);
        }
    }

    /// Waits (at most [`support::DELIVERY_WAIT_MAX`]) for every delivery;
    /// returns the time of the last one, in ns since `base`.
    fn wait(&self) -> u64 {
        let deadline = Instant::now() + support::DELIVERY_WAIT_MAX;
        while self.deliveries.load(Ordering::Acquire) < self.expected {
            assert!(
                Instant::now() < deadline,
                "only {} of {} deliveries",
                self.deliveries.load(Ordering::Acquire),
                self.expected
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        self.last_at.load(Ordering::Acquire)
    }
}

fn runtime(threads: usize, name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// CPU seconds used by threads that are not the clients' or posters'.
fn server_cpu_seconds() -> f64 {
    let others = [CLIENT_THREAD_NAME, POSTER_THREAD_NAME]
        .iter()
        .filter_map(|n| support::thread_cpu_seconds(n))
        .sum::<f64>();
    support::process_cpu_seconds() - others
}

/// CPU seconds (user + system) of process `pid`.
fn pid_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / support::CLOCK_TICKS_PER_SECOND
}

/// What one side measured.
struct Measured {
    deliveries_per_second: f64,
    cpu_micros_per_delivery: f64,
    how: String,
}

/// Runs `posters` threads named [`POSTER_THREAD_NAME`], each calling
/// `post(poster, n)` for its share of `posts`.
fn post_from_threads(posts: u64, posters: u64, post: impl Fn(u64, u64) + Sync) {
    let next = AtomicU64::new(0);
    std::thread::scope(|s| {
        for poster in 0..posters {
            let (next, post) = (&next, &post);
            std::thread::Builder::new()
                .name(POSTER_THREAD_NAME.into())
                .spawn_scoped(s, move || loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= posts {
                        break;
                    }
                    post(poster, n);
                })
                .expect("spawn a poster");
        }
    });
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

fn colloquy_server(clients: u64, posts: u64, posters: u64) -> Measured {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let server_rt = runtime(SERVER_THREADS, SERVER_THREAD_NAME);
    let config = server::ServerConfig {
        data_dir: dir.path().to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..server::ServerConfig::default()
    };
    let server = server_rt
        .block_on(server::Server::bind(&config))
        .expect("the server starts");
    let base = server.base_url().to_owned();
    let state = server.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = server_rt.spawn(server.run(async move {
        let _ = stopped.await;
    }));
    let account = state.account.read().clone();
    let service = account.default_chat_service_sid;
    let engine = state.engine.clone();
    let ids = support::Ids::new("server_ws");
    let conversation = engine
        .execute(CreateConversation::new(service).keyed(ids.next()))
        .expect("create the conversation");
    for i in 0..clients {
        let join = AddParticipant::new(
            service,
            conversation,
            ParticipantSpec::chat(format!("client-{i}")),
        );
        engine
            .execute(join.keyed(ids.next()))
            .expect("add a client");
    }

    // The clients connect, each with its own access token.
    let counter = Counter::new(clients * posts);
    let connected = Arc::new(AtomicU64::new(0));
    let client_rt = runtime(CLIENT_THREADS, CLIENT_THREAD_NAME);
    let ws_base = base.replacen("http", "ws", 1);
    for i in 0..clients {
        let grant = server::token::ChatGrant {
            identity: format!("client-{i}"),
            service,
        };
        let token = server::token::mint(
            &account.account_sid,
            &account.api_keys[0],
            &grant,
            Duration::from_secs(3600),
            SystemTime::now(),
        )
        .expect("mint a token");
        let url = format!("{ws_base}/v1/Realtime?token={token}");
        let (counter, connected) = (counter.clone(), connected.clone());
        client_rt.spawn(async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(url)
                .await
                .expect("a client connects");
            connected.fetch_add(1, Ordering::AcqRel);
            while let Some(frame) = ws.next().await {
                if let Ok(tokio_tungstenite::tungstenite::Message::Text(t)) = frame {
                    if t.contains("\"event\":\"messageAdded\"") {
                        counter.delivered();
                    }
                }
            }
        });
    }
    let deadline = Instant::now() + support::DELIVERY_WAIT_MAX;
    while connected.load(Ordering::Acquire) < clients {
        assert!(Instant::now() < deadline, "every client connects");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Wait until the server has every session open (a live session counts
    // from the moment it opened).
    while engine.fanout_metrics().sessions < clients {
        assert!(Instant::now() < deadline, "every session opens");
        std::thread::sleep(Duration::from_millis(10));
    }

    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .http_status_as_error(false)
            .build(),
    );
    let auth = basic(&account.account_sid, &account.auth_token);
    let messages_url = format!("{base}/v1/Conversations/{conversation}/Messages");
    let probe = agent
        .get(&messages_url)
        .header("Authorization", &auth)
        .call()
        .expect("the server answers");
    let through_rest = probe.status().as_u16() == 200;
    let how = if through_rest {
        "posts through REST"
    } else {
        println!(
            "server: GET {messages_url} answered {}: no REST Messages route in this build, posting through Engine::execute",
            probe.status()
        );
        "posts through Engine::execute"
    };
    println!("server: {clients} WebSocket clients, {posts} posts from {posters} threads, {how}");

    let cpu_before = server_cpu_seconds();
    let start = counter.base.elapsed().as_nanos() as u64;
    post_from_threads(posts, posters, |poster, n| {
        if through_rest {
            let r = agent
                .post(&messages_url)
                .header("Authorization", &auth)
                .send_form([("Author", "poster"), ("Body", body(poster, n).as_str())])
                .expect("the post reaches the server");
            assert_eq!(r.status().as_u16(), 201, "REST post");
        } else {
            let post = PostMessage::new(service, conversation)
                .author("poster")
                .body(body(poster, n));
            engine.execute(post.keyed(ids.next())).expect("post");
        }
    });
    let last = counter.wait();
    let cpu = server_cpu_seconds() - cpu_before;
    let seconds = (last - start) as f64 / 1e9;
    let deliveries = (clients * posts) as f64;
    let metrics = engine.fanout_metrics();
    println!(
        "server: {} deliveries in {seconds:.3} s; server CPU {cpu:.2} s; sessions lagged {}, resumed {}; slow-consumer closes {}",
        support::thousands(deliveries),
        metrics.lagged,
        metrics.resumes,
        state.realtime.slow_consumer_closes()
    );
    drop(engine);
    drop(state);
    let _ = stop.send(());
    server_rt
        .block_on(served)
        .expect("the server task")
        .expect("the server stops cleanly");
    client_rt.shutdown_timeout(support::DELIVERY_WAIT_MAX);
    Measured {
        deliveries_per_second: deliveries / seconds,
        cpu_micros_per_delivery: cpu * 1e6 / deliveries,
        how: how.into(),
    }
}

fn redis(server: &RedisServer, clients: u64, posts: u64, posters: u64) -> Result<Measured, String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", server.port))
        .map_err(|e| e.to_string())?;
    let counter = Counter::new(clients * posts);
    let subscribed = Arc::new(AtomicU64::new(0));
    let rt = runtime(CLIENT_THREADS, CLIENT_THREAD_NAME);
    for _ in 0..clients {
        let (counter, subscribed, port) = (counter.clone(), subscribed.clone(), server.port);
        rt.spawn(async move {
            let received = |_| counter.delivered();
            if let Err(e) = subscriber(port, subscribed, posts, support::BODY_BYTES, received).await
            {
                panic!("Redis subscriber: {e}");
            }
        });
    }
    let deadline = Instant::now() + support::DELIVERY_WAIT_MAX;
    while subscribed.load(Ordering::Acquire) < clients {
        if Instant::now() > deadline {
            return Err(format!(
                "only {} of {clients} subscribed",
                subscribed.load(Ordering::Acquire)
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // One publisher connection per poster thread (each locks only its own).
    let publishers: Vec<_> = (0..posters)
        .map(|_| client.get_connection().map(std::sync::Mutex::new))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let cpu_before = pid_cpu_seconds(server.pid());
    let start = counter.base.elapsed().as_nanos() as u64;
    post_from_threads(posts, posters, |poster, n| {
        let mut publisher = publishers[poster as usize]
            .lock()
            .expect("a poster panicked");
        let receivers: i64 = redis::cmd("PUBLISH")
            .arg(REDIS_CHANNEL)
            .arg(body(poster, n))
            .query(&mut *publisher)
            .expect("PUBLISH");
        assert_eq!(receivers, clients as i64, "every subscriber is subscribed");
    });
    let last = counter.wait();
    let cpu = pid_cpu_seconds(server.pid()) - cpu_before;
    rt.shutdown_timeout(support::DELIVERY_WAIT_MAX);
    let seconds = (last - start) as f64 / 1e9;
    let deliveries = (clients * posts) as f64;
    println!(
        "redis: {} deliveries in {seconds:.3} s; redis-server CPU {cpu:.2} s",
        support::thousands(deliveries)
    );
    Ok(Measured {
        deliveries_per_second: deliveries / seconds,
        cpu_micros_per_delivery: cpu * 1e6 / deliveries,
        how: "PUBLISH".into(),
    })
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let clients = support::env_u64("SERVER_WS_CLIENTS", CLIENTS);
    let posts = support::env_u64("SERVER_WS_POSTS", POSTS);
    let posters = support::env_u64("SERVER_WS_POSTERS", POSTERS);
    let load_before = support::load_average();
    println!(
        "{clients} WebSocket clients in one conversation, {posts} posts from {posters} threads; load average {load_before}"
    );
    let ours = colloquy_server(clients, posts, posters);
    let theirs = match start_redis().and_then(|s| redis(&s, clients, posts, posters)) {
        Ok(m) => Some(m),
        Err(why) => {
            println!("redis: baseline skipped: {why}");
            None
        }
    };
    let baseline = |f: fn(&Measured) -> f64, unit: &str| {
        theirs.as_ref().map_or("redis skipped".into(), |t| {
            format!("Redis {:.2} {unit}", f(t))
        })
    };
    let ratio = |f: fn(&Measured) -> f64| {
        theirs
            .as_ref()
            .map_or("-".into(), |t| format!("{:.2}", f(&ours) / f(t)))
    };
    let rows = vec![
        Row {
            figure: format!(
                "deliveries/s, {clients} WebSocket clients, {} ({posters} threads)",
                ours.how
            ),
            value: support::thousands(ours.deliveries_per_second),
            baseline: theirs.as_ref().map_or("redis skipped".into(), |t| {
                format!(
                    "Redis {} ({})",
                    support::thousands(t.deliveries_per_second),
                    t.how
                )
            }),
            ratio: ratio(|m| m.deliveries_per_second),
            target: "context".into(),
            met: None,
        },
        Row {
            figure: "server CPU per delivery".into(),
            value: format!("{:.2} µs", ours.cpu_micros_per_delivery),
            baseline: baseline(|m| m.cpu_micros_per_delivery, "µs"),
            ratio: ratio(|m| m.cpu_micros_per_delivery),
            target: "context".into(),
            met: None,
        },
    ];
    print_summary(
        &format!("server_ws: summary (load average at start {load_before})"),
        &rows,
    );
}
