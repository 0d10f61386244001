//! Cancellation: once [`cancel`] is called, every repository write of this
//! process fails. rustic_core can't be stopped from outside; refusing its
//! writes makes a running backup fail before it saves a snapshot, while
//! everything already written stays valid (each file is complete or absent).

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use bytes::Bytes;
use rustic_core::{
    BytesList, ErrorKind as RErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult,
    WriteBackend,
};

static CANCELLED: AtomicBool = AtomicBool::new(false);

/// Stops all repository writes of this process (for Ctrl-C / SIGTERM).
pub fn cancel() {
    CANCELLED.store(true, Ordering::SeqCst);
}

/// True once [`cancel`] was called.
pub fn is_cancelled() -> bool {
    CANCELLED.load(Ordering::SeqCst)
}

fn refuse() -> RusticResult<()> {
    if is_cancelled() {
        return Err(RusticError::new(
            RErrorKind::Other,
            "interrupted: no more repository writes",
        ));
    }
    Ok(())
}

/// Wraps a backend so writes stop after [`cancel`].
#[derive(Debug)]
pub(crate) struct Cancellable(pub(crate) Arc<dyn WriteBackend>);

impl ReadBackend for Cancellable {
    fn location(&self) -> String {
        self.0.location()
    }
    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        self.0.list_with_size(tpe)
    }
    fn list(&self, tpe: FileType) -> RusticResult<Vec<Id>> {
        self.0.list(tpe)
    }
    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        self.0.read_full(tpe, id)
    }
    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        self.0.read_partial(tpe, id, cacheable, offset, length)
    }
    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.0.warmup_path(tpe, id)
    }
    fn needs_warm_up(&self) -> bool {
        self.0.needs_warm_up()
    }
    fn warm_up(&self, tpe: FileType, id: &Id) -> RusticResult<()> {
        self.0.warm_up(tpe, id)
    }
}

impl WriteBackend for Cancellable {
    fn create(&self) -> RusticResult<()> {
        refuse()?;
        self.0.create()
    }
    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        cacheable: bool,
        content: BytesList,
    ) -> RusticResult<()> {
        refuse()?;
        self.0.write_bytes(tpe, id, cacheable, content)
    }
    fn remove(&self, tpe: FileType, id: &Id, cacheable: bool) -> RusticResult<()> {
        refuse()?;
        self.0.remove(tpe, id, cacheable)
    }
}
