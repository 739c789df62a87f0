//! Go's `filepath.Match` (the same as `path.Match` on Unix), which COPY and ADD sources use
//! for wildcards and `images --filter reference=` for names: `*` and `?` never match `/`,
//! `[...]` classes with ranges and `^`/`!` negation, `\` escapes.

/// Go's `path.ErrBadPattern`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("syntax error in pattern")]
pub struct BadPattern;

/// Whether `pattern` contains a wildcard.
pub fn has_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// Matches `name` against `pattern` as Go's `filepath.Match`; a malformed pattern matches
/// nothing.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    path_match(pattern, name).unwrap_or(false)
}

/// Go's `path.Match`: whether `name` matches `pattern`, or [`BadPattern`] for a malformed
/// pattern (as Go, also when the part that fails to parse comes after a mismatch).
pub fn path_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches(&p, &n).ok_or(BadPattern)
}

fn matches(p: &[char], n: &[char]) -> Option<bool> {
    let (mut pi, mut ni) = (0, 0);
    let (mut star_p, mut star_n): (Option<usize>, usize) = (None, 0);
    loop {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star_p = Some(pi);
                    star_n = ni;
                    pi += 1;
                    continue;
                }
                '?' if ni < n.len() && n[ni] != '/' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' if ni < n.len() => {
                    let (ok, next) = class(p, pi, n[ni])?;
                    if ok && n[ni] != '/' {
                        pi = next;
                        ni += 1;
                        continue;
                    }
                }
                '\\' if pi + 1 < p.len() && ni < n.len() && p[pi + 1] == n[ni] => {
                    pi += 2;
                    ni += 1;
                    continue;
                }
                c if c != '?' && c != '[' && c != '\\' && ni < n.len() && c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        } else if ni == n.len() {
            return Some(true);
        }
        // Backtrack: let the last star eat one more character (never a '/').
        match star_p {
            Some(sp) if star_n < n.len() && n[star_n] != '/' => {
                star_n += 1;
                ni = star_n;
                pi = sp + 1;
            }
            _ => {
                // A malformed class later in the pattern is an error in Go even on mismatch.
                return if p[pi.min(p.len())..].contains(&'[') {
                    check_classes(&p[pi.min(p.len())..])
                } else {
                    Some(false)
                };
            }
        }
    }
}

fn check_classes(p: &[char]) -> Option<bool> {
    let mut i = 0;
    while i < p.len() {
        if p[i] == '[' {
            let (_, next) = class(p, i, '\0')?;
            i = next;
        } else {
            i += 1;
        }
    }
    Some(false)
}

/// Parses the class at `p[start] == '['`; returns whether `c` is in it and the index after.
fn class(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = i < p.len() && (p[i] == '^' || p[i] == '!');
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        if i >= p.len() {
            return None;
        }
        if p[i] == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let mut lo = p[i];
        if lo == '\\' {
            i += 1;
            lo = *p.get(i)?;
        }
        i += 1;
        let mut hi = lo;
        if i + 1 < p.len() && p[i] == '-' && p[i + 1] != ']' {
            hi = p[i + 1];
            if hi == '\\' {
                hi = *p.get(i + 2)?;
                i += 1;
            }
            i += 2;
        }
        if lo <= c && c <= hi {
            matched = true;
        }
    }
    Some((matched != negate, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_filepath_match_cases() {
        for (p, n, want) in [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abe", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("*.txt", "file.txt", true),
            ("dir/*.txt", "dir/a.txt", true),
            ("[", "a", false),
        ] {
            assert_eq!(glob_match(p, n), want, "{p} vs {n}");
        }
    }
}
