//! tmux formats: `#{name}`, the one-letter aliases (`#S`, `#I`, `#P`, `#D`, `#W`, `#T`, `#F`,
//! `#H`), conditionals `#{?cond,yes,no}`, comparisons `#{==:a,b}` `#{!=:a,b}` `#{||:a,b}`
//! `#{&&:a,b}`, and the modifiers `t:` (time), `b:` (basename), `d:` (dirname), `=N:` (first
//! or last N characters), `n:` (length), `l:` (literal) and `q:` (shell-quoted). A variable
//! nobody knows expands to nothing, as in tmux.

/// Expands `template` with `lookup` giving each variable's value.
pub fn expand(template: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let chars: Vec<char> = template.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '#' || i + 1 == chars.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let next = chars[i + 1];
        match next {
            '#' | ',' | '}' => {
                out.push(next);
                i += 2;
            }
            '{' => {
                let Some(end) = matching(&chars, i + 2) else {
                    out.extend(&chars[i..]);
                    break;
                };
                let inner: String = chars[i + 2..end].iter().collect();
                out.push_str(&expand_inner(&inner, lookup));
                i = end + 1;
            }
            _ => {
                match alias(next) {
                    Some(var) => out.push_str(&lookup(var).unwrap_or_default()),
                    None => {
                        out.push('#');
                        out.push(next);
                    }
                }
                i += 2;
            }
        }
    }
    out
}

fn alias(c: char) -> Option<&'static str> {
    Some(match c {
        'D' => "pane_id",
        'F' => "window_flags",
        'H' => "host",
        'h' => "host_short",
        'I' => "window_index",
        'P' => "pane_index",
        'S' => "session_name",
        'T' => "pane_title",
        'W' => "window_name",
        _ => return None,
    })
}

/// The index of the `}` closing a `#{` whose content starts at `from`.
fn matching(chars: &[char], from: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '#' if chars.get(i + 1) == Some(&'{') => {
                depth += 1;
                i += 2;
                continue;
            }
            '#' if matches!(chars.get(i + 1), Some('}' | ',' | '#')) => {
                i += 2;
                continue;
            }
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Splits at commas outside nested `#{...}` (and not written `#,`).
fn split_top(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '#' && next == Some('{') {
            depth += 1;
            cur.push_str("#{");
            i += 2;
            continue;
        }
        if c == '#' && matches!(next, Some(',' | '}' | '#')) {
            cur.push('#');
            cur.extend(next);
            i += 2;
            continue;
        }
        match c {
            '}' if depth > 0 => {
                depth -= 1;
                cur.push('}');
            }
            ',' if depth == 0 => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
        i += 1;
    }
    parts.push(cur);
    parts
}

/// A variable name, or a nested format when it holds one.
fn value_of(expr: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    if expr.contains('#') {
        expand(expr, lookup)
    } else {
        lookup(expr).unwrap_or_default()
    }
}

fn truthy(v: &str) -> bool {
    !v.is_empty() && v != "0"
}

fn expand_inner(inner: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    if let Some(rest) = inner.strip_prefix('?') {
        let parts = split_top(rest);
        let cond = parts
            .first()
            .map(|c| value_of(c, lookup))
            .unwrap_or_default();
        let pick = if truthy(&cond) { 1 } else { 2 };
        return parts
            .get(pick)
            .map(|p| expand(p, lookup))
            .unwrap_or_default();
    }
    for (op, f) in [
        ("==:", (|a: &str, b: &str| a == b) as fn(&str, &str) -> bool),
        ("!=:", |a, b| a != b),
        ("||:", |a, b| truthy(a) || truthy(b)),
        ("&&:", |a, b| truthy(a) && truthy(b)),
    ] {
        if let Some(rest) = inner.strip_prefix(op) {
            let parts = split_top(rest);
            let a = parts.first().map(|p| expand(p, lookup)).unwrap_or_default();
            let b = parts.get(1).map(|p| expand(p, lookup)).unwrap_or_default();
            return if f(&a, &b) { "1" } else { "0" }.into();
        }
    }
    if let Some(rest) = inner
        .strip_prefix("m:")
        .or_else(|| inner.strip_prefix("m/i:"))
    {
        let parts = split_top(rest);
        let pattern = parts.first().map(|p| expand(p, lookup)).unwrap_or_default();
        let text = parts
            .get(1)
            .map(|p| value_of(p, lookup))
            .unwrap_or_default();
        let (pattern, text) = if inner.starts_with("m/i:") {
            (pattern.to_lowercase(), text.to_lowercase())
        } else {
            (pattern, text)
        };
        return if glob(&pattern, &text) { "1" } else { "0" }.into();
    }
    if let Some(rest) = inner.strip_prefix("l:") {
        return rest.to_owned();
    }
    for (prefix, f) in [
        ("t:", time as fn(&str) -> String),
        ("b:", |v: &str| {
            v.rsplit('/')
                .find(|p| !p.is_empty())
                .unwrap_or("")
                .to_owned()
        }),
        ("d:", |v: &str| {
            match v.trim_end_matches('/').rsplit_once('/') {
                Some(("", _)) => "/".into(),
                Some((d, _)) => d.to_owned(),
                None => ".".into(),
            }
        }),
        ("n:", |v: &str| v.chars().count().to_string()),
        ("q:", |v: &str| {
            shlex::try_quote(v)
                .map(|q| q.into_owned())
                .unwrap_or_default()
        }),
    ] {
        if let Some(rest) = inner.strip_prefix(prefix) {
            return f(&value_of(rest, lookup));
        }
    }
    if let Some(rest) = inner.strip_prefix('=') {
        if let Some((n, var)) = rest.split_once(':') {
            if let Ok(n) = n.parse::<i64>() {
                let v: Vec<char> = value_of(var, lookup).chars().collect();
                let k = n.unsigned_abs() as usize;
                return if n >= 0 {
                    v.iter().take(k).collect()
                } else {
                    v[v.len().saturating_sub(k)..].iter().collect()
                };
            }
        }
    }
    value_of(inner, lookup)
}

/// `fnmatch`-style matching: `*`, `?` and `[...]` classes.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob_at(&p, &t)
}

fn glob_at(p: &[char], t: &[char]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some('*') => (0..=t.len()).any(|i| glob_at(&p[1..], &t[i..])),
        Some('?') => !t.is_empty() && glob_at(&p[1..], &t[1..]),
        Some('[') => {
            let Some(close) = p.iter().skip(1).position(|c| *c == ']').map(|i| i + 1) else {
                return t.first() == Some(&'[') && glob_at(&p[1..], &t[1..]);
            };
            let Some(c) = t.first() else { return false };
            let class = &p[1..close];
            let (negate, class) = match class.first() {
                Some('!' | '^') => (true, &class[1..]),
                _ => (false, class),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    hit |= class[i] <= *c && *c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == *c;
                    i += 1;
                }
            }
            hit != negate && glob_at(&p[close + 1..], &t[1..])
        }
        Some(c) => t.first() == Some(c) && glob_at(&p[1..], &t[1..]),
    }
}

/// `t:`: Unix seconds as tmux prints a time (`Mon Nov 30 07:34:50 2026`), in UTC.
fn time(v: &str) -> String {
    let Ok(secs) = v.parse::<i64>() else {
        return String::new();
    };
    ctime(secs)
}

/// A C `ctime` string, without the newline, in UTC.
pub fn ctime(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        y
    )
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's civil-from-days.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "session_name" => Some("main".into()),
            "pane_active" => Some("1".into()),
            "window_active" => Some("0".into()),
            "path" => Some("/home/u/src".into()),
            _ => None,
        }
    }

    #[test]
    fn expands() {
        assert_eq!(expand("#{session_name}:#S", &vars), "main:main");
        assert_eq!(expand("#{?pane_active, (active),}", &vars), " (active)");
        assert_eq!(expand("#{?window_active,yes,no}", &vars), "no");
        assert_eq!(expand("#{==:#{session_name},main}", &vars), "1");
        assert_eq!(expand("#{b:path} #{d:path}", &vars), "src /home/u");
        assert_eq!(expand("#{=2:session_name}", &vars), "ma");
        assert_eq!(expand("#{unknown}x##", &vars), "x#");
        assert_eq!(expand("#{m:ma*,#{session_name}}", &vars), "1");
        assert_eq!(expand("#{m:x[a-c]?,#{session_name}}", &vars), "0");
        assert!(glob("a[!b]c*", "adcxyz"));
        assert_eq!(
            expand("#{?pane_active,#{session_name}#,x,no}", &vars),
            "main,x"
        );
    }

    #[test]
    fn ctime_matches_c() {
        assert_eq!(ctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(ctime(1_796_024_090), "Mon Nov 30 07:34:50 2026");
    }
}
