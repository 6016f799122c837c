//! The program's arguments and their checks, a file per group of commands; `train`'s are the
//! run's settings too (`train_settings.rs`).

mod bench_flags;
mod data_flags;
mod limits;
mod lr_find_flags;
mod model_flags;
mod train_settings;

pub use bench_flags::BenchArgs;
pub use data_flags::DataArgs;
pub use limits::*;
pub use lr_find_flags::LrFindArgs;
pub use model_flags::{EvalArgs, PlotArgs, PredictArgs, ShowArgs, SummaryArgs};
pub use train_settings::{AllReduce, ModelKind, TrainArgs};
