use eventbus::testing::TestBus;

// A test bus names its handlers by their functions, so a name (and a typo
// in it) does not compile.
fn main() {
    let _ = TestBus::builder().handler("billing");
}
