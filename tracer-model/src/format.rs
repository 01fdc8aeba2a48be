//! Numbers and names as people read them: used by the verdicts and by every
//! text sink.

/// Human-readable byte count: 1,234 B, 12.4 KiB, 3.1 MiB.
pub fn bytes(v: f64) -> String {
    if v < 1024.0 {
        format!("{v:.0} B")
    } else if v < 1024.0 * 1024.0 {
        format!("{:.1} KiB", v / 1024.0)
    } else if v < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", v / (1024.0 * 1024.0))
    } else {
        format!("{:.1} GiB", v / (1024.0 * 1024.0 * 1024.0))
    }
}

/// An integer with thousands separators.
pub fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Lossy, printable form of a comm for tables and headers: bytes that are
/// not UTF-8 become U+FFFD, control characters `?`.
pub fn display_comm(comm: &[u8]) -> String {
    String::from_utf8_lossy(comm)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
