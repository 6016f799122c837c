//! Printing a module as PyTorch prints it.

use super::Module;

/// PyTorch's `repr` of a module: `Name(extra)` for a leaf, and for a container its children, one
/// per line, indented by two spaces. The repr is for people: it shows at a glance what a model is
/// made of and in which order, with each layer's sizes.
///
/// ```
/// use minibatch::{Linear, ReLU, Rng, Sequential};
/// let mut rng = Rng::new(0);
/// let model = Sequential::new().add(Linear::new(784, 50, &mut rng)?).add(ReLU);
/// assert_eq!(model.to_string(), "Sequential(\n  (0): Linear(in_features=784, out_features=50, bias=True)\n  (1): ReLU()\n)");
/// # Ok::<(), minibatch::Error>(())
/// ```
pub fn repr(module: &dyn Module) -> String {
    let mut lines: Vec<String> = Vec::new();
    let extra = module.extra_repr();
    if !extra.is_empty() {
        lines.extend(extra.lines().map(str::to_string));
    }
    for (name, child) in module.named_children() {
        lines.push(format!("({name}): {}", indent(&repr(child))));
    }
    let name = module.type_name();
    match lines.as_slice() {
        [] => format!("{name}()"),
        [one] if module.named_children().is_empty() => format!("{name}({one})"),
        _ => format!("{name}(\n  {}\n)", lines.join("\n  ")),
    }
}

/// Indents every line but the first by two spaces (PyTorch's `_addindent`).
fn indent(s: &str) -> String {
    s.replace('\n', "\n  ")
}

/// A float as Python's `repr` writes it (`0.1`, `1.0`, `1e-05`), for layer settings in a repr.
pub(crate) fn py_float(x: f64) -> String {
    let a = x.abs();
    if x != 0.0 && x.is_finite() && !(1e-4..1e16).contains(&a) {
        let s = format!("{x:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let s = format!("{x}");
    if s.contains(['.', 'i', 'N']) {
        s
    } else {
        s + ".0"
    }
}

/// Implements `Display` through [`repr`] for the given module types.
macro_rules! impl_display_as_repr {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&$crate::module::repr(self))
            }
        }
    )*};
}
pub(crate) use impl_display_as_repr;

#[cfg(test)]
mod tests {
    #[test]
    fn floats_print_as_python() {
        let cases =
            [(1e-5, "1e-05"), (0.1, "0.1"), (1.0, "1.0"), (0.0001, "0.0001"), (2.5e-7, "2.5e-07"), (3.0, "3.0")];
        for (x, want) in cases {
            assert_eq!(super::py_float(x), want);
        }
    }
}
