use super::span::Span;

#[derive(Clone, Debug)]
struct Insert {
    at: u32,
    bytes: Vec<u8>,
    /// Set for the text of a `replace`, so a later replace of the same span supersedes it.
    replaces: Option<Span>,
}

/// Edit list ("lumps"): changes recorded against offsets in the raw message, applied when sending.
#[derive(Default, Clone, Debug)]
pub struct Edits {
    inserts: Vec<Insert>,
    deletes: Vec<Span>,
}

impl Edits {
    /// Inserts bytes before offset `at`; several inserts at one offset keep call order.
    pub fn insert(&mut self, at: u32, bytes: impl Into<Vec<u8>>) {
        self.inserts.push(Insert {
            at,
            bytes: bytes.into(),
            replaces: None,
        });
    }

    /// Removes a byte range; overlapping or duplicate deletes are fine.
    pub fn delete(&mut self, span: Span) {
        self.deletes.push(span);
    }

    /// Replaces a byte range; replacing the very same span again supersedes the earlier text.
    pub fn replace(&mut self, span: Span, bytes: impl Into<Vec<u8>>) {
        let bytes = bytes.into();
        if let Some(prev) = self.inserts.iter_mut().find(|i| i.replaces == Some(span)) {
            prev.bytes = bytes;
            return;
        }
        self.deletes.push(span);
        self.inserts.push(Insert {
            at: span.start,
            bytes,
            replaces: Some(span),
        });
    }

    /// True when nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.inserts.is_empty() && self.deletes.is_empty()
    }

    /// Drops all recorded edits.
    pub fn clear(&mut self) {
        self.inserts.clear();
        self.deletes.clear();
    }

    /// True if one recorded delete (or replace) covers the whole span.
    pub fn deletes(&self, span: Span) -> bool {
        self.deletes
            .iter()
            .any(|d| d.start <= span.start && span.end <= d.end)
    }

    /// How many bytes the edits add to (negative: take from) the range `within`; inserts at
    /// either end of it count as inside.
    pub fn len_delta_within(&self, within: Span) -> i64 {
        let (lo, hi) = (within.start, within.end);
        let mut delta: i64 = self
            .inserts
            .iter()
            .filter(|i| lo <= i.at && i.at <= hi)
            .map(|i| i.bytes.len() as i64)
            .sum();
        let mut dels: Vec<(u32, u32)> = self
            .deletes
            .iter()
            .map(|d| (d.start.max(lo), d.end.min(hi)))
            .filter(|(s, e)| s < e)
            .collect();
        dels.sort_unstable();
        let mut end = 0;
        for (s, e) in dels {
            let s = s.max(end);
            if s < e {
                delta -= (e - s) as i64;
                end = e;
            }
        }
        delta
    }

    /// When the edits change the body's length, make Content-Length say the new length
    /// (nathelper's SDP rewrites; Kamailio recomputes it when it builds the message).
    pub fn fix_content_length(&mut self, msg: &super::SipMsg) {
        let body = msg.body_span();
        let delta = self.len_delta_within(body);
        if delta == 0 {
            return;
        }
        if let Some(h) = msg.first(super::HdrName::ContentLength) {
            let len = (body.len() as i64 + delta).max(0);
            self.replace(h.value_span, len.to_string().into_bytes());
        }
    }

    /// Appends the edited message to `out`; untouched bytes are copied verbatim.
    pub fn apply(&self, raw: &[u8], out: &mut Vec<u8>) {
        if self.is_empty() {
            out.extend_from_slice(raw);
            return;
        }
        let len = raw.len();
        let clamp = |x: u32| (x as usize).min(len);
        let mut dels: Vec<(usize, usize)> = self
            .deletes
            .iter()
            .map(|d| (clamp(d.start), clamp(d.end)))
            .filter(|(s, e)| s < e)
            .collect();
        dels.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(dels.len());
        for (s, e) in dels {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        let mut order: Vec<&Insert> = self.inserts.iter().collect();
        // Stable: equal offsets keep call order (offsets past the end all mean "append").
        order.sort_by_key(|i| clamp(i.at));
        out.reserve(len + order.iter().map(|i| i.bytes.len()).sum::<usize>());
        let mut pos = 0usize;
        let mut di = 0usize;
        let mut copy_until = |t: usize, pos: &mut usize, out: &mut Vec<u8>| {
            while *pos < t {
                while di < merged.len() && merged[di].1 <= *pos {
                    di += 1;
                }
                match merged.get(di) {
                    Some(&(s, e)) if s <= *pos => *pos = e.min(t),
                    Some(&(s, _)) => {
                        let nb = s.min(t);
                        out.extend_from_slice(&raw[*pos..nb]);
                        *pos = nb;
                    }
                    None => {
                        out.extend_from_slice(&raw[*pos..t]);
                        *pos = t;
                    }
                }
            }
        };
        for ins in order {
            copy_until(clamp(ins.at), &mut pos, out);
            out.extend_from_slice(&ins.bytes);
        }
        copy_until(len, &mut pos, out);
    }
}
