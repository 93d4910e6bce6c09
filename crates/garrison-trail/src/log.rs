//! A CloudTrail log file (`{"Records":[{…},{…}]}`, gzipped) read as a stream: the file is
//! inflated in chunks, each record is cut out of the top-level array by a small scanner and
//! parsed on its own, borrowing its strings from the buffer. Memory stays at the largest
//! record, whatever the file's size; a record that does not parse is reported and the rest
//! are still read.

use std::borrow::Cow;
use std::io::Read;

use serde::Deserialize;

/// The fields garrison looks at. A record is walked field by field at its top level;
/// only these are decoded, and the nested ones (who called, with what) only when asked,
/// since nearly every record is a read that is dropped on its name.
#[derive(Debug)]
pub struct Record<'a> {
    pub event_source: Cow<'a, str>,
    pub event_name: Cow<'a, str>,
    pub aws_region: Cow<'a, str>,
    pub event_id: Option<Cow<'a, str>>,
    pub event_time: Option<Cow<'a, str>>,
    pub error_code: Option<Cow<'a, str>>,
    pub recipient_account_id: Option<Cow<'a, str>>,
    /// The raw JSON of `userIdentity` and `requestParameters`.
    pub user_identity: Option<&'a [u8]>,
    pub request_parameters: Option<&'a [u8]>,
}

#[derive(Debug, Deserialize)]
struct Identity<'a> {
    #[serde(borrow, default)]
    arn: Option<Cow<'a, str>>,
}

impl<'a> Record<'a> {
    /// `userIdentity.arn`: the principal that made the call.
    pub fn principal(&self) -> Option<Cow<'a, str>> {
        let raw = self.user_identity?;
        serde_json::from_slice::<Identity<'a>>(raw).ok()?.arn
    }
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
/// `inflate_only`'s buffer: a fixed size, whatever the reader's `CHUNK`.
pub const INFLATE_ONLY_CHUNK: usize = 256 << 10;

/// Reads a gzipped log file from `src`, calling `each` for every record in order.
pub fn read_gz<R: Read>(src: R, each: impl FnMut(Result<Record<'_>, BadRecord>)) -> Result<Stats, Unreadable> {
    read_json(flate2::read::MultiGzDecoder::new(src), each)
}

/// As `read_gz`, for an already inflated stream.
pub fn read_json<R: Read>(src: R, each: impl FnMut(Result<Record<'_>, BadRecord>)) -> Result<Stats, Unreadable> {
    read_json_where(src, |_, _| true, each)
}

/// As `read_gz`, reading in full only the records whose `eventSource` and `eventName`
/// `keep` accepts. The others are cut out and counted, but their other fields are not
/// decoded (nor checked): nearly every record is a call garrison does not act on, and
/// decoding its region, id, time and account was a fifth of the reading.
pub fn read_gz_where<R: Read>(
    src: R,
    keep: impl Fn(&str, &str) -> bool,
    each: impl FnMut(Result<Record<'_>, BadRecord>),
) -> Result<Stats, Unreadable> {
    read_json_where(flate2::read::MultiGzDecoder::new(src), keep, each)
}

/// As `read_gz_where`, for an already inflated stream.
pub fn read_json_where<R: Read>(
    src: R,
    keep: impl Fn(&str, &str) -> bool,
    mut each: impl FnMut(Result<Record<'_>, BadRecord>),
) -> Result<Stats, Unreadable> {
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
                    let (len, fields) = s.record()?;
                    let index = stats.records;
                    stats.records += 1;
                    let b = &s.buf[s.pos..s.pos + len];
                    match fields.and_then(|f| f.decode(b, &keep)) {
                        Ok(Some(r)) => each(Ok(r)),
                        Ok(None) => {}
                        Err(e) => {
                            stats.bad += 1;
                            each(Err(BadRecord { index, reason: format!("record {index}: {e}") }));
                        }
                    }
                    s.pos += len;
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

/// Inflates `gz` and throws the bytes away: the floor the reader is measured against.
pub fn inflate_only(gz: &[u8]) -> Result<u64, Unreadable> {
    let mut d = flate2::read::MultiGzDecoder::new(gz);
    let mut buf = vec![0u8; INFLATE_ONLY_CHUNK];
    let mut total = 0u64;
    loop {
        match d.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) => return Err(Unreadable(format!("cannot inflate: {e}"))),
        }
    }
}

fn unexpected(want: &str, found: Option<u8>) -> Unreadable {
    match found {
        Some(b) if b.is_ascii_graphic() => {
            Unreadable(format!("not a CloudTrail log: expected {want}, found '{}'", b as char))
        }
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

    /// The record starting at `pos`: its length and where its fields are, reading more as needed.
    fn record(&mut self) -> Result<(usize, Result<Fields, String>), Unreadable> {
        loop {
            if let Some(r) = walk(&self.buf[self.pos..self.end], self.eof) {
                return Ok(r);
            }
            if !self.fill()? {
                return walk(&self.buf[self.pos..self.end], true)
                    .ok_or_else(|| Unreadable("truncated: the file ends inside a record".into()));
            }
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

type Span = Option<std::ops::Range<usize>>;

/// Where the wanted fields of one record are, relative to its start.
#[derive(Default, Debug, PartialEq, Eq)]
struct Fields {
    source: Span,
    name: Span,
    region: Span,
    id: Span,
    time: Span,
    error: Span,
    recipient: Span,
    identity: Span,
    request: Span,
}

impl Fields {
    /// The record, if `keep` accepts its source and name (which are decoded first).
    fn decode(self, b: &[u8], keep: impl Fn(&str, &str) -> bool) -> Result<Option<Record<'_>>, String> {
        let need = |span: Span, field: &str| -> Result<Cow<'_, str>, String> {
            text(b, span.clone(), field)?.ok_or_else(|| format!("field {field}: expected a string, found nothing"))
        };
        let event_source = need(self.source, "eventSource")?;
        let event_name = need(self.name, "eventName")?;
        if !keep(&event_source, &event_name) {
            return Ok(None);
        }
        Ok(Some(Record {
            event_source,
            event_name,
            aws_region: need(self.region, "awsRegion")?,
            event_id: text(b, self.id, "eventID")?,
            event_time: text(b, self.time, "eventTime")?,
            error_code: text(b, self.error, "errorCode")?,
            recipient_account_id: text(b, self.recipient, "recipientAccountId")?,
            user_identity: self.identity.map(|r| &b[r]),
            request_parameters: self.request.map(|r| &b[r]),
        }))
    }
}

/// A string field's value (null and absent are None); escapes are decoded only where present.
fn text<'a>(b: &'a [u8], span: Span, field: &str) -> Result<Option<Cow<'a, str>>, String> {
    let Some(r) = span else { return Ok(None) };
    let v = &b[r];
    match v.first() {
        Some(b'"') if v.len() >= 2 => {
            let inner = &v[1..v.len() - 1];
            // Names, regions and ids are short ASCII without escapes: one pass over them
            // says so, where UTF-8 validation and a search for backslashes were two. (A
            // quote inside is no escape, so a string with one takes the longer way.)
            if plain_ascii(inner) {
                // SAFETY: every byte is ASCII, and ASCII is UTF-8.
                return Ok(Some(Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(inner) })));
            }
            if memchr::memchr(b'\\', inner).is_none() {
                std::str::from_utf8(inner)
                    .map(|s| Some(Cow::Borrowed(s)))
                    .map_err(|_| format!("field {field}: not UTF-8"))
            } else {
                serde_json::from_slice::<String>(v)
                    .map(|s| Some(Cow::Owned(s)))
                    .map_err(|e| format!("field {field}: {e}"))
            }
        }
        _ if v == b"null" => Ok(None),
        _ => Err(format!("field {field}: expected a string, found {}", String::from_utf8_lossy(&v[..v.len().min(20)]))),
    }
}

/// A string without escapes, whole: what nearly every wanted value is. Where `scan`
/// searches for the closing quote and then checks where it is, this reads the string once.
#[inline]
fn plain_string(v: &[u8]) -> bool {
    v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' && plain_ascii(&v[1..v.len() - 1])
}

/// ASCII without quotes or backslashes (names, regions, ids), checked eight bytes at a time.
#[inline]
fn plain_ascii(s: &[u8]) -> bool {
    const LO: u64 = u64::from_le_bytes([0x01; 8]);
    const HI: u64 = u64::from_le_bytes([0x80; 8]);
    // Bit 7 of each byte of the result: that byte of `x` equals `c` (exact when no byte has
    // bit 7 set, which the ASCII test rules out first).
    let has = |x: u64, c: u8| {
        let y = x ^ (LO * u64::from(c));
        y.wrapping_sub(LO) & !y & HI
    };
    let mut words = s.chunks_exact(8);
    for w in &mut words {
        let x = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        if (x & HI) | has(x, b'"') | has(x, b'\\') != 0 {
            return false;
        }
    }
    words.remainder().iter().all(|&c| c < 0x80 && c != b'"' && c != b'\\')
}

fn skip_ws(b: &[u8], mut i: usize) -> Option<usize> {
    while i < b.len() {
        if !matches!(b[i], b' ' | b'\n' | b'\r' | b'\t') {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Walks the record at the start of `b` over its top-level fields, noting where the
/// wanted ones are. None if `b` ends before the record does. A record that is not an
/// object of named fields is still cut out whole, and reported.
///
/// The record's structure comes from `blocks` (64 bytes at a time, strings skipped by bit
/// arithmetic), so no string is looked at but the keys and the wanted values. Anything but a
/// plainly well-formed object (a missing or doubled colon, a trailing comma, brackets that
/// do not close as they opened, a wanted value that is not one JSON value) is read again by
/// `walk_bytes`, which says what is wrong. The values of fields garrison does not read are
/// checked for balance only.
fn walk(b: &[u8], at_eof: bool) -> Option<(usize, Result<Fields, String>)> {
    match walk_blocks(b) {
        Walked::Done(n, f) => Some((n, Ok(f))),
        Walked::More if !at_eof => None,
        Walked::More | Walked::Irregular => walk_bytes(b, at_eof),
    }
}

// Returned once per record and matched at once, never stored: its size costs nothing.
#[allow(clippy::large_enum_variant)]
enum Walked {
    Done(usize, Fields),
    /// `b` ends inside the record.
    More,
    Irregular,
}

fn trim(b: &[u8], mut r: std::ops::Range<usize>) -> std::ops::Range<usize> {
    while r.start < r.end && matches!(b[r.start], b' ' | b'\n' | b'\r' | b'\t') {
        r.start += 1;
    }
    while r.end > r.start && matches!(b[r.end - 1], b' ' | b'\n' | b'\r' | b'\t') {
        r.end -= 1;
    }
    r
}

fn walk_blocks(b: &[u8]) -> Walked {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512bw") && has!("pclmulqdq") && has!("popcnt") {
            // SAFETY: the CPU has the features the walker is compiled for.
            return unsafe { walk_avx512(b) };
        }
        if has!("avx2") && has!("pclmulqdq") && has!("popcnt") {
            // SAFETY: as above.
            return unsafe { walk_avx2(b) };
        }
        walk_with::<crate::blocks::Sse2>(b)
    }
    #[cfg(not(target_arch = "x86_64"))]
    walk_with::<crate::blocks::Bytes>(b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512bw,pclmulqdq,popcnt")]
fn walk_avx512(b: &[u8]) -> Walked {
    walk_with::<crate::blocks::Avx512>(b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,pclmulqdq,popcnt")]
fn walk_avx2(b: &[u8]) -> Walked {
    walk_with::<crate::blocks::Avx2>(b)
}

#[inline(always)]
fn walk_with<W: crate::blocks::Width>(b: &[u8]) -> Walked {
    if b.first() != Some(&b'{') {
        return Walked::Irregular;
    }
    let mut f = Fields::default();
    let mut depth = 0usize;
    let mut fields = 0usize;
    // The current field: where it starts, its colon, and how often a nested value closed.
    let (mut start, mut colon, mut closed) = (1usize, None::<usize>, 0u32);
    let mut blocks = crate::blocks::Blocks::<W>::new(b);
    while let Some((at, block)) = blocks.next_block() {
        let closes = block.close.count_ones() as usize;
        // Two levels down or deeper, a block that cannot close back to the record's own
        // fields is passed over whole: most of a record's bytes are in its nested values.
        if depth >= closes + 2 {
            depth = depth + block.open.count_ones() as usize - closes;
            continue;
        }
        // Separators count at the record's own level only: inside a nested value only
        // brackets are followed.
        let sep = block.colon | block.comma;
        let mut bits = block.open | block.close | if depth <= 1 { sep } else { 0 };
        while bits != 0 {
            let bit = bits & bits.wrapping_neg();
            bits ^= bit;
            let i = at + bit.trailing_zeros() as usize;
            if block.open & bit != 0 {
                depth += 1;
                if depth == 2 {
                    bits &= !sep;
                }
            } else if block.close & bit != 0 {
                depth -= 1;
                match depth {
                    0 if b[i] == b'}' => {
                        let empty = fields == 0 && colon.is_none() && trim(b, start..i).is_empty();
                        if !empty && !end_field(b, &mut f, start, colon, closed, i) {
                            return Walked::Irregular;
                        }
                        return Walked::Done(i + 1, f);
                    }
                    0 => return Walked::Irregular,
                    1 => {
                        closed += 1;
                        // Back at the record's level: the separators after this byte count.
                        bits |= sep & !(bit << 1).wrapping_sub(1);
                    }
                    _ => {}
                }
            } else if block.colon & bit != 0 {
                if colon.replace(i).is_some() {
                    return Walked::Irregular;
                }
            } else {
                if !end_field(b, &mut f, start, colon, closed, i) {
                    return Walked::Irregular;
                }
                fields += 1;
                (start, colon, closed) = (i + 1, None, 0);
            }
            // Inside a nested value that this block does not close, the rest of the block
            // is passed over too.
            if depth >= 2 {
                let rest_closes = (bits & block.close).count_ones() as usize;
                if depth >= rest_closes + 2 {
                    depth = depth + (bits & block.open).count_ones() as usize - rest_closes;
                    break;
                }
            }
        }
    }
    Walked::More
}

/// The field from `start` to `end` (a comma or the record's closing brace), its colon and
/// how often a nested value closed in it: whether it is one plainly well-formed field,
/// noting where it is when garrison wants it.
#[inline(always)]
fn end_field(b: &[u8], f: &mut Fields, start: usize, colon: Option<usize>, closed: u32, end: usize) -> bool {
    let Some(colon) = colon else { return false };
    let key = trim(b, start..colon);
    let value = trim(b, colon + 1..end);
    let (k, v) = (&b[key.clone()], &b[value.clone()]);
    if k.len() < 2 || k[0] != b'"' || k[k.len() - 1] != b'"' || v.is_empty() || closed > 1 {
        return false;
    }
    let slot = match &k[1..k.len() - 1] {
        b"eventSource" => &mut f.source,
        b"eventName" => &mut f.name,
        b"awsRegion" => &mut f.region,
        b"eventID" => &mut f.id,
        b"eventTime" => &mut f.time,
        b"errorCode" => &mut f.error,
        b"recipientAccountId" => &mut f.recipient,
        b"userIdentity" => &mut f.identity,
        b"requestParameters" => &mut f.request,
        _ => return closed == 0 || matches!(v[v.len() - 1], b'}' | b']'),
    };
    // A wanted value is exactly one JSON value.
    let one = match v[0] {
        b'{' | b'[' => closed == 1 && matches!(v[v.len() - 1], b'}' | b']'),
        _ => closed == 0 && (plain_string(v) || scan(v, true) == Some(v.len())),
    };
    *slot = Some(value);
    one
}

/// `walk`, byte by byte: the reference the block walk is tested against, and the reader of
/// records that are not plainly well formed (it names what is wrong).
fn walk_bytes(b: &[u8], at_eof: bool) -> Option<(usize, Result<Fields, String>)> {
    let bad = |why: &str| scan(b, at_eof).map(|n| (n, Err(why.to_string())));
    if b.first()? != &b'{' {
        return bad("expected an object");
    }
    let mut f = Fields::default();
    let mut i = skip_ws(b, 1)?;
    if b[i] == b'}' {
        return Some((i + 1, Ok(f)));
    }
    loop {
        if b[i] != b'"' {
            return bad("expected a field name");
        }
        let key_end = string_end(b, i + 1)?;
        let key = &b[i + 1..key_end - 1];
        i = skip_ws(b, key_end)?;
        if b[i] != b':' {
            return bad("expected a : after a field name");
        }
        i = skip_ws(b, i + 1)?;
        let n = scan(&b[i..], at_eof)?;
        let span = Some(i..i + n);
        match key {
            b"eventSource" => f.source = span,
            b"eventName" => f.name = span,
            b"awsRegion" => f.region = span,
            b"eventID" => f.id = span,
            b"eventTime" => f.time = span,
            b"errorCode" => f.error = span,
            b"recipientAccountId" => f.recipient = span,
            b"userIdentity" => f.identity = span,
            b"requestParameters" => f.request = span,
            _ => {}
        }
        i = skip_ws(b, i + n)?;
        match b[i] {
            b',' => i = skip_ws(b, i + 1)?,
            b'}' => return Some((i + 1, Ok(f))),
            _ => return bad("expected a , or } after a field"),
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
        let rec =
            format!(r#"{{"eventSource":"s","eventName":"n","awsRegion":"r","requestParameters":{{"blob":"{big}"}}}}"#);
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

    /// The block walk at one width (`blocks::tests::widths`).
    fn walk_by(width: &str, b: &[u8]) -> Walked {
        match width {
            #[cfg(target_arch = "x86_64")]
            "sse2" => walk_with::<crate::blocks::Sse2>(b),
            // SAFETY: `widths` names these only when the CPU has their features.
            #[cfg(target_arch = "x86_64")]
            "avx2" => unsafe { walk_avx2(b) },
            #[cfg(target_arch = "x86_64")]
            "avx512" => unsafe { walk_avx512(b) },
            _ => walk_with::<crate::blocks::Bytes>(b),
        }
    }

    #[test]
    fn plain_ascii_is_the_byte_by_byte_answer() {
        let bytes = [b'a', b'"', b'\\', 0x7f, 0x80, 0xff, b'!', b'#', b'[', 0x22 ^ 0x80, 0x5c ^ 0x80];
        // Every string of up to 17 bytes drawn from those, by position of one odd byte.
        for len in 0..=17 {
            for at in 0..len {
                for &odd in &bytes {
                    let mut s = vec![b'x'; len];
                    s[at] = odd;
                    let want = s.iter().all(|&c| c < 0x80 && c != b'"' && c != b'\\');
                    assert_eq!(plain_ascii(&s), want, "{s:?}");
                }
            }
        }
    }

    #[test]
    fn deep_values_spanning_blocks_are_passed_over_whole() {
        // requestParameters several blocks long, nested four deep, with brackets, colons and
        // escaped quotes in its strings; then the wanted fields after it.
        let inner = r#"{"k":[{"s":"}]:,\"{["},[1,2,{"t":"x"}]],"u":{"v":{"w":"]]]}}}"}}}"#.repeat(12);
        let rec = format!(
            r#"{{"requestParameters":{{"a":[{inner}],"b":{{"c":[{inner}]}}}},"eventSource":"s","eventName":"n","awsRegion":"r","x":[[[]]],"eventID":"e"}}"#
        );
        let want = walk_bytes(rec.as_bytes(), true);
        let (n, f) = want.as_ref().map(|(n, f)| (*n, f.as_ref().unwrap())).unwrap();
        assert_eq!(n, rec.len());
        assert!(f.id.is_some() && f.request.is_some());
        for w in crate::blocks::tests::widths() {
            let Walked::Done(n, f) = walk_by(w, rec.as_bytes()) else { panic!("{w}: not read by blocks") };
            assert_eq!(format!("{:?}", Some((n, Ok::<_, String>(f)))), format!("{want:?}"), "{w}");
        }
    }

    mod prop {
        use super::super::*;
        use super::{A, B, walk_by};
        use crate::blocks::tests::widths;
        use proptest::prelude::*;
        use serde_json::json;

        fn json_value() -> impl Strategy<Value = serde_json::Value> {
            let leaf = prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::from),
                any::<i32>().prop_map(serde_json::Value::from),
                "\\PC{0,10}[\"\\\\{}\\[\\]:,]?\\PC{0,3}".prop_map(serde_json::Value::from),
                // Long enough that nested values span blocks, and the walk passes some over.
                "[a-z{}\\[\\]:,\"]{40,90}".prop_map(serde_json::Value::from),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                    proptest::collection::vec(("[a-z\"]{0,5}", inner), 0..4)
                        .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
                ]
            })
        }

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

            /// On any well-formed record (nested values of every kind, wanted fields among
            /// others, compact or pretty) the block walk finds what the byte walk finds, and
            /// on any record at all it never accepts what the byte walk finds truncated.
            #[test]
            fn the_block_walk_agrees_with_the_byte_walk(
                fields in proptest::collection::vec((
                    prop_oneof![
                        Just("eventSource".to_string()), Just("eventName".to_string()), Just("awsRegion".to_string()),
                        Just("eventID".to_string()), Just("errorCode".to_string()), Just("userIdentity".to_string()),
                        Just("requestParameters".to_string()), "\\PC{0,8}[\"\\\\{}]?"],
                    json_value()), 0..12),
                pretty in any::<bool>(), cut in any::<prop::sample::Index>(), tail in "[ ,}\\]x\"]{0,3}",
            ) {
                let record = serde_json::Value::Object(fields.into_iter().collect());
                let text = if pretty { serde_json::to_string_pretty(&record).unwrap() } else { record.to_string() };
                let b = format!("{text}{tail}");
                let (blocks, bytes) = (walk(b.as_bytes(), false), walk_bytes(b.as_bytes(), false));
                prop_assert_eq!(format!("{blocks:?}"), format!("{bytes:?}"));
                let n = cut.index(b.len().max(1));
                let cut_b = &b.as_bytes()[..n.min(b.len())];
                for w in widths() {
                    let Walked::Done(n, f) = walk_by(w, b.as_bytes()) else {
                        return Err(TestCaseError::fail(format!("{w}: a well-formed record is read by blocks")));
                    };
                    prop_assert_eq!(format!("{:?}", Some((n, Ok::<_, String>(f)))), format!("{bytes:?}"), "{}", w);
                    // Cut anywhere: never a record where the bytes say the input ends first.
                    if walk_bytes(cut_b, false).is_none() {
                        prop_assert!(!matches!(walk_by(w, cut_b), Walked::Done(..)), "{}", w);
                    }
                }
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
