//! Starts a node's DynamoDB endpoint: the listening socket, the HTTP loop
//! on thread `dynamodb-http`, [`EXECUTORS`] executor threads
//! (`dynamodb-exec-N`) and the table deleter (`dynamodb-deleter`), each
//! with a router of this node and a socket of its own for the cluster's
//! answers.

use super::answers::AnswerBytes;
use super::cluster_client::ClusterClient;
use super::endpoint::{self, Done, EndpointLimits, Job};
use super::executor::Executor;
use super::tables::{DELETIONS_QUEUED_MAX, Deleter};
use crate::log;
use crate::node::router::Router;
use dynakv_dynamo::http::Limits;
use dynakv_dynamo::sigv4::Credentials;
use std::net::{IpAddr, TcpListener};
use std::sync::Arc;
use std::thread;

/// Threads running requests: each waits on the cluster for most of a
/// request, so a few more than the cores keep them busy.
pub const EXECUTORS: usize = 4;
/// Whole requests waiting for an executor; one more is refused at once
/// with ProvisionedThroughputExceededException, which the SDKs retry.
const JOBS_QUEUED_MAX: usize = 64;
/// Open connections: an application's SDK clients open many (a load test
/// of 64 connections against a limit of 32 had most requests turned away,
/// the clients reconnecting at once). Memory is bounded by
/// [`BUFFERED_BYTES_MAX`], not by this; the process's descriptor limit may
/// lower it (see `endpoint::run`).
const CONNECTIONS_MAX: usize = 1024;
/// A request body: a PutItem of an item of 400 KB in JSON (a binary
/// attribute in base64 takes 534 KB), with room. DynamoDB takes 16 MB for a
/// BatchWriteItem; here a batch of large items is refused (413), as a
/// node of 64 MiB cannot hold a few such requests at once.
const BODY_BYTES_MAX: usize = 1024 * 1024;
/// The bytes all connections together hold for requests: their receive
/// buffers and the requests at the executors (see `endpoint`'s doc). Of
/// it, one request and one read (1.06 MiB) are kept for a connection
/// finishing its request; the rest holds a few hundred SDK requests of a
/// few KiB at once, or two of the largest.
const BUFFERED_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Memory the endpoint may hold outside the store's budget, kept out of the
/// store's share of `--memory-limit` when the endpoint is on: the buffered
/// bytes' budget (4 MiB, passed by one read of 64 KiB at most) and 2 MiB
/// for the rest, the executors' working memory and the answers being sent
/// (each built by one of the [`EXECUTORS`], then held in its connection's
/// send buffer until written). Answers are bounded in bytes
/// ([`super::answers::ANSWER_BYTES_MAX`], 2 MiB, before a Query, Scan or
/// BatchGetItem is refused), plus the large ones the executors are building
/// at that moment; those pass the reserve, and the store's RSS guard then
/// stops the store's growth.
pub const RESERVE_BYTES: usize = 6 * 1024 * 1024;

/// Where the endpoint listens, and what it needs to start.
pub struct EndpointSpec {
    pub listen: String,
    pub credentials: Option<std::path::PathBuf>,
    /// The node's own address: the executors' sockets bind to its host.
    pub node_host: IpAddr,
}

fn spawn<F: FnOnce() + Send + 'static>(name: String, body: F) -> Result<(), String> {
    thread::Builder::new()
        .name(name.clone())
        .stack_size(512 * 1024)
        .spawn(body)
        .map(|_| ())
        .map_err(|error| format!("cannot start thread {name}: {error}"))
}

fn credentials(spec: &EndpointSpec) -> Result<Option<Arc<Credentials>>, String> {
    let Some(path) = &spec.credentials else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let credentials = Credentials::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some(Arc::new(credentials)))
}

/// Binds the endpoint and starts its threads; `router` is cloned (as a
/// sibling) for each executor.
pub fn start(spec: &EndpointSpec, router: &Router) -> Result<(), String> {
    let credentials = credentials(spec)?;
    let listener = TcpListener::bind(&spec.listen).map_err(|e| format!("cannot bind {}: {e}", spec.listen))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let poll = mio::Poll::new().map_err(|e| e.to_string())?;
    let waker = endpoint::waker(&poll).map_err(|e| e.to_string())?;
    let (jobs_in, jobs_out) = crossbeam_channel::bounded::<Job>(JOBS_QUEUED_MAX);
    let (done_in, done_out) = crossbeam_channel::unbounded::<Done>();
    let (deletions_in, deletions) = crossbeam_channel::bounded(DELETIONS_QUEUED_MAX);
    let deleter = Deleter {
        client: ClusterClient::new(router.sibling(), spec.node_host, EXECUTORS as u64)
            .map_err(|e| format!("cannot bind a socket for the DynamoDB deleter: {e}"))?,
        deletions,
    };
    spawn("dynamodb-deleter".to_string(), move || deleter.run())?;
    let answers = Arc::new(AnswerBytes::default());
    for index in 0..EXECUTORS {
        let client = ClusterClient::new(router.sibling(), spec.node_host, index as u64)
            .map_err(|e| format!("cannot bind a socket for the DynamoDB executors: {e}"))?;
        let tag = format!("{:04X}{index:02X}", std::process::id() & 0xffff);
        let mut executor = Executor::new(client, deletions_in.clone(), credentials.clone(), answers.clone(), tag);
        let (jobs, done, waker, answers) = (jobs_out.clone(), done_in.clone(), waker.clone(), answers.clone());
        spawn(format!("dynamodb-exec-{index}"), move || {
            for job in jobs {
                let response = executor.answer(&job.request);
                let keep_alive = job.request.keep_alive;
                // Counted until written: at most one per connection is in
                // flight, and their bytes are bounded (see `answers`).
                answers.hold(response.len());
                let _ = done.send(Done {
                    connection: job.connection,
                    held: response.len(),
                    response,
                    keep_alive,
                });
                let _ = waker.wake();
            }
        })?;
    }
    let limits = EndpointLimits {
        connections_max: CONNECTIONS_MAX,
        http: Limits {
            body_bytes_max: BODY_BYTES_MAX,
            ..Limits::default()
        },
        idle_ms: 60_000,
        request_ms: 10_000,
        buffered_bytes_max: BUFFERED_BYTES_MAX,
    };
    spawn("dynamodb-http".to_string(), move || {
        if let Err(error) = endpoint::run(listener, limits, (jobs_in, done_out), poll, answers) {
            log!("dynamodb_failed", "the DynamoDB endpoint failed: {error}");
            std::process::exit(1);
        }
    })?;
    log!(
        "dynamodb",
        "DynamoDB endpoint on http://{bound} ({EXECUTORS} executors)"
    );
    Ok(())
}
