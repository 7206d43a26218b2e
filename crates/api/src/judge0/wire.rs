//! Judge0's wire formats: Ruby's MIME-style base64 (`Base64.encode64` and
//! its lenient `decode64`), timestamps as `2024-04-03T05:40:51.306Z` (the
//! SDK parses `%Y-%m-%dT%H:%M:%S.%fZ`) and times as decimal strings of
//! seconds (`"0.002"`).
//!
//! Small enough to write here rather than add a dependency.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Ruby's `Base64.encode64`: standard alphabet with padding, a `\n` after
/// every 60 output characters and at the end (none for empty input).
pub(crate) fn encode64(bytes: &[u8]) -> String {
    let mut plain = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                plain.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                plain.push('=');
            }
        }
    }
    let mut out = String::with_capacity(plain.len() + plain.len() / 60 + 1);
    for line in plain.as_bytes().chunks(60) {
        // The alphabet is ASCII.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// Ruby's `Base64.decode64`: characters outside the alphabet (newlines,
/// spaces, anything else) are skipped, decoding stops at the first `=`, and
/// left-over bits of an incomplete group are dropped. It never fails.
pub(crate) fn decode64(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for byte in text.bytes() {
        if byte == b'=' {
            break;
        }
        let Some(value) = ALPHABET.iter().position(|&c| c == byte) else {
            continue;
        };
        acc = (acc << 6) | value as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// A time in milliseconds since the Unix epoch as Judge0 renders it:
/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub(crate) fn timestamp(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}

/// Howard Hinnant's `civil_from_days`: the proleptic Gregorian date of a
/// day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Milliseconds as Judge0's decimal column of seconds: `"0.002"`.
pub(crate) fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// A limit in seconds as Judge0 renders a decimal column: `5.0` as `"5.0"`,
/// `0.5` as `"0.5"`.
pub(crate) fn decimal(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.1}")
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_rubys_encode64() {
        assert_eq!(encode64(b""), "");
        assert_eq!(encode64(b"hello, Judge0\n"), "aGVsbG8sIEp1ZGdlMAo=\n");
        assert_eq!(encode64(b"a"), "YQ==\n");
        assert_eq!(encode64(b"ab"), "YWI=\n");
        assert_eq!(encode64(&[0xff, 0xfe, 0x00]), "//4A\n");
        let long = encode64(&[b'x'; 100]);
        let lines: Vec<&str> = long.split_terminator('\n').collect();
        assert_eq!(
            lines.iter().map(|l| l.len()).collect::<Vec<_>>(),
            [60, 60, 16]
        );
        assert!(long.ends_with('\n'));
    }

    #[test]
    fn decoding_is_lenient_like_decode64() {
        assert_eq!(decode64("aGVsbG8sIEp1ZGdlMAo=\n"), b"hello, Judge0\n");
        assert_eq!(decode64("aGVs\nbG8s IEp1\r\nZGdlMAo="), b"hello, Judge0\n");
        assert_eq!(decode64("YQ"), b"a");
        assert_eq!(decode64("!!"), b"");
        assert_eq!(decode64("//4A"), [0xff, 0xfe, 0x00]);
        for n in 0..70u8 {
            let bytes: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(decode64(&encode64(&bytes)), bytes, "{n} bytes");
        }
    }

    #[test]
    fn timestamps_have_milliseconds_and_z() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(1_712_123_451_306), "2024-04-03T05:50:51.306Z");
        assert_eq!(timestamp(951_782_400_007), "2000-02-29T00:00:00.007Z");
    }

    #[test]
    fn times_are_decimal_strings_of_seconds() {
        assert_eq!(seconds(2), "0.002");
        assert_eq!(seconds(1_282), "1.282");
        assert_eq!(decimal(5.0), "5.0");
        assert_eq!(decimal(0.5), "0.5");
        assert_eq!(decimal(2.25), "2.25");
    }
}
