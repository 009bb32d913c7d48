//! Header manipulation (`KSR.hdr.*`, Kamailio core kemi.c `_sr_kemi_hdr`): changes are edits applied
//! when the message is sent, so `is_present`/`get` see the received headers (Kamailio behaviour).

use crate::script::ctx::RouteCtx;
use crate::script::exports::{ex, Args, Export, Ty::*, Val};

/// The header line with a guaranteed CRLF ending.
fn line(text: &str) -> Vec<u8> {
    let mut v = text.as_bytes().to_vec();
    if !v.ends_with(b"\n") {
        v.extend_from_slice(b"\r\n");
    }
    v
}

fn ok(x: bool) -> Val {
    Val::Int(if x { 1 } else { -1 })
}

fn append(ctx: &mut RouteCtx, a: &Args) -> Val {
    let Some(m) = ctx.msg.as_ref() else {
        return ok(false);
    };
    let at = m.headers_end();
    ctx.edits.insert(at, line(a.str(0)));
    ok(true)
}
fn insert(ctx: &mut RouteCtx, a: &Args) -> Val {
    let Some(m) = ctx.msg.as_ref() else {
        return ok(false);
    };
    let at = m.first_header_offset();
    ctx.edits.insert(at, line(a.str(0)));
    ok(true)
}
fn append_after(ctx: &mut RouteCtx, a: &Args) -> Val {
    let Some(m) = ctx.msg.as_ref() else {
        return ok(false);
    };
    // No such header: after the last one (kemi.c sr_kemi_hdr_append_after anchors at msg->unparsed).
    let at = match m.find_by_name(a.str(1)).next() {
        Some(h) => h.line_span.end,
        None => m.headers_end(),
    };
    ctx.edits.insert(at, line(a.str(0)));
    ok(true)
}
fn insert_before(ctx: &mut RouteCtx, a: &Args) -> Val {
    let Some(m) = ctx.msg.as_ref() else {
        return ok(false);
    };
    // No such header: before the first one (kemi.c sr_kemi_hdr_insert_before).
    let at = match m.find_by_name(a.str(1)).next() {
        Some(h) => h.line_span.start,
        None => m.first_header_offset(),
    };
    ctx.edits.insert(at, line(a.str(0)));
    ok(true)
}
/// Remove every header with this name (compact forms too); count removed.
pub fn remove_all(ctx: &mut RouteCtx, name: &str) -> usize {
    let Some(m) = ctx.msg.as_ref() else { return 0 };
    let spans: Vec<_> = m.find_by_name(name).map(|h| h.line_span).collect();
    for s in &spans {
        ctx.edits.delete(*s);
    }
    spans.len()
}
fn remove(ctx: &mut RouteCtx, a: &Args) -> Val {
    if ctx.msg.is_none() {
        return ok(false);
    }
    remove_all(ctx, a.str(0));
    // Kamailio returns 1 even when nothing matched (kemi-spec §2.2, obs).
    ok(true)
}
fn rmappend(ctx: &mut RouteCtx, a: &Args) -> Val {
    remove_all(ctx, a.str(0));
    let args = Args {
        v: [a.v[1], a.v[1], a.v[1], a.v[1], a.v[1], a.v[1]],
    };
    append(ctx, &args)
}
fn rminsert(ctx: &mut RouteCtx, a: &Args) -> Val {
    remove_all(ctx, a.str(0));
    let args = Args {
        v: [a.v[1], a.v[1], a.v[1], a.v[1], a.v[1], a.v[1]],
    };
    insert(ctx, &args)
}
fn is_present(ctx: &mut RouteCtx, a: &Args) -> Val {
    ok(ctx
        .msg
        .as_ref()
        .is_some_and(|m| m.find_by_name(a.str(0)).next().is_some()))
}
fn get_idx_val(ctx: &RouteCtx, name: &str, idx: i64) -> Option<String> {
    let m = ctx.msg.as_ref()?;
    let all: Vec<_> = m.find_by_name(name).collect();
    let i = if idx < 0 { all.len() as i64 + idx } else { idx };
    let h = all.get(usize::try_from(i).ok()?)?;
    Some(String::from_utf8_lossy(m.value(h)).into_owned())
}
fn get(ctx: &mut RouteCtx, a: &Args) -> Val {
    get_idx_val(ctx, a.str(0), 0)
        .map(Val::Str)
        .unwrap_or(Val::None)
}
fn gete(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Str(get_idx_val(ctx, a.str(0), 0).unwrap_or_default())
}
fn getw(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Str(get_idx_val(ctx, a.str(0), 0).unwrap_or_else(|| "<<null>>".into()))
}
fn get_idx(ctx: &mut RouteCtx, a: &Args) -> Val {
    get_idx_val(ctx, a.str(0), a.int(1))
        .map(Val::Str)
        .unwrap_or(Val::None)
}
fn gete_idx(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Str(get_idx_val(ctx, a.str(0), a.int(1)).unwrap_or_default())
}
fn count(ctx: &mut RouteCtx, a: &Args) -> Val {
    Val::Int(
        ctx.msg
            .as_ref()
            .map(|m| m.find_by_name(a.str(0)).count())
            .unwrap_or(0) as i64,
    )
}
fn append_to_reply(ctx: &mut RouteCtx, a: &Args) -> Val {
    let l = line(a.str(0));
    ctx.reply_hdrs.extend_from_slice(&l);
    ok(true)
}

/// `KSR.hdr.*` exports.
pub static EXPORTS: &[Export] = &[
    ex(
        "hdr",
        "append",
        &[("txt", Str)],
        Int,
        "Append a header line (\"Name: value\\r\\n\") after the last header",
        append,
    ),
    ex(
        "hdr",
        "append_after",
        &[("txt", Str), ("hname", Str)],
        Int,
        "Add a header line after the first header with this name (after the last header if none)",
        append_after,
    ),
    ex(
        "hdr",
        "insert",
        &[("txt", Str)],
        Int,
        "Insert a header line before the first header",
        insert,
    ),
    ex(
        "hdr",
        "insert_before",
        &[("txt", Str), ("hname", Str)],
        Int,
        "Add a header line before the first header with this name (before the first header if none)",
        insert_before,
    ),
    ex(
        "hdr",
        "remove",
        &[("hname", Str)],
        Int,
        "Remove every header with this name (compact forms too)",
        remove,
    ),
    ex(
        "hdr",
        "rmappend",
        &[("hrm", Str), ("txt", Str)],
        Int,
        "Remove headers named hrm, then append the line",
        rmappend,
    ),
    ex(
        "hdr",
        "rminsert",
        &[("hrm", Str), ("txt", Str)],
        Int,
        "Remove headers named hrm, then insert the line at the top",
        rminsert,
    ),
    ex(
        "hdr",
        "is_present",
        &[("hname", Str)],
        Int,
        "1 if the received message has this header, else -1",
        is_present,
    ),
    ex(
        "hdr",
        "get",
        &[("hname", Str)],
        Xval,
        "Body of the first header with this name, or None",
        get,
    ),
    ex(
        "hdr",
        "gete",
        &[("hname", Str)],
        Xval,
        "Body of the first header with this name, or \"\"",
        gete,
    ),
    ex(
        "hdr",
        "getw",
        &[("hname", Str)],
        Xval,
        "Body of the first header with this name, or \"<<null>>\"",
        getw,
    ),
    ex(
        "hdr",
        "get_idx",
        &[("hname", Str), ("idx", Int)],
        Xval,
        "Body of the idx-th header with this name (negative from the end), or None",
        get_idx,
    ),
    ex(
        "hdr",
        "gete_idx",
        &[("hname", Str), ("idx", Int)],
        Xval,
        "Body of the idx-th header with this name, or \"\"",
        gete_idx,
    ),
    ex(
        "hdr",
        "count",
        &[("hname", Str)],
        Int,
        "Number of headers with this name",
        count,
    ),
    ex(
        "hdr",
        "append_to_reply",
        &[("txt", Str)],
        Int,
        "Add a header line to the next locally generated reply",
        append_to_reply,
    ),
];
