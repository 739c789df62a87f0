//! Go's wording of an I/O error, as Docker's messages carry them.

/// "no such file or directory", not Rust's "No such file or directory (os error 2)": the
/// one copy of this for every crate (the runtime's messages, the registry's transport
/// errors, the CLI's).
pub fn go_io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s).to_string();
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn errors_read_as_go_prints_them() {
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(super::go_io_text(&e), "no such file or directory");
    }
}
