//! What an agent's crypto store writes (end-to-end encryption): sealed rows, kept and
//! deleted through the group commit like every other write.

use crate::ids::AgentSlug;

/// Rows of one agent's crypto store, in the order its machine wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoWrite {
    pub slug: AgentSlug,
    pub rows: Vec<CryptoRow>,
}

/// One item of an agent's crypto store (see `e2ee::store`): `kind` names what it is
/// ("account", "session", ...), `key` which one of its kind; `value` is sealed (encrypted)
/// bytes, or `None` to delete the row.
#[derive(Clone, PartialEq, Eq)]
pub struct CryptoRow {
    pub kind: &'static str,
    pub key: String,
    pub value: Option<Vec<u8>>,
}

impl std::fmt::Debug for CryptoRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptoRow")
            .field("kind", &self.kind)
            .field("key", &self.key)
            .field("sealed_len", &self.value.as_ref().map(Vec::len))
            .finish()
    }
}
