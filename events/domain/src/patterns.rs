//! Regular expressions, for the API's OpenAPI document, that match exactly the texts the
//! domain accepts: whole numbers in a range, memory sizes and durations within bounds, names,
//! strings without a NUL byte or not blank. A pattern here and the check it describes are
//! tested against each other, so the document says what the server does. They are written
//! for JSON Schema (ECMA regular expressions), which Python's `re` (what schemathesis and
//! most clients use) reads the same way; none uses a lookaround.

/// The characters Rust's `char::is_whitespace` (and so `str::trim`) calls whitespace.
pub const WHITESPACE: &str =
    r"\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// Any text without a NUL byte.
pub const TEXT: &str = r"^[^\u0000]*$";

/// A text with something besides whitespace in it, and no NUL byte.
pub fn not_blank() -> String {
    let ws = WHITESPACE;
    format!(r"^[^\u0000]*[^\u0000{ws}][^\u0000]*$")
}

/// A cluster's (or Kubernetes namespace's) name: 1 to 63 lowercase letters, digits and `-`,
/// starting with a letter, not ending with `-`.
pub const NAME: &str = r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$";

/// A pattern (no anchors) for the decimal numbers `lo..=hi` written without leading zeros.
pub fn range(lo: u64, hi: u64) -> String {
    assert!(lo <= hi, "an empty range {lo}..={hi}");
    let mut parts = Vec::new();
    let digits = |n: u64| n.to_string().len();
    for d in digits(lo)..=digits(hi) {
        let first = if d == 1 { 0 } else { 10u64.pow(d as u32 - 1) };
        let last = 10u64.checked_pow(d as u32).map_or(u64::MAX, |p| p - 1);
        let (a, b) = (lo.max(first), hi.min(last));
        if a <= b {
            same_length(
                a.to_string().as_bytes(),
                b.to_string().as_bytes(),
                &mut parts,
            );
        }
    }
    alternatives(parts)
}

/// `(?:a|b|...)`, or the one alternative alone.
pub fn alternatives(mut parts: Vec<String>) -> String {
    if parts.len() == 1 {
        return parts.remove(0);
    }
    format!("(?:{})", parts.join("|"))
}

/// Patterns for the numbers from `a` to `b`, digit strings of one length, `a <= b`.
fn same_length(a: &[u8], b: &[u8], out: &mut Vec<String>) {
    let text = |d: &[u8]| String::from_utf8(d.to_vec()).expect("digits");
    if a == b {
        out.push(text(a));
        return;
    }
    let i = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let prefix = text(&a[..i]);
    let rest = a.len() - i - 1;
    let any = match rest {
        0 => String::new(),
        1 => "[0-9]".to_string(),
        n => format!("[0-9]{{{n}}}"),
    };
    let class = |lo: u8, hi: u8| match lo == hi {
        true => (lo as char).to_string(),
        false => format!("[{}-{}]", lo as char, hi as char),
    };
    let from_zeros = a[i + 1..].iter().all(|&c| c == b'0');
    let to_nines = b[i + 1..].iter().all(|&c| c == b'9');
    // Whole blocks run from the first digit whose tail starts at 0..0 to the last whose
    // tail ends at 9..9; the ends around them are ranges of their own.
    let first_full = if from_zeros { a[i] } else { a[i] + 1 };
    let last_full = if to_nines { b[i] } else { b[i] - 1 };
    if !from_zeros {
        let upper: Vec<u8> = a[..=i].iter().copied().chain(vec![b'9'; rest]).collect();
        same_length(a, &upper, out);
    }
    if first_full <= last_full {
        out.push(format!("{prefix}{}{any}", class(first_full, last_full)));
    }
    if !to_nines {
        let lower: Vec<u8> = b[..=i].iter().copied().chain(vec![b'0'; rest]).collect();
        same_length(&lower, b, out);
    }
}

/// `u` or `U`, for units the parsers read in any case.
pub fn either_case(unit: &str) -> String {
    unit.chars()
        .map(|c| match c.is_ascii_alphabetic() {
            true => format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase()),
            false => c.to_string(),
        })
        .collect()
}

/// A number in `lo..=hi`, with leading zeros allowed (the parsers read them).
pub fn number(lo: u64, hi: u64) -> String {
    format!("0*{}", range(lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(p: &str) -> regex::Regex {
        regex::Regex::new(&format!("^(?:{p})$")).unwrap()
    }

    #[test]
    fn ranges_match_exactly_their_numbers() {
        let mut rng = 0x9e3779b97f4a7c15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..2000 {
            let lo = next() % 10u64.pow((next() % 13) as u32 + 1);
            let hi = lo + next() % 10u64.pow((next() % 13) as u32 + 1);
            let re = full(&range(lo, hi));
            let mid = lo + (hi - lo) / 2;
            let probes = [lo, hi, mid, lo.saturating_sub(1), hi + 1, next() % (hi + 2)];
            for n in probes {
                assert_eq!(
                    re.is_match(&n.to_string()),
                    (lo..=hi).contains(&n),
                    "{lo}..={hi}: {n}"
                );
            }
            assert!(!re.is_match(&format!("0{lo}")), "no leading zero");
        }
    }

    #[test]
    fn text_classes_follow_rusts_whitespace_and_refuse_nul() {
        let blank = regex::Regex::new(&not_blank()).unwrap();
        let text = regex::Regex::new(TEXT).unwrap();
        for c in (0u32..0x3100).filter_map(char::from_u32) {
            let s = c.to_string();
            assert_eq!(
                blank.is_match(&s),
                !s.trim().is_empty() && c != '\0',
                "{c:?}"
            );
            assert_eq!(text.is_match(&s), c != '\0', "{c:?}");
        }
        assert!(blank.is_match(" a ") && !blank.is_match(" \u{3000}\t"));
    }

    #[test]
    fn names_are_what_check_name_takes() {
        let re = regex::Regex::new(NAME).unwrap();
        for name in [
            "a",
            "k8s-east",
            "a1",
            &"a".repeat(63),
            "A",
            "1a",
            "a-",
            "",
            "a_b",
            &"a".repeat(64),
        ] {
            assert_eq!(
                re.is_match(name),
                crate::cluster::check_name(name).is_ok(),
                "{name:?}"
            );
        }
    }
}
