//! Fine-tuning a pretrained body (lesson 11a): frozen for the first epochs, then trained.

use super::{Callback, Ctx, Flow};
use crate::module::{freeze_body, unfreeze};

/// Keeps the model's body ([`freeze_body`]: every child but the last, batch norm excepted)
/// frozen for the first `epochs` epochs, while the new head learns, then trains every
/// parameter: fastai's `fine_tune`. Decided from the epoch at the start of each one, so a
/// resumed run freezes as the uninterrupted one did. Give the body's parameters a lower rate
/// than the head's (an optimizer group, [`lr_slice`](crate::lr_slice)) for the epochs after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreezeBody {
    /// Epochs trained with the body frozen.
    pub epochs: usize,
}

impl Callback for FreezeBody {
    fn before_epoch(&mut self, cx: &mut Ctx) -> Flow {
        if cx.state.epoch < self.epochs {
            freeze_body(cx.model);
        } else {
            unfreeze(cx.model);
        }
        Flow::Continue
    }
}
