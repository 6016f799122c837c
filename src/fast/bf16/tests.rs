use super::*;

/// The ways this processor has.
fn units() -> Vec<Unit> {
    let mut units = vec![Unit::Rounded];
    if dot::available() {
        units.push(Unit::Dot);
    }
    if amx::available() {
        units.push(Unit::Amx);
    }
    units
}

fn random(seed: &mut u32, len: usize) -> Vec<f32> {
    (0..len)
        .map(|_| {
            *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (*seed >> 8) as f32 / (1 << 24) as f32 - 0.5
        })
        .collect()
}

/// `lhs · rhs` of bf16-rounded operands in `f64`, and the sum of the products' sizes (the scale
/// of `f32`'s summation error).
fn exact(m: usize, n: usize, k: usize, lhs: View, rhs: View) -> (Vec<f64>, Vec<f64>) {
    let mut out = vec![0f64; m * n];
    let mut size = vec![0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            for s in 0..k {
                let p =
                    round(lhs.data[i * lhs.rs + s * lhs.cs]) as f64 * round(rhs.data[s * rhs.rs + j * rhs.cs]) as f64;
                out[i * n + j] += p;
                size[i * n + j] += p.abs();
            }
        }
    }
    (out, size)
}

/// Each way this machine has (tiles, dot products, rounded), against the exact product of the
/// rounded operands, at ragged shapes and every layout the layers use, accumulating or not.
#[test]
fn bf16_products_are_the_products_of_the_rounded_operands() {
    let shapes =
        [(1, 1, 1), (5, 7, 3), (16, 16, 32), (33, 17, 65), (64, 50, 784), (100, 130, 31), (2, 300, 70), (257, 40, 33)];
    let mut seed = 7;
    for (m, n, k) in shapes {
        let (a, b) = (random(&mut seed, m * k), random(&mut seed, k * n));
        let start = random(&mut seed, m * n);
        for (lt, rt, dt) in [
            (false, false, false),
            (true, false, false),
            (false, true, true),
            (true, true, false),
            (false, false, true),
        ] {
            let lhs = if lt { View::transposed(&a, m) } else { View::rows(&a, k) };
            let rhs = if rt { View::transposed(&b, k) } else { View::rows(&b, n) };
            let (want, size) = exact(m, n, k, lhs, rhs);
            for (accumulate, unit) in
                [false, true].into_iter().flat_map(|acc| units().into_iter().map(move |u| (acc, u)))
            {
                let mut out = start.clone();
                let (rs, cs) = if dt { (1, m) } else { (n, 1) };
                let (l, r) = (Source::F32(lhs), Source::F32(rhs.flipped()));
                matmul_on(unit, 2, (m, n, k), ViewMut::new(&mut out, rs, cs), accumulate, l, r);
                for i in 0..m {
                    for j in 0..n {
                        let got =
                            out[i * rs + j * cs] as f64 - if accumulate { start[i * rs + j * cs] as f64 } else { 0.0 };
                        let bound = 1e-6 * (size[i * n + j] + 1e-3) + if accumulate { 1e-7 } else { 0.0 };
                        let w = want[i * n + j];
                        assert!(
                            (got - w).abs() <= bound,
                            "{unit:?} {m}x{n}x{k} {lt} {rt} {dt} {accumulate} ({i},{j}): {got} vs {w}"
                        );
                    }
                }
            }
        }
    }
}

/// Every part count gives the bits of one part: each element sums its tiles in one order.
#[test]
fn bf16_products_do_not_depend_on_the_thread_count() {
    let mut seed = 3;
    for (m, n, k) in [(256, 1024, 784), (1024, 784, 256), (128, 512, 512), (40, 3000, 100)] {
        let (a, b) = (random(&mut seed, m * k), random(&mut seed, k * n));
        for unit in units() {
            let run = |parts| {
                let mut out = vec![0f32; m * n];
                let (lhs, rhs) = (Source::F32(View::rows(&a, k)), Source::F32(View::transposed(&b, n)));
                matmul_on(unit, parts, (m, n, k), ViewMut::new(&mut out, n, 1), false, lhs, rhs);
                out
            };
            let one = run(1);
            for parts in [2, 3, 5] {
                assert!(run(parts) == one, "{unit:?} {m}x{n}x{k} in {parts} parts");
            }
        }
    }
}

#[test]
fn rounding_is_to_nearest_even_and_flushes_subnormals() {
    assert_eq!(round(1.0 + 1.0 / 256.0), 1.0); // a tie: to the even neighbour
    assert_eq!(round(1.0 + 3.0 / 256.0), 1.0 + 4.0 / 256.0);
    assert_eq!(round(-2.5), -2.5);
    assert_eq!(round(f32::MIN_POSITIVE / 2.0).to_bits(), 0);
    assert_eq!(round(-f32::MIN_POSITIVE / 2.0).to_bits(), 0x8000_0000);
    assert!(round(f32::NAN).is_nan());
    assert_eq!(round(f32::INFINITY), f32::INFINITY);
    assert_eq!(round(f32::MAX), f32::INFINITY); // rounds up past the largest bf16
}

/// Tiles, dot products and the processor's own conversion agree with `round` where they exist.
/// `round` against candle's own f32 -> bf16 conversion (the `half` crate's, to nearest even) on
/// every kind of normal value and the infinities; candle keeps subnormals, the instructions and
/// `round` flush them, so those are left to the test above.
#[test]
fn rounding_agrees_with_candles_conversion_on_normal_values() {
    use candle_core::{DType, Device, Tensor};
    let mut seed = 0x9e37_79b9u32;
    let mut values: Vec<f32> = (0..100_000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            f32::from_bits(seed)
        })
        .filter(|x| x.is_normal())
        .collect();
    // Ties both ways, the largest values and the infinities.
    values.extend([1.0 + 1.0 / 256.0, 1.0 + 3.0 / 256.0, -2.5, f32::MAX, f32::MIN, f32::INFINITY, f32::NEG_INFINITY]);
    let candle = Tensor::new(values.as_slice(), &Device::Cpu).unwrap().to_dtype(DType::BF16).unwrap();
    let candle: Vec<f32> = candle.to_dtype(DType::F32).unwrap().to_vec1().unwrap();
    for (x, c) in values.iter().zip(candle) {
        assert_eq!(round(*x).to_bits(), c.to_bits(), "{x:e}");
    }
}

#[test]
fn the_packed_tiles_hold_rounded_operands() {
    let mut seed = 11;
    let (m, k) = (37, 70);
    let mut a = random(&mut seed, m * k);
    a[5] = f32::MIN_POSITIVE / 4.0;
    a[6] = 1.0 + 1.0 / 256.0;
    for cs in [1, m] {
        let view = if cs == 1 { View::rows(&a, k) } else { View::transposed(&a, m) };
        let mut buf = Vec::new();
        let packed = Packed::new(&mut buf, m, k);
        packed.pack_share(Source::F32(view), false, 0, 1);
        for r in 0..m {
            for s in 0..k {
                let (block, half, line) = (r / 32, r / 16 % 2, r % 16);
                // SAFETY: (block, half, step) of a line and step inside the packed operand.
                let word = unsafe { *packed.tile(block, half, s / 32).add(line * 16 + s % 32 / 2) };
                let got = f32::from_bits((word >> (16 * (s % 2))) << 16);
                let want = round(view.data[r * view.rs + s * view.cs]);
                assert_eq!(got.to_bits(), want.to_bits(), "{r},{s}");
            }
        }
    }
    let _ = TILE;
}

/// Operands already in bf16 pack to the words of the same operands rounded from `f32`, along
/// either dimension, on either side, and multiply to the same bits on every unit.
#[test]
fn bf16_operands_pack_and_multiply_as_rounded_ones() {
    let mut seed = 13;
    for (m, k) in [(37, 70), (16, 32), (5, 3), (64, 100)] {
        let a = random(&mut seed, m * k);
        let bits: Vec<u16> = a.iter().map(|&x| super::bits(x)).collect();
        for (cs, right) in [(1, false), (m, false), (1, true), (m, true)] {
            let (rs, len) = if cs == 1 { (k, m * k) } else { (1, m * k) };
            let (f, h) = (View { data: &a[..len], rs, cs }, View16 { data: &bits[..len], rs, cs });
            let (mut one, mut two) = (Vec::new(), Vec::new());
            let (p, q) = (Packed::new(&mut one, m, k), Packed::new(&mut two, m, k));
            p.pack_share(Source::F32(f), right, 0, 1);
            q.pack_share(Source::Bf16(h), right, 0, 1);
            assert!(one == two, "{m}x{k} cs {cs} right {right}");
        }
        // `a`'s lines as the right operand (its m columns) of a product by a 45 x k matrix.
        let rows = 45;
        let b = random(&mut seed, rows * k);
        for unit in units() {
            let run = |rhs: Source| {
                let mut out = vec![0f32; rows * m];
                let lhs = Source::F32(View::rows(&b, k));
                matmul_on(unit, 2, (rows, m, k), ViewMut::new(&mut out, m, 1), false, lhs, rhs);
                out
            };
            let f32s = run(Source::F32(View::rows(&a, k)));
            assert!(run(Source::Bf16(View16 { data: &bits, rs: k, cs: 1 })) == f32s, "{unit:?} {m}x{k}");
        }
    }
}

#[test]
fn tiles_transpose_in_place() {
    let mut tile: Vec<u32> = (0..256).collect();
    super::pack::transpose_for_tests(&mut tile);
    for i in 0..16 {
        for j in 0..16 {
            assert_eq!(tile[i * 16 + j], (j * 16 + i) as u32, "{i},{j}");
        }
    }
}

/// A left operand packed once multiplies as [`matmul`] multiplies it, to the bit, product after
/// product.
#[test]
fn a_packed_left_operand_gives_matmuls_bits() {
    if !hardware() {
        return; // Packing once is for products in hardware; elsewhere matmul rounds in f32.
    }
    let mut seed = 13;
    for (m, n, k) in [(1, 1, 1), (33, 17, 65), (288, 196, 64), (40, 3, 100)] {
        let a = random(&mut seed, m * k);
        for lhs in [View::rows(&a, k), View::transposed(&a, m)] {
            let mut packed = PackedLhs::new(m, k, lhs);
            for _ in 0..2 {
                let b = random(&mut seed, k * n);
                let (mut want, mut got) = (vec![0f32; m * n], vec![0f32; m * n]);
                matmul(1, (m, n, k), ViewMut::new(&mut want, n, 1), false, lhs, View::rows(&b, n));
                packed.multiply(n, ViewMut::new(&mut got, n, 1), false, View::rows(&b, n));
                assert!(want == got, "{m}x{n}x{k}");
            }
        }
    }
}

/// An operand strided both ways (a cut convolution's weight reads one float in nine) multiplies
/// as its contiguous copy does, on every way this machine has.
#[test]
fn operands_strided_both_ways_multiply_as_contiguous_ones() {
    let (m, n, k, gap) = (37, 20, 45, 9);
    let mut seed = 17;
    let (wide, b) = (random(&mut seed, m * k * gap), random(&mut seed, k * n));
    let strided = View { data: &wide, rs: k * gap, cs: gap };
    let copy: Vec<f32> = (0..m * k).map(|i| wide[i / k * k * gap + i % k * gap]).collect();
    for unit in units() {
        let (mut want, mut got) = (vec![0f32; m * n], vec![0f32; m * n]);
        let rhs = Source::F32(View::rows(&b, n).flipped());
        matmul_on(unit, 1, (m, n, k), ViewMut::new(&mut want, n, 1), false, Source::F32(View::rows(&copy, k)), rhs);
        matmul_on(unit, 1, (m, n, k), ViewMut::new(&mut got, n, 1), false, Source::F32(strided), rhs);
        assert!(want == got, "{unit:?}");
    }
    // Packed once, the transposed strided operand too (a cut convolution's input gradient).
    if hardware() {
        let c = random(&mut seed, m * n);
        let product = |lhs: View| {
            let mut out = vec![0f32; k * n];
            PackedLhs::new(k, m, lhs).multiply(n, ViewMut::new(&mut out, n, 1), false, View::rows(&c, n));
            out
        };
        assert!(product(strided.flipped()) == product(View::rows(&copy, k).flipped()));
    }
}
