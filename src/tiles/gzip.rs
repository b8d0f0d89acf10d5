//! gzip for tiles (RFC 1952), with one compressor per thread reused from tile to tile.
//!
//! A fresh deflate stream allocates and clears some 300 KB of window and hash tables, more
//! than most tiles weigh; resetting a kept one skips the allocation and its page faults.

use std::cell::RefCell;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

thread_local! {
    static COMPRESSOR: RefCell<Option<Compress>> = const { RefCell::new(None) };
}

/// gzip member header: magic, deflate, no flags, no mtime, fastest level, unknown OS.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff];

/// `bytes` as a gzip member, compressed at the fastest level: tiles are mostly varints,
/// and higher levels buy a few per cent of size for several times the CPU.
pub fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    // The fastest level leaves tiles at about two thirds of their size.
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4 + 64);
    out.extend_from_slice(&HEADER);
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let c = slot.get_or_insert_with(|| Compress::new(Compression::fast(), false));
        c.reset();
        let start_in = c.total_in();
        loop {
            let read = (c.total_in() - start_in) as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity());
            }
            match c.compress_vec(&bytes[read..], &mut out, FlushCompress::Finish) {
                Ok(Status::StreamEnd) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
    })?;
    let mut crc = Crc::new();
    crc.update(bytes);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn what_it_writes_gunzips_back_on_every_call() {
        let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for input in [&b""[..], b"a", &big, b"tile"] {
            let z = gzip(input).unwrap();
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&z[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, input);
        }
    }
}
