//! A WASI command: a valid component, but not of the `flow:plugin/action`
//! world. The host must refuse it with a clear message.

fn main() {
    println!("I am a command, not an action");
}
