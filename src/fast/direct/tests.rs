//! The direct convolution against sums written out, at 1, 2 and 3 shares.

use super::*;
use crate::fast::im2col::tests::random;
use crate::fast::im2col::ConvGeometry;

/// The convolution of `x` (`[n, c, h, w]`) by `w` (`[o, c, 3, 3]`), padded 1, summed in f64.
fn reference(x: &[f32], w: &[f32], (n, c, h, wd, o): (usize, usize, usize, usize, usize)) -> Vec<f32> {
    let mut y = vec![0f32; n * o * h * wd];
    for (i, y) in y.iter_mut().enumerate() {
        let (image, oc, py, px) = (i / (o * h * wd), i / (h * wd) % o, i / wd % h, i % wd);
        let mut sum = 0f64;
        for ic in 0..c {
            for tap in 0..9 {
                let (sy, sx) = ((py + tap / 3) as isize - 1, (px + tap % 3) as isize - 1);
                if (0..h as isize).contains(&sy) && (0..wd as isize).contains(&sx) {
                    let v = x[((image * c + ic) * h + sy as usize) * wd + sx as usize];
                    sum += v as f64 * w[(oc * c + ic) * 9 + tap] as f64;
                }
            }
        }
        *y = sum as f32;
    }
    y
}

/// The weight gradient of [`reference`] from the output's gradient `g` (`[n, o, h, w]`), summed
/// in f64 over the products that read the map (none of the padding).
fn weight_reference(x: &[f32], g: &[f32], (n, c, h, wd, o): (usize, usize, usize, usize, usize)) -> Vec<f32> {
    let map = h * wd;
    let mut dw = vec![0f32; o * c * 9];
    for (i, dw) in dw.iter_mut().enumerate() {
        let (oc, ic, tap) = (i / (c * 9), i / 9 % c, i % 9);
        let mut sum = 0f64;
        for image in 0..n {
            for p in 0..map {
                let (sy, sx) = ((p / wd + tap / 3) as isize - 1, (p % wd + tap % 3) as isize - 1);
                if (0..h as isize).contains(&sy) && (0..wd as isize).contains(&sx) {
                    let v = x[((image * c + ic) * h + sy as usize) * wd + sx as usize];
                    sum += v as f64 * g[(image * o + oc) * map + p] as f64;
                }
            }
        }
        *dw = sum as f32;
    }
    dw
}

/// `[n, c, h, w]` as `[c, n, h, w]`.
fn channel_major(x: &[f32], (n, c, map): (usize, usize, usize)) -> Vec<f32> {
    (0..n * c * map).map(|i| x[((i % (n * map)) / map * c + i / (n * map)) * map + i % map]).collect()
}

/// `a` against the reference `b`: within 1e-4 (relative) where `b` is finite, the same infinity
/// or NaN where it is not.
fn close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (a, b)) in a.iter().zip(b).enumerate() {
        let same =
            if b.is_finite() { (a - b).abs() <= 1e-4 * (1.0 + b.abs()) } else { a == b || a.is_nan() && b.is_nan() };
        assert!(same, "{what}: element {i}: {a} against {b}");
    }
}

/// The plan of a 3x3 stride-1 convolution padded 1 of `o` outputs on `n x c x h x w`
/// batch-major input, which must run directly.
fn plan((n, c, h, wd, o): (usize, usize, usize, usize, usize)) -> Direct {
    let geometry = ConvGeometry { stride: 1, padding: 1, dilation: 1, channel_major: false };
    let s = geometry.sizes(&[n, c, h, wd], &[o, c, 3, 3]).unwrap();
    Direct::of(&geometry, s).expect("runs directly")
}

/// The weight `[o, c, 3, 3]` of the convolution that gives the input's gradient: `[c, o, 3, 3]`,
/// taps reversed.
fn input_grad_weight(w: &[f32], (c, o): (usize, usize)) -> Vec<f32> {
    (0..c * o * 9).map(|i| w[((i / 9 % o) * c + i / 9 / o) * 9 + 8 - i % 9]).collect()
}

/// Forward, input gradient and weight gradient against the sums written out, on maps of
/// several shapes (one row, one column of tiles, sizes that leave a part-filled last tile),
/// batch-major and channel-major, with the same bits at 1, 2 and 3 shares.
#[test]
fn direct_convolutions_match_the_sums_written_out() {
    if !available() {
        return;
    }
    let mut seed = 7u32;
    for (n, c, h, wd, o) in [(3, 8, 5, 7, 10), (2, 9, 7, 7, 16), (2, 8, 1, 9, 3), (1, 12, 6, 4, 8), (4, 16, 14, 14, 9)]
    {
        let direct = plan((n, c, h, wd, o));
        let (x, w) = (random(&mut seed, n * c * h * wd), random(&mut seed, o * c * 9));
        let g = random(&mut seed, n * o * h * wd);
        let map = h * wd;
        let want = channel_major(&reference(&x, &w, (n, c, h, wd, o)), (n, o, map));
        // The input's gradient: the convolution of the output's gradient by the weights
        // flipped and transposed; the weight's: sums of the gradient times the input.
        let wt = input_grad_weight(&w, (c, o));
        let want_dx = reference(&g, &wt, (n, o, h, wd, c));
        let want_dw = weight_reference(&x, &g, (n, c, h, wd, o));
        let gc = channel_major(&g, (n, o, map));
        for input_channel_major in [false, true] {
            let xin = if input_channel_major { channel_major(&x, (n, c, map)) } else { x.clone() };
            let copy = direct.copy(&xin, c, input_channel_major);
            let run = |parts| {
                let mut y = vec![0f32; o * n * map];
                direct.run(
                    direct.through_copy(&copy),
                    (c, o),
                    &direct.packed(&w, false),
                    as_uninit(&mut y),
                    (true, false),
                    parts,
                );
                let mut dx = vec![0f32; n * c * map];
                let flipped = direct.packed(&w, true);
                direct.run(
                    direct.in_place(&gc),
                    (o, c),
                    &flipped,
                    as_uninit(&mut dx),
                    (input_channel_major, false),
                    parts,
                );
                (y, dx, direct.weight_grad(&copy, &gc, parts))
            };
            let (y, dx, dw) = run(1);
            let shape = format!("{n}x{c}x{h}x{wd} -> {o}, channel-major input {input_channel_major}");
            close(&y, &want, &format!("forward, {shape}"));
            let want_dx = if input_channel_major { channel_major(&want_dx, (n, c, map)) } else { want_dx.clone() };
            close(&dx, &want_dx, &format!("input gradient, {shape}"));
            close(&dw, &want_dw, &format!("weight gradient, {shape}"));
            for parts in [2, 3] {
                assert!(run(parts) == (y.clone(), dx.clone(), dw.clone()), "{shape}: {parts} shares");
            }
        }
    }
}

/// An infinite input pixel or output gradient reaches the outputs and weight gradients whose sums
/// read it, and no other: a tap that would read across a map's edge (the next row's first
/// column, the next image's first row) or into the padding adds nothing, rather than a product
/// with zero (which would make NaN).
#[test]
fn an_infinite_pixel_reaches_only_the_sums_that_read_it() {
    if !available() {
        return;
    }
    let (n, c, h, wd, o) = (3, 4, 5, 6, 8);
    let mut seed = 11u32;
    let direct = plan((n, c, h, wd, o));
    let (mut x, w) = (random(&mut seed, n * c * h * wd), random(&mut seed, o * c * 9));
    let mut g = random(&mut seed, n * o * h * wd);
    // The last pixel of image 0's channel 1, and the first of image 1's channel 2; the output
    // gradient's first pixel of image 2's channel 3.
    x[((c + 1) * h + h - 1) * wd + wd - 1] = f32::INFINITY;
    x[(c + 2) * h * wd] = f32::NEG_INFINITY;
    g[(2 * o + 3) * h * wd] = f32::INFINITY;
    let map = h * wd;
    let copy = direct.copy(&x, c, false);
    let mut y = vec![0f32; o * n * map];
    let packed = direct.packed(&w, false);
    direct.run(direct.through_copy(&copy), (c, o), &packed, as_uninit(&mut y), (true, false), 1);
    let dw = direct.weight_grad(&copy, &channel_major(&g, (n, o, map)), 1);
    let want = channel_major(&reference(&x, &w, (n, c, h, wd, o)), (n, o, map));
    let want_dw = weight_reference(&x, &g, (n, c, h, wd, o));
    for (what, got, want) in [("forward", &y, &want), ("weight gradient", &dw, &want_dw)] {
        assert!(want.iter().any(|v| v.is_infinite()) && want.iter().any(|v| v.is_finite()), "{what}");
        close(got, want, what);
    }
}

/// An infinite weight reaches the input gradients whose sums read it (the pixels its tap reads
/// from the map), and no other: the flipped convolution's taps that fall in the padding add
/// nothing, as PyTorch's input gradient has it.
#[test]
fn an_infinite_weight_reaches_only_the_input_gradients_that_read_it() {
    if !available() {
        return;
    }
    let (n, c, h, wd, o) = (2, 3, 5, 6, 4);
    let mut seed = 13u32;
    let direct = plan((n, c, h, wd, o));
    let (mut w, g) = (random(&mut seed, o * c * 9), random(&mut seed, n * o * h * wd));
    // Output channel 1's weight for input channel 2, top-left tap.
    w[(c + 2) * 9] = f32::INFINITY;
    let map = h * wd;
    let mut dx = vec![0f32; n * c * map];
    let flipped = direct.packed(&w, true);
    direct.run(
        direct.in_place(&channel_major(&g, (n, o, map))),
        (o, c),
        &flipped,
        as_uninit(&mut dx),
        (false, false),
        1,
    );
    let wt = input_grad_weight(&w, (c, o));
    let want = reference(&g, &wt, (n, o, h, wd, c));
    assert!(want.iter().any(|v| v.is_infinite()) && want.iter().any(|v| v.is_finite()));
    close(&dx, &want, "input gradient");
}
