//! Observations each of which may explain one call once: the audit entries and parks the judge
//! hands out to calls in order, and what is left unexplained.

/// Items of a list each of which may explain one observed call, the first unclaimed first.
pub(super) struct Unclaimed<'a, T> {
    items: &'a [T],
    claimed: Vec<bool>,
}

impl<'a, T> Unclaimed<'a, T> {
    pub(super) fn new(items: &'a [T]) -> Self {
        Self {
            items,
            claimed: vec![false; items.len()],
        }
    }

    pub(super) fn claim(&mut self, matches: impl Fn(&T) -> bool) -> Option<&'a T> {
        let items = self.items;
        let (i, item) = items
            .iter()
            .enumerate()
            .find(|(i, item)| !self.claimed[*i] && matches(item))?;
        self.claimed[i] = true;
        Some(item)
    }

    /// Every item, claimed or not.
    pub(super) fn all(&self) -> &'a [T] {
        self.items
    }

    pub(super) fn left(&self) -> impl Iterator<Item = &'a T> {
        let items = self.items;
        items
            .iter()
            .zip(self.claimed.clone())
            .filter(|(_, claimed)| !claimed)
            .map(|(item, _)| item)
    }
}
