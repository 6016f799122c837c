//! Lessons 10b, 11 and 11a as a user's crate uses them (one test binary, to keep CI's links few):
//! label smoothing and MixUp, XResNet, transfer learning.

#[path = "../common/mod.rs"]
mod common;
mod lesson10b;
mod transfer;
mod xresnet;
