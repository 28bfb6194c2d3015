//! Formatting for people (thousands separators, short rates, times) and
//! for URLs.

/// `1234567` -> `"1,234,567"`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A rate in events per second: one decimal below 100, whole numbers with
/// separators above.
pub fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        "0".to_string()
    } else if per_sec < 0.05 {
        // Some, but fewer than one event in twenty seconds: not "0.0".
        "<0.1".to_string()
    } else if per_sec < 100.0 {
        format!("{per_sec:.1}")
    } else {
        thousands(per_sec.round() as u64)
    }
}

/// A measured value for a table: up to four significant digits.
pub fn value(v: f64) -> String {
    let a = v.abs();
    if a >= 1_000.0 {
        format!("{v:.0}")
    } else if a >= 1.0 || a == 0.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// Bytes in binary units: `1536` -> `"1.5 KiB"`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Percent-encodes `s` for a URL query value: everything but the
/// unreserved characters (`A-Z a-z 0-9 - . _ ~`).
pub fn url_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `n` and `word`, with an `s` unless `n` is 1 (`1 drift`, `3 drifts`).
pub fn count_of(n: u64, word: &str) -> String {
    format!("{} {word}{}", thousands(n), if n == 1 { "" } else { "s" })
}

/// The CSS class suffix for a log level (`lvl-error`, ...); unknown and
/// absent levels share `lvl-none`.
pub fn level_class(level: &str) -> &'static str {
    match level {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" => "warn",
        "error" => "error",
        "fatal" => "fatal",
        _ => "none",
    }
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Unix milliseconds as a UTC time of day, `14:03:07.125`.
pub fn clock(ms: i64) -> String {
    let t = ms.rem_euclid(86_400_000);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        t / 3_600_000,
        t / 60_000 % 60,
        t / 1_000 % 60,
        t % 1_000
    )
}

/// Unix milliseconds as an RFC 3339 UTC time, `2026-11-26T14:03:07.125Z`.
pub fn datetime(ms: i64) -> String {
    let (y, m, d) = civil(ms.div_euclid(86_400_000));
    format!("{y:04}-{m:02}-{d:02}T{}Z", clock(ms))
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_bytes() {
        assert_eq!(super::bytes(0), "0 B");
        assert_eq!(super::bytes(1536), "1.5 KiB");
        assert_eq!(super::bytes(512 << 20), "512.0 MiB");
    }

    use super::*;

    #[test]
    fn separates_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn formats_rates() {
        assert_eq!(rate(0.0), "0");
        assert_eq!(rate(f64::NAN), "0");
        assert_eq!(rate(12.34), "12.3");
        assert_eq!(rate(12345.6), "12,346");
        assert_eq!(rate(1.0 / 60.0), "<0.1", "one event a minute is not 0.0");
        assert_eq!(rate(0.05), "0.1");
    }

    #[test]
    fn formats_times_and_url_values() {
        assert_eq!(datetime(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(datetime(1_764_144_187_125), "2025-11-26T08:03:07.125Z");
        assert_eq!(datetime(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(clock(-1), "23:59:59.999");
        assert_eq!(url_component("logs.> a&b=ü"), "logs.%3E%20a%26b%3D%C3%BC");
    }
}
