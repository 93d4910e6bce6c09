//! What of the binary stays resident once the server is up.
//!
//! The kernel maps a file's code 64 KiB at a time around each first touch (fault-around), so
//! starting the server — reading settings, migrating the store, building the AWS clients and
//! the router — leaves some 18 MiB of garrison's 46 MiB of code mapped, most of it never run
//! again (bench/api). Those pages are clean pages of the file: dropping them from this
//! process's map once it listens costs nothing but a minor fault where one is touched again
//! (they stay in the page cache), and what stays mapped is then what serving uses.
//! Only mappings of the executable that are not writable and hold no page of their own
//! (smaps `Anonymous: 0 kB`) are dropped: the relocated read-only data is private to the
//! process and is never touched.

/// A mapping of the executable that can be dropped: `(start, end)` addresses.
pub type Range = (usize, usize);

/// A mapping's header line in smaps ("start-end perms offset dev inode path"): its range,
/// permissions and path (empty for an anonymous mapping); `None` for a field line.
fn header(line: &str) -> Option<(Range, &str, &str)> {
    let mut words = line.split_whitespace();
    let (a, b) = words.next()?.split_once('-')?;
    let range = (usize::from_str_radix(a, 16).ok()?, usize::from_str_radix(b, 16).ok()?);
    let perms = words.next().unwrap_or("");
    Some((range, perms, words.nth(3).unwrap_or("")))
}

/// The mappings of `exe` in `smaps` (the text of `/proc/self/smaps`) that are read-only or
/// code and hold no private page.
pub fn droppable(smaps: &str, exe: &str) -> Vec<Range> {
    let mut out = vec![];
    let mut current: Option<Range> = None;
    for line in smaps.lines() {
        if let Some((range, perms, path)) = header(line) {
            let read_only = perms.starts_with('r') && perms.as_bytes().get(1) == Some(&b'-');
            current = (!path.is_empty() && path == exe && read_only).then_some(range);
        } else if let Some(r) = current
            && let Some(kib) = line.strip_prefix("Anonymous:")
        {
            current = None;
            if kib.split_whitespace().next() == Some("0") {
                out.push(r);
            }
        }
    }
    out
}

/// Drops the pages of the executable's read-only mappings from this process's map.
/// Returns the bytes of address space advised; never fails the caller.
pub fn drop_startup_pages() -> usize {
    #[cfg(target_os = "linux")]
    {
        let (Ok(exe), Ok(smaps)) = (std::fs::read_link("/proc/self/exe"), std::fs::read_to_string("/proc/self/smaps"))
        else {
            return 0;
        };
        let Some(exe) = exe.to_str() else { return 0 };
        let mut advised = 0;
        for (start, end) in droppable(&smaps, exe) {
            // SAFETY: the range is a whole mapping of the executable that is not writable and
            // holds no private page (checked above; nothing can write it since). MADV_DONTNEED
            // on such a mapping only unmaps file pages, which the next touch maps again from
            // the page cache with the same contents.
            let rc = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
            if rc == 0 {
                advised += end - start;
            }
        }
        advised
    }
    #[cfg(not(target_os = "linux"))]
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
5600000000-5600400000 r--p 00000000 08:01 42 /usr/bin/garrison
Size:               4096 kB
Rss:                2048 kB
Anonymous:             0 kB
5600400000-5603000000 r-xp 00400000 08:01 42 /usr/bin/garrison
Size:              45056 kB
Rss:               18000 kB
Anonymous:             0 kB
5603000000-5603200000 r--p 03000000 08:01 42 /usr/bin/garrison
Size:               2048 kB
Anonymous:          2048 kB
5603200000-5603210000 rw-p 03200000 08:01 42 /usr/bin/garrison
Anonymous:            64 kB
7f0000000000-7f0000100000 r-xp 00000000 08:01 7 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7f0000200000-7f0000300000 rw-p 00000000 00:00 0
Anonymous:          1024 kB
";

    #[test]
    fn only_the_executables_clean_read_only_mappings_are_dropped() {
        assert_eq!(
            droppable(SMAPS, "/usr/bin/garrison"),
            vec![(0x5600000000, 0x5600400000), (0x5600400000, 0x5603000000)],
            "the relocated read-only data, the data, the C library and the heap are kept"
        );
        assert_eq!(droppable(SMAPS, "/usr/bin/other"), vec![]);
        // A path with spaces is not this executable's; a header without a path names nothing.
        assert_eq!(droppable("5600000000-5600400000 r--p 0 08:01 42\nAnonymous: 0 kB\n", ""), vec![]);
    }

    #[test]
    fn a_mapping_without_an_anonymous_line_is_kept() {
        let s = "5600000000-5600400000 r-xp 00000000 08:01 42 /g\nRss: 4 kB\n7f00-7f01 r-xp 0 08:01 43 /h\nAnonymous: 0 kB\n";
        assert_eq!(droppable(s, "/g"), vec![]);
    }

    /// Resident KiB of the mappings of `exe` that `droppable` names.
    fn resident_kib(exe: &str) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let ranges = droppable(&smaps, exe);
        let mut current = false;
        let mut kib = 0;
        for line in smaps.lines() {
            if let Some((range, _, _)) = header(line) {
                current = ranges.contains(&range);
            } else if current && let Some(v) = line.strip_prefix("Rss:") {
                kib += v.split_whitespace().next().unwrap().parse::<u64>().unwrap();
            }
        }
        kib
    }

    #[test]
    fn dropping_this_test_binarys_pages_leaves_it_running_with_fewer_resident() {
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let exe = exe.to_str().unwrap();
        // Touch the whole of the code and read-only data first, as a start would.
        let before = {
            let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
            for (start, end) in droppable(&smaps, exe) {
                // SAFETY: a readable mapping of this executable, read a byte per page.
                (start..end).step_by(4096).for_each(|a| unsafe {
                    std::ptr::read_volatile(a as *const u8);
                });
            }
            resident_kib(exe)
        };
        let advised = drop_startup_pages();
        assert!(
            advised >> 10 >= before as usize,
            "the whole of what was resident is advised: {advised} B, {before} KiB"
        );
        let after = resident_kib(exe);
        // The code runs on: what it touches now is mapped again, and nothing else.
        let v: Vec<u64> = (0..1000).map(|x| x * x).collect();
        assert_eq!(v.iter().sum::<u64>(), 332_833_500);
        assert!(after * 2 < before, "{before} KiB resident before, {after} KiB after");
    }
}
