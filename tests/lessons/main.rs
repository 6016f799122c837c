//! The course's later lessons as a user's crate uses them (one test binary, to keep CI's links
//! few): image folders (lessons 08 and 10, with the `images` feature), label smoothing and MixUp
//! (10b), XResNet (11), transfer learning (11a).

#[path = "../common/mod.rs"]
mod common;
#[cfg(feature = "images")]
mod images;
mod lesson10b;
mod mixed_precision;
mod transfer;
mod xresnet;
