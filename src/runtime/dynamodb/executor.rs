//! One DynamoDB request, start to end, on an executor thread: the target
//! and signature checked, the body parsed against the catalog
//! ([`dynakv_dynamo::ops::parse`]), the operation run against the cluster
//! through this thread's [`ClusterClient`], and the HTTP answer written.

use super::answers::AnswerBytes;
use super::cluster_client::ClusterClient;
use super::tables::{self, ClusterCatalog, Deletion, Known, TableCache};
use super::{items, scans};
use crate::node::context::unix_millis;
use crossbeam_channel::Sender;
use dynakv_dynamo::error::{ApiError, ErrorKind};
use dynakv_dynamo::http::{self, Request};
use dynakv_dynamo::ops::{self, WriteFailure};
use dynakv_dynamo::sigv4::{self, Credentials};
use serde_json::Value as Json;
use std::sync::Arc;

/// `X-Amz-Target`'s prefix for every operation of this API version.
const TARGET_PREFIX: &str = "DynamoDB_20120810.";

pub struct Executor {
    client: ClusterClient,
    tables: TableCache,
    deleter: Sender<Deletion>,
    credentials: Option<Arc<Credentials>>,
    /// The answers built and not yet written: a large one waits past its bound.
    answers: Arc<AnswerBytes>,
    /// Request ids: this executor's tag and a count.
    tag: String,
    requests: u64,
}

impl Executor {
    pub fn new(
        client: ClusterClient,
        deleter: Sender<Deletion>,
        credentials: Option<Arc<Credentials>>,
        answers: Arc<AnswerBytes>,
        tag: String,
    ) -> Executor {
        Executor {
            client,
            tables: TableCache::default(),
            deleter,
            credentials,
            answers,
            tag,
            requests: 0,
        }
    }

    /// The whole HTTP answer to `request`.
    pub fn answer(&mut self, request: &Request) -> Vec<u8> {
        self.requests += 1;
        let request_id = format!("{}{:012X}", self.tag, self.requests);
        let now = unix_millis();
        let mut out = Vec::new();
        if request.method == "GET" && request.path() == "/" {
            // DynamoDB's health check answer.
            http::write_response(200, &[], b"healthy: dynakv", request.keep_alive, &mut out);
            return out;
        }
        match self.execute(request, now) {
            Ok(body) => {
                let body = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
                http::json_response(&request_id, &body, request.keep_alive, now, &mut out);
            }
            Err(failure) => {
                let body = serde_json::to_vec(&failure.body()).unwrap_or_default();
                let status = failure.error.kind.status();
                http::dynamo_response(status, &request_id, &body, request.keep_alive, now, &mut out);
            }
        }
        out
    }

    fn execute(&mut self, request: &Request, now: u64) -> Result<Json, WriteFailure> {
        if request.method != "POST" {
            return Err(ApiError::new(ErrorKind::UnknownOperation, "DynamoDB takes POST requests").into());
        }
        let operation = request
            .header("x-amz-target")
            .and_then(|target| target.strip_prefix(TARGET_PREFIX))
            .ok_or_else(|| ApiError::new(ErrorKind::UnknownOperation, "X-Amz-Target names no DynamoDB operation"))?;
        if let Some(credentials) = &self.credentials {
            sigv4::verify(request, credentials, now)?;
        }
        // Item operations may use a table read lately (see `tables`).
        let cache = ops::ITEM_OPERATIONS.contains(&operation).then_some(&mut self.tables);
        let catalog = ClusterCatalog::new(&mut self.client, cache);
        let parsed = ops::parse(operation, &request.body, &catalog);
        if let Some(error) = catalog.failure() {
            return Err(super::cluster_client::unavailable(error).into());
        }
        let (client, known) = catalog.finish();
        let context = Context {
            known: &known,
            now,
            deleter: &self.deleter,
        };
        let request = parsed?;
        let large = matches!(
            request,
            ops::Request::Query(_) | ops::Request::Scan(_) | ops::Request::BatchGetItem(_)
        );
        if large && !self.answers.admits_large() {
            let error = ApiError::new(
                ErrorKind::ProvisionedThroughputExceeded,
                "The endpoint holds too many answers its clients have not read yet; retry",
            );
            return Err(error.into());
        }
        run(client, &context, request)
    }
}

/// What a request runs with besides the cluster.
struct Context<'a> {
    /// The tables its parsing read.
    known: &'a Known,
    now: u64,
    deleter: &'a Sender<Deletion>,
}

/// Runs a parsed request.
fn run(client: &mut ClusterClient, context: &Context<'_>, request: ops::Request) -> Result<Json, WriteFailure> {
    use ops::Request as R;
    let (known, now) = (context.known, context.now);
    let table_of = |name: &str| {
        ops::Catalog::table(known, name).ok_or_else(|| {
            ApiError::new(
                ErrorKind::ResourceNotFound,
                format!("Requested resource not found: Table: {name} not found"),
            )
        })
    };
    Ok(match request {
        R::CreateTable(create) => tables::create(client, known, &create, now)?,
        R::DescribeTable(table) => ops::describe_table_response(&table),
        R::DeleteTable(table) => tables::delete(client, known, &table, now, context.deleter)?,
        R::UpdateTable(update) => tables::update(client, known, &update)?,
        R::ListTables(list) => tables::list(client, &list)?,
        R::GetItem(get) => items::get(client, known, &get)?,
        R::Write(write) => items::write(client, known, &write)?,
        R::Query(query) => scans::query(client, &table_of(&query.read.table)?, &query)?,
        R::Scan(scan) => scans::scan(client, &table_of(&scan.read.table)?, &scan)?,
        R::BatchGetItem(batch) => items::batch_get(client, known, &batch)?,
        R::BatchWriteItem(batch) => items::batch_write(client, known, &batch)?,
    })
}
