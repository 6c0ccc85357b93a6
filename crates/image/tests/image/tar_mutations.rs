//! A cheap fuzz: a good archive with random header bytes changed (checksums
//! fixed so the damage reaches the importer) must import or be refused —
//! never panic, never write outside the store, never leave debris.

use super::support::{Meta, TarBuilder, TestStore};

/// A tiny deterministic PRNG (PCG-style LCG), so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Offsets of the 512-byte blocks that are tar headers.
fn header_offsets(tar: &[u8]) -> Vec<usize> {
    (0..tar.len() / 512)
        .map(|i| i * 512)
        .filter(|&o| &tar[o + 257..o + 262] == b"ustar")
        .collect()
}

fn fix_checksum(block: &mut [u8]) {
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    let field = format!("{sum:06o}\0 ");
    block[148..156].copy_from_slice(field.as_bytes());
}

#[test]
fn mutated_headers_never_escape_or_leave_debris() {
    let t = TestStore::new();
    let outside = t.scratch("outside");
    std::fs::create_dir(&outside).unwrap();
    let mut tb = TarBuilder::new();
    tb.dir("./", 0o755).dir("etc", 0o755).dir("usr", 0o755);
    tb.file(
        "etc/passwd",
        b"root:x:0:0::/root:/bin/sh\n",
        Meta::default(),
    );
    tb.symlink("bin", "usr/bin");
    tb.symlink("usr/awk", "/etc/alternatives/awk");
    tb.hardlink("etc/passwd2", "etc/passwd");
    tb.file("usr/data", &[1u8; 3000], Meta::default());
    let good = tb.bytes();
    let headers = header_offsets(&good);
    assert_eq!(headers.len(), 8);
    // Field bytes worth hitting: name, mode, uid, size, typeflag, linkname.
    let fields = [0..100, 100..108, 108..116, 124..136, 156..157, 157..257];
    let nasty: &[u8] = b"/.0123457\0x";

    let mut rng = Lcg(0x4841_4b4f);
    let (mut ok, mut refused) = (0, 0);
    for round in 0..300 {
        let mut tar = good.clone();
        for _ in 0..1 + rng.below(4) {
            let h = headers[rng.below(headers.len())];
            let field = fields[rng.below(fields.len())].clone();
            let pos = h + field.start + rng.below(field.len().min(12));
            tar[pos] = if rng.below(2) == 0 {
                nasty[rng.below(nasty.len())]
            } else {
                rng.next() as u8
            };
            fix_checksum(&mut tar[h..h + 512]);
        }
        let path = t.scratch("mutant.tar");
        std::fs::write(&path, &tar).unwrap();
        match t.store.import("mutant", &path) {
            Ok(image) => {
                ok += 1;
                t.store.remove("mutant", Some(image.version)).unwrap();
            }
            Err(e) => {
                refused += 1;
                assert!(!e.to_string().is_empty());
            }
        }
        let left: Vec<String> = t
            .leftovers()
            .into_iter()
            .filter(|n| n != "mutant")
            .collect();
        assert_eq!(left, Vec::<String>::new(), "round {round}");
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "round {round}"
        );
    }
    // Both outcomes happened, so the mutations reached the importer's checks.
    assert!(ok > 0 && refused > 0, "ok={ok} refused={refused}");
}
