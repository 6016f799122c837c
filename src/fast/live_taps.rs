//! A convolution on a map so small that one tap of its kernel does all the reading. A 3x3 kernel
//! with padding 1 on a 1x1 map (the last stage of an xresnet on 28 to 32 pixel images) reads
//! the input through its centre tap alone: the other 8/9 of its products multiply padding. Such
//! a layer runs as the 1x1 convolution of that tap, reading its weights in place in the whole
//! weight (a strided view, no copy) and writing their gradient in place in the whole gradient,
//! which is zero at the other taps, as they only ever met padding.
//!
//! Only a single live tap is cut: cutting a larger live square (a 2x2 map at stride 2 reads
//! through four taps) means gathering the weight and spreading its gradient back, which cost
//! more than the products it saved.

use super::gemm::{filled, View, ViewMut};
use super::scratch;
use super::team::rows_mut;
use std::mem::MaybeUninit;

/// The one tap of a square kernel that reads the input, for every output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cut {
    /// The tap's row and column in the kernel.
    tap: usize,
    /// The kernel's side.
    full: usize,
}

/// A square convolution's shape: kernel side, input and output sides, stride, padding, dilation.
#[derive(Debug, Clone, Copy)]
pub(super) struct ConvShape {
    pub k: usize,
    pub input: (usize, usize),
    pub output: (usize, usize),
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
}

impl Cut {
    /// The cut of a convolution of this shape when one tap (the same along rows and columns)
    /// reads the input and the kernel has more; `None` otherwise.
    pub fn of(c: ConvShape) -> Option<Self> {
        let tap = live(c, c.input.0, c.output.0)?;
        if c.k == 1 || live(c, c.input.1, c.output.1) != Some(tap) || tap * c.dilation > c.padding {
            return None;
        }
        // As a 1x1 convolution, padded by what lay before the tap: it reads the same pixels for
        // the same outputs, and must give as many outputs.
        let padding = c.padding - tap * c.dilation;
        let out = |side: usize| (side + 2 * padding - 1) / c.stride + 1;
        (out(c.input.0) == c.output.0 && out(c.input.1) == c.output.1).then_some(Cut { tap, full: c.k })
    }

    /// The 1x1 convolution's padding, for a convolution padded by `padding` with dilation `dilation`.
    pub fn padding(&self, padding: usize, dilation: usize) -> usize {
        padding - self.tap * dilation
    }

    /// The live tap's weights `[o, channels]`, read in place in the whole weight `[o, channels,
    /// k, k]`.
    pub fn weight_view<'a>(&self, w: &'a [f32], channels: usize) -> View<'a> {
        let kernel = self.full * self.full;
        View { data: &w[self.at().min(w.len())..], rs: channels * kernel, cs: kernel }
    }

    /// The live tap's weights `[o, channels]` copied out of the whole weight `[o, channels, k,
    /// k]` (reading it in order, the output channels shared between the kernel threads: all of
    /// the weight's memory is read for one float in `k * k`), in a scratch buffer.
    pub fn weight_copy(&self, w: &[f32], (o, channels): (usize, usize)) -> Vec<f32> {
        let (kernel, at) = (self.full * self.full, self.at());
        let mut out = scratch::take(o * channels);
        let line = channels * kernel;
        rows_mut(0, &mut out, channels.max(1), line, |first, part| {
            for (dst, row) in part.chunks_exact_mut(channels.max(1)).zip(w[first * line..].chunks_exact(line)) {
                dst.iter_mut().zip(row.iter().skip(at).step_by(kernel)).for_each(|(d, &v)| *d = v);
            }
        });
        out
    }

    /// The whole weight's gradient (`[o, channels, k, k]`, zero at the dead taps), with
    /// `multiply` writing the live tap's `[o, channels]` into it in place. The zeros are written
    /// on every kernel thread (the whole gradient, megabytes, for a ninth of it live).
    pub fn weight_grad(&self, (o, channels): (usize, usize), multiply: impl FnOnce(ViewMut)) -> Vec<f32> {
        let kernel = self.full * self.full;
        let line = (channels * kernel).max(1);
        let mut dw = filled(o * channels * kernel, |dw| {
            rows_mut(0, dw, line, line, |_, part| part.fill(MaybeUninit::new(0.0)));
        });
        let at = self.at().min(dw.len());
        multiply(ViewMut::new(&mut dw[at..], channels * kernel, kernel));
        dw
    }

    /// Where the live tap sits in a kernel.
    fn at(&self) -> usize {
        self.tap * self.full + self.tap
    }
}

/// The one tap along a side of `n` input pixels and `on` outputs that reads an input pixel for
/// some output, if exactly one does.
fn live(c: ConvShape, n: usize, on: usize) -> Option<usize> {
    let reads =
        |t: &usize| (0..on).any(|o| (o * c.stride + t * c.dilation).checked_sub(c.padding).is_some_and(|row| row < n));
    let mut live = (0..c.k).filter(reads);
    match (live.next(), live.next()) {
        (Some(tap), None) => Some(tap),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(side: usize, k: usize, stride: usize, padding: usize) -> ConvShape {
        let out = (side + 2 * padding - k) / stride + 1;
        ConvShape { k, input: (side, side), output: (out, out), stride, padding, dilation: 1 }
    }

    #[test]
    fn only_a_kernel_with_one_live_tap_is_cut() {
        // (side, kernel, stride, padding) -> the live tap and the 1x1 convolution's padding.
        let cases = [
            ((1, 3, 1, 1), Some((1, 0))), // a 1x1 map: the centre tap
            ((1, 5, 1, 2), Some((2, 0))),
            ((1, 3, 2, 1), Some((1, 0))),
            ((2, 3, 2, 1), None), // 2x2 to 1x1 by stride 2: four live taps
            ((2, 3, 1, 1), None), // every tap reads a pixel for some output
            ((7, 3, 2, 1), None),
            ((1, 1, 1, 0), None), // already 1x1
        ];
        for ((side, k, stride, padding), want) in cases {
            let cut = Cut::of(shape(side, k, stride, padding));
            let got = cut.map(|c| (c.tap, c.padding(padding, 1)));
            assert_eq!(got, want, "{side}x{side}, {k}x{k}/{stride}/{padding}");
        }
        let wide = ConvShape { input: (1, 5), output: (1, 5), ..shape(1, 3, 1, 1) };
        assert_eq!(Cut::of(wide), None, "one live row, three live columns");
    }

    #[test]
    fn the_live_taps_weights_and_gradient_are_read_and_written_in_place() {
        let cut = Cut::of(shape(1, 3, 1, 1)).unwrap();
        let w: Vec<f32> = (0..4 * 3 * 9).map(|i| i as f32).collect();
        let view = cut.weight_view(&w, 3);
        let read: Vec<f32> = (0..4)
            .flat_map(|o| (0..3).map(move |c| (o, c)))
            .map(|(o, c)| view.data[o * view.rs + c * view.cs])
            .collect();
        assert_eq!(read, (0..12).map(|i| (i * 9 + 4) as f32).collect::<Vec<_>>());
        assert_eq!(cut.weight_copy(&w, (4, 3)), read);
        let dw = cut.weight_grad((4, 3), |dst| {
            let (lhs, rhs) = ([1., 2., 3., 4.], [1., 1., 1.]);
            super::super::gemm::matmul(4, 3, 1, dst, false, View::rows(&lhs, 1), View::rows(&rhs, 3));
        });
        let want: Vec<f32> = (0..4 * 3 * 9).map(|i| if i % 9 == 4 { (i / 27 + 1) as f32 } else { 0.0 }).collect();
        assert_eq!(dw, want);
    }
}
