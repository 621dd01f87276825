//! `topic!` picks `Topic` for a concrete topic and `Pattern` for a wildcard,
//! and works in `const` items.

use eventbus::topic::{Pattern, Topic};
use eventbus::topic;

const PLACED: Topic = topic!("order.placed");
const EVERY_ORDER: Pattern = topic!("order.>");

fn main() {
    let one_level: Pattern = topic!("order.*",);
    assert_eq!(PLACED.as_str(), "order.placed");
    assert!(EVERY_ORDER.matches("order.cancelled.by_customer"));
    assert!(one_level.matches(PLACED.as_str()));
    assert!(!one_level.matches("order.cancelled.by_customer"));
}
