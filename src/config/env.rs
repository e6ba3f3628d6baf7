//! Where secret variables come from: the process environment, or a fixed list in tests.

/// Where a secret variable's value comes from: the process environment in production,
/// a map in tests.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// A fixed list of `(name, value)` pairs (tests, the in-process test daemon).
fn lookup<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k.as_ref() == name)
        .map(|(_, v)| v.as_ref().to_owned())
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Env for [(K, V); N] {
    fn var(&self, name: &str) -> Option<String> {
        lookup(self, name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Env for Vec<(K, V)> {
    fn var(&self, name: &str) -> Option<String> {
        lookup(self, name)
    }
}
