//! Chunked streaming encryption for payloads of any size, in bounded memory.
//!
//! [`StreamEncryptor`] (a [`Write`]) and [`StreamDecryptor`] (a [`Read`]) split the
//! plaintext into fixed-size chunks and seal each one with AES-256-GCM under the STREAM
//! construction (Hoang, Reyhanitabar, Rogaway, Vizár, "Online Authenticated-Encryption and
//! its Nonce-Reuse Misuse-Resistance", 2015), byte for byte as [`aes_gcm::aead::stream`]'s
//! `EncryptorBE32`/`DecryptorBE32` lay it out (a test checks this), with the AES-256-GCM
//! implementation chosen by [`AeadBackend`]. Each chunk's nonce is the
//! stream's random 7-byte prefix, the chunk's index as a 32-bit big-endian counter, and a
//! final-chunk flag byte, so a chunk that is moved, dropped, duplicated, or taken from another
//! stream fails to authenticate, and a stream cut off before its final chunk is detected.
//!
//! Like the [envelope](crate::envelope) format, every stream has a fresh random 256-bit data
//! key (DEK), wrapped by a named key-encryption key (KEK) from a [`KeyProvider`]. Each side
//! holds one chunk buffer (chunk size + 16 bytes), whatever the length of the stream.
//!
//! [`encrypt_file`] and [`decrypt_file`] add atomic file handling: the output is written to
//! a temporary file in the destination's directory, flushed to disk, and renamed over the
//! destination only once everything succeeded (for decryption: once the final chunk
//! authenticated), so a failed or tampered run never leaves a partial file under the
//! destination's name.
//!
//! # Format (version 1)
//!
//! Integers are big-endian.
//!
//! | offset       | length | field                                                         |
//! |--------------|--------|---------------------------------------------------------------|
//! | 0            | 3      | magic `"FSS"` (`0x46 0x53 0x53`)                              |
//! | 3            | 1      | format version, `1`                                           |
//! | 4            | 1      | key name length *n*, 1..=64                                   |
//! | 5            | *n*    | KEK name                                                      |
//! | 5+*n*        | 4      | KEK version, `u32`, >= 1                                      |
//! | 9+*n*        | 2      | wrapped DEK length *w*, `u16`, 1..=1024                       |
//! | 11+*n*       | *w*    | wrapped DEK (provider-defined)                                 |
//! | 11+*n*+*w*   | 4      | chunk size *c*, `u32`, 1024..=16,777,216                      |
//! | 15+*n*+*w*   | 7      | nonce prefix (random)                                         |
//! | 22+*n*+*w*   | ...    | chunks                                                        |
//!
//! The chunks follow. Each is sealed as `AES-256-GCM(DEK, nonce, chunk AAD, plaintext)`
//! with `nonce = prefix (7) || chunk index (u32) || flag (1 byte: 0x01 for the final chunk,
//! else 0x00)`, and framed as:
//!
//! | kind      | bytes on the wire                                                          |
//! |-----------|----------------------------------------------------------------------------|
//! | non-final | `0x00` \|\| ciphertext (exactly *c* bytes) \|\| tag (16)                     |
//! | final     | `0x01` \|\| plaintext length *l* (`u32`, 0 ≤ *l* < *c*) \|\| ciphertext (*l*) \|\| tag (16) |
//!
//! A stream is any number (up to 2^32 − 1) of non-final chunks followed by exactly one final
//! chunk; when the plaintext length is a multiple of *c* the final chunk is empty
//! (*l* = 0). The marker byte and the length are not secret and not separately
//! authenticated, but they cannot be changed unnoticed: the marker selects the nonce's
//! final-chunk flag and the length selects the ciphertext bytes, both covered by the tag.
//! Because the final chunk states its own length, a reader knows exactly where the stream
//! ends and tells the three failures apart: input that ends before the final chunk is
//! complete ([`Error::StreamTruncated`]), a chunk that does not authenticate — altered,
//! reordered, dropped, duplicated, or from another stream ([`Error::StreamChunk`]) — and
//! bytes after the final chunk ([`Error::StreamTrailingData`]).
//!
//! The chunk AAD is the same for every chunk:
//!
//! ```text
//! "finsec/stream" (13 bytes) || format version (1 byte) || chunk size c (u32)
//!     || length of the user AAD (u64) || user AAD
//! ```
//!
//! It binds the format version and the chunk size (so neither can be altered to change how
//! the chunks are parsed) and the caller's associated data (so a stream decrypts only in the
//! context it was written for). The nonce prefix is bound through the nonce. The KEK
//! reference and the wrapped DEK are deliberately *not* in the chunk AAD: that lets a
//! stream's header be re-wrapped under a new KEK version without re-encrypting the data, and
//! tampering with them is still caught, because the key provider binds the wrapped DEK to
//! its KEK reference (unwrap fails), and any other DEK fails every chunk.
//!
//! # Reading before the end
//!
//! [`StreamDecryptor`] only hands out plaintext of chunks that authenticated, but it hands
//! out each chunk as soon as it has authenticated, before later chunks have been read. The
//! stream as a whole is only known to be complete and unmodified when a read returns
//! `Ok(0)` (or [`StreamDecryptor::next_chunk`] returns `Ok(None)`): by then the final chunk
//! authenticated and no data follows it. Consumers that act on the plaintext must wait for
//! that, or use [`decrypt_file`], which does.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use zeroize::Zeroizing;

use crate::backend::{AeadBackend, DataCipher};
use crate::error::{Error, Result};
use crate::provider::{KekRef, KeyName, KeyProvider, MAX_KEY_NAME_LEN, MAX_WRAPPED_DEK_LEN};
use crate::secret::{Key256, random_array};

/// Magic bytes at the start of every stream.
pub const MAGIC: [u8; 3] = *b"FSS";
/// The stream format version this build writes and reads.
pub const VERSION: u8 = 1;
/// Chunk size used by [`StreamEncryptor::new`] and [`encrypt_file`] (64 KiB).
pub const DEFAULT_CHUNK_SIZE: usize = 64 * 1024;
/// Smallest chunk size accepted (1 KiB).
pub const MIN_CHUNK_SIZE: usize = 1024;
/// Largest chunk size accepted (16 MiB); also bounds what a header may make a reader
/// allocate.
pub const MAX_CHUNK_SIZE: usize = 16 * 1024 * 1024;
/// Length of the random nonce prefix in the header.
pub const NONCE_PREFIX_LEN: usize = 7;
/// Length of the authentication tag at the end of every chunk.
pub const TAG_LEN: usize = 16;
/// Bytes a non-final chunk adds to its plaintext on the wire (marker and tag).
pub const CHUNK_OVERHEAD: usize = 1 + TAG_LEN;
/// Bytes the final chunk adds to its plaintext on the wire (marker, length and tag).
pub const FINAL_CHUNK_OVERHEAD: usize = 1 + 4 + TAG_LEN;

/// Marker byte of a non-final chunk.
const MARKER_NEXT: u8 = 0x00;
/// Marker byte of the final chunk.
const MARKER_FINAL: u8 = 0x01;

/// Domain label at the start of the chunk AAD.
const AAD_LABEL: &[u8] = b"finsec/stream";

/// Seals or opens the chunks of one stream in order: the STREAM construction with a
/// 32-bit big-endian counter (the nonce layout in the module docs).
struct ChunkCipher {
    cipher: DataCipher,
    prefix: [u8; NONCE_PREFIX_LEN],
    /// Index of the next chunk.
    position: u32,
}

impl ChunkCipher {
    fn new(backend: AeadBackend, dek: &Key256, prefix: [u8; NONCE_PREFIX_LEN]) -> Result<Self> {
        Ok(Self {
            cipher: DataCipher::new(backend, dek)?,
            prefix,
            position: 0,
        })
    }

    /// The nonce of the next chunk: prefix, counter, and the final-chunk flag.
    fn nonce(&self, last: bool) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        let counter = self.position.to_be_bytes();
        let parts = self.prefix.iter().chain(&counter).copied();
        for (dst, src) in nonce.iter_mut().zip(parts.chain([u8::from(last)])) {
            *dst = src;
        }
        nonce
    }

    /// Moves to the next chunk after a non-final one.
    fn advance(&mut self, last: bool) -> Option<()> {
        if !last {
            self.position = self.position.checked_add(1)?;
        }
        Some(())
    }

    /// Seals `buf` (the chunk's plaintext) in place and appends the tag. `None` once the
    /// counter is exhausted: a non-final chunk may not take the last counter value, which
    /// stays free for the final chunk.
    fn seal(&mut self, aad: &[u8], buf: &mut Vec<u8>, last: bool) -> Option<()> {
        if !last && self.position == u32::MAX {
            return None;
        }
        let tag = self
            .cipher
            .seal_in_place(&self.nonce(last), aad, buf)
            .ok()?;
        buf.extend_from_slice(&tag);
        self.advance(last)
    }

    /// Opens `buf` (the sealed chunk, tag last) in place, leaving only the plaintext.
    /// `None` if it does not authenticate.
    fn open(&mut self, aad: &[u8], buf: &mut Vec<u8>, last: bool) -> Option<()> {
        if !last && self.position == u32::MAX {
            return None;
        }
        let split = buf.len().checked_sub(TAG_LEN)?;
        let tag: [u8; TAG_LEN] = buf.get(split..)?.try_into().ok()?;
        buf.truncate(split);
        let nonce = self.nonce(last);
        self.cipher.open_in_place(&nonce, aad, buf, &tag).ok()?;
        self.advance(last)
    }
}

fn check_chunk_size(chunk_size: usize) -> Result<()> {
    if (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            name: "chunk size",
            reason: format!("{chunk_size} is outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}"),
        })
    }
}

/// The AAD every chunk of a stream is sealed with (see the module docs).
fn chunk_aad(chunk_size: u32, user_aad: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + 1 + 4 + 8 + user_aad.len());
    aad.extend_from_slice(AAD_LABEL);
    aad.push(VERSION);
    aad.extend_from_slice(&chunk_size.to_be_bytes());
    aad.extend_from_slice(&(user_aad.len() as u64).to_be_bytes());
    aad.extend_from_slice(user_aad);
    aad
}

/// Converts an error for the `Read`/`Write` impls, keeping I/O errors as they were.
fn to_io(e: Error) -> io::Error {
    match e {
        Error::Stream(io) => io,
        other => {
            let kind = match other {
                Error::StreamChunk { .. }
                | Error::StreamTrailingData
                | Error::KeyUnwrap
                | Error::Decryption => io::ErrorKind::InvalidData,
                Error::StreamTruncated { .. } | Error::Truncated { .. } => {
                    io::ErrorKind::UnexpectedEof
                }
                _ => io::ErrorKind::Other,
            };
            io::Error::new(kind, other)
        }
    }
}

/// Recovers the [`Error`] from an `io::Error` returned by the [`Read`] and [`Write`] impls
/// of [`StreamDecryptor`] and [`StreamEncryptor`] (for example from [`io::copy`]). An I/O
/// error of the underlying reader or writer comes back as [`Error::Stream`].
pub fn error_from_io(e: io::Error) -> Error {
    if !e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        return Error::Stream(e);
    }
    let kind = e.kind();
    match e.into_inner().map(|inner| inner.downcast::<Error>()) {
        Some(Ok(inner)) => *inner,
        Some(Err(other)) => Error::Stream(io::Error::new(kind, other)),
        None => Error::Stream(io::Error::from(kind)),
    }
}

/// How a [`StreamEncryptor`] seals: the chunk size and the AES-GCM backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamOptions {
    /// Plaintext bytes per chunk, [`MIN_CHUNK_SIZE`]..=[`MAX_CHUNK_SIZE`]; default
    /// [`DEFAULT_CHUNK_SIZE`].
    pub chunk_size: usize,
    /// The AES-256-GCM implementation; default [`AeadBackend::default`].
    pub backend: AeadBackend,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            backend: AeadBackend::default(),
        }
    }
}

impl StreamOptions {
    /// The same options with another chunk size (checked when the stream starts).
    #[must_use]
    pub fn chunk_size(mut self, chunk_size: usize) -> Self {
        self.chunk_size = chunk_size;
        self
    }

    /// The same options with another backend.
    #[must_use]
    pub fn backend(mut self, backend: AeadBackend) -> Self {
        self.backend = backend;
        self
    }
}

/// Encrypts a stream written to it, writing the sealed stream to `W`.
///
/// The header is written by the constructor. Plaintext is buffered until a chunk is full;
/// [`finish`](Self::finish) seals the final chunk and must be called: a stream dropped
/// without it has no final chunk, and decrypting it fails with
/// [`Error::StreamTruncated`]. After any error the encryptor refuses further writes.
///
/// [`Write::flush`] flushes the inner writer only; a partly filled chunk stays buffered
/// until it is full or the stream is finished.
pub struct StreamEncryptor<W: Write> {
    inner: W,
    encryptor: Option<ChunkCipher>,
    /// Plaintext of the chunk being filled; holds the sealed chunk while it is written out.
    buf: Zeroizing<Vec<u8>>,
    aad: Vec<u8>,
    chunk_size: usize,
    kek: KekRef,
    chunks: u64,
    failed: bool,
}

impl<W: Write> StreamEncryptor<W> {
    /// Starts a stream with [`DEFAULT_CHUNK_SIZE`], wrapping a fresh data key under the
    /// primary version of the key `key`, and writes the header to `inner`.
    ///
    /// # Errors
    /// The provider's errors ([`Error::UnknownKey`], [`Error::KeyUsageExhausted`], ...);
    /// [`Error::Random`]; [`Error::Stream`] if writing the header fails.
    pub fn new<P: KeyProvider + ?Sized>(
        provider: &P,
        key: &KeyName,
        aad: &[u8],
        inner: W,
    ) -> Result<Self> {
        Self::with_chunk_size(provider, key, aad, DEFAULT_CHUNK_SIZE, inner)
    }

    /// As [`new`](Self::new) with an explicit chunk size
    /// ([`MIN_CHUNK_SIZE`]..=[`MAX_CHUNK_SIZE`]).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a chunk size out of range, and as [`new`](Self::new).
    pub fn with_chunk_size<P: KeyProvider + ?Sized>(
        provider: &P,
        key: &KeyName,
        aad: &[u8],
        chunk_size: usize,
        inner: W,
    ) -> Result<Self> {
        let options = StreamOptions::default().chunk_size(chunk_size);
        Self::with_options(provider, key, aad, options, inner)
    }

    /// As [`new`](Self::new) with explicit [`StreamOptions`] (chunk size and AES-GCM
    /// backend).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a chunk size out of range, and as [`new`](Self::new).
    pub fn with_options<P: KeyProvider + ?Sized>(
        provider: &P,
        key: &KeyName,
        aad: &[u8],
        options: StreamOptions,
        mut inner: W,
    ) -> Result<Self> {
        let StreamOptions {
            chunk_size,
            backend,
        } = options;
        check_chunk_size(chunk_size)?;
        let chunk_size_u32 = u32::try_from(chunk_size).map_err(|_| Error::InvalidParameter {
            name: "chunk size",
            reason: format!("{chunk_size} does not fit the header"),
        })?;
        let dek = Key256::generate()?;
        let nonce_prefix: [u8; NONCE_PREFIX_LEN] = random_array()?;
        let (kek, wrapped) = provider.wrap_dek(key, &dek)?;

        let name = kek.name.as_str().as_bytes();
        let name_len = u8::try_from(name.len()).map_err(|_| Error::InvalidHeader {
            field: "key name length",
            reason: format!("{} bytes does not fit the header", name.len()),
        })?;
        let wrapped_len =
            u16::try_from(wrapped.as_bytes().len()).map_err(|_| Error::InvalidHeader {
                field: "wrapped data key length",
                reason: format!("{} bytes does not fit the header", wrapped.as_bytes().len()),
            })?;
        if kek.version == 0 {
            return Err(Error::InvalidHeader {
                field: "key version",
                reason: "the provider returned version 0".into(),
            });
        }
        let mut header = Vec::with_capacity(22 + name.len() + wrapped.as_bytes().len());
        header.extend_from_slice(&MAGIC);
        header.push(VERSION);
        header.push(name_len);
        header.extend_from_slice(name);
        header.extend_from_slice(&kek.version.to_be_bytes());
        header.extend_from_slice(&wrapped_len.to_be_bytes());
        header.extend_from_slice(wrapped.as_bytes());
        header.extend_from_slice(&chunk_size_u32.to_be_bytes());
        header.extend_from_slice(&nonce_prefix);
        inner.write_all(&header).map_err(Error::Stream)?;

        let encryptor = ChunkCipher::new(backend, &dek, nonce_prefix)?;
        Ok(Self {
            inner,
            encryptor: Some(encryptor),
            buf: Zeroizing::new(Vec::with_capacity(chunk_size + TAG_LEN)),
            aad: chunk_aad(chunk_size_u32, aad),
            chunk_size,
            kek,
            chunks: 0,
            failed: false,
        })
    }

    /// The KEK version the stream's data key is wrapped under.
    pub fn kek(&self) -> &KekRef {
        &self.kek
    }

    /// The chunk size in plaintext bytes.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Encrypts `plaintext` as the next part of the stream, writing every chunk that
    /// becomes full. Same as [`Write::write_all`] with typed errors.
    ///
    /// # Errors
    /// [`Error::Stream`] if the inner writer fails; [`Error::TooLarge`] past 2^32 − 1
    /// chunks; [`Error::InvalidParameter`] if the encryptor failed earlier.
    pub fn update(&mut self, mut plaintext: &[u8]) -> Result<()> {
        self.check_usable()?;
        while !plaintext.is_empty() {
            let room = self.chunk_size.saturating_sub(self.buf.len());
            let (head, rest) = plaintext
                .split_at_checked(room.min(plaintext.len()))
                .unwrap_or((plaintext, &[]));
            self.buf.extend_from_slice(head);
            plaintext = rest;
            if self.buf.len() >= self.chunk_size {
                // A full chunk is never the final one (see the format), so seal it now.
                let sealed = self.seal_next();
                if sealed.is_err() {
                    self.failed = true;
                }
                sealed?;
            }
        }
        Ok(())
    }

    fn check_usable(&self) -> Result<()> {
        if self.failed || self.encryptor.is_none() {
            return Err(Error::InvalidParameter {
                name: "stream encryptor",
                reason: "an earlier write failed; the stream is unusable".into(),
            });
        }
        Ok(())
    }

    fn seal_next(&mut self) -> Result<()> {
        let encryptor = self.encryptor.as_mut().ok_or(Error::InvalidParameter {
            name: "stream encryptor",
            reason: "the stream is already finished".into(),
        })?;
        let limit = u64::from(u32::MAX - 1).saturating_mul(self.chunk_size as u64);
        encryptor
            .seal(&self.aad, &mut self.buf, false)
            .ok_or(Error::TooLarge {
                size: self
                    .chunks
                    .saturating_add(1)
                    .saturating_mul(self.chunk_size as u64),
                limit,
            })?;
        self.inner
            .write_all(&[MARKER_NEXT])
            .map_err(Error::Stream)?;
        self.inner.write_all(&self.buf).map_err(Error::Stream)?;
        self.buf.clear();
        self.chunks = self.chunks.saturating_add(1);
        Ok(())
    }

    /// Seals and writes the final chunk, flushes the inner writer and returns it.
    ///
    /// # Errors
    /// [`Error::Stream`] if the inner writer fails; [`Error::InvalidParameter`] if the
    /// encryptor failed earlier (the stream must then be discarded).
    pub fn finish(mut self) -> Result<W> {
        self.check_usable()?;
        let mut encryptor = self.encryptor.take().ok_or(Error::InvalidParameter {
            name: "stream encryptor",
            reason: "the stream is already finished".into(),
        })?;
        // Always less than the chunk size: a full buffer is sealed as soon as it fills.
        let len = u32::try_from(self.buf.len()).map_err(|_| Error::InvalidParameter {
            name: "chunk size",
            reason: "final chunk does not fit the format".into(),
        })?;
        encryptor
            .seal(&self.aad, &mut self.buf, true)
            .ok_or(Error::TooLarge {
                size: self.chunks.saturating_mul(self.chunk_size as u64),
                limit: u64::from(u32::MAX - 1).saturating_mul(self.chunk_size as u64),
            })?;
        let mut frame = [MARKER_FINAL, 0, 0, 0, 0];
        if let Some(dst) = frame.get_mut(1..) {
            dst.copy_from_slice(&len.to_be_bytes());
        }
        self.inner.write_all(&frame).map_err(Error::Stream)?;
        self.inner.write_all(&self.buf).map_err(Error::Stream)?;
        self.buf.clear();
        self.inner.flush().map_err(Error::Stream)?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for StreamEncryptor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf).map_err(to_io)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.update(buf).map_err(to_io)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> fmt::Debug for StreamEncryptor<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamEncryptor")
            .field("kek", &self.kek)
            .field("chunk_size", &self.chunk_size)
            .field("chunks_written", &self.chunks)
            .field("finished", &self.encryptor.is_none())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// Why a decryptor stopped; kept so every later read reports the same error.
#[derive(Debug, Clone, Copy)]
enum Failure {
    Chunk(u64),
    Truncated(u64),
    Trailing,
    Io(io::ErrorKind),
}

impl Failure {
    fn of(e: &Error) -> Self {
        match e {
            Error::StreamChunk { index } => Self::Chunk(*index),
            Error::StreamTruncated { chunks } => Self::Truncated(*chunks),
            Error::StreamTrailingData => Self::Trailing,
            Error::Stream(io) => Self::Io(io.kind()),
            _ => Self::Io(io::ErrorKind::Other),
        }
    }

    fn error(self) -> Error {
        match self {
            Self::Chunk(index) => Error::StreamChunk { index },
            Self::Truncated(chunks) => Error::StreamTruncated { chunks },
            Self::Trailing => Error::StreamTrailingData,
            Self::Io(kind) => Error::Stream(io::Error::new(
                kind,
                "the stream failed earlier; no further plaintext is released",
            )),
        }
    }
}

/// Decrypts a stream read from `R`, yielding only plaintext of chunks that authenticated.
///
/// The constructor reads and checks the header and unwraps the data key. Reads return
/// `Ok(0)` only after the final chunk authenticated and no data follows it; a stream that
/// ends before its final chunk is complete fails with [`Error::StreamTruncated`], a chunk
/// that was altered, reordered, dropped or taken from another stream fails with
/// [`Error::StreamChunk`], and bytes after the final chunk fail with
/// [`Error::StreamTrailingData`]. After an error, every later read fails the same way.
///
/// Through [`Read`], errors arrive as `io::Error` whose inner error is the
/// [`Error`]; [`next_chunk`](Self::next_chunk) returns them directly.
pub struct StreamDecryptor<R: Read> {
    inner: R,
    decryptor: Option<ChunkCipher>,
    /// The current chunk: sealed while being read, plaintext once authenticated.
    buf: Zeroizing<Vec<u8>>,
    /// Bytes of `buf` already handed out.
    pos: usize,
    aad: Vec<u8>,
    chunk_size: usize,
    kek: KekRef,
    chunks: u64,
    finished: bool,
    failure: Option<Failure>,
}

/// Reads until `buf` is full or the input ends; returns the number of bytes read.
fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..) {
        if rest.is_empty() {
            break;
        }
        match r.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads one header field of exactly `N` bytes.
fn read_field<R: Read, const N: usize>(
    r: &mut R,
    field: &'static str,
    offset: &mut usize,
) -> Result<[u8; N]> {
    let mut out = [0u8; N];
    read_field_into(r, &mut out, field, offset)?;
    Ok(out)
}

fn read_field_into<R: Read>(
    r: &mut R,
    out: &mut [u8],
    field: &'static str,
    offset: &mut usize,
) -> Result<()> {
    let got = read_up_to(r, out).map_err(Error::Stream)?;
    if got < out.len() {
        if *offset == 0 && got == 0 {
            return Err(Error::Empty);
        }
        return Err(Error::Truncated {
            field,
            offset: *offset,
            needed: out.len(),
            available: got,
        });
    }
    *offset += out.len();
    Ok(())
}

impl<R: Read> StreamDecryptor<R> {
    /// Reads the stream header from `inner`, checks it, and unwraps the data key with
    /// `provider`. `aad` must be the associated data the stream was encrypted with.
    ///
    /// # Errors
    /// [`Error::Empty`] / [`Error::Truncated`] for a short header; [`Error::BadMagic`];
    /// [`Error::UnsupportedVersion`]; [`Error::InvalidHeader`] for an out-of-range field;
    /// the provider's errors ([`Error::UnknownKey`], [`Error::KeyRetired`],
    /// [`Error::KeyUnwrap`]); [`Error::Stream`] if reading fails.
    pub fn new<P: KeyProvider + ?Sized>(provider: &P, aad: &[u8], inner: R) -> Result<Self> {
        Self::with_backend(provider, aad, AeadBackend::default(), inner)
    }

    /// As [`new`](Self::new), opening chunks with `backend`. Any backend opens what any
    /// other sealed.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_backend<P: KeyProvider + ?Sized>(
        provider: &P,
        aad: &[u8],
        backend: AeadBackend,
        mut inner: R,
    ) -> Result<Self> {
        let mut offset = 0usize;
        let magic: [u8; 3] = read_field(&mut inner, "magic", &mut offset)?;
        if magic != MAGIC {
            return Err(Error::BadMagic { expected: "stream" });
        }
        let [version] = read_field(&mut inner, "format version", &mut offset)?;
        if version != VERSION {
            return Err(Error::UnsupportedVersion {
                format: "stream",
                version: u16::from(version),
            });
        }
        let [name_len] = read_field(&mut inner, "key name length", &mut offset)?;
        let name_len = usize::from(name_len);
        if name_len == 0 || name_len > MAX_KEY_NAME_LEN {
            return Err(Error::InvalidHeader {
                field: "key name length",
                reason: format!("{name_len} is outside 1..={MAX_KEY_NAME_LEN}"),
            });
        }
        let mut name = vec![0u8; name_len];
        read_field_into(&mut inner, &mut name, "key name", &mut offset)?;
        let name = String::from_utf8(name)
            .map_err(|_| Error::InvalidHeader {
                field: "key name",
                reason: "not UTF-8".into(),
            })
            .and_then(|n| {
                KeyName::new(n).map_err(|e| Error::InvalidHeader {
                    field: "key name",
                    reason: e.to_string(),
                })
            })?;
        let key_version = u32::from_be_bytes(read_field(&mut inner, "key version", &mut offset)?);
        if key_version == 0 {
            return Err(Error::InvalidHeader {
                field: "key version",
                reason: "versions start at 1".into(),
            });
        }
        let wrapped_len = usize::from(u16::from_be_bytes(read_field(
            &mut inner,
            "wrapped data key length",
            &mut offset,
        )?));
        if wrapped_len == 0 || wrapped_len > MAX_WRAPPED_DEK_LEN {
            return Err(Error::InvalidHeader {
                field: "wrapped data key length",
                reason: format!("{wrapped_len} is outside 1..={MAX_WRAPPED_DEK_LEN}"),
            });
        }
        let mut wrapped = vec![0u8; wrapped_len];
        read_field_into(&mut inner, &mut wrapped, "wrapped data key", &mut offset)?;
        let chunk_size_u32 = u32::from_be_bytes(read_field(&mut inner, "chunk size", &mut offset)?);
        let chunk_size = usize::try_from(chunk_size_u32).unwrap_or(usize::MAX);
        check_chunk_size(chunk_size).map_err(|_| Error::InvalidHeader {
            field: "chunk size",
            reason: format!("{chunk_size_u32} is outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}"),
        })?;
        let nonce_prefix: [u8; NONCE_PREFIX_LEN] =
            read_field(&mut inner, "nonce prefix", &mut offset)?;

        let kek = KekRef {
            name,
            version: key_version,
        };
        let dek = provider.unwrap_dek(&kek, &wrapped)?;
        let decryptor = ChunkCipher::new(backend, &dek, nonce_prefix)?;
        Ok(Self {
            inner,
            decryptor: Some(decryptor),
            buf: Zeroizing::new(Vec::with_capacity(chunk_size + TAG_LEN)),
            pos: 0,
            aad: chunk_aad(chunk_size_u32, aad),
            chunk_size,
            kek,
            chunks: 0,
            finished: false,
            failure: None,
        })
    }

    /// The KEK version the stream's data key is wrapped under (from the header).
    pub fn kek(&self) -> &KekRef {
        &self.kek
    }

    /// The chunk size in plaintext bytes (from the header).
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Whether the final chunk authenticated and the input ended right after it: the whole
    /// stream has been verified.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Gives back the inner reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next piece of authenticated plaintext (the rest of the current chunk, or the
    /// next chunk), or `Ok(None)` once the final chunk authenticated and nothing follows.
    ///
    /// # Errors
    /// [`Error::StreamChunk`], [`Error::StreamTruncated`], [`Error::StreamTrailingData`],
    /// [`Error::Stream`] (see the type docs).
    pub fn next_chunk(&mut self) -> Result<Option<&[u8]>> {
        loop {
            if self.pos < self.buf.len() {
                let start = self.pos;
                self.pos = self.buf.len();
                return Ok(self.buf.get(start..));
            }
            if self.finished {
                return Ok(None);
            }
            if let Some(failure) = self.failure {
                return Err(failure.error());
            }
            if let Err(e) = self.open_next() {
                self.buf.clear();
                self.pos = 0;
                self.failure = Some(Failure::of(&e));
                return Err(e);
            }
        }
    }

    /// Reads and authenticates the next chunk into `buf`.
    fn open_next(&mut self) -> Result<()> {
        let index = self.chunks;
        let truncated = Error::StreamTruncated { chunks: index };
        self.buf.clear();
        self.pos = 0;
        let mut marker = [0u8; 1];
        if read_up_to(&mut self.inner, &mut marker).map_err(Error::Stream)? == 0 {
            return Err(truncated);
        }
        match marker {
            [MARKER_NEXT] => {
                let sealed_len = self.chunk_size + TAG_LEN;
                self.buf.resize(sealed_len, 0);
                if read_up_to(&mut self.inner, &mut self.buf).map_err(Error::Stream)? < sealed_len {
                    return Err(truncated);
                }
                let decryptor = self
                    .decryptor
                    .as_mut()
                    .ok_or(Error::StreamChunk { index })?;
                decryptor
                    .open(&self.aad, &mut self.buf, false)
                    .ok_or(Error::StreamChunk { index })?;
                self.chunks = index.saturating_add(1);
                Ok(())
            }
            [MARKER_FINAL] => {
                let mut len = [0u8; 4];
                if read_up_to(&mut self.inner, &mut len).map_err(Error::Stream)? < len.len() {
                    return Err(truncated);
                }
                let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
                if len >= self.chunk_size {
                    // Not a length this format produces; refuse before allocating.
                    return Err(Error::StreamChunk { index });
                }
                let sealed_len = len + TAG_LEN;
                self.buf.resize(sealed_len, 0);
                if read_up_to(&mut self.inner, &mut self.buf).map_err(Error::Stream)? < sealed_len {
                    return Err(truncated);
                }
                let mut decryptor = self.decryptor.take().ok_or(Error::StreamChunk { index })?;
                decryptor
                    .open(&self.aad, &mut self.buf, true)
                    .ok_or(Error::StreamChunk { index })?;
                self.chunks = index.saturating_add(1);
                let mut probe = [0u8; 1];
                if read_up_to(&mut self.inner, &mut probe).map_err(Error::Stream)? != 0 {
                    // Withhold the final chunk's plaintext: the stream is malformed.
                    self.buf.clear();
                    return Err(Error::StreamTrailingData);
                }
                self.finished = true;
                Ok(())
            }
            _ => Err(Error::StreamChunk { index }),
        }
    }
}

impl<R: Read> Read for StreamDecryptor<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(avail) = self.buf.get(self.pos..).filter(|a| !a.is_empty()) {
                let n = avail.len().min(out.len());
                if let (Some(dst), Some(src)) = (out.get_mut(..n), avail.get(..n)) {
                    dst.copy_from_slice(src);
                }
                self.pos += n;
                return Ok(n);
            }
            if self.finished {
                return Ok(0);
            }
            if let Some(failure) = self.failure {
                return Err(to_io(failure.error()));
            }
            if let Err(e) = self.open_next() {
                self.buf.clear();
                self.pos = 0;
                self.failure = Some(Failure::of(&e));
                return Err(to_io(e));
            }
        }
    }
}

impl<R: Read> fmt::Debug for StreamDecryptor<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamDecryptor")
            .field("kek", &self.kek)
            .field("chunk_size", &self.chunk_size)
            .field("chunks_read", &self.chunks)
            .field("finished", &self.finished)
            .field("failed", &self.failure.is_some())
            .finish_non_exhaustive()
    }
}

/// The directory a destination file lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes through `fill` into a temporary file next to `dst`, flushes it to disk and
/// renames it over `dst`; on any error the temporary file is removed and `dst` untouched.
fn write_atomically<T>(dst: &Path, fill: impl FnOnce(&mut File) -> Result<T>) -> Result<T> {
    let dir = parent_dir(dst);
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    let value = fill(tmp.as_file_mut())?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io(tmp.path(), e))?;
    tmp.persist(dst).map_err(|e| Error::io(dst, e.error))?;
    sync_dir(dir)?;
    Ok(value)
}

/// Makes a rename in `dir` durable (a no-op where directories cannot be synced).
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir, e))?;
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
    }
    Ok(())
}

/// Encrypts the file `src` into `dst` as a stream (default chunk size), under the primary
/// version of the key `key` and bound to `aad`. Returns the number of plaintext bytes.
///
/// The output is written to a temporary file in `dst`'s directory (mode 0600 on Unix),
/// flushed to disk and renamed over `dst` only when everything succeeded. On error the
/// temporary file is removed and `dst` is left as it was (absent, or the earlier file).
///
/// # Errors
/// [`Error::Io`] naming the file that failed; the provider's errors; [`Error::Random`].
pub fn encrypt_file<P: KeyProvider + ?Sized>(
    provider: &P,
    key: &KeyName,
    src: &Path,
    dst: &Path,
    aad: &[u8],
) -> Result<u64> {
    let mut input = File::open(src).map_err(|e| Error::io(src, e))?;
    write_atomically(dst, |out| {
        let mut enc = StreamEncryptor::new(provider, key, aad, &mut *out)
            .map_err(|e| stream_io_at(e, dst))?;
        let mut buf = Zeroizing::new(vec![0u8; DEFAULT_CHUNK_SIZE]);
        let mut total = 0u64;
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(src, e)),
            };
            let data = buf.get(..n).unwrap_or_default();
            enc.update(data).map_err(|e| stream_io_at(e, dst))?;
            total = total.saturating_add(n as u64);
        }
        enc.finish().map_err(|e| stream_io_at(e, dst))?;
        Ok(total)
    })
}

/// Decrypts the stream in the file `src` into `dst`, checking it against `aad`. Returns
/// the number of plaintext bytes.
///
/// Plaintext is written to a temporary file in `dst`'s directory (mode 0600 on Unix),
/// which is flushed to disk and renamed over `dst` only after the final chunk
/// authenticated and no data followed it. On any error — including a truncated or
/// tampered stream — the temporary file is removed and nothing is written under `dst`'s
/// name (an existing `dst` is left as it was).
///
/// # Errors
/// As [`StreamDecryptor::new`] and [`StreamDecryptor::next_chunk`]; [`Error::Io`] naming
/// the file that failed.
pub fn decrypt_file<P: KeyProvider + ?Sized>(
    provider: &P,
    src: &Path,
    dst: &Path,
    aad: &[u8],
) -> Result<u64> {
    let input = File::open(src).map_err(|e| Error::io(src, e))?;
    let mut dec = StreamDecryptor::new(provider, aad, input).map_err(|e| stream_io_at(e, src))?;
    write_atomically(dst, |out| {
        let mut total = 0u64;
        while let Some(chunk) = dec.next_chunk().map_err(|e| stream_io_at(e, src))? {
            out.write_all(chunk).map_err(|e| Error::io(dst, e))?;
            total = total.saturating_add(chunk.len() as u64);
        }
        Ok(total)
    })
}

/// Gives a bare stream I/O error the path it happened on.
fn stream_io_at(e: Error, path: &Path) -> Error {
    match e {
        Error::Stream(io) => Error::io(path, io),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chunk layout is byte for byte that of `aead::stream`'s `EncryptorBE32`, on every
    /// backend: streams written before the backends existed still open.
    #[test]
    fn chunks_match_aead_stream_be32() {
        use aes_gcm::aead::generic_array::GenericArray;
        use aes_gcm::aead::stream::EncryptorBE32;
        use aes_gcm::{Aes256Gcm, KeyInit};

        let key = Key256::from_bytes([0x42; 32]);
        let prefix = [9u8, 8, 7, 6, 5, 4, 3];
        let aad = chunk_aad(1024, b"context");
        let chunks: [&[u8]; 4] = [&[1; 1024], &[2; 1024], &[3; 1024], &[4; 17]];
        for &backend in AeadBackend::ALL {
            let aes = Aes256Gcm::new_from_slice(key.expose_secret()).unwrap();
            let mut reference = EncryptorBE32::from_aead(aes, &GenericArray::from(prefix));
            let mut ours = ChunkCipher::new(backend, &key, prefix).unwrap();
            let mut opener = ChunkCipher::new(backend, &key, prefix).unwrap();
            for (i, chunk) in chunks.iter().enumerate() {
                let last = i == chunks.len() - 1;
                let mut expected = chunk.to_vec();
                if last {
                    let (mut enc, mut buf) = (
                        EncryptorBE32::from_aead(
                            Aes256Gcm::new_from_slice(key.expose_secret()).unwrap(),
                            &GenericArray::from(prefix),
                        ),
                        Vec::new(),
                    );
                    // Bring a fresh reference to the same position, then seal last.
                    for _ in 0..i {
                        enc.encrypt_next_in_place(&aad, &mut buf).unwrap();
                        buf.clear();
                    }
                    enc.encrypt_last_in_place(&aad, &mut expected).unwrap();
                } else {
                    reference
                        .encrypt_next_in_place(&aad, &mut expected)
                        .unwrap();
                }
                let mut got = chunk.to_vec();
                ours.seal(&aad, &mut got, last).unwrap();
                assert_eq!(got, expected, "{backend}: chunk {i}");
                opener.open(&aad, &mut got, last).unwrap();
                assert_eq!(got, *chunk, "{backend}: chunk {i} opens");
            }
        }
    }

    #[test]
    fn the_counter_keeps_its_last_value_for_the_final_chunk() {
        let key = Key256::from_bytes([1; 32]);
        let mut cipher = ChunkCipher::new(AeadBackend::default(), &key, [0; 7]).unwrap();
        cipher.position = u32::MAX - 1;
        let mut buf = vec![0u8; 8];
        assert!(cipher.seal(b"", &mut buf, false).is_some());
        assert_eq!(cipher.position, u32::MAX);
        let mut buf = vec![0u8; 8];
        assert!(
            cipher.seal(b"", &mut buf, false).is_none(),
            "no non-final chunk at MAX"
        );
        let mut buf = vec![0u8; 8];
        assert!(
            cipher.seal(b"", &mut buf, true).is_some(),
            "the final chunk fits"
        );
    }

    #[test]
    fn io_errors_round_trip() {
        let e = error_from_io(to_io(Error::StreamChunk { index: 3 }));
        assert!(matches!(e, Error::StreamChunk { index: 3 }));
        let e = error_from_io(io::Error::new(io::ErrorKind::BrokenPipe, "x"));
        assert!(matches!(e, Error::Stream(ref io) if io.kind() == io::ErrorKind::BrokenPipe));
        let e = error_from_io(to_io(Error::Stream(io::Error::new(
            io::ErrorKind::NotFound,
            "y",
        ))));
        assert!(matches!(e, Error::Stream(ref io) if io.kind() == io::ErrorKind::NotFound));
    }

    #[test]
    fn chunk_aad_layout() {
        let aad = chunk_aad(1024, b"ctx");
        let mut expected = b"finsec/stream".to_vec();
        expected.push(1);
        expected.extend_from_slice(&[0, 0, 4, 0]);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 3]);
        expected.extend_from_slice(b"ctx");
        assert_eq!(aad, expected);
    }
}
