use eventbus::topic;

fn main() {
    let _ = topic!("order.>.placed");
}
