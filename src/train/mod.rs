//! Training, the notebook's step 6: `fit` with validation, and `get_model`.

mod cnn;
mod fit;
mod lr_find;
mod model;
mod xresnet;

pub use cnn::{cnn, cnn_for, Architecture, MNIST_INPUT};
pub use fit::{evaluate, fit, EpochStats, Evaluation};
pub use lr_find::{lr_find, LrFind, LrFindConfig, MIN_POINTS};
pub use model::{get_model, mlp, mlp_sizes};
pub use xresnet::{ResBlock, XResNet, XResNetConfig};
