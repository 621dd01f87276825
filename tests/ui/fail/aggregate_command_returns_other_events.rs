use eventbus::aggregate::{Aggregate, Repository};
use eventbus::prelude::*;

#[derive(Event, Clone, Debug)]
#[event(namespace = "ledger")]
enum LedgerEvent {
    Deposited { cents: u64 },
}

#[derive(Event, Clone, Debug)]
#[event(topic = "audit.note")]
struct AuditNote {
    text: String,
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Ledger {
    balance: u64,
}

impl Aggregate for Ledger {
    type Event = LedgerEvent;

    fn apply(&mut self, event: &LedgerEvent) {
        match event {
            LedgerEvent::Deposited { cents } => self.balance += cents,
        }
    }
}

impl Ledger {
    // Returns another type's events: not this aggregate's to save.
    fn deposit(&self, cents: u64) -> Result<Vec<AuditNote>, String> {
        Ok(vec![AuditNote {
            text: format!("deposit of {cents}"),
        }])
    }
}

async fn run(bus: Bus) {
    let ledgers = Repository::<Ledger>::new(&bus);
    let _ = ledgers.execute("l-1", |ledger| ledger.deposit(5)).await;
}

fn main() {}
