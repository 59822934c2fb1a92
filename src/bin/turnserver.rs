//! `turnserver`: the coturn-compatible TURN/STUN server binary.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    std::process::exit(turnserver::daemon::run(&args));
}
