//! The lesson, answered: a guide to the notebook `03_minibatch_training` in Rust, section by
//! section, each question answered next to code whose output is asserted (every block below is
//! a doctest that `cargo test` runs). The same text is in `guide/` as Markdown; `examples/` runs
//! the notebook's stages as programs.

#[doc = include_str!("../guide/01-initial-setup.md")]
pub mod s1_initial_setup {}

#[doc = include_str!("../guide/02-cross-entropy.md")]
pub mod s2_cross_entropy {}

#[doc = include_str!("../guide/03-training-loop.md")]
pub mod s3_training_loop {}

#[doc = include_str!("../guide/04-parameters-and-optim.md")]
pub mod s4_parameters_and_optim {}

#[doc = include_str!("../guide/05-dataset-dataloader.md")]
pub mod s5_dataset_dataloader {}

#[doc = include_str!("../guide/06-random-sampling.md")]
pub mod s6_random_sampling {}

#[doc = include_str!("../guide/07-pytorch-dataloader.md")]
pub mod s7_pytorch_dataloader {}

#[doc = include_str!("../guide/08-validation.md")]
pub mod s8_validation {}

#[doc = include_str!("../guide/09-study-notes.md")]
pub mod s9_study_notes {}

#[doc = include_str!("../guide/10-cnn-and-hooks.md")]
pub mod s10_cnn_and_hooks {}

#[doc = include_str!("../guide/11-batch-norm.md")]
pub mod s11_batch_norm {}

#[doc = include_str!("../guide/12-own-batch-norm.md")]
pub mod s12_own_batch_norm {}

#[doc = include_str!("../guide/13-mixup-label-smoothing.md")]
pub mod s13_mixup_label_smoothing {}

#[doc = include_str!("../guide/14-xresnet.md")]
pub mod s14_xresnet {}

#[doc = include_str!("../guide/15-transfer-learning.md")]
pub mod s15_transfer_learning {}

#[cfg(feature = "images")]
#[doc = include_str!("../guide/16-data-block.md")]
pub mod s16_data_block {}

#[cfg(feature = "images")]
#[doc = include_str!("../guide/17-augmentation.md")]
pub mod s17_augmentation {}

#[doc = include_str!("../guide/18-mixed-precision.md")]
pub mod s18_mixed_precision {}
