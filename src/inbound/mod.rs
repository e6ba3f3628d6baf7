//! What the homeserver pushes, from routing to its consequences: [`routing`] decides which
//! agents an event concerns (on the HTTP worker that parsed the transaction), the
//! [`directory`] holds who is joined where (its only writer is [`Directory::apply`]), and
//! [`AfterCommit`] applies a committed transaction's consequences in commit order: inbox
//! tails, the directory, agent notices and invites.

mod commit;
pub mod directory;
pub mod routing;

pub use self::{
    commit::{AfterCommit, AgentNotices},
    directory::Directory,
};
