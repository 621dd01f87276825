use eventbus::aggregate::Aggregate;
use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(namespace = "ledger")]
enum LedgerEvent {
    Opened { owner: String },
    Deposited { cents: u64 },
    // Added later: the aggregate must say what it does with it.
    Frozen { reason: String },
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Ledger {
    owner: String,
    balance: u64,
}

impl Aggregate for Ledger {
    type Event = LedgerEvent;

    fn apply(&mut self, event: &LedgerEvent) {
        match event {
            LedgerEvent::Opened { owner } => self.owner = owner.clone(),
            LedgerEvent::Deposited { cents } => self.balance += cents,
        }
    }
}

fn main() {}
