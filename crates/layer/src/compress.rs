//! Compressing a layer where its bytes leave the machine (push, registry cache export): a
//! reader of the compressed stream in gzip (parallel, pigz style), zstd (zstd's own worker
//! threads) or as it is. The output depends on the input and the level only, never on the
//! number of threads or on timing, so a layer compresses to the same digest every time.
//!
//! gzip, as pigz does it: the input is cut into blocks of [`GZIP_BLOCK`] bytes, every block is
//! deflated on a worker thread with the last 32 KiB of the block before it as dictionary (so
//! matches reach back as far as in a serial deflate), non-final blocks end with a sync flush
//! (an empty stored block that leaves the stream byte-aligned, so the pieces concatenate) and
//! the last one with the final block; the CRC-32s of the blocks are combined in order. The
//! result is one ordinary gzip member. A block whose bytes look random (compressed files) goes
//! in stored blocks without trying deflate: see [`INCOMPRESSIBLE_BITS`].
//!
//! Written here rather than taken from `gzp`: gzp's parallel writer pushes into a `Write` from
//! threads of its own, whereas an upload pulls a `Read` (ureq's streaming body); its deflate
//! backends are features of its own (miniz_oxide, which takes no dictionary, or C zlib and
//! zlib-ng built from source), none of them the zlib-rs this crate already uses. What is
//! needed is a few hundred lines over flate2's `Compress` (which takes a dictionary with
//! zlib-rs) and `Crc::combine`.
//!
//! The default gzip level, measured on this project's machine (2 cores, AMD EPYC, shared
//! with other builds, so figures vary by a third from run to run): `benches/compress.rs` on
//! 500 MB of the first files of `/usr/share` and `/usr/lib` (CPU seconds per GB, share of
//! the input), and a push of the same bytes as one layer to a loopback `docker-registry`
//! against `skopeo copy` of the same image, which compresses with pgzip at its default
//! level (8.7 s, 215.8 MB, 7.1 CPU s):
//!
//! | level | CPU s/GB | output | push    | blob     |
//! | ----- | -------- | ------ | ------- | -------- |
//! | 1     | 6.1      | 51.7%  | 5.4 s   | 258.5 MB |
//! | 2     | 10.7     | 44.7%  | 4.8 s   | 223.5 MB |
//! | 3     | 12.0     | 43.3%  | (noisy) | 216.4 MB |
//! | 4     | 14.6     | 42.8%  | 7.9 s   | 213.9 MB |
//! | 6     | 18.1     | 42.3%  | 9.9 s   | 211.5 MB |
//!
//! Level 2 (zlib-rs' `deflate_fast`) is the default: about half skopeo's push time with a blob
//! 3.5% larger than skopeo's and 5.7% larger than level 6's (Docker's, Go's default), where
//! level 1 (`deflate_quick`, static Huffman codes only) saves little more time for blobs 20%
//! larger, and 3x larger on repetitive text. On random data every level runs at about 1 CPU
//! second per GB (stored blocks), zstd level 3 at 0.8. Any level gives valid gzip that Docker,
//! containerd and skopeo read.

use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Crc, FlushCompress, Status};

use crate::error::{LayerError, Result};
use crate::stream::Compression;

/// gzip level when none is asked for. See the module documentation for the measurements.
pub const DEFAULT_GZIP_LEVEL: u32 = 2;
/// zstd level when none is asked for (zstd's own default, as BuildKit's).
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;
/// Bytes of input per parallel gzip block.
pub const GZIP_BLOCK: usize = 1 << 20;
/// How far back deflate looks: the dictionary each block gets from the one before.
const WINDOW: usize = 32 << 10;

impl Compression {
    /// BuildKit's name of the compression (`compression=` of `--output` and `--cache-to`).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The compression BuildKit names `name`.
    pub fn from_name(name: &str) -> Option<Compression> {
        [Compression::None, Compression::Gzip, Compression::Zstd]
            .into_iter()
            .find(|c| c.name() == name)
    }
}

/// How to compress a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressOptions {
    pub compression: Compression,
    /// The level (gzip 0-9, zstd 1-22); `None` for the default of the compression.
    pub level: Option<i32>,
    /// Threads that compress; 0 for one per core. Changes the speed, never the bytes.
    pub threads: usize,
}

impl Default for CompressOptions {
    /// gzip at [`DEFAULT_GZIP_LEVEL`] on every core.
    fn default() -> Self {
        CompressOptions {
            compression: Compression::Gzip,
            level: None,
            threads: 0,
        }
    }
}

impl CompressOptions {
    /// Options for `compression` at `level` (its default when `None`), checked.
    pub fn new(compression: Compression, level: Option<i32>) -> Result<CompressOptions> {
        let o = CompressOptions {
            compression,
            level,
            threads: 0,
        };
        o.level()?;
        Ok(o)
    }

    /// The level in effect; an error for one the compression does not have.
    pub fn level(&self) -> Result<i32> {
        let (range, default) = match self.compression {
            Compression::None => (0..=0, 0),
            Compression::Gzip => (0..=9, DEFAULT_GZIP_LEVEL as i32),
            Compression::Zstd => (1..=22, DEFAULT_ZSTD_LEVEL),
        };
        match self.level {
            None => Ok(default),
            Some(l) if range.contains(&l) => Ok(l),
            Some(l) => Err(LayerError::InvalidLevel {
                compression: self.compression.name(),
                level: l,
                range: format!("{}-{}", range.start(), range.end()),
            }),
        }
    }

    fn threads(&self) -> usize {
        match self.threads {
            0 => cores(),
            n => n,
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// zstd worker threads: at least one always, because zstd's output is the same for any
/// count of workers from one up but differs from its single-threaded mode.
pub(crate) fn zstd_workers(threads: usize) -> u32 {
    threads.clamp(1, 8) as u32
}

/// A reader of `src` compressed as `opts` says. The source is read to its end (a source that
/// checks itself at EOF, such as a stored layer's tar, gets to) and its errors come out of
/// this reader's `read`.
pub fn compress_reader<R: Read + Send + 'static>(
    src: R,
    opts: &CompressOptions,
) -> Result<Box<dyn Read + Send>> {
    let level = opts.level()?;
    Ok(match opts.compression {
        Compression::None => Box::new(src),
        Compression::Gzip => Box::new(ParGzip::new(src, level as u32, opts.threads())),
        Compression::Zstd => {
            let read = |err| LayerError::Read { err };
            let mut enc = zstd::stream::read::Encoder::new(src, level).map_err(read)?;
            enc.multithread(zstd_workers(opts.threads()))
                .map_err(read)?;
            enc.include_checksum(true).map_err(read)?;
            Box::new(enc)
        }
    })
}

/// The gzip header Go's `compress/gzip` writes: no name, mtime 0, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// A block of input (the buffer is [`GZIP_BLOCK`] long, `len` of it filled), back in its
/// pool when the last reference goes.
struct Block {
    buf: Vec<u8>,
    len: usize,
    pool: Arc<Pool>,
}

impl Block {
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        self.pool.put(std::mem::take(&mut self.buf));
    }
}

/// Input buffers kept for the next blocks: a fresh 1 MiB buffer costs page faults and
/// zeroing, which is as much as the rest of the work on a block that is stored.
struct Pool(Mutex<Vec<Vec<u8>>>);

impl Pool {
    fn take(&self) -> Vec<u8> {
        let free = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop();
        free.unwrap_or_else(|| vec![0u8; GZIP_BLOCK])
    }

    fn put(&self, buf: Vec<u8>) {
        let mut free = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if buf.len() == GZIP_BLOCK && free.len() < 32 {
            free.push(buf);
        }
    }
}

/// What a block became, in the order of the input.
struct Deflated {
    piece: Piece,
    crc: Crc,
    last: bool,
}

/// Bytes of the gzip stream.
enum Piece {
    Bytes(Vec<u8>),
    /// The block's own bytes in deflate stored blocks of at most [`STORED_MAX`] bytes (the
    /// last one final when `last`), read from the input without a copy.
    Stored {
        input: Arc<Block>,
        last: bool,
    },
}

/// The most bytes one deflate stored block holds.
const STORED_MAX: usize = 65535;

impl Piece {
    /// Copies the bytes of the piece from `pos` on into `buf`; 0 at its end.
    fn read_at(&self, pos: usize, buf: &mut [u8]) -> usize {
        match self {
            Piece::Bytes(b) => {
                let n = buf.len().min(b.len().saturating_sub(pos));
                buf[..n].copy_from_slice(&b[pos..pos + n]);
                n
            }
            Piece::Stored { input, last } => {
                let data = input.bytes();
                // Each stored block is 5 bytes of header (final bit and padding, LEN, NLEN)
                // and its data; an empty input is one empty block.
                let count = data.len().div_ceil(STORED_MAX).max(1);
                let (k, off) = (pos / (STORED_MAX + 5), pos % (STORED_MAX + 5));
                if k >= count {
                    return 0;
                }
                let start = k * STORED_MAX;
                let chunk = &data[start..data.len().min(start + STORED_MAX)];
                if off < 5 {
                    let len = chunk.len() as u16;
                    let [l0, l1] = len.to_le_bytes();
                    let [n0, n1] = (!len).to_le_bytes();
                    let header = [u8::from(*last && k + 1 == count), l0, l1, n0, n1];
                    let n = buf.len().min(5 - off);
                    buf[..n].copy_from_slice(&header[off..off + n]);
                    n
                } else {
                    let rest = &chunk[off - 5..];
                    let n = buf.len().min(rest.len());
                    buf[..n].copy_from_slice(&rest[..n]);
                    n
                }
            }
        }
    }
}

/// A block to deflate: its input, the block before it (for the dictionary), whether it is
/// the last, and where the result goes.
struct Job {
    input: Arc<Block>,
    before: Option<Arc<Block>>,
    last: bool,
    level: u32,
    done: SyncSender<io::Result<Deflated>>,
}

/// Where the next bytes of a [`ParGzip`] come from.
enum Phase {
    Header,
    Blocks,
    Trailer,
    End,
}

/// Parallel gzip as a reader: a feeder thread reads the source block by block and hands
/// each block to the workers; `read` takes the deflated blocks in order.
struct ParGzip {
    phase: Phase,
    /// The results of the blocks, in input order (each a one-shot channel).
    order: Option<Receiver<Receiver<io::Result<Deflated>>>>,
    /// What `read` is giving out, and how far.
    piece: Piece,
    pos: usize,
    crc: Crc,
    len: u64,
    threads: Vec<JoinHandle<()>>,
}

impl ParGzip {
    fn new<R: Read + Send + 'static>(src: R, level: u32, workers: usize) -> ParGzip {
        let workers = workers.max(1);
        // Blocks in flight: enough for every worker to have the next one ready.
        let (order_tx, order_rx) = mpsc::sync_channel(workers * 2);
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let mut threads = Vec::with_capacity(workers + 1);
        for _ in 0..workers {
            let jobs = job_rx.clone();
            threads.push(std::thread::spawn(move || deflate_jobs(&jobs)));
        }
        threads.push(std::thread::spawn(move || {
            feed(src, level, &order_tx, &job_tx);
        }));
        ParGzip {
            phase: Phase::Header,
            order: Some(order_rx),
            piece: Piece::Bytes(Vec::new()),
            pos: 0,
            crc: Crc::new(),
            len: 0,
            threads,
        }
    }

    /// The next deflated block.
    fn next_block(&mut self) -> io::Result<Deflated> {
        let stopped = || io::Error::other("gzip compressor stopped before the end of its input");
        let order = self.order.as_ref().ok_or_else(stopped)?;
        let result = order.recv().map_err(|_| stopped())?;
        result.recv().map_err(|_| stopped())?
    }
}

/// Reads `src` in blocks and queues each for the workers, its result in `order`. Stops at
/// the end of the source, at its first error (queued in its place) or when the reader is gone.
fn feed<R: Read>(
    mut src: R,
    level: u32,
    order: &SyncSender<Receiver<io::Result<Deflated>>>,
    jobs: &mpsc::Sender<Job>,
) {
    let pool = Arc::new(Pool(Mutex::new(Vec::new())));
    let mut before: Option<Arc<Block>> = None;
    let mut current = match read_block(&mut src, &pool) {
        Ok(b) => b,
        Err(e) => return fail(order, e),
    };
    loop {
        // A full block may be followed by nothing: read on to know which is the last.
        let next = if current.len < GZIP_BLOCK {
            None
        } else {
            match read_block(&mut src, &pool) {
                Ok(b) if b.len == 0 => None,
                Ok(b) => Some(b),
                Err(e) => return fail(order, e),
            }
        };
        let last = next.is_none();
        let input = Arc::new(current);
        let (done, result) = mpsc::sync_channel(1);
        if order.send(result).is_err() {
            return;
        }
        let job = Job {
            input: input.clone(),
            before: before.take(),
            last,
            level,
            done,
        };
        let Some(next) = next else {
            let _ = jobs.send(job);
            return;
        };
        if jobs.send(job).is_err() {
            return;
        }
        before = Some(input);
        current = next;
    }
}

/// Queues `e` as the next block's result.
fn fail(order: &SyncSender<Receiver<io::Result<Deflated>>>, e: io::Error) {
    let (tx, rx) = mpsc::sync_channel(1);
    let _ = tx.send(Err(e));
    let _ = order.send(rx);
}

/// Fills a block of [`GZIP_BLOCK`] bytes, shorter only at the end of the source (which is
/// then read up to its `Ok(0)`).
fn read_block<R: Read>(src: &mut R, pool: &Arc<Pool>) -> io::Result<Block> {
    let mut block = Block {
        buf: pool.take(),
        len: 0,
        pool: pool.clone(),
    };
    while block.len < GZIP_BLOCK {
        match src.read(&mut block.buf[block.len..]) {
            Ok(0) => break,
            Ok(n) => block.len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(block)
}

/// A worker: deflates jobs until the feeder is gone.
fn deflate_jobs(jobs: &Mutex<Receiver<Job>>) {
    let mut state: Option<(u32, flate2::Compress)> = None;
    loop {
        let job = match jobs.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(j) => j,
            Err(_) => return,
        };
        let z = match &mut state {
            Some((level, z)) if *level == job.level => {
                z.reset();
                z
            }
            _ => {
                let z = flate2::Compress::new(flate2::Compression::new(job.level), false);
                &mut state.insert((job.level, z)).1
            }
        };
        let result = deflate_block(z, &job);
        let _ = job.done.send(result);
    }
}

/// Deflates one block as a piece of a single deflate stream: primed with the 32 KiB before
/// it, ended by a sync flush, or by the final block for the last one.
fn deflate_block(z: &mut flate2::Compress, job: &Job) -> io::Result<Deflated> {
    let input = job.input.bytes();
    let mut crc = Crc::new();
    crc.update(input);
    let piece = if job.level > 0 && incompressible(input) {
        Piece::Stored {
            input: job.input.clone(),
            last: job.last,
        }
    } else {
        Piece::Bytes(deflate(z, job)?)
    };
    Ok(Deflated {
        piece,
        crc,
        last: job.last,
    })
}

/// Bits of information per byte (order-0 entropy) above which a block is taken for
/// incompressible: deflate could save at most 0.6% on its byte frequencies, and finds
/// nothing more in such data (compressed or encrypted files, random bytes) unless it
/// repeats within 32 KiB. Deflating it anyway costs as much as text at the same level for
/// nothing (zlib-rs at level 1 even makes random data 5% larger), so such a block goes in
/// stored blocks at the speed of a copy. A property of the block alone, so the output stays
/// the same for the same input.
const INCOMPRESSIBLE_BITS: f64 = 7.95;

/// Whether `block` looks incompressible, judged on 16 windows of 4 KiB spread evenly over it
/// (a sixteenth of a full block: enough for the statistics, and cheap next to the copy).
fn incompressible(block: &[u8]) -> bool {
    const WINDOW: usize = 4096;
    const WINDOWS: usize = 16;
    if block.len() < WINDOW * WINDOWS {
        return false;
    }
    let step = (block.len() - WINDOW) / (WINDOWS - 1);
    // Four tables, so consecutive bytes do not wait on each other's increments.
    let mut counts = [[0u32; 256]; 4];
    for w in 0..WINDOWS {
        for c in block[w * step..w * step + WINDOW].chunks_exact(4) {
            counts[0][c[0] as usize] += 1;
            counts[1][c[1] as usize] += 1;
            counts[2][c[2] as usize] += 1;
            counts[3][c[3] as usize] += 1;
        }
    }
    let n = (WINDOW * WINDOWS) as f64;
    let bits: f64 = (0..256)
        .map(|i| counts.iter().map(|t| t[i]).sum::<u32>())
        .filter(|&c| c > 0)
        .map(|c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum();
    bits > INCOMPRESSIBLE_BITS
}

/// Deflates one block with zlib-rs.
fn deflate(z: &mut flate2::Compress, job: &Job) -> io::Result<Vec<u8>> {
    let deflate_err = |e: flate2::CompressError| io::Error::other(format!("deflate: {e}"));
    if let Some(before) = &job.before {
        let before = before.bytes();
        let start = before.len().saturating_sub(WINDOW);
        z.set_dictionary(&before[start..]).map_err(deflate_err)?;
    }
    let input = job.input.bytes();
    let flush = if job.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    // Room for incompressible input in stored blocks (5 bytes per 16 KiB) and the flush.
    let mut data = Vec::with_capacity(input.len() + input.len() / 1000 + 64);
    let start_in = z.total_in();
    loop {
        let consumed = (z.total_in() - start_in) as usize;
        let before_out = data.len();
        let status = z
            .compress_vec(&input[consumed..], &mut data, flush)
            .map_err(deflate_err)?;
        let consumed = (z.total_in() - start_in) as usize;
        let full = data.len() == data.capacity();
        match status {
            Status::StreamEnd => break,
            // A sync flush is complete once all input is in and deflate left room unused.
            Status::Ok | Status::BufError if !job.last && consumed == input.len() && !full => break,
            _ => {}
        }
        if full || data.len() == before_out {
            data.reserve(64 << 10);
        }
    }
    Ok(data)
}

impl Read for ParGzip {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self.piece.read_at(self.pos, buf);
            if n > 0 {
                self.pos += n;
                return Ok(n);
            }
            self.pos = 0;
            self.piece = match self.phase {
                Phase::Header => {
                    self.phase = Phase::Blocks;
                    Piece::Bytes(GZIP_HEADER.to_vec())
                }
                Phase::Blocks => {
                    let block = self.next_block()?;
                    self.len += block.crc.amount() as u64;
                    self.crc.combine(&block.crc);
                    if block.last {
                        self.phase = Phase::Trailer;
                    }
                    block.piece
                }
                Phase::Trailer => {
                    self.phase = Phase::End;
                    let mut t = Vec::with_capacity(8);
                    t.extend_from_slice(&self.crc.sum().to_le_bytes());
                    t.extend_from_slice(&(self.len as u32).to_le_bytes());
                    Piece::Bytes(t)
                }
                Phase::End => {
                    self.piece = Piece::Bytes(Vec::new());
                    return Ok(0);
                }
            };
        }
    }
}

impl Drop for ParGzip {
    /// Stops the feeder and the workers (dropping the queue makes their sends fail) and
    /// waits for them, so nothing reads the source after the reader is gone.
    fn drop(&mut self) {
        self.order = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compress_all(data: &[u8], opts: &CompressOptions) -> Vec<u8> {
        let mut out = Vec::new();
        compress_reader(io::Cursor::new(data.to_vec()), opts)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// The compression `data` is in, and its bytes decompressed.
    fn decompressed(data: &[u8]) -> (Compression, Vec<u8>) {
        let (found, mut r) = crate::decompress(data).unwrap();
        let mut back = Vec::new();
        r.read_to_end(&mut back).unwrap();
        (found, back)
    }

    fn noise(len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        std::fs::File::open("/dev/urandom")
            .unwrap()
            .read_exact(&mut v)
            .unwrap();
        v
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// Text-like bytes that compress, with some noise.
    fn sample(len: usize) -> Vec<u8> {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if x.is_multiple_of(61) {
                    x as u8
                } else {
                    b"the quick brown fox jumps over the lazy dog "[i % 44]
                }
            })
            .collect()
    }

    fn gzip(level: Option<i32>, threads: usize) -> CompressOptions {
        CompressOptions {
            compression: Compression::Gzip,
            level,
            threads,
        }
    }

    #[test]
    fn gzip_round_trips_through_flate2_and_is_one_member() {
        for len in [
            0,
            1,
            1000,
            GZIP_BLOCK - 1,
            GZIP_BLOCK,
            GZIP_BLOCK + 1,
            3 * GZIP_BLOCK + 17,
        ] {
            let data = sample(len);
            for level in [0, 1, 6, 9] {
                let z = compress_all(&data, &gzip(Some(level), 3));
                assert_eq!(gunzip(&z), data, "len {len} level {level}");
                // A single member: the plain (not multi-member) decoder reads all of it.
                let mut one = Vec::new();
                flate2::read::GzDecoder::new(&z[..])
                    .read_to_end(&mut one)
                    .unwrap();
                assert_eq!(one.len(), data.len());
            }
        }
    }

    #[test]
    fn the_same_bytes_for_any_thread_count() {
        let data = sample(5 * GZIP_BLOCK + 12345);
        for c in [Compression::Gzip, Compression::Zstd] {
            let outs: Vec<Vec<u8>> = [1, 2, 4, 1]
                .iter()
                .map(|&t| {
                    compress_all(
                        &data,
                        &CompressOptions {
                            compression: c,
                            level: None,
                            threads: t,
                        },
                    )
                })
                .collect();
            assert!(outs.windows(2).all(|w| w[0] == w[1]), "{c:?}");
            assert!(outs[0].len() < data.len() / 2, "{c:?}");
            assert_eq!(decompressed(&outs[0]), (c, data.clone()));
        }
    }

    #[test]
    fn empty_input_is_a_valid_empty_stream() {
        for c in [Compression::Gzip, Compression::Zstd] {
            let opts = CompressOptions::new(c, None).unwrap();
            let z = compress_all(&[], &opts);
            assert_eq!(decompressed(&z), (c, Vec::new()));
        }
        assert!(
            compress_all(&[], &CompressOptions::new(Compression::None, None).unwrap()).is_empty()
        );
    }

    #[test]
    fn gzip_d_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        // Text, then random bytes (stored blocks), then text.
        let mut data = sample(2 * GZIP_BLOCK + 999);
        data.splice(GZIP_BLOCK..GZIP_BLOCK, noise(GZIP_BLOCK + 5));
        let path = dir.path().join("x.gz");
        std::fs::write(&path, compress_all(&data, &gzip(None, 2))).unwrap();
        let out = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(&path)
            .output()
            .expect("gzip is part of every Debian system");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, data);
        let t = std::process::Command::new("gzip")
            .arg("-t")
            .arg(&path)
            .status()
            .unwrap();
        assert!(t.success());
    }

    #[test]
    fn source_errors_come_out_of_read() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "bad tar"));
                }
                let n = buf.len().min(self.0);
                buf[..n].fill(1);
                self.0 -= n;
                Ok(n)
            }
        }
        for c in [Compression::Gzip, Compression::Zstd] {
            let opts = CompressOptions::new(c, None).unwrap();
            let mut r = compress_reader(Failing(3 * GZIP_BLOCK + 5), &opts).unwrap();
            let err = io::copy(&mut r, &mut io::sink()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{c:?}");
            assert!(err.to_string().contains("bad tar"), "{c:?}: {err}");
        }
    }

    #[test]
    fn a_reader_dropped_halfway_stops_its_threads() {
        let data = sample(8 * GZIP_BLOCK);
        let mut r = compress_reader(io::Cursor::new(data), &gzip(None, 2)).unwrap();
        let mut buf = [0u8; 100];
        r.read_exact(&mut buf).unwrap();
        drop(r);
    }

    #[test]
    fn random_blocks_are_stored_and_text_is_not() {
        let mut random = noise(2 * GZIP_BLOCK + 100);
        assert!(incompressible(&random[..GZIP_BLOCK]));
        assert!(!incompressible(&sample(GZIP_BLOCK)));
        // A block of text between random ones: stored, deflated, stored; one stream.
        random.splice(GZIP_BLOCK..GZIP_BLOCK, sample(GZIP_BLOCK));
        let z = compress_all(&random, &gzip(Some(6), 2));
        assert_eq!(gunzip(&z), random);
        // The same bytes when read a few at a time (across stored block headers).
        let mut r = compress_reader(io::Cursor::new(random.clone()), &gzip(Some(6), 2)).unwrap();
        let mut small = Vec::new();
        let mut buf = [0u8; 7];
        for i in 0.. {
            let n = r.read(&mut buf[..1 + i % 7]).unwrap();
            if n == 0 {
                break;
            }
            small.extend_from_slice(&buf[..n]);
        }
        assert_eq!(small, z);
        assert!(z.len() < random.len() - GZIP_BLOCK / 2, "{}", z.len());
        assert!(
            z.len() < 2 * GZIP_BLOCK + 100 + GZIP_BLOCK / 2 + 1000,
            "{}",
            z.len()
        );
    }

    #[test]
    fn levels_are_checked() {
        assert!(CompressOptions::new(Compression::Gzip, Some(9)).is_ok());
        assert!(CompressOptions::new(Compression::Zstd, Some(19)).is_ok());
        let e = CompressOptions::new(Compression::Gzip, Some(10)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "compression level 10 is not valid for gzip (0-9)"
        );
        assert!(CompressOptions::new(Compression::Zstd, Some(0)).is_err());
        assert!(CompressOptions::new(Compression::None, Some(3)).is_err());
    }
}
