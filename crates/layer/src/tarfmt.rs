//! Tar headers byte for byte as Go's `archive/tar` writes them for Docker (`Format = PAX`):
//! a plain USTAR header whenever every field fits, otherwise a PAX extended header
//! (`PaxHeaders.0/NAME`, records sorted by key) followed by the main header. The `tar` crate's
//! builder formats numeric fields and checksums differently, so layers are written here.

use std::collections::BTreeMap;
use std::io::{self, Write};

pub(crate) const BLOCK: usize = 512;

/// Tar type flags used in layers.
pub(crate) mod flag {
    pub const REG: u8 = b'0';
    pub const LINK: u8 = b'1';
    pub const SYMLINK: u8 = b'2';
    pub const CHAR: u8 = b'3';
    pub const BLOCK: u8 = b'4';
    pub const DIR: u8 = b'5';
    pub const FIFO: u8 = b'6';
    pub const PAX: u8 = b'x';
}

/// One entry's header fields, as Go's `tar.Header` carries them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Header {
    pub name: Vec<u8>,
    pub linkname: Vec<u8>,
    pub typeflag: u8,
    /// Permission bits plus file type bits (`0100644`), as Docker writes them.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: i64,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub devmajor: u64,
    pub devminor: u64,
    /// Extended attributes, written as `SCHILY.xattr.NAME` PAX records.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

// Field offsets and sizes of the USTAR header block.
const NAME: (usize, usize) = (0, 100);
const MODE: (usize, usize) = (100, 8);
const UID: (usize, usize) = (108, 8);
const GID: (usize, usize) = (116, 8);
const SIZE: (usize, usize) = (124, 12);
const MTIME: (usize, usize) = (136, 12);
const CHKSUM: (usize, usize) = (148, 8);
const TYPEFLAG: usize = 156;
const LINKNAME: (usize, usize) = (157, 100);
const MAGIC: (usize, usize) = (257, 8);
const UNAME: (usize, usize) = (265, 32);
const GNAME: (usize, usize) = (297, 32);
const DEVMAJOR: (usize, usize) = (329, 8);
const DEVMINOR: (usize, usize) = (337, 8);
const PREFIX: (usize, usize) = (345, 155);

fn field(b: &mut [u8; BLOCK], f: (usize, usize)) -> &mut [u8] {
    &mut b[f.0..f.0 + f.1]
}

/// Largest value an octal field of `size` bytes holds (size-1 digits and a NUL).
fn octal_max(size: usize) -> u64 {
    (1u64 << (3 * (size as u32 - 1))) - 1
}

/// Go's `formatOctal`: zero-padded to `len-1` digits, NUL-terminated; 0 if it does not fit.
fn put_octal(dst: &mut [u8], v: u64) {
    let v = if v > octal_max(dst.len()) { 0 } else { v };
    let s = format!("{:0width$o}", v, width = dst.len() - 1);
    dst[..s.len()].copy_from_slice(s.as_bytes());
    dst[s.len()..].fill(0);
}

/// Go's `formatString`: copy, NUL-terminate when shorter, truncate when longer (and then do
/// not leave a trailing slash in the truncated field).
fn put_str(dst: &mut [u8], s: &[u8]) {
    let n = s.len().min(dst.len());
    dst[..n].copy_from_slice(&s[..n]);
    if n < dst.len() {
        dst[n] = 0;
    }
    if s.len() > dst.len() && dst[dst.len() - 1] == b'/' {
        let kept = s[..dst.len() - 1]
            .iter()
            .rposition(|&c| c != b'/')
            .map_or(0, |i| i + 1);
        dst[kept] = 0;
    }
}

/// Go's `toASCII`: drops non-ASCII bytes and NULs.
fn to_ascii(s: &[u8]) -> Vec<u8> {
    s.iter().copied().filter(|&c| c != 0 && c < 0x80).collect()
}

/// Go's `splitUSTARPath`: the prefix/name split for names of 101..=256 ASCII bytes.
fn split_ustar(name: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut length = name.len();
    if length <= NAME.1 || !name.is_ascii() {
        return None;
    } else if length > PREFIX.1 + 1 {
        length = PREFIX.1 + 1;
    } else if name[length - 1] == b'/' {
        length -= 1;
    }
    let i = name[..length].iter().rposition(|&c| c == b'/')?;
    let nlen = name.len() - i - 1;
    if i == 0 || nlen > NAME.1 || nlen == 0 || i > PREFIX.1 {
        return None;
    }
    Some((&name[..i], &name[i + 1..]))
}

/// One PAX record, `"%d %s=%s\n"` with the length counting itself.
fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let base = key.len() + value.len() + 3;
    let mut size = base + base.to_string().len();
    if (base + size.to_string().len()) != size {
        size = base + size.to_string().len();
    }
    let mut rec = Vec::with_capacity(size);
    rec.extend_from_slice(size.to_string().as_bytes());
    rec.push(b' ');
    rec.extend_from_slice(key);
    rec.push(b'=');
    rec.extend_from_slice(value);
    rec.push(b'\n');
    rec
}

fn checksum(b: &mut [u8; BLOCK]) {
    field(b, CHKSUM).fill(b' ');
    let sum: u64 = b.iter().map(|&c| c as u64).sum();
    let f = field(b, CHKSUM);
    put_octal(&mut f[..7], sum);
    f[7] = b' ';
}

fn set_ustar_magic(b: &mut [u8; BLOCK]) {
    field(b, MAGIC).copy_from_slice(b"ustar\x0000");
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Writes the header block(s) for `h` (not its data).
pub(crate) fn write_header<W: Write>(w: &mut W, h: &Header) -> io::Result<()> {
    let mut pax: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut ustar_ok = true;

    // Strings: too long or non-ASCII go to PAX; only the name can be split for USTAR.
    let name_fits = h.name.len() <= NAME.1 && h.name.is_ascii();
    if !name_fits {
        pax.insert(b"path".to_vec(), h.name.clone());
        ustar_ok &= split_ustar(&h.name).is_some();
    }
    for (value, size, key) in [
        (&h.linkname, LINKNAME.1, &b"linkpath"[..]),
        (&h.uname, UNAME.1, b"uname"),
        (&h.gname, GNAME.1, b"gname"),
    ] {
        if value.len() > size || !value.is_ascii() {
            if key != b"linkpath" && value.contains(&0) {
                return Err(invalid(format!(
                    "{} contains NUL",
                    String::from_utf8_lossy(key)
                )));
            }
            pax.insert(key.to_vec(), value.clone());
            ustar_ok = false;
        }
    }
    if h.name.contains(&0) || h.linkname.contains(&0) {
        return Err(invalid("name contains NUL".into()));
    }
    // Numbers: uid, gid, size and mtime have PAX keys; device numbers do not.
    for (v, size, key) in [
        (h.uid, UID.1, &b"uid"[..]),
        (h.gid, GID.1, b"gid"),
        (h.size, SIZE.1, b"size"),
    ] {
        if v > octal_max(size) {
            pax.insert(key.to_vec(), v.to_string().into_bytes());
            ustar_ok = false;
        }
    }
    if h.mtime < 0 || h.mtime as u64 > octal_max(MTIME.1) {
        pax.insert(b"mtime".to_vec(), h.mtime.to_string().into_bytes());
        ustar_ok = false;
    }
    for v in [h.devmajor, h.devminor] {
        if v > octal_max(DEVMAJOR.1) {
            return Err(invalid(format!(
                "device number {v} too large for a tar header"
            )));
        }
    }
    for (k, v) in &h.xattrs {
        if k.contains(&b'=') || k.contains(&0) {
            return Err(invalid(format!(
                "xattr name {:?} cannot be archived",
                String::from_utf8_lossy(k)
            )));
        }
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(k);
        pax.insert(key, v.clone());
        ustar_ok = false;
    }

    let mut b = [0u8; BLOCK];
    if ustar_ok {
        let (prefix, name) = if name_fits {
            (&b""[..], &h.name[..])
        } else {
            split_ustar(&h.name).expect("checked above")
        };
        put_str(field(&mut b, NAME), name);
        put_str(field(&mut b, PREFIX), prefix);
    } else {
        write_pax(w, &h.name, &pax)?;
        put_str(field(&mut b, NAME), &to_ascii(&h.name));
    }
    b[TYPEFLAG] = h.typeflag;
    let link = if ustar_ok {
        h.linkname.clone()
    } else {
        to_ascii(&h.linkname)
    };
    put_str(field(&mut b, LINKNAME), &link);
    put_octal(field(&mut b, MODE), h.mode as u64);
    put_octal(field(&mut b, UID), h.uid);
    put_octal(field(&mut b, GID), h.gid);
    put_octal(field(&mut b, SIZE), h.size);
    put_octal(
        field(&mut b, MTIME),
        if h.mtime < 0 { 0 } else { h.mtime as u64 },
    );
    put_str(field(&mut b, UNAME), &to_ascii(&h.uname));
    put_str(field(&mut b, GNAME), &to_ascii(&h.gname));
    put_octal(field(&mut b, DEVMAJOR), h.devmajor);
    put_octal(field(&mut b, DEVMINOR), h.devminor);
    set_ustar_magic(&mut b);
    checksum(&mut b);
    w.write_all(&b)
}

/// The `x` header and its records, named `DIR/PaxHeaders.0/BASE` as Go names it.
fn write_pax<W: Write>(
    w: &mut W,
    real_name: &[u8],
    pax: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> io::Result<()> {
    let data: Vec<u8> = pax.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
    let split = real_name
        .iter()
        .rposition(|&c| c == b'/')
        .map_or(0, |i| i + 1);
    let (dir, file) = real_name.split_at(split);
    let mut name = dir.to_vec();
    name.extend_from_slice(b"PaxHeaders.0");
    if !file.is_empty() {
        name.push(b'/');
        name.extend_from_slice(file);
    }
    let mut name = to_ascii(&name);
    name.truncate(NAME.1);
    while name.last() == Some(&b'/') {
        name.pop();
    }
    let mut b = [0u8; BLOCK];
    b[TYPEFLAG] = flag::PAX;
    put_str(field(&mut b, NAME), &name);
    put_octal(field(&mut b, MODE), 0);
    put_octal(field(&mut b, UID), 0);
    put_octal(field(&mut b, GID), 0);
    put_octal(field(&mut b, SIZE), data.len() as u64);
    put_octal(field(&mut b, MTIME), 0);
    set_ustar_magic(&mut b);
    checksum(&mut b);
    w.write_all(&b)?;
    w.write_all(&data)?;
    pad(w, data.len() as u64)
}

/// Zero padding after `len` bytes of data, up to the next block boundary.
pub(crate) fn pad<W: Write>(w: &mut W, len: u64) -> io::Result<()> {
    let rem = (len % BLOCK as u64) as usize;
    if rem != 0 {
        w.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
    }
    Ok(())
}

/// The end-of-archive marker: two zero blocks, as Go's `Writer.Close` writes.
pub(crate) fn write_end<W: Write>(w: &mut W) -> io::Result<()> {
    w.write_all(&[0u8; 2 * BLOCK])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str) -> Header {
        Header {
            name: name.as_bytes().to_vec(),
            typeflag: flag::REG,
            mode: 0o100644,
            mtime: 1_600_000_000,
            uname: b"root".to_vec(),
            gname: b"root".to_vec(),
            ..Header::default()
        }
    }

    #[test]
    fn ustar_header_fields_match_go() {
        let mut out = Vec::new();
        write_header(&mut out, &header("etc/hosts")).unwrap();
        assert_eq!(out.len(), 512);
        assert_eq!(&out[0..10], b"etc/hosts\0");
        assert_eq!(&out[100..108], b"0100644\0");
        assert_eq!(&out[108..116], b"0000000\0");
        assert_eq!(&out[124..136], b"00000000000\0");
        assert_eq!(&out[136..148], b"13727410000\0");
        assert_eq!(&out[257..265], b"ustar\x0000");
        assert_eq!(&out[265..270], b"root\0");
        assert_eq!(&out[329..337], b"0000000\0");
        // Checksum: six octal digits, NUL, space; and it is the sum with spaces in its place.
        assert_eq!(out[154], 0);
        assert_eq!(out[155], b' ');
        let mut copy = out.clone();
        copy[148..156].fill(b' ');
        let sum: u64 = copy.iter().map(|&c| c as u64).sum();
        assert_eq!(&out[148..154], format!("{sum:06o}").as_bytes());
        // The tar crate agrees.
        let h = tar::Header::from_byte_slice(&out);
        assert_eq!(h.cksum().unwrap() as u64, sum);
        assert_eq!(h.path_bytes().as_ref(), b"etc/hosts");
    }

    #[test]
    fn long_ascii_names_use_the_ustar_prefix() {
        let name = format!("{}/{}", "d".repeat(120), "f".repeat(50));
        let mut out = Vec::new();
        write_header(&mut out, &header(&name)).unwrap();
        assert_eq!(out.len(), 512, "no PAX header needed");
        assert_eq!(&out[0..51], format!("{}\0", "f".repeat(50)).as_bytes());
        assert_eq!(&out[345..466], format!("{}\0", "d".repeat(120)).as_bytes());
    }

    #[test]
    fn unsplittable_and_non_ascii_names_use_pax() {
        for name in ["x".repeat(150), "caf\u{e9}".to_string()] {
            let mut out = Vec::new();
            write_header(&mut out, &header(&name)).unwrap();
            assert_eq!(out.len(), 3 * 512, "pax header, records, main header");
            assert_eq!(out[156], b'x');
            let pax_name = format!("PaxHeaders.0/{}", name.replace('\u{e9}', ""));
            let expect = &pax_name.as_bytes()[..pax_name.len().min(100)];
            assert_eq!(&out[..expect.len()], expect);
            let rec = pax_record(b"path", name.as_bytes());
            assert_eq!(&out[512..512 + rec.len()], &rec[..]);
            // Reading back through the tar crate gives the full name.
            let mut with_end = out.clone();
            with_end.extend_from_slice(&[0u8; 1024]);
            let mut ar = tar::Archive::new(&with_end[..]);
            let e = ar.entries().unwrap().next().unwrap().unwrap();
            assert_eq!(e.path_bytes().as_ref(), name.as_bytes());
        }
    }

    #[test]
    fn pax_record_length_counts_itself() {
        assert_eq!(pax_record(b"path", b"abc"), b"12 path=abc\n");
        // 3 + 4 + 3 + 1 = 11 -> with "11" = 13... crossing a digit boundary.
        let v = vec![b'a'; 92];
        let rec = pax_record(b"path", &v);
        assert_eq!(rec.len(), 102);
        assert!(rec.starts_with(b"102 path="));
    }

    #[test]
    fn xattrs_and_big_numbers_force_pax() {
        let mut h = header("bin/ping");
        h.xattrs = vec![(b"security.capability".to_vec(), vec![1, 0, 0, 2])];
        h.uid = 5_000_000;
        let mut out = Vec::new();
        write_header(&mut out, &h).unwrap();
        let data = &out[512..1024];
        let text = String::from_utf8_lossy(data);
        assert!(text.contains("SCHILY.xattr.security.capability="), "{text}");
        assert!(text.contains("uid=5000000"), "{text}");
        // Go writes 0 in a numeric field that does not fit.
        assert_eq!(&out[1024 + 108..1024 + 116], b"0000000\0");
        assert!(
            text.find("SCHILY").unwrap() < text.find("uid=").unwrap(),
            "records sorted"
        );
    }

    #[test]
    fn truncated_field_drops_trailing_slash() {
        let mut f = [0u8; 10];
        put_str(&mut f, b"abcdefgh//xyz");
        assert_eq!(&f, b"abcdefgh\0/");
    }
}
