//! Label selectors as the API server parses them from `?labelSelector=`: comma-separated
//! requirements, each `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (exists) or
//! `!k` (does not exist). A `!=` or `notin` requirement also matches objects without the key.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector(Vec<Requirement>);

/// Splits on commas outside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut parts) = (0i32, 0usize, vec![]);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn values(list: &str) -> Result<Vec<String>, String> {
    let inner = list
        .trim()
        .strip_prefix('(')
        .and_then(|l| l.strip_suffix(')'))
        .ok_or_else(|| format!("expected a parenthesised list, found {list:?}"))?;
    Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
}

impl Selector {
    pub fn parse(text: &str) -> Result<Selector, String> {
        let mut reqs = vec![];
        for part in split_top(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let req = if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotIn(k.trim().into(), vec![v.trim().into()])
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::In(k.trim().into(), vec![v.trim().into()])
            } else if let Some((k, list)) = part.split_once(" notin ") {
                Requirement::NotIn(k.trim().into(), values(list)?)
            } else if let Some((k, list)) = part.split_once(" in ") {
                Requirement::In(k.trim().into(), values(list)?)
            } else if let Some(k) = part.strip_prefix('!') {
                Requirement::DoesNotExist(k.trim().into())
            } else if part.contains(|c: char| c.is_whitespace() || "()".contains(c)) {
                return Err(format!("unable to parse requirement: {part:?}"));
            } else {
                Requirement::Exists(part.into())
            };
            reqs.push(req);
        }
        Ok(Selector(reqs))
    }

    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::In(k, vs) => get(k).is_some_and(|v| vs.iter().any(|x| x == v)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|v| vs.iter().all(|x| x != v)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_follow_the_api_semantics() {
        let o = json!({ "metadata": { "labels": { "app": "spark", "job": "7", "tier": "a" } } });
        let none = json!({ "metadata": {} });
        for (sel, on_o, on_none) in [
            ("", true, true),
            ("app=spark", true, false),
            ("app==spark,job=7", true, false),
            ("app!=spark", false, true),
            ("job in (6, 7)", true, false),
            ("job notin (6,7)", false, true),
            ("tier", true, false),
            ("!tier", false, true),
            ("app=spark,job in (1,2)", false, false),
        ] {
            let s = Selector::parse(sel).unwrap();
            assert_eq!(s.matches(&o), on_o, "{sel}");
            assert_eq!(s.matches(&none), on_none, "{sel}");
        }
        assert!(Selector::parse("job in 6").is_err());
    }
}
