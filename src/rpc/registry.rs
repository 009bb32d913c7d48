//! Method table and JSON-RPC 2.0 request dispatch (transport independent).

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tracing::{debug, warn};

/// Positional parameters of a call (by-name params arrive as `[object]`).
pub type Params = Vec<Value>;

/// Error returned by a method; `code`/`message` go verbatim into the response.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {message}")]
pub struct RpcError {
    /// Error code (Kamailio methods use HTTP-like codes such as 400/500).
    pub code: i64,
    /// Human readable reason.
    pub message: String,
}

impl RpcError {
    /// Error with an explicit code.
    pub fn new(code: i64, msg: impl Into<String>) -> Self {
        Self {
            code,
            message: msg.into(),
        }
    }

    /// Server-side failure (code 500, as Kamailio's `rpc->fault(c, 500, ...)`).
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new(500, msg)
    }

    /// Missing or malformed parameters (code 400, as Kamailio's "Invalid Parameters").
    pub fn bad_params(msg: impl Into<String>) -> Self {
        Self::new(400, msg)
    }
}

/// Outcome of a method call.
pub type RpcResult = Result<Value, RpcError>;

/// Future returned by asynchronous methods.
pub type RpcFuture = Pin<Box<dyn Future<Output = RpcResult> + Send>>;

// Standard JSON-RPC 2.0 protocol error codes.
pub(crate) const PARSE_ERROR: i64 = -32700;
pub(crate) const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;

const LIST_METHODS: &str = "system.listMethods";
const METHOD_HELP: &str = "system.methodHelp";

/// Built-in introspection methods. They are resolved at dispatch time rather
/// than stored in the table so that `Registry::default()` has them too.
const BUILTINS: [(&str, &str); 2] = [
    (
        LIST_METHODS,
        "Lists the RPC methods supported by the server.",
    ),
    (
        METHOD_HELP,
        "Returns the help text of the given RPC method.",
    ),
];

type SyncFn = Box<dyn Fn(Params) -> RpcResult + Send + Sync>;
type AsyncFn = Box<dyn Fn(Params) -> RpcFuture + Send + Sync>;

enum Handler {
    Sync(SyncFn),
    Async(AsyncFn),
}

struct Method {
    doc: &'static str,
    handler: Handler,
}

/// What a method name resolved to.
enum Target<'a> {
    User(&'a Method),
    ListMethods,
    MethodHelp,
}

/// Method table: Kamailio method names (e.g. "core.version") -> handler, each with a one-line doc.
#[derive(Default)]
pub struct Registry {
    methods: HashMap<&'static str, Method>,
    aliases: HashMap<&'static str, &'static str>,
}

impl Registry {
    /// Empty table; `system.listMethods` and `system.methodHelp` are always available.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register a handler that runs inline on the serving task; it must not block for long.
    pub fn register_sync(
        &mut self,
        name: &'static str,
        doc: &'static str,
        f: impl Fn(Params) -> RpcResult + Send + Sync + 'static,
    ) {
        self.insert(name, doc, Handler::Sync(Box::new(f)));
    }

    /// Register a handler that may block (e.g. on the database through `Db::wait`): it runs on a
    /// plain thread of its own, outside the async runtime.
    pub fn register_blocking(
        &mut self,
        name: &'static str,
        doc: &'static str,
        f: impl Fn(Params) -> RpcResult + Send + Sync + 'static,
    ) {
        let f = Arc::new(f);
        self.register_async(name, doc, move |p| {
            let f = f.clone();
            let (tx, rx) = tokio::sync::oneshot::channel();
            let spawned = std::thread::Builder::new()
                .name("ksrd-rpc".into())
                .spawn(move || {
                    let _ = tx.send(f(p));
                });
            Box::pin(async move {
                if spawned.is_err() {
                    return Err(RpcError::internal("cannot start a thread"));
                }
                rx.await
                    .unwrap_or_else(|_| Err(RpcError::internal("handler failed")))
            })
        });
    }

    /// Register a handler whose future runs in its own tokio task.
    pub fn register_async(
        &mut self,
        name: &'static str,
        doc: &'static str,
        f: impl Fn(Params) -> RpcFuture + Send + Sync + 'static,
    ) {
        self.insert(name, doc, Handler::Async(Box::new(f)));
    }

    fn insert(&mut self, name: &'static str, doc: &'static str, handler: Handler) {
        if self.methods.insert(name, Method { doc, handler }).is_some() {
            warn!(
                method = name,
                "rpc method registered twice; the last registration wins"
            );
        }
    }

    /// Make `alias` call `target` (resolved at call time, so order of registration does not matter).
    pub fn alias(&mut self, alias: &'static str, target: &'static str) {
        self.aliases.insert(alias, target);
    }

    /// All callable method names with their docs, sorted by name.
    pub fn methods(&self) -> Vec<(&'static str, &'static str)> {
        let mut out: Vec<(&'static str, &'static str)> =
            self.methods.iter().map(|(n, m)| (*n, m.doc)).collect();
        out.extend(
            BUILTINS
                .iter()
                .filter(|(n, _)| !self.methods.contains_key(n))
                .copied(),
        );
        // Aliases are listed like real methods (Kamailio registers them as such),
        // but only when their target exists.
        for (alias, target) in &self.aliases {
            if self.methods.contains_key(alias) {
                continue;
            }
            if let Some(doc) = self.doc_of(target) {
                out.push((*alias, doc));
            }
        }
        out.sort_unstable_by_key(|(n, _)| *n);
        out.dedup_by_key(|(n, _)| *n);
        out
    }

    /// Handle one raw JSON-RPC request document (single object or batch array).
    /// Returns the serialized response (None for notification(s)).
    pub async fn handle(&self, body: &[u8]) -> Option<Vec<u8>> {
        match serde_json::from_slice::<Value>(body) {
            Ok(doc) => self.handle_doc(doc).await,
            Err(e) => {
                warn!(error = %e, "rpc request is not valid JSON");
                Some(parse_error_response())
            }
        }
    }

    /// Same as [`Registry::handle`] for an already parsed document.
    pub(crate) async fn handle_doc(&self, doc: Value) -> Option<Vec<u8>> {
        let reply = match doc {
            Value::Array(items) if items.is_empty() => {
                warn!("rpc empty batch");
                Reply::One(Response::error(
                    Value::Null,
                    INVALID_REQUEST,
                    "Invalid Request",
                ))
            }
            // Batch members run one after another: responses keep request order
            // and a batch cannot monopolise more than one task at a time.
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.extend(self.handle_one(item).await);
                }
                if out.is_empty() {
                    return None;
                }
                Reply::Batch(out)
            }
            other => Reply::One(self.handle_one(other).await?),
        };
        Some(serde_json::to_vec(&reply).expect("JSON values always serialize"))
    }

    /// Validate and execute one request object; None when it is a notification.
    async fn handle_one(&self, req: Value) -> Option<Response> {
        let Value::Object(mut obj) = req else {
            warn!("rpc request is not an object");
            return Some(Response::invalid(Value::Null));
        };
        // A request without "id" is a notification; malformed ones are still
        // answered (with id null if the id itself is unusable), per the spec.
        let id = obj.remove("id");
        let notification = id.is_none();
        let id = match id {
            None => Value::Null,
            Some(v @ (Value::Null | Value::String(_) | Value::Number(_))) => v,
            Some(_) => {
                warn!("rpc request id is not a string, number or null");
                return Some(Response::invalid(Value::Null));
            }
        };
        // Kamailio's tools (kamcmd, kamcli) always send "2.0", but Kamailio itself
        // does not insist on the member; only reject a wrong version.
        match obj.get("jsonrpc") {
            None => {}
            Some(Value::String(v)) if v == "2.0" => {}
            Some(_) => {
                warn!(%id, "rpc request has a bad jsonrpc version");
                return Some(Response::invalid(id));
            }
        }
        let Some(Value::String(method)) = obj.remove("method") else {
            warn!(%id, "rpc request without a method name");
            return Some(Response::invalid(id));
        };
        let params = match obj.remove("params") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a,
            Some(o @ Value::Object(_)) => vec![o],
            Some(_) => {
                warn!(%id, method, "rpc params are neither array nor object");
                return Some(Response::invalid(id));
            }
        };

        debug!(%id, method, params = params.len(), notification, "rpc request");
        let result = match self.resolve(&method) {
            Some(target) => self.invoke(target, params).await,
            None => Err(RpcError::new(METHOD_NOT_FOUND, "Method not found")),
        };
        if let Err(e) = &result {
            warn!(%id, method, code = e.code, message = %e.message, "rpc call failed");
        }
        if notification {
            return None;
        }
        Some(match result {
            Ok(v) => Response::result(id, v),
            Err(e) => Response::error(id, e.code, e.message),
        })
    }

    fn resolve(&self, name: &str) -> Option<Target<'_>> {
        if let Some(m) = self.methods.get(name) {
            return Some(Target::User(m));
        }
        let name = self.aliases.get(name).copied().unwrap_or(name);
        if let Some(m) = self.methods.get(name) {
            return Some(Target::User(m));
        }
        match name {
            LIST_METHODS => Some(Target::ListMethods),
            METHOD_HELP => Some(Target::MethodHelp),
            _ => None,
        }
    }

    fn doc_of(&self, name: &str) -> Option<&'static str> {
        Some(match self.resolve(name)? {
            Target::User(m) => m.doc,
            Target::ListMethods => BUILTINS[0].1,
            Target::MethodHelp => BUILTINS[1].1,
        })
    }

    async fn invoke(&self, target: Target<'_>, params: Params) -> RpcResult {
        match target {
            Target::ListMethods => Ok(Value::Array(
                self.methods().into_iter().map(|(n, _)| n.into()).collect(),
            )),
            Target::MethodHelp => match params.first() {
                // Same faults as Kamailio's core system.methodHelp.
                Some(Value::String(name)) => match self.doc_of(name) {
                    Some(doc) if !doc.is_empty() => Ok(doc.into()),
                    Some(_) => Ok("undocumented".into()),
                    None => Err(RpcError::new(400, "command not found")),
                },
                _ => Err(RpcError::new(400, "Method Name Expected")),
            },
            // A panicking handler must cost one error response, not the server.
            Target::User(m) => match &m.handler {
                Handler::Sync(f) => catch_unwind(AssertUnwindSafe(|| f(params)))
                    .unwrap_or_else(|p| Err(panicked(&*p))),
                Handler::Async(f) => {
                    // Building the future may itself panic; polling happens in
                    // a separate task so a panic there surfaces as a JoinError.
                    let fut = match catch_unwind(AssertUnwindSafe(|| f(params))) {
                        Ok(fut) => fut,
                        Err(p) => return Err(panicked(&*p)),
                    };
                    match tokio::spawn(fut).await {
                        Ok(r) => r,
                        Err(e) if e.is_panic() => Err(panicked(&*e.into_panic())),
                        Err(e) => {
                            warn!(error = %e, "rpc handler task was cancelled");
                            Err(RpcError::internal("internal error"))
                        }
                    }
                }
            },
        }
    }
}

fn panicked(payload: &(dyn Any + Send)) -> RpcError {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload");
    warn!(panic = what, "rpc handler panicked");
    RpcError::internal("internal error")
}

/// The response for an undecodable document (its id is unknowable).
pub(crate) fn parse_error_response() -> Vec<u8> {
    error_response(PARSE_ERROR, "Parse error")
}

/// Serialized error response with a null id, for transport-level failures.
pub(crate) fn error_response(code: i64, message: &str) -> Vec<u8> {
    serde_json::to_vec(&Response::error(Value::Null, code, message))
        .expect("JSON values always serialize")
}

/// Wire form of a response; a struct (not a `Value`) so members come out in
/// the conventional jsonrpc/result|error/id order.
#[derive(Serialize)]
struct Response {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody>,
    id: Value,
}

#[derive(Serialize)]
struct ErrorBody {
    code: i64,
    message: String,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Reply {
    One(Response),
    Batch(Vec<Response>),
}

impl Response {
    fn result(id: Value, result: Value) -> Self {
        Self {
            jsonrpc: "2.0",
            result: Some(result),
            error: None,
            id,
        }
    }

    fn error(id: Value, code: i64, message: impl Into<String>) -> Self {
        Self {
            jsonrpc: "2.0",
            result: None,
            error: Some(ErrorBody {
                code,
                message: message.into(),
            }),
            id,
        }
    }

    fn invalid(id: Value) -> Self {
        Self::error(id, INVALID_REQUEST, "Invalid Request")
    }
}
