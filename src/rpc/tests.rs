//! End-to-end tests over real sockets with hand-written minimal clients.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::rpc::{serve_http, serve_unix, Params, Registry, RpcError, RpcFuture};

fn registry() -> Arc<Registry> {
    let mut reg = Registry::new();
    reg.register_sync("core.echo", "Returns its params.", |p: Params| {
        Ok(Value::Array(p))
    });
    reg.register_sync("core.fail", "Always fails with 400.", |_| {
        Err(RpcError::bad_params("Invalid Parameters"))
    });
    reg.register_sync("core.panic", "Panics.", |_| panic!("boom"));
    reg.register_async("core.add", "Adds two integers.", |p: Params| -> RpcFuture {
        Box::pin(async move {
            let a = p
                .first()
                .and_then(Value::as_i64)
                .ok_or_else(|| RpcError::bad_params("a"))?;
            let b = p
                .get(1)
                .and_then(Value::as_i64)
                .ok_or_else(|| RpcError::bad_params("b"))?;
            tokio::task::yield_now().await;
            Ok(json!(a + b))
        })
    });
    reg.register_async(
        "core.apanic",
        "Panics inside its future.",
        |_| -> RpcFuture {
            Box::pin(async {
                tokio::task::yield_now().await;
                panic!("async boom")
            })
        },
    );
    reg.register_sync("app_python.reload", "Reloads the script.", |_| {
        Ok(json!("reloaded"))
    });
    reg.alias("app_python3.reload", "app_python.reload");
    Arc::new(reg)
}

async fn start_http() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_http(listener, registry()));
    addr
}

fn socket_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("ksrd-rpc-test-{}-{n}.sock", std::process::id()))
}

async fn start_unix() -> PathBuf {
    let path = socket_path();
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    tokio::spawn(serve_unix(listener, registry()));
    path
}

struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("response body is JSON")
    }
}

/// Minimal HTTP client over one connection, so keep-alive can be observed.
struct Client {
    rd: BufReader<tokio::net::tcp::OwnedReadHalf>,
    wr: tokio::net::tcp::OwnedWriteHalf,
}

impl Client {
    async fn connect(addr: std::net::SocketAddr) -> Self {
        let (rd, wr) = TcpStream::connect(addr).await.unwrap().into_split();
        Self {
            rd: BufReader::new(rd),
            wr,
        }
    }

    async fn post(&mut self, body: &str) -> HttpResponse {
        let req = format!(
            "POST /RPC HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.send_raw(req.as_bytes()).await
    }

    async fn send_raw(&mut self, raw: &[u8]) -> HttpResponse {
        self.wr.write_all(raw).await.unwrap();
        self.read_response().await
    }

    async fn read_response(&mut self) -> HttpResponse {
        let mut line = String::new();
        self.rd.read_line(&mut line).await.unwrap();
        let status: u16 = line
            .split(' ')
            .nth(1)
            .expect("status line")
            .parse()
            .unwrap();
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.rd.read_line(&mut line).await.unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (n, v) = l.split_once(':').unwrap();
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
        let mut resp = HttpResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if let Some(len) = resp.header("content-length") {
            let mut body = vec![0; len.parse().unwrap()];
            self.rd.read_exact(&mut body).await.unwrap();
            resp.body = body;
        }
        resp
    }

    /// True once the server has closed its side.
    async fn at_eof(&mut self) -> bool {
        let mut rest = Vec::new();
        self.rd.read_to_end(&mut rest).await.unwrap();
        rest.is_empty()
    }
}

async fn post_once(addr: std::net::SocketAddr, body: &str) -> HttpResponse {
    Client::connect(addr).await.post(body).await
}

// ---- HTTP: JSON-RPC semantics ----

#[tokio::test]
async fn http_success_shape() {
    let addr = start_http().await;
    let r = post_once(
        addr,
        r#"{"jsonrpc":"2.0","method":"core.echo","params":[1,"a"],"id":7}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json(), json!({"jsonrpc":"2.0","result":[1,"a"],"id":7}));
    // Members are emitted in conventional order.
    assert_eq!(
        std::str::from_utf8(&r.body).unwrap(),
        r#"{"jsonrpc":"2.0","result":[1,"a"],"id":7}"#
    );
}

#[tokio::test]
async fn http_async_method_and_string_id() {
    let addr = start_http().await;
    let r = post_once(
        addr,
        r#"{"jsonrpc":"2.0","method":"core.add","params":[2,40],"id":"x1"}"#,
    )
    .await;
    assert_eq!(r.json(), json!({"jsonrpc":"2.0","result":42,"id":"x1"}));
}

#[tokio::test]
async fn http_params_by_name_and_absent() {
    let addr = start_http().await;
    let r = post_once(
        addr,
        r#"{"jsonrpc":"2.0","method":"core.echo","params":{"k":"v"},"id":1}"#,
    )
    .await;
    assert_eq!(r.json()["result"], json!([{"k":"v"}]));
    let r = post_once(addr, r#"{"jsonrpc":"2.0","method":"core.echo","id":2}"#).await;
    assert_eq!(r.json()["result"], json!([]));
}

#[tokio::test]
async fn http_parse_error() {
    let addr = start_http().await;
    let r = post_once(addr, r#"{"jsonrpc":"2.0","method":"#).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null})
    );
}

#[tokio::test]
async fn http_unknown_method() {
    let addr = start_http().await;
    let r = post_once(addr, r#"{"jsonrpc":"2.0","method":"no.such","id":3}"#).await;
    assert_eq!(
        r.json(),
        json!({"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":3})
    );
}

#[tokio::test]
async fn http_invalid_requests() {
    let addr = start_http().await;
    let invalid = |id: Value| json!({"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":id});
    // Missing method: id is still echoed.
    assert_eq!(
        post_once(addr, r#"{"jsonrpc":"2.0","id":5}"#).await.json(),
        invalid(json!(5))
    );
    // Not an object.
    assert_eq!(post_once(addr, "42").await.json(), invalid(Value::Null));
    // Wrong version, scalar params, unusable id.
    assert_eq!(
        post_once(addr, r#"{"jsonrpc":"1.0","method":"core.echo","id":6}"#)
            .await
            .json(),
        invalid(json!(6))
    );
    assert_eq!(
        post_once(
            addr,
            r#"{"jsonrpc":"2.0","method":"core.echo","params":3,"id":8}"#
        )
        .await
        .json(),
        invalid(json!(8))
    );
    assert_eq!(
        post_once(addr, r#"{"jsonrpc":"2.0","method":"core.echo","id":[1]}"#)
            .await
            .json(),
        invalid(Value::Null)
    );
    // Empty batch is a single error, not an empty array.
    assert_eq!(post_once(addr, "[]").await.json(), invalid(Value::Null));
}

#[tokio::test]
async fn http_handler_error_code_passes_through() {
    let addr = start_http().await;
    let r = post_once(addr, r#"{"jsonrpc":"2.0","method":"core.fail","id":9}"#).await;
    assert_eq!(
        r.json(),
        json!({"jsonrpc":"2.0","error":{"code":400,"message":"Invalid Parameters"},"id":9})
    );
}

#[tokio::test]
async fn http_batch() {
    let addr = start_http().await;
    let body = r#"[
        {"jsonrpc":"2.0","method":"core.add","params":[1,2],"id":1},
        {"jsonrpc":"2.0","method":"core.echo","params":["note"]},
        {"jsonrpc":"2.0","method":"nope","id":2},
        17
    ]"#;
    let r = post_once(addr, body).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!([
            {"jsonrpc":"2.0","result":3,"id":1},
            {"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":2},
            {"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}
        ])
    );
}

#[tokio::test]
async fn http_notification_gets_204() {
    let addr = start_http().await;
    let mut c = Client::connect(addr).await;
    let r = c
        .post(r#"{"jsonrpc":"2.0","method":"core.echo","params":[1]}"#)
        .await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-length"), None);
    // An all-notification batch is also answered with nothing; the connection stays usable.
    let r = c
        .post(r#"[{"jsonrpc":"2.0","method":"core.echo"},{"jsonrpc":"2.0","method":"nope"}]"#)
        .await;
    assert_eq!(r.status, 204);
    let r = c
        .post(r#"{"jsonrpc":"2.0","method":"core.echo","params":[2],"id":1}"#)
        .await;
    assert_eq!(r.json()["result"], json!([2]));
}

// ---- HTTP: transport ----

#[tokio::test]
async fn http_keep_alive_two_requests_one_connection() {
    let addr = start_http().await;
    let mut c = Client::connect(addr).await;
    let r1 = c
        .post(r#"{"jsonrpc":"2.0","method":"core.add","params":[1,1],"id":1}"#)
        .await;
    let r2 = c
        .post(r#"{"jsonrpc":"2.0","method":"core.add","params":[2,2],"id":2}"#)
        .await;
    assert_eq!(r1.json()["result"], json!(2));
    assert_eq!(r2.json()["result"], json!(4));
    assert_eq!(r2.header("connection"), None);
}

#[tokio::test]
async fn http_pipelined_requests_in_one_write() {
    let addr = start_http().await;
    let mut c = Client::connect(addr).await;
    let one = r#"{"jsonrpc":"2.0","method":"core.echo","params":["a"],"id":1}"#;
    let two = r#"{"jsonrpc":"2.0","method":"core.echo","params":["b"],"id":2}"#;
    let raw = format!(
        "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n{one}POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n{two}",
        one.len(),
        two.len()
    );
    let r1 = c.send_raw(raw.as_bytes()).await;
    let r2 = c.read_response().await;
    assert_eq!(r1.json()["result"], json!(["a"]));
    assert_eq!(r2.json()["result"], json!(["b"]));
}

#[tokio::test]
async fn http_connection_close_is_honoured() {
    let addr = start_http().await;
    let mut c = Client::connect(addr).await;
    let body = r#"{"jsonrpc":"2.0","method":"core.echo","id":1}"#;
    let raw = format!(
        "POST /RPC HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let r = c.send_raw(raw.as_bytes()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.at_eof().await);
}

#[tokio::test]
async fn http10_keep_alive_only_on_request() {
    let addr = start_http().await;
    let body = r#"{"jsonrpc":"2.0","method":"core.echo","id":1}"#;
    let mut c = Client::connect(addr).await;
    let raw = format!(
        "POST / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let r = c.send_raw(raw.as_bytes()).await;
    assert_eq!(r.header("connection"), Some("keep-alive"));
    let r = c
        .send_raw(raw.replace("Connection: keep-alive\r\n", "").as_bytes())
        .await;
    assert_eq!(r.json()["id"], json!(1));
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.at_eof().await);
}

#[tokio::test]
async fn http_expect_100_continue() {
    let addr = start_http().await;
    let mut c = Client::connect(addr).await;
    let body = r#"{"jsonrpc":"2.0","method":"core.echo","params":[5],"id":1}"#;
    let head = format!(
        "POST /RPC HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let interim = c.send_raw(head.as_bytes()).await;
    assert_eq!(interim.status, 100);
    let r = c.send_raw(body.as_bytes()).await;
    assert_eq!(r.json()["result"], json!([5]));
}

#[tokio::test]
async fn http_get_is_405() {
    let addr = start_http().await;
    let mut c = Client::connect(addr).await;
    let r = c.send_raw(b"GET /RPC HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    assert!(c.at_eof().await);
}

#[tokio::test]
async fn http_malformed_request_is_400() {
    let addr = start_http().await;
    let mut c = Client::connect(addr).await;
    let r = c.send_raw(b"this is not http\r\n\r\n").await;
    assert_eq!(r.status, 400);
    let mut c = Client::connect(addr).await;
    let r = c
        .send_raw(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello")
        .await;
    assert_eq!(r.status, 400);
    let mut c = Client::connect(addr).await;
    let r = c
        .send_raw(b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n")
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn http_missing_length_and_chunked() {
    let addr = start_http().await;
    let r = Client::connect(addr)
        .await
        .send_raw(b"POST / HTTP/1.1\r\n\r\n")
        .await;
    assert_eq!(r.status, 411);
    let r = Client::connect(addr)
        .await
        .send_raw(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        .await;
    assert_eq!(r.status, 501);
}

#[tokio::test]
async fn http_body_over_1mib_is_413() {
    let addr = start_http().await;
    let mut c = Client::connect(addr).await;
    let r = c
        .send_raw(
            format!(
                "POST /RPC HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
                (1 << 20) + 1
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(r.status, 413);
    assert!(c.at_eof().await);
    // Exactly 1 MiB is still accepted (padded with whitespace, which JSON allows).
    let mut body = r#"{"jsonrpc":"2.0","method":"core.echo","id":1}"#.to_owned();
    body.push_str(&" ".repeat((1 << 20) - body.len()));
    let r = post_once(addr, &body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["id"], json!(1));
}

#[tokio::test]
async fn http_panicking_handlers_return_500_and_server_survives() {
    let addr = start_http().await;
    let mut c = Client::connect(addr).await;
    let internal =
        |id: i64| json!({"jsonrpc":"2.0","error":{"code":500,"message":"internal error"},"id":id});
    assert_eq!(
        c.post(r#"{"jsonrpc":"2.0","method":"core.panic","id":1}"#)
            .await
            .json(),
        internal(1)
    );
    assert_eq!(
        c.post(r#"{"jsonrpc":"2.0","method":"core.apanic","id":2}"#)
            .await
            .json(),
        internal(2)
    );
    // Same connection and a fresh one both still work.
    let r = c
        .post(r#"{"jsonrpc":"2.0","method":"core.add","params":[3,4],"id":3}"#)
        .await;
    assert_eq!(r.json()["result"], json!(7));
    let r = post_once(
        addr,
        r#"{"jsonrpc":"2.0","method":"core.add","params":[5,5],"id":4}"#,
    )
    .await;
    assert_eq!(r.json()["result"], json!(10));
}

// ---- Built-ins and aliases ----

#[tokio::test]
async fn http_list_methods_and_help() {
    let addr = start_http().await;
    let r = post_once(
        addr,
        r#"{"jsonrpc":"2.0","method":"system.listMethods","id":1}"#,
    )
    .await;
    let names: Vec<String> = serde_json::from_value(r.json()["result"].clone()).unwrap();
    for m in [
        "app_python.reload",
        "app_python3.reload",
        "core.add",
        "core.echo",
        "system.listMethods",
        "system.methodHelp",
    ] {
        assert!(names.iter().any(|n| n == m), "{m} missing from {names:?}");
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);

    let r = post_once(
        addr,
        r#"{"jsonrpc":"2.0","method":"system.methodHelp","params":["core.add"],"id":2}"#,
    )
    .await;
    assert_eq!(r.json()["result"], json!("Adds two integers."));
    let r = post_once(
        addr,
        r#"{"jsonrpc":"2.0","method":"system.methodHelp","params":["x.y"],"id":3}"#,
    )
    .await;
    assert_eq!(r.json()["error"]["code"], json!(400));
    let r = post_once(
        addr,
        r#"{"jsonrpc":"2.0","method":"system.methodHelp","id":4}"#,
    )
    .await;
    assert_eq!(
        r.json()["error"],
        json!({"code":400,"message":"Method Name Expected"})
    );
}

#[tokio::test]
async fn http_alias_calls_target() {
    let addr = start_http().await;
    let r = post_once(
        addr,
        r#"{"jsonrpc":"2.0","method":"app_python3.reload","id":1}"#,
    )
    .await;
    assert_eq!(
        r.json(),
        json!({"jsonrpc":"2.0","result":"reloaded","id":1})
    );
}

#[test]
fn methods_are_sorted_with_docs_and_default_has_builtins() {
    let reg = registry();
    let methods = reg.methods();
    assert!(methods.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(methods.contains(&("app_python3.reload", "Reloads the script.")));
    assert!(methods.contains(&("core.echo", "Returns its params.")));
    // An alias to nothing is not advertised.
    let mut reg = Registry::default();
    reg.alias("dangling.alias", "missing.method");
    let names: Vec<_> = reg.methods().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["system.listMethods", "system.methodHelp"]);
}

#[tokio::test]
async fn handle_returns_none_for_notifications() {
    let reg = registry();
    assert!(reg
        .handle(br#"{"jsonrpc":"2.0","method":"core.echo"}"#)
        .await
        .is_none());
    // Unknown methods as notifications are silent too.
    assert!(reg
        .handle(br#"{"jsonrpc":"2.0","method":"nope"}"#)
        .await
        .is_none());
    // id: null is a request, not a notification.
    let out = reg
        .handle(br#"{"jsonrpc":"2.0","method":"core.echo","id":null}"#)
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&out).unwrap(),
        json!({"jsonrpc":"2.0","result":[],"id":null})
    );
}

// ---- Unix socket ----

async fn read_json_line(rd: &mut BufReader<UnixStream>) -> Value {
    let mut line = String::new();
    rd.read_line(&mut line).await.unwrap();
    assert!(
        line.ends_with('\n'),
        "response not newline-terminated: {line:?}"
    );
    serde_json::from_str(&line).unwrap()
}

#[tokio::test]
async fn unix_several_documents_on_one_connection() {
    let path = start_unix().await;
    let mut s = BufReader::new(UnixStream::connect(&path).await.unwrap());
    // Two documents in one write, no separator: must be split incrementally.
    s.get_mut()
        .write_all(br#"{"jsonrpc":"2.0","method":"core.add","params":[1,2],"id":1}{"jsonrpc":"2.0","method":"core.echo","id":2}"#)
        .await
        .unwrap();
    assert_eq!(
        read_json_line(&mut s).await,
        json!({"jsonrpc":"2.0","result":3,"id":1})
    );
    assert_eq!(
        read_json_line(&mut s).await,
        json!({"jsonrpc":"2.0","result":[],"id":2})
    );
    // One document split across two writes (possibly two reads on the server side).
    s.get_mut()
        .write_all(br#"{"jsonrpc":"2.0","meth"#)
        .await
        .unwrap();
    s.get_mut().flush().await.unwrap();
    s.get_mut()
        .write_all(br#"od":"app_python3.reload","id":3}"#)
        .await
        .unwrap();
    assert_eq!(
        read_json_line(&mut s).await,
        json!({"jsonrpc":"2.0","result":"reloaded","id":3})
    );
    // Clean EOF after whitespace: server closes without a reply.
    s.get_mut().write_all(b"\n  \n").await.unwrap();
    s.get_mut().shutdown().await.unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn unix_batch_and_notification() {
    let path = start_unix().await;
    let mut s = BufReader::new(UnixStream::connect(&path).await.unwrap());
    // The notification produces no line, so the next line read belongs to the batch.
    s.get_mut()
        .write_all(br#"{"jsonrpc":"2.0","method":"core.echo"}"#)
        .await
        .unwrap();
    s.get_mut()
        .write_all(br#"[{"jsonrpc":"2.0","method":"core.add","params":[2,3],"id":"a"},{"jsonrpc":"2.0","method":"core.panic","id":"b"}]"#)
        .await
        .unwrap();
    assert_eq!(
        read_json_line(&mut s).await,
        json!([
            {"jsonrpc":"2.0","result":5,"id":"a"},
            {"jsonrpc":"2.0","error":{"code":500,"message":"internal error"},"id":"b"}
        ])
    );
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn unix_parse_error_replies_and_closes() {
    let path = start_unix().await;
    let mut s = BufReader::new(UnixStream::connect(&path).await.unwrap());
    s.get_mut()
        .write_all(br#"{"jsonrpc":"2.0","method":"core.echo","id":1} {oops"#)
        .await
        .unwrap();
    assert_eq!(
        read_json_line(&mut s).await,
        json!({"jsonrpc":"2.0","result":[],"id":1})
    );
    assert_eq!(
        read_json_line(&mut s).await,
        json!({"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null})
    );
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "server should close after a parse error");
    // The listener itself is unaffected.
    let mut s = BufReader::new(UnixStream::connect(&path).await.unwrap());
    s.get_mut()
        .write_all(br#"{"jsonrpc":"2.0","method":"core.echo","id":2}"#)
        .await
        .unwrap();
    assert_eq!(read_json_line(&mut s).await["id"], json!(2));
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn unix_truncated_document_at_eof_is_parse_error() {
    let path = start_unix().await;
    let mut s = BufReader::new(UnixStream::connect(&path).await.unwrap());
    s.get_mut()
        .write_all(br#"{"jsonrpc":"2.0","method":"#)
        .await
        .unwrap();
    s.get_mut().shutdown().await.unwrap();
    assert_eq!(read_json_line(&mut s).await["error"]["code"], json!(-32700));
    let _ = std::fs::remove_file(&path);
}
