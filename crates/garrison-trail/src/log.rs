//! A CloudTrail log file (`{"Records":[{…},{…}]}`, gzipped) read as a stream: the file is
//! inflated in chunks, each record is cut out of the top-level array by a small scanner and
//! parsed on its own, borrowing its strings from the buffer. Memory stays at the largest
//! record, whatever the file's size; a record that does not parse is reported and the rest
//! are still read.

use std::borrow::Cow;
use std::io::Read;

use serde::Deserialize;
use serde_json::value::RawValue;

/// The fields garrison looks at; the rest of a record is skipped without being built.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record<'a> {
    #[serde(borrow)]
    pub event_source: Cow<'a, str>,
    #[serde(borrow)]
    pub event_name: Cow<'a, str>,
    #[serde(borrow)]
    pub aws_region: Cow<'a, str>,
    #[serde(borrow, default)]
    pub event_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub event_time: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub error_code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub recipient_account_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub user_identity: Option<Identity<'a>>,
    #[serde(borrow, default)]
    pub request_parameters: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
pub struct Identity<'a> {
    #[serde(borrow, default)]
    pub arn: Option<Cow<'a, str>>,
}

/// The file cannot be read on (not gzip, not the CloudTrail shape, truncated, too large).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable(pub String);

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One record that did not parse; the others are unaffected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    pub index: usize,
    pub reason: String,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub records: usize,
    pub bad: usize,
    /// Inflated bytes read.
    pub bytes: u64,
}

/// A record larger than this is not CloudTrail's (its limit is far smaller).
pub const MAX_RECORD: usize = 16 << 20;
/// Inflated size at which a file is refused (a decompression bomb, not a log).
pub const MAX_FILE: u64 = 2 << 30;
const CHUNK: usize = 256 << 10;

/// Reads a gzipped log file from `src`, calling `each` for every record in order.
pub fn read_gz<R: Read>(src: R, each: impl FnMut(Result<Record<'_>, BadRecord>)) -> Result<Stats, Unreadable> {
    read_json(flate2::read::MultiGzDecoder::new(src), each)
}

/// As `read_gz`, for an already inflated stream.
pub fn read_json<R: Read>(src: R, mut each: impl FnMut(Result<Record<'_>, BadRecord>)) -> Result<Stats, Unreadable> {
    let mut s = Stream { src, buf: vec![0; CHUNK], pos: 0, end: 0, eof: false, total: 0 };
    let mut stats = Stats::default();
    s.expect(b'{', "the file to start with {")?;
    loop {
        match s.peek_token()? {
            Some(b'}') => {
                s.pos += 1;
                break;
            }
            Some(b'"') => {}
            found => return Err(unexpected("a field name or }", found)),
        }
        let key_end = s.value_end()?;
        let is_records = &s.buf[s.pos..key_end] == b"\"Records\"";
        s.pos = key_end;
        s.expect(b':', "a : after the field name")?;
        if is_records {
            s.expect(b'[', "Records to be an array")?;
            if s.peek_token()? == Some(b']') {
                s.pos += 1;
            } else {
                loop {
                    s.peek_token()?;
                    let end = s.value_end()?;
                    let index = stats.records;
                    stats.records += 1;
                    match serde_json::from_slice::<Record<'_>>(&s.buf[s.pos..end]) {
                        Ok(r) => each(Ok(r)),
                        Err(e) => {
                            stats.bad += 1;
                            each(Err(BadRecord { index, reason: format!("record {index}: {e}") }));
                        }
                    }
                    s.pos = end;
                    match s.peek_token()? {
                        Some(b',') => s.pos += 1,
                        Some(b']') => {
                            s.pos += 1;
                            break;
                        }
                        found => return Err(unexpected("a , or ] after a record", found)),
                    }
                }
            }
        } else {
            s.peek_token()?;
            s.pos = s.value_end()?;
        }
        match s.peek_token()? {
            Some(b',') => s.pos += 1,
            Some(b'}') => {
                s.pos += 1;
                break;
            }
            found => return Err(unexpected("a , or } after a field", found)),
        }
    }
    if let Some(b) = s.peek_token()? {
        return Err(unexpected("the end of the file", Some(b)));
    }
    stats.bytes = s.total;
    Ok(stats)
}

fn unexpected(want: &str, found: Option<u8>) -> Unreadable {
    match found {
        Some(b) if b.is_ascii_graphic() => Unreadable(format!("not a CloudTrail log: expected {want}, found '{}'", b as char)),
        Some(b) => Unreadable(format!("not a CloudTrail log: expected {want}, found byte 0x{b:02x}")),
        None => Unreadable(format!("not a CloudTrail log: expected {want}, found the end of the file")),
    }
}

struct Stream<R> {
    src: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    total: u64,
}

impl<R: Read> Stream<R> {
    /// Reads more, keeping `buf[pos..end]`; grows the buffer when it is full of one value.
    fn fill(&mut self) -> Result<bool, Unreadable> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= MAX_RECORD {
                return Err(Unreadable(format!("a value larger than {} MiB", MAX_RECORD >> 20)));
            }
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = loop {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Unreadable(format!("cannot inflate: {e}"))),
            }
        };
        self.total += n as u64;
        if self.total > MAX_FILE {
            return Err(Unreadable(format!("inflates to more than {} GiB", MAX_FILE >> 30)));
        }
        self.end += n;
        self.eof = n == 0;
        Ok(n > 0)
    }

    /// The next byte that is not white space, left unconsumed.
    fn peek_token(&mut self) -> Result<Option<u8>, Unreadable> {
        loop {
            while self.pos < self.end {
                let b = self.buf[self.pos];
                if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                    self.pos += 1;
                } else {
                    return Ok(Some(b));
                }
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    fn expect(&mut self, b: u8, what: &str) -> Result<(), Unreadable> {
        match self.peek_token()? {
            Some(x) if x == b => {
                self.pos += 1;
                Ok(())
            }
            found => Err(unexpected(what, found)),
        }
    }

    /// The end of the value starting at `pos`, reading more as needed.
    fn value_end(&mut self) -> Result<usize, Unreadable> {
        loop {
            if let Some(n) = scan(&self.buf[self.pos..self.end], self.eof) {
                return Ok(self.pos + n);
            }
            if !self.fill()? {
                // At the end of input a value that did not close is a truncated file.
                return scan(&self.buf[self.pos..self.end], true)
                    .map(|n| self.pos + n)
                    .ok_or_else(|| Unreadable("truncated: the file ends inside a value".into()));
            }
        }
    }
}

/// Length of the JSON value at the start of `b`, or None if `b` ends before it does.
/// Only structure is checked (strings, nesting); the record parser checks the rest.
fn scan(b: &[u8], at_eof: bool) -> Option<usize> {
    let first = *b.first()?;
    match first {
        b'"' => string_end(b, 1),
        b'{' | b'[' => {
            // In valid JSON the other kind of bracket balances inside; invalid JSON is
            // caught when the cut-out value is parsed.
            let close = if first == b'{' { b'}' } else { b']' };
            let mut depth = 0usize;
            let mut i = 0;
            loop {
                let j = i + memchr::memchr3(b'"', first, close, &b[i..])?;
                match b[j] {
                    b'"' => i = string_end(b, j + 1)?,
                    c if c == first => {
                        depth += 1;
                        i = j + 1;
                    }
                    _ => {
                        depth -= 1;
                        i = j + 1;
                        if depth == 0 {
                            return Some(i);
                        }
                    }
                }
            }
        }
        _ => {
            let n = b.iter().position(|c| matches!(c, b',' | b']' | b'}' | b' ' | b'\n' | b'\r' | b'\t'));
            match n {
                Some(n) => Some(n.max(1)),
                None if at_eof => Some(b.len()),
                None => None,
            }
        }
    }
}

/// Index just past the quote closing a string whose contents start at `i`.
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let j = i + memchr::memchr2(b'"', b'\\', &b[i..])?;
        if b[j] == b'"' {
            return Some(j + 1);
        }
        i = j + 2;
        if i > b.len() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(json: &str) -> (Vec<String>, Vec<BadRecord>, Result<Stats, Unreadable>) {
        let (mut ok, mut bad) = (vec![], vec![]);
        let r = read_json(json.as_bytes(), |r| match r {
            Ok(r) => ok.push(format!("{}/{}/{}", r.event_source, r.event_name, r.aws_region)),
            Err(b) => bad.push(b),
        });
        (ok, bad, r)
    }

    const A: &str = r#"{"eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"us-east-1","requestParameters":{"a":"}{]["}}"#;
    const B: &str = r#"{"eventSource":"ec2.amazonaws.com","eventName":"Describe\"X","awsRegion":"eu-west-1","userIdentity":{"arn":"x"}}"#;

    #[test]
    fn reads_records_in_order_with_braces_and_escapes_in_strings() {
        let (ok, bad, r) = names(&format!(" {{ \"Records\" : [ {A} ,\n{B} ] }}\n"));
        assert_eq!(ok, vec!["ec2.amazonaws.com/RunInstances/us-east-1", "ec2.amazonaws.com/Describe\"X/eu-west-1"]);
        assert!(bad.is_empty());
        assert_eq!(r.unwrap().records, 2);
    }

    #[test]
    fn other_fields_and_empty_files_are_fine() {
        let (ok, _, r) = names(&format!(r#"{{"x":[1,{{"y":"]"}}],"Records":[{A}],"z":null}}"#));
        assert_eq!(ok.len(), 1);
        assert!(r.is_ok());
        assert_eq!(names(r#"{"Records":[]}"#).2.unwrap().records, 0);
        assert_eq!(names("{}").2.unwrap().records, 0);
    }

    #[test]
    fn a_record_of_unknown_shape_is_reported_and_the_rest_read() {
        let (ok, bad, r) = names(&format!(r#"{{"Records":[{A},{{"eventName":5}},"text",{B}]}}"#));
        assert_eq!(ok.len(), 2);
        assert_eq!(bad.iter().map(|b| b.index).collect::<Vec<_>>(), vec![1, 2]);
        assert!(bad[0].reason.contains("record 1"), "{}", bad[0].reason);
        assert_eq!(r.unwrap().bad, 2);
    }

    #[test]
    fn truncated_and_foreign_files_are_unreadable() {
        for (doc, needle) in [
            ("", "found the end"),
            ("[]", "expected the file to start with {"),
            (r#"{"Records":[{"a":"b"#, "truncated"),
            (r#"{"Records":{}}"#, "Records to be an array"),
            (r#"{"Records":[] } x"#, "expected the end of the file"),
            (r#"{"Records":[{} {}]}"#, "a , or ]"),
        ] {
            let e = names(doc).2.unwrap_err();
            assert!(e.0.contains(needle), "{doc:?}: {e}");
        }
    }

    #[test]
    fn records_larger_than_a_chunk_are_read_across_refills() {
        let big = "x".repeat(3 * CHUNK);
        let rec = format!(
            r#"{{"eventSource":"s","eventName":"n","awsRegion":"r","requestParameters":{{"blob":"{big}"}}}}"#
        );
        let doc = format!(r#"{{"Records":[{rec},{A},{rec}]}}"#);
        // A reader that returns a few bytes at a time exercises every refill path.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(out.len()).min(7001);
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut n = 0;
        let stats = read_json(Trickle(doc.as_bytes()), |r| {
            r.unwrap();
            n += 1;
        })
        .unwrap();
        assert_eq!((n, stats.records, stats.bytes), (3, 3, doc.len() as u64));
    }

    #[test]
    fn not_gzip_is_unreadable() {
        let e = read_gz(&b"plain text"[..], |_| {}).unwrap_err();
        assert!(e.0.contains("cannot inflate"), "{e}");
    }

    mod prop {
        use super::super::*;
        use super::{A, B};
        use proptest::prelude::*;
        use serde_json::json;

        proptest! {
            /// Whatever the strings hold (quotes, braces, escapes, unicode), the records
            /// come back as serde_json wrote them, in order.
            #[test]
            fn records_round_trip(names in proptest::collection::vec("\\PC{0,12}[\"{}\\[\\]\\\\]?\\PC{0,4}", 0..20),
                                  blob in "\\PC{0,64}", pretty in any::<bool>()) {
                let recs: Vec<_> = names.iter().map(|n| json!({"eventSource": "s", "eventName": n, "awsRegion": "r",
                    "requestParameters": {"x": [blob.clone(), {"y": n}]}})).collect();
                let doc = json!({"Records": recs});
                let text = if pretty { serde_json::to_string_pretty(&doc).unwrap() } else { doc.to_string() };
                let mut got = vec![];
                let stats = read_json(text.as_bytes(), |r| got.push(r.unwrap().event_name.to_string())).unwrap();
                prop_assert_eq!(&got, &names);
                prop_assert_eq!(stats.records, names.len());
            }

            /// Arbitrary bytes and cut or corrupted files end in records, bad records or an
            /// error — never a panic or a hang.
            #[test]
            fn any_input_is_handled(bytes in proptest::collection::vec(any::<u8>(), 0..400), cut in 0usize..400, flip in any::<(usize, u8)>()) {
                let _ = read_json(&bytes[..], |_| {});
                let _ = read_gz(&bytes[..], |_| {});
                let mut doc = format!(r#"{{"Records":[{A},{B}]}}"#).into_bytes();
                doc.truncate(cut.min(doc.len()));
                let _ = read_json(&doc[..], |_| {});
                let mut doc = format!(r#"{{"Records":[{A},{B}]}}"#).into_bytes();
                let i = flip.0 % doc.len();
                doc[i] = flip.1;
                let _ = read_json(&doc[..], |_| {});
            }
        }
    }
}
