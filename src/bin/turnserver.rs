fn main() {
    let args: Vec<String> = std::env::args().collect();
    match turnserver::config::parse_args(&args) {
        Ok(_) => {}
        Err(e) => {
            eprintln!("{}", e.message);
            std::process::exit(e.exit_code);
        }
    }
}
