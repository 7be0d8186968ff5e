//! Streaming encryption: round trips, truncation, reordering, trailing data, tampering,
//! atomic file handling and bounded memory.

#![cfg(test)]

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use finsec_crypto::stream::{
    self, CHUNK_OVERHEAD, DEFAULT_CHUNK_SIZE, FINAL_CHUNK_OVERHEAD, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE,
    StreamDecryptor, StreamEncryptor, decrypt_file, encrypt_file,
};
use finsec_crypto::{Error, KeyName, Keyring};

const KIB: usize = 1024;
const AAD: &[u8] = b"backups/2024-06-30.tar";

fn setup() -> (Keyring, KeyName) {
    let keyring = Keyring::new();
    let name = KeyName::new("files").unwrap();
    keyring.create_key(&name).unwrap();
    (keyring, name)
}

/// Deterministic, incompressible-looking test data.
fn data(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn encrypt(kr: &Keyring, name: &KeyName, plaintext: &[u8], aad: &[u8], chunk: usize) -> Vec<u8> {
    let mut enc = StreamEncryptor::with_chunk_size(kr, name, aad, chunk, Vec::new()).unwrap();
    // Odd-sized writes, so chunk boundaries fall inside writes.
    for piece in plaintext.chunks(777) {
        enc.write_all(piece).unwrap();
    }
    enc.finish().unwrap()
}

/// Decrypts with `next_chunk`, returning the plaintext released before the result.
fn decrypt_parts(kr: &Keyring, ct: &[u8], aad: &[u8]) -> (Vec<u8>, Result<(), Error>) {
    let mut released = Vec::new();
    let mut dec = match StreamDecryptor::new(kr, aad, ct) {
        Ok(d) => d,
        Err(e) => return (released, Err(e)),
    };
    loop {
        match dec.next_chunk() {
            Ok(Some(chunk)) => released.extend_from_slice(chunk),
            Ok(None) => {
                assert!(dec.is_finished());
                return (released, Ok(()));
            }
            Err(e) => {
                // Errors are sticky: no later call releases anything.
                let again = dec.next_chunk();
                assert!(again.is_err(), "a failed stream must stay failed");
                assert_eq!(
                    format!("{:?}", again.err().unwrap()),
                    format!("{e:?}"),
                    "the same error is reported again"
                );
                return (released, Err(e));
            }
        }
    }
}

/// Decrypts through `Read` and through `next_chunk`; both must agree.
fn decrypt(kr: &Keyring, ct: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
    let (released, result) = decrypt_parts(kr, ct, aad);
    let via_read = StreamDecryptor::new(kr, aad, ct).and_then(|mut d| {
        let mut out = Vec::new();
        d.read_to_end(&mut out).map_err(stream::error_from_io)?;
        Ok(out)
    });
    match (&result, &via_read) {
        (Ok(()), Ok(out)) => assert_eq!(out, &released),
        (Err(a), Err(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}")),
        _ => panic!(
            "next_chunk and Read disagree: {result:?} vs {:?}",
            via_read.as_ref().map(Vec::len)
        ),
    }
    result.map(|()| released)
}

/// Length of the stream header: 22 + key name length + wrapped key length.
fn header_len(ct: &[u8]) -> usize {
    let n = usize::from(ct[4]);
    let w = usize::from(u16::from_be_bytes([ct[9 + n], ct[10 + n]]));
    22 + n + w
}

#[test]
fn round_trips_at_chunk_edges() {
    let (kr, name) = setup();
    let c = KIB;
    let mut ran = 0;
    for len in [0, 1, c - 1, c, c + 1, 2 * c, 3 * c - 1, 10 * c + 17] {
        let plaintext = data(len);
        let ct = encrypt(&kr, &name, &plaintext, AAD, c);
        assert_eq!(&ct[..4], b"FSS\x01");
        // Full chunks plus one final chunk of fewer than `c` bytes (possibly empty).
        let full = len / c;
        assert_eq!(
            ct.len(),
            header_len(&ct) + len + full * CHUNK_OVERHEAD + FINAL_CHUNK_OVERHEAD,
            "len {len}"
        );
        assert_eq!(decrypt(&kr, &ct, AAD).unwrap(), plaintext, "len {len}");
        ran += 1;
    }
    assert_eq!(ran, 8);
}

#[test]
fn multi_mebibyte_round_trip_with_default_chunks() {
    let (kr, name) = setup();
    let plaintext = data(3 * 1024 * KIB + 12_345);
    let mut enc = StreamEncryptor::new(&kr, &name, AAD, Vec::new()).unwrap();
    assert_eq!(enc.chunk_size(), DEFAULT_CHUNK_SIZE);
    assert_eq!(enc.kek().version, 1);
    for piece in plaintext.chunks(100_003) {
        enc.write_all(piece).unwrap();
    }
    let ct = enc.finish().unwrap();
    let mut dec = StreamDecryptor::new(&kr, AAD, ct.as_slice()).unwrap();
    assert_eq!(dec.chunk_size(), DEFAULT_CHUNK_SIZE);
    // Small reads that straddle chunk boundaries.
    let mut out = Vec::with_capacity(plaintext.len());
    let mut buf = [0u8; 4099];
    loop {
        let n = dec.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert!(dec.is_finished());
    assert_eq!(out, plaintext);
}

#[test]
fn truncation_at_every_chunk_boundary_and_inside_chunks() {
    let (kr, name) = setup();
    let c = KIB;
    let plaintext = data(5 * c + 100);
    let ct = encrypt(&kr, &name, &plaintext, AAD, c);
    let h = header_len(&ct);
    let sealed = c + CHUNK_OVERHEAD;
    let final_len = 100 + FINAL_CHUNK_OVERHEAD;
    assert_eq!(ct.len(), h + 5 * sealed + final_len);
    let mut cases = 0;
    for k in 0..=5usize {
        let chunk_len = if k == 5 { final_len } else { sealed };
        // At the boundary before chunk k (0), then at every interesting point inside it:
        // the marker, the final chunk's length field, the ciphertext and the tag.
        for cut in [
            0,
            1,
            2,
            4,
            5,
            6,
            16,
            17,
            chunk_len / 2,
            chunk_len - 16,
            chunk_len - 1,
        ] {
            let (released, result) = decrypt_parts(&kr, &ct[..h + k * sealed + cut], AAD);
            assert!(
                matches!(result, Err(Error::StreamTruncated { chunks }) if chunks == k as u64),
                "cut {cut} into chunk {k}: {result:?}"
            );
            assert_eq!(
                released,
                plaintext[..k * c],
                "only authenticated chunks are released"
            );
            cases += 1;
        }
    }
    // Inside the header.
    for cut in 0..h {
        let result = StreamDecryptor::new(&kr, AAD, &ct[..cut]);
        assert!(
            matches!(result, Err(Error::Empty) if cut == 0)
                || matches!(result, Err(Error::Truncated { .. }) if cut > 0),
            "header cut at {cut}: {result:?}"
        );
        cases += 1;
    }
    assert_eq!(cases, 6 * 11 + h);
    // The complete stream decrypts.
    assert_eq!(decrypt(&kr, &ct, AAD).unwrap(), plaintext);
}

#[test]
fn dropping_the_empty_final_chunk_is_truncation() {
    let (kr, name) = setup();
    let plaintext = data(2 * KIB);
    let ct = encrypt(&kr, &name, &plaintext, AAD, KIB);
    let h = header_len(&ct);
    assert_eq!(
        ct.len(),
        h + 2 * (KIB + CHUNK_OVERHEAD) + FINAL_CHUNK_OVERHEAD
    );
    let result = decrypt(&kr, &ct[..ct.len() - FINAL_CHUNK_OVERHEAD], AAD);
    assert!(
        matches!(result, Err(Error::StreamTruncated { chunks: 2 })),
        "{result:?}"
    );
}

#[test]
fn reordered_dropped_duplicated_and_foreign_chunks_fail() {
    let (kr, name) = setup();
    let c = KIB;
    let sealed = c + CHUNK_OVERHEAD;
    let plaintext = data(4 * c + 10);
    let ct = encrypt(&kr, &name, &plaintext, AAD, c);
    let h = header_len(&ct);
    let chunk = |i: usize| &ct[h + i * sealed..(h + (i + 1) * sealed).min(ct.len())];

    // Chunks 1 and 2 swapped.
    let swapped = [&ct[..h], chunk(0), chunk(2), chunk(1), chunk(3), chunk(4)].concat();
    assert_eq!(swapped.len(), ct.len());
    let (released, result) = decrypt_parts(&kr, &swapped, AAD);
    assert!(
        matches!(result, Err(Error::StreamChunk { index: 1 })),
        "{result:?}"
    );
    assert_eq!(released, plaintext[..c]);

    // Chunk 2 dropped.
    let dropped = [&ct[..h], chunk(0), chunk(1), chunk(3), chunk(4)].concat();
    let result = decrypt(&kr, &dropped, AAD);
    assert!(
        matches!(result, Err(Error::StreamChunk { index: 2 })),
        "{result:?}"
    );

    // Chunk 1 duplicated.
    let duplicated = [
        &ct[..h],
        chunk(0),
        chunk(1),
        chunk(1),
        chunk(2),
        chunk(3),
        chunk(4),
    ]
    .concat();
    let result = decrypt(&kr, &duplicated, AAD);
    assert!(
        matches!(result, Err(Error::StreamChunk { index: 2 })),
        "{result:?}"
    );

    // The final chunk moved forward.
    let final_first = [&ct[..h], chunk(4)].concat();
    let result = decrypt(&kr, &final_first, AAD);
    assert!(
        matches!(result, Err(Error::StreamChunk { index: 0 })),
        "{result:?}"
    );

    // A chunk from another stream of the same plaintext, same key, same position.
    let other = encrypt(&kr, &name, &plaintext, AAD, c);
    let oh = header_len(&other);
    let foreign = [
        &ct[..h + sealed],
        &other[oh + sealed..oh + 2 * sealed],
        &ct[h + 2 * sealed..],
    ]
    .concat();
    let result = decrypt(&kr, &foreign, AAD);
    assert!(
        matches!(result, Err(Error::StreamChunk { index: 1 })),
        "{result:?}"
    );

    // A flipped bit anywhere in the body: a marker, ciphertext, a tag, the final chunk's
    // marker, length, ciphertext and tag.
    let f = h + 4 * sealed;
    for pos in [
        h,
        h + 5,
        h + sealed - 1,
        h + 2 * sealed + 100,
        f,
        f + 4,
        f + 6,
        ct.len() - 1,
    ] {
        let mut bad = ct.clone();
        bad[pos] ^= 0x20;
        let result = decrypt(&kr, &bad, AAD);
        let index = ((pos - h) / sealed) as u64;
        // A final-chunk length made larger than what is left reads as a cut stream.
        let length_grew = pos == f + 4;
        assert!(
            matches!(result, Err(Error::StreamChunk { index: i }) if i == index)
                || (length_grew
                    && matches!(result, Err(Error::StreamTruncated { chunks }) if chunks == index)),
            "flip at {pos}: {result:?}"
        );
    }
}

#[test]
fn data_after_the_final_chunk_is_refused() {
    let (kr, name) = setup();
    let plaintext = data(3 * KIB + 5);
    let ct = encrypt(&kr, &name, &plaintext, AAD, KIB);
    for extra in [&b"\0"[..], b"trailing garbage", &ct[ct.len() - 21..]] {
        let appended = [ct.as_slice(), extra].concat();
        let (released, result) = decrypt_parts(&kr, &appended, AAD);
        assert!(
            matches!(result, Err(Error::StreamTrailingData)),
            "{result:?}"
        );
        // The final chunk's plaintext is withheld.
        assert_eq!(released, plaintext[..3 * KIB]);
        let result = decrypt(&kr, &appended, AAD);
        assert!(
            matches!(result, Err(Error::StreamTrailingData)),
            "{result:?}"
        );
    }
    // A second complete stream appended.
    let two = [ct.as_slice(), ct.as_slice()].concat();
    assert!(matches!(
        decrypt(&kr, &two, AAD),
        Err(Error::StreamTrailingData)
    ));
}

#[test]
fn wrong_aad_fails_on_the_first_chunk() {
    let (kr, name) = setup();
    let ct = encrypt(&kr, &name, &data(3000), AAD, KIB);
    for aad in [&b""[..], b"backups/2024-07-01.tar", &AAD[..AAD.len() - 1]] {
        let (released, result) = decrypt_parts(&kr, &ct, aad);
        assert!(
            matches!(result, Err(Error::StreamChunk { index: 0 })),
            "{result:?}"
        );
        assert!(released.is_empty());
    }
    // Empty AAD works when used on both sides.
    let ct = encrypt(&kr, &name, b"x", b"", KIB);
    assert_eq!(decrypt(&kr, &ct, b"").unwrap(), b"x");
}

#[test]
fn header_tampering_is_detected() {
    let (kr, name) = setup();
    let plaintext = data(2500);
    let ct = encrypt(&kr, &name, &plaintext, AAD, KIB);
    let h = header_len(&ct);
    let n = usize::from(ct[4]);
    let w = h - 22 - n;
    // Every bit of every header byte.
    let mut flips = 0;
    for pos in 0..h {
        for bit in 0..8 {
            let mut bad = ct.clone();
            bad[pos] ^= 1 << bit;
            let (released, result) = decrypt_parts(&kr, &bad, AAD);
            assert!(result.is_err(), "flip at {pos} bit {bit} went unnoticed");
            assert!(
                released.is_empty(),
                "flip at {pos} bit {bit} released plaintext"
            );
            flips += 1;
        }
    }
    assert_eq!(flips, 8 * h);

    let with = |pos: usize, byte: u8| {
        let mut bad = ct.clone();
        bad[pos] = byte;
        StreamDecryptor::new(&kr, AAD, bad.as_slice()).map(|_| ())
    };
    assert!(matches!(with(0, b'X'), Err(Error::BadMagic { .. })));
    assert!(matches!(
        with(3, 2),
        Err(Error::UnsupportedVersion { version: 2, .. })
    ));
    assert!(matches!(
        with(4, 0),
        Err(Error::InvalidHeader {
            field: "key name length",
            ..
        })
    ));
    assert!(matches!(
        with(4, 65),
        Err(Error::InvalidHeader {
            field: "key name length",
            ..
        })
    ));
    assert!(matches!(
        with(5, b'F'),
        Err(Error::InvalidHeader {
            field: "key name",
            ..
        })
    ));
    // Key version 1 -> 2 (unknown) and 1 -> 0 (invalid).
    assert!(matches!(with(8 + n, 2), Err(Error::UnknownKey { .. })));
    assert!(matches!(
        with(8 + n, 0),
        Err(Error::InvalidHeader {
            field: "key version",
            ..
        })
    ));
    // Wrapped key altered.
    assert!(matches!(
        with(11 + n, ct[11 + n] ^ 1),
        Err(Error::KeyUnwrap)
    ));
    // Chunk size below the minimum, above the maximum.
    let size_at = 11 + n + w;
    let mut bad = ct.clone();
    bad[size_at..size_at + 4].copy_from_slice(&1023u32.to_be_bytes());
    assert!(matches!(
        StreamDecryptor::new(&kr, AAD, bad.as_slice()),
        Err(Error::InvalidHeader {
            field: "chunk size",
            ..
        })
    ));
    bad[size_at..size_at + 4].copy_from_slice(&(MAX_CHUNK_SIZE as u32 + 1).to_be_bytes());
    assert!(matches!(
        StreamDecryptor::new(&kr, AAD, bad.as_slice()),
        Err(Error::InvalidHeader {
            field: "chunk size",
            ..
        })
    ));
    // Chunk size changed to another valid size: the chunk AAD no longer matches.
    bad[size_at..size_at + 4].copy_from_slice(&2048u32.to_be_bytes());
    assert!(matches!(
        decrypt(&kr, &bad, AAD),
        Err(Error::StreamChunk { index: 0 })
    ));
    // Nonce prefix altered.
    let mut bad = ct.clone();
    bad[h - 1] ^= 1;
    assert!(matches!(
        decrypt(&kr, &bad, AAD),
        Err(Error::StreamChunk { index: 0 })
    ));
}

#[test]
fn chunk_size_bounds() {
    let (kr, name) = setup();
    for bad in [0, 1, MIN_CHUNK_SIZE - 1, MAX_CHUNK_SIZE + 1] {
        let result = StreamEncryptor::with_chunk_size(&kr, &name, AAD, bad, Vec::new());
        assert!(
            matches!(result, Err(Error::InvalidParameter { .. })),
            "{bad}"
        );
    }
    for good in [MIN_CHUNK_SIZE, MAX_CHUNK_SIZE] {
        let ct = encrypt(&kr, &name, b"abc", AAD, good);
        assert_eq!(decrypt(&kr, &ct, AAD).unwrap(), b"abc");
    }
}

#[test]
fn unfinished_stream_is_truncated_and_keys_rotate() {
    let (kr, name) = setup();
    let mut sink = Vec::new();
    {
        let mut enc = StreamEncryptor::with_chunk_size(&kr, &name, AAD, KIB, &mut sink).unwrap();
        enc.write_all(&data(3 * KIB)).unwrap();
        assert!(format!("{enc:?}").contains("StreamEncryptor"));
        // Dropped without finish().
    }
    assert!(matches!(
        decrypt(&kr, &sink, AAD),
        Err(Error::StreamTruncated { chunks: 3 })
    ));

    // Streams written under version 1 still decrypt after a rotation, until retired.
    let ct = encrypt(&kr, &name, b"old", AAD, KIB);
    kr.rotate(&name).unwrap();
    let ct2 = encrypt(&kr, &name, b"new", AAD, KIB);
    assert_eq!(
        StreamDecryptor::new(&kr, AAD, ct2.as_slice())
            .unwrap()
            .kek()
            .version,
        2
    );
    assert_eq!(decrypt(&kr, &ct, AAD).unwrap(), b"old");
    kr.retire_below(&name, 2).unwrap();
    assert!(matches!(
        StreamDecryptor::new(&kr, AAD, ct.as_slice()),
        Err(Error::KeyRetired { .. })
    ));
    assert!(matches!(
        StreamDecryptor::new(&Keyring::new(), AAD, ct2.as_slice()),
        Err(Error::UnknownKey { .. })
    ));
}

/// A reader that generates `remaining` bytes without holding them.
struct Generated {
    remaining: u64,
    state: u64,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(self.remaining.try_into().unwrap_or(usize::MAX));
        for b in &mut buf[..n] {
            self.state = self.state.wrapping_mul(6364136223846793005).wrapping_add(1);
            *b = (self.state >> 56) as u8;
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Counts bytes written, keeps none.
#[derive(Default)]
struct Counting(u64);

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn large_stream_in_bounded_memory() {
    const LEN: u64 = 64 * 1024 * 1024;
    let (kr, name) = setup();
    let mut source = Generated {
        remaining: LEN,
        state: 1,
    };
    let mut enc = StreamEncryptor::new(&kr, &name, AAD, Counting::default()).unwrap();
    let copied = io::copy(&mut source, &mut enc).unwrap();
    assert_eq!(copied, LEN);
    let written = enc.finish().unwrap().0;
    let full = LEN / DEFAULT_CHUNK_SIZE as u64;
    let header = 22 + 5 + 60;
    assert_eq!(
        written,
        header + LEN + full * CHUNK_OVERHEAD as u64 + FINAL_CHUNK_OVERHEAD as u64
    );

    // The same through io::sink (nothing retained anywhere).
    let mut source = Generated {
        remaining: 16 * 1024 * 1024,
        state: 1,
    };
    let mut enc = StreamEncryptor::new(&kr, &name, AAD, io::sink()).unwrap();
    io::copy(&mut source, &mut enc).unwrap();
    enc.finish().unwrap();
}

// ---------------------------------------------------------------------------------------
// Files

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn file_round_trip() {
    let (kr, name) = setup();
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("report.csv");
    let sealed = dir.path().join("report.csv.fss");
    let back = dir.path().join("report.back.csv");
    let plaintext = data(3 * DEFAULT_CHUNK_SIZE + 999);
    fs::write(&plain, &plaintext).unwrap();

    let n = encrypt_file(&kr, &name, &plain, &sealed, AAD).unwrap();
    assert_eq!(n, plaintext.len() as u64);
    let n = decrypt_file(&kr, &sealed, &back, AAD).unwrap();
    assert_eq!(n, plaintext.len() as u64);
    assert_eq!(fs::read(&back).unwrap(), plaintext);
    assert_eq!(
        dir_entries(dir.path()),
        ["report.back.csv", "report.csv", "report.csv.fss"]
    );

    // Empty file.
    let empty = dir.path().join("empty");
    fs::write(&empty, b"").unwrap();
    encrypt_file(&kr, &name, &empty, &dir.path().join("empty.fss"), AAD).unwrap();
    assert_eq!(
        decrypt_file(
            &kr,
            &dir.path().join("empty.fss"),
            &dir.path().join("empty.out"),
            AAD
        )
        .unwrap(),
        0
    );
    assert_eq!(fs::read(dir.path().join("empty.out")).unwrap(), b"");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&back).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "decrypted output is private");
    }
}

#[test]
fn decrypt_file_never_leaves_partial_output() {
    let (kr, name) = setup();
    let dir = tempfile::tempdir().unwrap();
    let plaintext = data(3 * DEFAULT_CHUNK_SIZE + 10);
    let sealed = dir.path().join("in.fss");
    let plain = dir.path().join("in");
    fs::write(&plain, &plaintext).unwrap();
    encrypt_file(&kr, &name, &plain, &sealed, AAD).unwrap();
    let ct = fs::read(&sealed).unwrap();
    let h = header_len(&ct);
    let sealed_chunk = DEFAULT_CHUNK_SIZE + CHUNK_OVERHEAD;

    let bad_inputs: Vec<(&str, Vec<u8>)> = vec![
        (
            "cut at a chunk boundary",
            ct[..h + 2 * sealed_chunk].to_vec(),
        ),
        ("cut inside a chunk", ct[..h + sealed_chunk + 500].to_vec()),
        ("cut in the header", ct[..h - 3].to_vec()),
        ("trailing data", [ct.as_slice(), b"x"].concat()),
        ("last byte flipped", {
            let mut v = ct.clone();
            *v.last_mut().unwrap() ^= 1;
            v
        }),
    ];
    let before = dir_entries(dir.path());
    let mut ran = 0;
    for (what, bytes) in bad_inputs {
        let src = dir.path().join("bad.fss");
        fs::write(&src, &bytes).unwrap();
        let out = dir.path().join("out");
        let result = decrypt_file(&kr, &src, &out, AAD);
        assert!(result.is_err(), "{what}");
        assert!(!out.exists(), "{what}: no output file");
        fs::remove_file(&src).unwrap();
        assert_eq!(
            dir_entries(dir.path()),
            before,
            "{what}: no temporary files left"
        );
        ran += 1;
    }
    assert_eq!(ran, 5);

    // Wrong AAD: same.
    let out = dir.path().join("out");
    assert!(matches!(
        decrypt_file(&kr, &sealed, &out, b"other"),
        Err(Error::StreamChunk { index: 0 })
    ));
    assert!(!out.exists());

    // An existing destination is left untouched by a failed run.
    fs::write(&out, b"previous contents").unwrap();
    let src = dir.path().join("bad.fss");
    fs::write(&src, &ct[..h + sealed_chunk]).unwrap();
    assert!(matches!(
        decrypt_file(&kr, &src, &out, AAD),
        Err(Error::StreamTruncated { chunks: 1 })
    ));
    assert_eq!(fs::read(&out).unwrap(), b"previous contents");
}

#[test]
fn encrypt_file_never_leaves_partial_output() {
    let (kr, name) = setup();
    let dir = tempfile::tempdir().unwrap();
    let subdir = dir.path().join("a-directory");
    fs::create_dir(&subdir).unwrap();
    let dst = dir.path().join("out.fss");
    let before = dir_entries(dir.path());

    // The source opens but reading it fails (a directory).
    let result = encrypt_file(&kr, &name, &subdir, &dst, AAD);
    assert!(
        matches!(result, Err(Error::Io { ref path, .. }) if path == &subdir),
        "{result:?}"
    );
    assert!(!dst.exists());
    assert_eq!(dir_entries(dir.path()), before);

    // The source does not exist.
    let missing = dir.path().join("missing");
    let result = encrypt_file(&kr, &name, &missing, &dst, AAD);
    assert!(
        matches!(result, Err(Error::Io { ref path, .. }) if path == &missing),
        "{result:?}"
    );
    assert!(!dst.exists());

    // Unknown key: fails before anything is written.
    let src = dir.path().join("src");
    fs::write(&src, b"hello").unwrap();
    let result = encrypt_file(&kr, &KeyName::new("nope").unwrap(), &src, &dst, AAD);
    assert!(
        matches!(result, Err(Error::UnknownKey { .. })),
        "{result:?}"
    );
    assert!(!dst.exists());
    assert_eq!(dir_entries(dir.path()), ["a-directory", "src"]);

    // The destination directory does not exist.
    let result = encrypt_file(&kr, &name, &src, &dir.path().join("no/such/dir/out"), AAD);
    assert!(matches!(result, Err(Error::Io { .. })), "{result:?}");
}
