//! Drawing a digit in the terminal, as the notebook plots `xb[0]`.

/// Draws a `rows x cols` image of bytes as text, two characters per pixel, darker pixels with
/// denser characters. Returns one line per row.
///
/// ```
/// let art = minibatch::render_digit(&[0, 255, 128, 0], 2, 2);
/// assert_eq!(art, "  @@\n==  \n");
/// ```
pub fn render_digit(pixels: &[u8], rows: usize, cols: usize) -> String {
    const RAMP: &[u8] = b" .:-=+*#%@";
    let mut out = String::with_capacity(rows * (2 * cols + 1));
    for row in pixels.chunks(cols.max(1)).take(rows) {
        for &p in row {
            let c = RAMP[p as usize * (RAMP.len() - 1) / 255] as char;
            out.push(c);
            out.push(c);
        }
        out.push('\n');
    }
    out
}
