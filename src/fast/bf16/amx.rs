//! The tile unit (Intel AMX): one `tdpbf16ps` multiplies a 16x32 tile by a 32x16 one into 16x16
//! `f32` sums. Rust has no stable intrinsics for it yet, so the instructions are written out in
//! `asm!`; the unit's eight tile registers are invisible to the compiler, which never uses them.

use super::pack::{Packed, TILE, WORDS};
use std::ops::Range;

/// Whether the processor has AMX with bf16 and Linux lets this process use it (a process must ask
/// for the tile state, 8 kB per thread, before its first tile instruction).
pub(super) fn available() -> bool {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        let leaf = std::arch::x86_64::__cpuid_count(7, 0);
        let (bf16, tile) = (leaf.edx >> 22 & 1 == 1, leaf.edx >> 24 & 1 == 1);
        const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
        const XFEATURE_XTILEDATA: libc::c_long = 18;
        // SAFETY: arch_prctl with this request only changes which state the kernel saves for
        // the process's threads.
        bf16 && tile && unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) } == 0
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    false
}

/// The tile configuration: palette 1, all eight tiles 16 rows of 64 bytes.
#[repr(C, align(64))]
struct Config {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    bytes_per_row: [u16; 16],
    rows: [u8; 16],
}

/// The 32x32 blocks `rows x cols` of `a · bᵀ`: stored by the tile unit where `direct` gives a
/// block's place in the destination (added to what it holds with `accumulate`), else handed to
/// `write` (row-major, 32 floats a row).
pub(super) fn multiply(
    a: &Packed,
    b: &Packed,
    (rows, cols): (Range<usize>, Range<usize>),
    accumulate: bool,
    direct: impl Fn(usize, usize) -> Option<(*mut f32, usize)>,
    write: impl Fn(usize, usize, &[f32; 4 * TILE * TILE]),
) {
    #[cfg(target_arch = "x86_64")]
    {
        let mut config = Config { palette: 1, start_row: 0, reserved: [0; 14], bytes_per_row: [0; 16], rows: [0; 16] };
        config.bytes_per_row[..8].fill(64);
        config.rows[..8].fill(TILE as u8);
        let mut out = [0f32; 4 * TILE * TILE];
        // SAFETY: `available` found the unit and the kernel's leave to use it (the only way to
        // reach this function); the configuration is valid for palette 1.
        unsafe { std::arch::asm!("ldtilecfg [{}]", in(reg) &config, options(nostack, readonly)) };
        for r in rows {
            for c in cols.clone() {
                let (r0, c0) = (r * 2 * TILE, c * 2 * TILE);
                match direct(r0, c0) {
                    // SAFETY: the tiles lie in the packed buffers (`Packed::tile`), and `direct`
                    // gives a whole 32x32 block of the destination, this part's alone.
                    Some(at) => unsafe { block(a, b, (r, c), at, accumulate) },
                    None => {
                        // SAFETY: as above; `out` holds 32 rows of 32 floats.
                        unsafe { block(a, b, (r, c), (out.as_mut_ptr(), 2 * TILE), false) };
                        write(r0, c0, &out);
                    }
                }
            }
        }
        // SAFETY: releases the tile state this function configured.
        unsafe { std::arch::asm!("tilerelease", options(nostack, nomem)) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (a, b, rows, cols, accumulate, direct, write);
        unreachable!("AMX outside x86-64")
    }
}

/// One 32x32 block into `o` (rows `ld` floats apart): four tiles of sums over every step of `k`,
/// starting from zero or, with `accumulate`, from what `o` holds. A block whose second 16 rows or
/// columns are all padding (a layer of 8 or 16 channels) computes only its live tiles.
#[cfg(target_arch = "x86_64")]
unsafe fn block(a: &Packed, b: &Packed, (r, c): (usize, usize), (o, ld): (*mut f32, usize), accumulate: bool) {
    use std::arch::asm;
    let (rows, cols) = (a.len > (2 * r + 1) * TILE, b.len > (2 * c + 1) * TILE);
    if !(rows && cols) {
        // Not a whole block of the destination, so never stored in place (`direct`).
        debug_assert!(!accumulate);
        return narrow(a, b, (r, c), (o, ld), (rows, cols));
    }
    let (c00, c01, c10, c11) = (o, o.add(TILE), o.add(TILE * ld), o.add(TILE * ld + TILE));
    let stride = ld * 4;
    if accumulate {
        asm!(
            "tileloadd tmm0, [{c00} + {stride}*1]",
            "tileloadd tmm1, [{c01} + {stride}*1]",
            "tileloadd tmm2, [{c10} + {stride}*1]",
            "tileloadd tmm3, [{c11} + {stride}*1]",
            c00 = in(reg) c00, c01 = in(reg) c01, c10 = in(reg) c10, c11 = in(reg) c11, stride = in(reg) stride,
            options(nostack, readonly),
        );
    } else {
        asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem));
    }
    let (a0, a1, b0, b1) = (a.tile(r, 0, 0), a.tile(r, 1, 0), b.tile(c, 0, 0), b.tile(c, 1, 0));
    for step in 0..a.steps {
        let at = step * WORDS;
        asm!(
            "tileloadd tmm4, [{a0} + {stride}*1]",
            "tileloadd tmm6, [{b0} + {stride}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tileloadd tmm7, [{b1} + {stride}*1]",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tileloadd tmm5, [{a1} + {stride}*1]",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            a0 = in(reg) a0.add(at), a1 = in(reg) a1.add(at), b0 = in(reg) b0.add(at), b1 = in(reg) b1.add(at),
            stride = in(reg) 64usize,
            options(nostack, readonly),
        );
    }
    asm!(
        "tilestored [{c00} + {stride}*1], tmm0",
        "tilestored [{c01} + {stride}*1], tmm1",
        "tilestored [{c10} + {stride}*1], tmm2",
        "tilestored [{c11} + {stride}*1], tmm3",
        c00 = in(reg) c00, c01 = in(reg) c01, c10 = in(reg) c10, c11 = in(reg) c11, stride = in(reg) stride,
        options(nostack),
    );
}

/// [`block`] for a block with only its first 16 rows (`!rows`) or columns (`!cols`) live: one or
/// two tiles of sums, from zero, stored into the live part of `o`.
#[cfg(target_arch = "x86_64")]
unsafe fn narrow(
    a: &Packed,
    b: &Packed,
    (r, c): (usize, usize),
    (o, ld): (*mut f32, usize),
    (rows, cols): (bool, bool),
) {
    use std::arch::asm;
    let stride = ld * 4;
    let (c01, c10) = (o.add(TILE), o.add(TILE * ld));
    asm!("tilezero tmm0", "tilezero tmm1", options(nostack, nomem));
    let (a0, a1, b0, b1) = (a.tile(r, 0, 0), a.tile(r, 1, 0), b.tile(c, 0, 0), b.tile(c, 1, 0));
    for step in 0..a.steps {
        let at = step * WORDS;
        let (a0, b0) = (a0.add(at), b0.add(at));
        // The second tile of sums: the live second half of `b` (columns) or of `a` (rows).
        match (rows, cols) {
            (false, true) => asm!(
                "tileloadd tmm4, [{a0} + {stride}*1]",
                "tileloadd tmm6, [{b0} + {stride}*1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tileloadd tmm7, [{b1} + {stride}*1]",
                "tdpbf16ps tmm1, tmm4, tmm7",
                a0 = in(reg) a0, b0 = in(reg) b0, b1 = in(reg) b1.add(at), stride = in(reg) 64usize,
                options(nostack, readonly),
            ),
            (true, false) => asm!(
                "tileloadd tmm4, [{a0} + {stride}*1]",
                "tileloadd tmm6, [{b0} + {stride}*1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tileloadd tmm5, [{a1} + {stride}*1]",
                "tdpbf16ps tmm1, tmm5, tmm6",
                a0 = in(reg) a0, a1 = in(reg) a1.add(at), b0 = in(reg) b0, stride = in(reg) 64usize,
                options(nostack, readonly),
            ),
            _ => asm!(
                "tileloadd tmm4, [{a0} + {stride}*1]",
                "tileloadd tmm6, [{b0} + {stride}*1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                a0 = in(reg) a0, b0 = in(reg) b0, stride = in(reg) 64usize,
                options(nostack, readonly),
            ),
        }
    }
    asm!("tilestored [{o} + {stride}*1], tmm0", o = in(reg) o, stride = in(reg) stride, options(nostack));
    if rows != cols {
        let second = if cols { c01 } else { c10 };
        asm!("tilestored [{o} + {stride}*1], tmm1", o = in(reg) second, stride = in(reg) stride, options(nostack));
    }
}
