//! The limits of the flags and the checks that enforce them, for clap and for settings read back
//! from a checkpoint.

/// The largest sizes the flags take: beyond them a typo would spawn thousands of threads or
/// allocate gigabytes before anything could say so.
pub const MAX_WORKERS: usize = 64;
/// See [`MAX_WORKERS`].
pub const MAX_THREADS: usize = 256;
/// See [`MAX_WORKERS`] (a 784-16384-10 model holds 13 million parameters).
pub const MAX_HIDDEN: usize = 16_384;
/// See [`MAX_WORKERS`].
pub const MAX_LAYERS: usize = 64;
/// See [`MAX_WORKERS`].
pub const MAX_BATCH: usize = 65_536;
/// See [`MAX_WORKERS`].
pub const MAX_STEPS: usize = 1_000_000;

pub fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a positive whole number")),
    }
}

/// A whole number from 1 to `MAX`.
pub fn at_most<const MAX: usize>(s: &str) -> Result<usize, String> {
    match positive(s)? {
        n if n > MAX => Err(format!("must be at most {MAX}, not {n}")),
        n => Ok(n),
    }
}

/// A whole number from 2 to `MAX`.
pub fn two_to<const MAX: usize>(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n < 2 => Err("must be at least 2".into()),
        _ => at_most::<MAX>(s),
    }
}

/// A whole number from 0 to `MAX`.
pub fn zero_to<const MAX: usize>(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > MAX => Err(format!("must be at most {MAX}, not {n}")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

pub fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(v) => Err(format!("must be a finite number >= 0, not {v}")),
        Err(_) => Err(format!("`{s}` is not a number")),
    }
}

pub fn fraction(s: &str) -> Result<f64, String> {
    match non_negative(s)? {
        v if v < 1.0 => Ok(v),
        v => Err(format!("must be below 1, not {v}")),
    }
}

/// A picture side for `--size`: 1 to the library's largest.
pub fn picture_size(s: &str) -> Result<u32, String> {
    const MAX: usize = minibatch::data::images::MAX_SIZE as usize;
    Ok(at_most::<MAX>(s)? as u32)
}

/// `--augment`: none, flip, standard or warp.
pub fn augment(s: &str) -> Result<minibatch::data::images::Augment, String> {
    use minibatch::data::images::Augment;
    match s {
        "none" => Ok(Augment::None),
        "flip" => Ok(Augment::Flip),
        "standard" => Ok(Augment::Standard),
        "warp" => Ok(Augment::Warp),
        _ => Err(format!("`{s}` is not one of none, flip, standard, warp")),
    }
}

pub fn learning_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("must be a finite number above 0, not {v}")),
        Err(_) => Err(format!("`{s}` is not a number")),
    }
}

/// Runs a flag's own check on a value that came from elsewhere (a checkpoint's settings).
pub(crate) fn recheck<T: std::fmt::Display, U>(
    flag: &str,
    value: T,
    parse: fn(&str) -> Result<U, String>,
) -> anyhow::Result<()> {
    parse(&value.to_string()).map(|_| ()).map_err(|e| anyhow::anyhow!("`{flag}` is {value}: {e}"))
}

/// The flags of `command` typed on the command line (not their groups, nor defaults): what
/// `train --resume` names when it ignores them.
pub fn typed(command: &clap::Command, matches: &clap::ArgMatches) -> Vec<String> {
    let flags: Vec<&clap::Id> = command.get_arguments().map(|f| f.get_id()).collect();
    let typed = |id: &&clap::Id| {
        flags.contains(id) && matches.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine)
    };
    matches.ids().filter(typed).map(|id| id.to_string()).collect()
}

/// `fp32` or `bf16`.
pub fn precision(s: &str) -> Result<minibatch::Precision, String> {
    s.parse().map_err(|_| {
        let fp16 = ["fp16", "f16", "half", "float16"].contains(&s.trim().to_ascii_lowercase().as_str());
        let why = if fp16 { " (no fp16: bf16 has fp32's range and needs no loss scaling)" } else { "" };
        format!("`{s}` is not one of fp32, bf16{why}")
    })
}
